"""The registry: every format, runtime and step declares itself here; everything that lists them asks it.

Plugins are plain modules that register on import:

* a **format** is a ``Format`` subclass decorated with ``@register_format`` (``workbench/formats/*.py``):
  how to recognise its files from their content, load them, list their files, read their graph;
* a **runtime** is a ``Runner`` subclass decorated with ``@register_runtime`` (``workbench/runtimes/*.py``):
  what it accepts, its devices and precisions, and its hooks (``workbench.core.runner``);
* a **step** is a function decorated with ``@register_step(kind, target, accepts=..., produces=...)``
  (``workbench/steps/*.py``): export, convert and quantize targets.

The built-in plugins are found by listing the modules of ``workbench.formats``, ``workbench.runtimes``
and ``workbench.steps``; another distribution adds its own through the entry point groups
``workbench.formats``, ``workbench.runtimes`` and ``workbench.steps`` (each entry names a module to
import). Discovery happens once, on the first question asked of the registry, so ``import workbench``
stays fast. A plugin can also register itself at any time by importing this module and calling the
decorators (a test module does this with a toy runtime).

Nothing here imports a plugin statically: core stays below every layer that plugs into it.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from workbench.core.errors import ModelFormatError, WorkbenchError

if TYPE_CHECKING:  # pragma: no cover
    from workbench.core.graph import Graph
    from workbench.core.model import Model
    from workbench.core.runner import Runner

PLUGIN_PACKAGES = ("workbench.formats", "workbench.runtimes", "workbench.steps")
ENTRY_POINT_GROUPS = PLUGIN_PACKAGES
STEP_KINDS = ("export", "convert", "quantize")
#: serving targets (``wb.package``/``wb.serve``) live a layer higher and are discovered only when asked for
SERVER_PACKAGE = "workbench.serving"


# -- formats -------------------------------------------------------------------------------------
class Format:
    """What a format plugin declares. Subclass it, set the class attributes, override what applies.

    ``name`` is the format's key (``Model.format``). ``suffixes`` are the file (or folder) suffixes it
    uses; detection reads the content (``sniff``) and uses the suffix only to explain a failure.
    Formats are sniffed in ``priority`` order (lower first). ``in_memory`` formats (an ``nn.Module``)
    have no file and are never sniffed.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    suffixes: ClassVar[tuple[str, ...]] = ()
    folder: ClassVar[bool] = False  # a folder, not a file (.mlpackage, a Hugging Face folder)
    priority: ClassVar[int] = 100
    in_memory: ClassVar[bool] = False
    #: a format some models are loaded *through* but that no Model has (a pickled nn.Module -> "torch")
    loads_as: ClassVar[str | None] = None
    #: metadata keys ``describe`` shows (opset, producer, …), in this order
    facts: ClassVar[tuple[str, ...]] = ()
    #: loading a file of this format unpickles nothing and runs no code shipped with it (a parser reads
    #: data): a published app accepts uploads of such formats only (see ``code_risk``)
    pure_data: ClassVar[bool] = False

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        """True when the file or folder at ``path`` (whose first bytes are ``head``) is in this format."""
        return False

    @classmethod
    def explain(cls, path: Path, head: bytes) -> ModelFormatError | None:
        """Why ``path``, which carries this format's suffix, is not a valid file of it (or None)."""
        return None

    @classmethod
    def load(cls, path: Path, **options: Any) -> Model:
        """Read the model at ``path`` (its interface and metadata; heavy objects on ``native()``)."""
        raise NotImplementedError

    @classmethod
    def files(cls, path: Path) -> list[Path]:
        """Every file on disk that belongs to the model at ``path`` (weights beside it included)."""
        if path.is_dir():
            return sorted(p for p in path.rglob("*") if p.is_file())
        return [path] if path.exists() else []

    @classmethod
    def graph(cls, model: Model) -> Graph:
        """The model's graph as a ``workbench.core.graph.Graph``."""
        raise WorkbenchError(f"the workbench cannot read the graph of a {cls.name} model",
                             "export or convert it to ONNX first (wb.export / wb.convert)")

    @classmethod
    def describe(cls, model: Model) -> dict[str, Any]:
        """Format-specific facts for ``Model.describe()``: by default the ``facts`` keys of the metadata."""
        return {k: model.metadata[k] for k in cls.facts if model.metadata.get(k) is not None}

    @classmethod
    def precision(cls, model: Model) -> str | None:
        """The compute precision the stored model implies (``"int8"`` for a QDQ graph), if it says."""
        return None

    @classmethod
    def code_risk(cls, path: Path) -> str | None:
        """Why loading the model at ``path`` could unpickle objects or run code shipped with it, or None
        when it cannot (a ``pure_data`` format; a format whose files decide, such as a folder, overrides
        this). A published app refuses an uploaded model with a risk before loading it."""
        if cls.pure_data:
            return None
        return (f"it is {cls.description or cls.name}, whose loading can unpickle objects or run code shipped "
                "with it, which a published app never does")


# -- steps ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StepPlugin:
    """A registered step: ``func(model, **options) -> Model`` for ``(kind, target)``.

    ``produces`` is the result's format, or a function of the step's options giving it (a torch
    quantization makes an ExportedProgram or TorchScript depending on the method). ``accepts`` lists
    the formats the step takes. ``methods`` lists the step's own variants (quantization methods).
    """

    kind: str
    target: str
    func: Callable[..., Model]
    accepts: tuple[str, ...]
    produces: str | Callable[[dict[str, Any]], str]
    aliases: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    description: str = ""
    requires: tuple[str, ...] = ()  # distributions it needs (for messages and availability)

    def result_format(self, options: dict[str, Any] | None = None) -> str:
        return self.produces(dict(options or {})) if callable(self.produces) else self.produces

    def possible_formats(self) -> tuple[str, ...]:
        """Every format this step can produce (for planning before options are known)."""
        if not callable(self.produces):
            return (self.produces,)
        out = []
        for method in self.methods or ("",):
            fmt = self.produces({"method": method} if method else {})
            if fmt not in out:
                out.append(fmt)
        return tuple(out)


# -- the registry itself ---------------------------------------------------------------------------
_lock = threading.RLock()
_formats: dict[str, type[Format]] = {}
_runtimes: dict[str, type[Runner]] = {}
_steps: dict[tuple[str, str], StepPlugin] = {}
_servers: dict[str, type] = {}
_servers_discovered = False
_discovered = False
_discovery_errors: list[str] = []

F = TypeVar("F", bound=type)


def register_format(cls: F) -> F:
    """Class decorator: add a ``Format`` subclass to the registry (replacing one of the same name)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no format name")
    with _lock:
        _formats[cls.name] = cls
    return cls


def register_runtime(cls: F) -> F:
    """Class decorator: add a ``Runner`` subclass to the registry under its ``name``."""
    if not getattr(cls, "name", "") or cls.name == "base":
        raise ValueError(f"{cls.__name__} has no runtime name")
    with _lock:
        _runtimes[cls.name] = cls
    return cls


def register_step(
    kind: str,
    target: str,
    *,
    accepts: tuple[str, ...],
    produces: str | Callable[[dict[str, Any]], str],
    aliases: tuple[str, ...] = (),
    methods: tuple[str, ...] = (),
    description: str = "",
    requires: tuple[str, ...] = (),
) -> Callable[[Callable[..., Model]], Callable[..., Model]]:
    """Function decorator: register ``func(model, **options) -> Model`` as step ``(kind, target)``."""
    if kind not in STEP_KINDS:
        raise ValueError(f"unknown step kind {kind!r}; expected one of {STEP_KINDS}")

    def decorate(func: Callable[..., Model]) -> Callable[..., Model]:
        doc = description or ((func.__doc__ or "").strip().splitlines() or [""])[0]
        plugin = StepPlugin(kind, target, func, tuple(accepts), produces, tuple(aliases), tuple(methods),
                            doc, tuple(requires))
        with _lock:
            _steps[(kind, target)] = plugin
        return func

    return decorate


def register_server(cls: F) -> F:
    """Class decorator: add a serving target (a ``workbench.serving.base.Server`` subclass) under its ``name``."""
    if not getattr(cls, "name", ""):
        raise ValueError(f"{cls.__name__} has no server name")
    with _lock:
        _servers[cls.name] = cls
    return cls


def servers() -> dict[str, type]:
    """Every registered serving target by name: the modules of ``workbench.serving`` (imported on the first
    call, not by ``discover``: serving sits above the steps) and the entry point group of the same name."""
    global _servers_discovered
    with _lock:
        if not _servers_discovered:
            package = importlib.import_module(SERVER_PACKAGE)
            for info in pkgutil.iter_modules(package.__path__):
                if not info.name.startswith("_"):
                    importlib.import_module(f"{SERVER_PACKAGE}.{info.name}")
            for ep in importlib_metadata.entry_points(group=SERVER_PACKAGE):
                try:
                    importlib.import_module(ep.value.split(":")[0])
                except Exception as err:  # noqa: BLE001 - a broken third-party plugin must not break the rest
                    _discovery_errors.append(f"{SERVER_PACKAGE} plugin {ep.name!r} ({ep.value}) failed to import: {err}")
            _servers_discovered = True
        return dict(_servers)


def get_server(name: str) -> type:
    """The serving target ``name``; an unknown name is an error listing the registered ones."""
    known = servers()
    if name not in known:
        raise WorkbenchError(f"unknown serving target {name!r}", f"pass one of: {', '.join(known)}")
    return known[name]


def discover() -> None:
    """Import every built-in plugin module and every entry-point plugin, once."""
    global _discovered
    if _discovered:
        return
    with _lock:
        if _discovered:
            return
        for package_name in PLUGIN_PACKAGES:
            package = importlib.import_module(package_name)
            for info in pkgutil.iter_modules(package.__path__):
                if not info.name.startswith("_"):
                    importlib.import_module(f"{package_name}.{info.name}")
        for group in ENTRY_POINT_GROUPS:
            for ep in importlib_metadata.entry_points(group=group):
                try:
                    importlib.import_module(ep.value.split(":")[0])
                except Exception as err:  # noqa: BLE001 - a broken third-party plugin must not break the rest
                    _discovery_errors.append(f"{group} plugin {ep.name!r} ({ep.value}) failed to import: {err}")
        _discovered = True


def discovery_errors() -> list[str]:
    """Plugins named by entry points that could not be imported (each with its error)."""
    discover()
    return list(_discovery_errors)


# -- questions -------------------------------------------------------------------------------------
def formats() -> dict[str, type[Format]]:
    """Every registered format by name."""
    discover()
    return dict(_formats)


def format_names() -> tuple[str, ...]:
    return tuple(formats())


def get_format(name: str) -> type[Format]:
    """The format plugin registered as ``name``."""
    table = formats()
    if name not in table:
        raise ModelFormatError(f"unknown format {name!r}", f"registered formats: {', '.join(table)}")
    return table[name]


def runtimes() -> dict[str, type[Runner]]:
    """Every registered runtime by name (registration order)."""
    discover()
    return dict(_runtimes)


def runtime_aliases() -> dict[str, str]:
    """Short names (``"ort"``, ``"ov"``) declared by the runtimes, mapped to their names."""
    return {alias: name for name, cls in runtimes().items() for alias in getattr(cls, "aliases", ())}


def get_runtime(name: str) -> type[Runner]:
    """The Runner class registered as ``name`` or one of its aliases."""
    table = runtimes()
    key = runtime_aliases().get(name, name)
    if key not in table:
        raise WorkbenchError(f"unknown backend {name!r}", f"choose one of {', '.join(table)}")
    return table[key]


def runtimes_for(fmt: str) -> list[str]:
    """Runtimes that take ``fmt`` directly, the format's natural runtime first."""
    table = runtimes()
    direct = [n for n, cls in table.items() if fmt in cls.formats]
    return sorted(direct, key=lambda n: 0 if fmt in getattr(table[n], "default_for", ()) else 1)


def default_runtime(fmt: str) -> str:
    """The natural runtime for a format: the one that declares ``default_for`` it, else the first that
    takes it and is available here, else the first that takes it."""
    candidates = runtimes_for(fmt)
    if not candidates:
        raise WorkbenchError(f"no registered runtime runs {fmt} models",
                             f"convert the model to one of: {', '.join(sorted(accepted_formats()))}")
    table = runtimes()
    if fmt in getattr(table[candidates[0]], "default_for", ()):
        return candidates[0]
    return next((n for n in candidates if table[n].availability()), candidates[0])


def accepted_formats() -> set[str]:
    return {f for cls in runtimes().values() for f in cls.formats}


def runtimes_with(hook: str) -> list[str]:
    """Runtimes that implement an optional hook of ``Runner`` (``"profile_nodes"``, ``"run_with_outputs"``, …)."""
    from workbench.core.runner import Runner

    def impl(obj: Any) -> Any:  # a classmethod is bound anew on each lookup: compare its function
        return getattr(obj, "__func__", obj)

    base = impl(getattr(Runner, hook))
    return [n for n, cls in runtimes().items() if impl(getattr(cls, hook)) is not base]


def steps(kind: str | None = None) -> list[StepPlugin]:
    """Registered steps (of one kind, or all)."""
    discover()
    return [s for (k, _), s in _steps.items() if kind is None or k == kind]


def step_targets(kind: str) -> tuple[str, ...]:
    return tuple(s.target for s in steps(kind))


def get_step(kind: str, target: str) -> StepPlugin:
    """The step registered as ``(kind, target)`` or under one of its aliases."""
    found = steps(kind)
    for s in found:
        if target == s.target:
            return s
    for s in found:
        if target in s.aliases:
            return s
    raise WorkbenchError(f"unknown {kind} target {target!r}",
                         f"choose one of {', '.join(s.target for s in found) or '(none registered)'}")


def steps_accepting(fmt: str, kind: str | None = None) -> list[StepPlugin]:
    return [s for s in steps(kind) if fmt in s.accepts]


def route(source: str, target: str, kinds: tuple[str, ...] = ("export", "convert")) -> list[StepPlugin]:
    """The shortest chain of steps that turns a ``source``-format model into a ``target``-format one.

    Breadth-first over the registered steps of ``kinds`` (quantization changes numbers, so it is never
    part of a route). ``[]`` when ``source == target``; raises when no chain exists.
    """
    if source == target:
        return []
    came: dict[str, tuple[str, StepPlugin] | None] = {source: None}
    queue = deque([source])
    while queue:
        fmt = queue.popleft()
        for s in steps():
            if s.kind not in kinds or fmt not in s.accepts:
                continue
            for nxt in s.possible_formats():
                if nxt in came:
                    continue
                came[nxt] = (fmt, s)
                if nxt == target:
                    chain = []
                    cur = target
                    while came[cur] is not None:
                        prev, step = came[cur]  # type: ignore[misc]
                        chain.append(step)
                        cur = prev
                    return chain[::-1]
                queue.append(nxt)
    raise WorkbenchError(f"no chain of export/convert steps turns a {source} model into {target}",
                         f"registered steps take: {', '.join(sorted({f for s in steps() for f in s.accepts}))}")


def reachable(fmt: str, runtime: str) -> bool:
    """True when ``runtime`` takes ``fmt`` models directly or through a chain of export/convert steps."""
    cls = get_runtime(runtime)
    if fmt in cls.formats:
        return True
    for target in cls.formats:
        try:
            route(fmt, target)
            return True
        except WorkbenchError:
            continue
    return False


def prepare_for(model: Model, runtime: str) -> Model:
    """``model`` in a format ``runtime`` takes: itself, or the result of the shortest chain of registered
    export/convert steps to such a format (cached on the model, run unvalidated: callers compare).

    The steps are called through their registrations, so core runs them without importing them."""
    from workbench.core.errors import IncompatibleModel

    cls = get_runtime(runtime)
    if model.format in cls.formats:
        return model
    chains = []
    for fmt in cls.formats:
        try:
            chains.append(route(model.format, fmt))
        except WorkbenchError:  # no route to this format; try the next
            continue
    if not chains:
        raise IncompatibleModel(
            f"{cls.name} cannot run a {model.format} model, and there is no conversion path from {model.format}",
            f"{cls.name} takes: {', '.join(cls.formats)}",
        )
    chain = min(chains, key=len)
    cache = model.metadata.setdefault("runner_conversions", {})
    key = " > ".join(f"{s.kind}:{s.target}" for s in chain)
    if key not in cache:
        current = model
        for step in chain:
            current = step.func(current, validate=False)  # the caller compares if it wants
        cache[key] = current
    return cache[key]


def open_runner(model: Model, runtime: str, **options: Any) -> Runner:
    """A Runner for ``model`` on ``runtime``, converting the model first when the runtime needs another format."""
    return get_runtime(runtime)(prepare_for(model, runtime), **options)


@dataclass
class Snapshot:
    formats: dict[str, Any] = field(default_factory=dict)
    runtimes: dict[str, Any] = field(default_factory=dict)
    steps: dict[Any, Any] = field(default_factory=dict)


def snapshot() -> Snapshot:
    """The registry's contents, to ``restore`` later (tests that register toy plugins use this)."""
    discover()
    return Snapshot(dict(_formats), dict(_runtimes), dict(_steps))


def restore(snap: Snapshot) -> None:
    with _lock:
        _formats.clear()
        _formats.update(snap.formats)
        _runtimes.clear()
        _runtimes.update(snap.runtimes)
        _steps.clear()
        _steps.update(snap.steps)
