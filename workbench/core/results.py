"""One JSON encoding for every result object, and its way back.

A result type is a dataclass registered under a *kind*::

    @result_type("comparison", version=1)
    @dataclass
    class Comparison: ...

``to_json(result)`` writes a document ``{"schema": "workbench.<kind>", "schema_version": N, <fields>}``
and ``from_json(text)`` reads the schema name, finds the registered class and rebuilds it, nested
dataclasses included, from the fields' type hints. Registered classes get ``to_json()`` /
``from_json()`` methods built on these unless they define their own.

The rule, the same for every result and every nesting level (``plain(value)``):

* ``None``, ``bool``, ``int``, ``str`` are kept; a finite ``float`` is kept;
* NaN, +inf and -inf become ``null``: the output is strict JSON (``allow_nan=False``), which every
  parser reads. Read back, ``null`` is ``None`` where the field allows ``None`` and NaN where it is a
  plain ``float`` (so an infinity comes back as NaN: "no finite value");
* NumPy (and torch) scalars and arrays become Python numbers and (nested) lists, through ``tolist()``;
* paths become strings, enums their value, tuples and sets lists, mapping keys strings;
* a dataclass becomes the dict of its fields, recursively, plus what its ``json_extras()`` returns
  (derived figures a reader of the JSON wants, such as ``passed``; ignored when read back);
* anything else becomes its ``str()``, so encoding never fails (it is then not round-tripped).

``schema_version`` is bumped when a field is renamed or removed; adding a field does not bump it, and
a reader ignores fields it does not know, so old documents keep loading. A document whose version is
newer than the registered one is refused with an error that says so.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
import sys
import types
import typing
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

__all__ = ["SCHEMA_PREFIX", "document", "from_dict", "from_json", "plain", "registered", "result_type",
           "to_json"]

SCHEMA_PREFIX = "workbench."

T = TypeVar("T")

#: kind -> (class, schema version)
_TYPES: dict[str, tuple[type, int]] = {}
_TYPE_HINTS: dict[type, dict[str, Any]] = {}

#: per class, field names to leave out of a document (e.g. ``{BenchResult: {"latencies_ms"}}``)
Omit = Mapping[type, Collection[str]]


def result_type(kind: str, version: int = 1) -> Callable[[type[T]], type[T]]:
    """Register a dataclass as the result type ``kind`` with schema ``version``.

    The class gets ``to_json(indent=2)`` and ``from_json(text)`` (a classmethod) unless it defines
    them itself; both go through this module. Registering another class under a taken kind is an
    error (re-registering the same class, e.g. after a module reload, replaces it).
    """
    if version < 1:
        raise ValueError(f"schema version must be >= 1, got {version}")

    def register(cls: type[T]) -> type[T]:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"@result_type({kind!r}) needs a dataclass, got {cls.__name__}")
        taken = _TYPES.get(kind)
        if taken is not None and _qualified(taken[0]) != _qualified(cls):
            raise ValueError(f"result kind {kind!r} is already registered by {_qualified(taken[0])}")
        _TYPES[kind] = (cls, version)
        _TYPE_HINTS.pop(cls, None)
        cls.result_kind = kind  # type: ignore[attr-defined]
        cls.schema_version = version  # type: ignore[attr-defined]
        if "to_json" not in cls.__dict__:
            cls.to_json = _to_json_method  # type: ignore[attr-defined]
        if "from_json" not in cls.__dict__:
            cls.from_json = classmethod(_from_json_method)  # type: ignore[attr-defined]
        return cls

    return register


def registered() -> dict[str, tuple[type, int]]:
    """``{kind: (class, schema version)}`` of every registered result type."""
    return dict(_TYPES)


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _to_json_method(self: Any, indent: int | None = 2) -> str:
    """JSON with ``schema: "workbench.<kind>"`` and ``schema_version`` (see ``workbench.core.results``)."""
    return to_json(self, indent=indent)


def _from_json_method(cls: type[T], text: str) -> T:
    """Rebuild from the text of ``to_json()``."""
    return from_json(text, cls)


# -- encoding ------------------------------------------------------------------------------------------


def plain(value: Any, omit: Omit | None = None) -> Any:
    """``value`` as JSON-ready Python data, by the module's one rule (NaN/inf → None, NumPy → Python,
    dataclasses → dicts, …). ``omit`` leaves fields out: ``{SomeClass: {"field", …}}``."""
    if value is None or isinstance(value, bool | int | str) and not isinstance(value, enum.Enum):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return plain(value.value, omit)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        skip = omit.get(type(value), ()) if omit else ()
        out = {f.name: plain(getattr(value, f.name), omit) for f in dataclasses.fields(value) if f.name not in skip}
        extras = getattr(value, "json_extras", None)
        if callable(extras):
            out.update({str(k): plain(v, omit) for k, v in extras().items()})
        return out
    if isinstance(value, Mapping):
        return {_key(k): plain(v, omit) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [plain(v, omit) for v in items]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist"):  # NumPy scalars and arrays, torch tensors
        return plain(value.tolist(), omit)
    return str(value)


def _key(k: Any) -> str:
    if isinstance(k, enum.Enum):
        k = k.value
    if isinstance(k, str):
        return k
    if hasattr(k, "item"):  # a NumPy scalar key
        k = k.item()
    return str(k)


def document(kind: str, payload: Mapping[str, Any], version: int | None = None,
             omit: Omit | None = None) -> dict[str, Any]:
    """``{"schema": "workbench.<kind>", "schema_version": N, **plain(payload)}``. The version defaults
    to the registered one for ``kind`` (1 when nothing is registered under it)."""
    if version is None:
        version = _TYPES[kind][1] if kind in _TYPES else 1
    return {"schema": SCHEMA_PREFIX + kind, "schema_version": version, **plain(dict(payload), omit)}


def to_json(result: Any, indent: int | None = 2, omit: Omit | None = None) -> str:
    """The JSON text of a registered result (strict JSON: no NaN or Infinity literals)."""
    kind = getattr(type(result), "result_kind", None)
    if kind is None or kind not in _TYPES:
        raise TypeError(f"{type(result).__name__} is not a registered result type (decorate it with @result_type)")
    doc = document(kind, plain(result, omit), _TYPES[kind][1])
    return json.dumps(doc, indent=indent, allow_nan=False)


# -- decoding ------------------------------------------------------------------------------------------


def from_json(text: str | bytes, cls: type[T] | None = None) -> T:
    """Rebuild a result from the text of ``to_json()``: the class is the one registered under the
    document's schema name (``cls``, when given, must match it)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"not a JSON document: {err}") from None
    return from_dict(doc, cls)


def from_dict(doc: Mapping[str, Any], cls: type[T] | None = None) -> T:
    """Rebuild a result from a parsed document (see ``from_json``)."""
    if not isinstance(doc, Mapping):
        raise ValueError(f"a result document is a JSON object, not {type(doc).__name__}")
    schema = doc.get("schema")
    if not isinstance(schema, str) or not schema.startswith(SCHEMA_PREFIX):
        raise ValueError(f"not a workbench result: schema is {schema!r}, expected 'workbench.<kind>'")
    kind = schema[len(SCHEMA_PREFIX):]
    if kind not in _TYPES:
        known = ", ".join(sorted(_TYPES)) or "none registered yet (import the module that defines it)"
        raise ValueError(f"unknown result kind {kind!r}; known: {known}")
    registered_cls, version = _TYPES[kind]
    if cls is not None and not issubclass(registered_cls, cls):
        raise ValueError(f"the document holds a {registered_cls.__name__} ({schema}), not a {cls.__name__}")
    found = doc.get("schema_version", 1)
    if not isinstance(found, int) or found > version:
        raise ValueError(f"{schema} version {found} was written by a newer workbench (this one reads up to "
                         f"version {version}); upgrade deployment-workbench")
    body = {k: v for k, v in doc.items() if k not in ("schema", "schema_version")}
    return _decode(body, registered_cls)  # type: ignore[no-any-return]


def _hints(cls: type) -> dict[str, Any]:
    """The resolved type hints of a dataclass's fields. Names a module imports only for type checking
    are looked up among the registered result types; a hint that still cannot be resolved is ``Any``."""
    if cls in _TYPE_HINTS:
        return _TYPE_HINTS[cls]
    local = {c.__name__: c for c, _ in _TYPES.values()}
    try:
        hints = typing.get_type_hints(cls, localns=local)
    except Exception:  # noqa: BLE001 - resolve field by field below
        module_globals = vars(sys.modules[cls.__module__]) if cls.__module__ in sys.modules else {}
        hints = {}
        for f in dataclasses.fields(cls):
            try:
                hints[f.name] = eval(f.type, module_globals, local) if isinstance(f.type, str) else f.type  # noqa: S307
            except Exception:  # noqa: BLE001 - an unresolvable hint: take the JSON value as it is
                hints[f.name] = Any
    _TYPE_HINTS[cls] = hints
    return hints


def _decode(value: Any, tp: Any) -> Any:
    """``value`` (parsed JSON) as type ``tp``."""
    if tp is Any or tp is object or isinstance(tp, TypeVar):
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        for i, option in enumerate(options):
            try:
                return _decode(value, option)
            except (TypeError, ValueError, KeyError):
                if i == len(options) - 1:
                    raise
        return value
    if origin is typing.Literal:
        return value
    if origin is typing.Annotated:
        return _decode(value, args[0])
    if value is None:
        return math.nan if tp is float else None
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _decode_dataclass(value, tp)
    if origin is not None:
        return _decode_generic(value, origin, args)
    if isinstance(tp, type):
        if tp is float:
            return float(value)
        if issubclass(tp, enum.Enum):
            return tp(value)
        if issubclass(tp, os.PathLike) or tp.__name__ in ("Path", "PosixPath", "WindowsPath"):
            return tp(value)
        if tp in (tuple, list, set, frozenset):
            return tp(value)
        if tp.__module__ == "numpy" and tp.__name__ == "ndarray":
            import numpy as np

            return np.asarray(value)
    return value


def _decode_dataclass(value: Any, cls: type) -> Any:
    if not isinstance(value, Mapping):
        raise TypeError(f"{cls.__name__} is stored as a JSON object, got {type(value).__name__}")
    hints = _hints(cls)
    kwargs = {f.name: _decode(value[f.name], hints.get(f.name, Any))
              for f in dataclasses.fields(cls) if f.init and f.name in value}
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ValueError(f"cannot rebuild {cls.__name__} from the document: {err}") from None


def _decode_generic(value: Any, origin: Any, args: tuple[Any, ...]) -> Any:
    import collections.abc as abc

    if origin in (list, abc.Sequence, abc.MutableSequence, abc.Iterable, set, frozenset, abc.Set):
        if not isinstance(value, list):
            raise TypeError(f"expected a JSON array, got {type(value).__name__}")
        item = args[0] if args else Any
        items = [_decode(v, item) for v in value]
        return set(items) if origin in (set, abc.Set) else frozenset(items) if origin is frozenset else items
    if origin is tuple:
        if not isinstance(value, list):
            raise TypeError(f"expected a JSON array, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(v, args[0]) for v in value)
        if args and args != ((),):
            return tuple(_decode(v, a) for v, a in zip(value, args, strict=False))
        return tuple(value)
    if origin in (dict, abc.Mapping, abc.MutableMapping):
        if not isinstance(value, Mapping):
            raise TypeError(f"expected a JSON object, got {type(value).__name__}")
        key_t, val_t = args if len(args) == 2 else (Any, Any)
        return {_decode_key(k, key_t): _decode(v, val_t) for k, v in value.items()}
    return value


def _decode_key(key: str, tp: Any) -> Any:
    if tp in (int, float):
        try:
            return tp(key)
        except ValueError:
            return key
    return _decode(key, tp) if isinstance(tp, type) and issubclass(tp, enum.Enum) else key
