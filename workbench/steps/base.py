"""What every step shares: write the artifact atomically (in the worker subprocess), record its lineage
and manifest entry, validate it, and cache it by content hash.

A step module (export, convert, quantize) describes its work as a ``StepSpec`` whose ``writer`` is a
module-level function ``writer(source: Model, tmp: Path, **kwargs) -> dict | None`` that writes the
artifact to ``tmp`` (a temporary name beside the final one) and returns extra metadata. ``run_step``
does the rest. The cache key is a sha256 over the parent's content (its files, or a torch module's
weights and class), the step, its options, the calibration data and the tool versions, so a re-run
with the same everything returns the artifact already in the workspace at once.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from workbench.core import progress, registry
from workbench.core.errors import InputError, StepError, WorkbenchError
from workbench.core.model import LineageEntry, Model
from workbench.core.registry import StepPlugin
from workbench.steps.workspace import (
    FOLDER_SUFFIXES,
    clean_once,
    commit,
    find_cached,
    model_sha256,
    record,
    release,
    tmp_sibling,
    unique_path,
    update_entry,
)

#: in-process cache: cache key -> the Model made (with its validation), so a re-run is instant
_MEMO: dict[str, Model] = {}
_content_hashes: weakref.WeakKeyDictionary[Any, tuple[int, str]] = weakref.WeakKeyDictionary()


@dataclass
class StepSpec:
    """A step's plan: what to run and how to name and record the result."""

    step: str  # "convert:openvino"
    options: dict[str, Any]  # recorded in the lineage and the manifest (JSON-able)
    suffix: str  # ".xml", ".onnx", ".mlpackage", …
    writer: Callable[..., dict[str, Any] | None]
    writer_kwargs: dict[str, Any] = field(default_factory=dict)
    tag: str = ""  # added to the file name: digits-cnn-int8.onnx
    precision: str | None = None  # what the result computes in; None: the parent's
    tools: tuple[str, ...] = ()  # distributions whose versions go into the lineage
    cache_extra: str = ""  # e.g. the calibration data's hash


def tool_versions(*dists: str) -> dict[str, str]:
    """Installed versions of ``dists`` (without importing them)."""
    out = {}
    for d in dists:
        try:
            out[d] = importlib_metadata.version(d)
        except importlib_metadata.PackageNotFoundError:
            pass
    return out


def content_hash(model: Model) -> str:
    """A sha256 standing for the model's content: its files, or for an in-memory torch model its
    class, input specs and weights."""
    digest = model_sha256(model) if model.path is not None else None
    if digest is not None:
        return digest
    native = model.native()
    h = hashlib.sha256()
    h.update(f"{type(native).__module__}.{type(native).__qualname__}".encode())
    h.update(repr([(s.name, s.shape, s.dtype) for s in model.inputs]).encode())
    try:
        state = native.state_dict()
    except AttributeError:
        h.update(repr(native).encode())
        return h.hexdigest()
    for name, tensor in state.items():
        h.update(name.encode())
        t = tensor.detach().cpu().contiguous()
        h.update(str(t.dtype).encode() + str(tuple(t.shape)).encode())
        try:
            h.update(t.view(-1).view(dtype=__import__("torch").uint8).numpy().tobytes())
        except (RuntimeError, TypeError):
            h.update(repr(t).encode())
    return h.hexdigest()


def cache_key(parent: Model, spec: StepSpec) -> str:
    # the calibration data counts by its content (cache_extra), not by where it came from
    options = {k: v for k, v in spec.options.items() if k != "calibration"}
    payload = {"parent": content_hash(parent), "step": spec.step, "options": options,
               "extra": spec.cache_extra, "versions": tool_versions(*spec.tools), "workbench": 1}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _stem(parent: Model, tag: str) -> str:
    base = parent.path.stem if parent.path is not None else parent.name
    return f"{base}-{tag}" if tag else base


def portable(model: Model) -> Model:
    """A light copy to send to the worker: no lineage; a model on disk travels as its path."""
    native = model.native() if model.path is None or model.format in ("torch", "hf") else None
    meta = {k: v for k, v in model.metadata.items() if not k.startswith("_") and k != "validation"}
    return Model(model.format, name=model.name, inputs=model.inputs, outputs=model.outputs, path=model.path,
                 native=native, task=model.task, metadata=meta,
                 example_feeds=getattr(model, "_example_feeds", None))


def _in_worker(writer: Callable[..., Any], source: Model, tmp: Path, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Runs in the worker: reload a model on disk, write the artifact, return its metadata."""
    if source.path is not None and source.native() is None:
        from workbench.core.detect import load_path

        # a file the user opened with trust=True (a .pt2 holding pickles) is reopened the same way
        loaded = load_path(source.path, trust=bool(source.metadata.get("trusted")))
        source._native, source._native_loader = loaded._native, loaded._native_loader
    return writer(source, tmp, **kwargs) or {}


def _cleanup(tmp: Path) -> None:
    import shutil

    for p in tmp.parent.glob(f"{tmp.stem}.*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


#: suffixes of artifacts whose weights are a ``.bin`` beside them (OpenVINO IR, ncnn)
WEIGHTS_BESIDE = (".xml", ".param")


def _commit_all(tmp: Path, out: Path) -> None:
    """Move the artifact and its siblings (IR ``.bin``, ONNX external ``.data``) into place; the main file
    last, so a reader never finds it without its weights."""
    if out.suffix in WEIGHTS_BESIDE:  # OpenVINO IR .xml, ncnn .param: the weights .bin first
        commit(tmp.with_suffix(".bin"), out.with_suffix(".bin"))
    data = Path(f"{tmp}.data")
    if out.suffix == ".onnx" and data.exists():
        import onnx
        from onnx.external_data_helper import _get_all_tensors, uses_external_data

        proto = onnx.load_model(str(tmp), load_external_data=False)
        for tensor in _get_all_tensors(proto):  # point the graph at the data file's final name
            if uses_external_data(tensor):
                for entry in tensor.external_data:
                    if entry.key == "location" and entry.value == data.name:
                        entry.value = f"{out.name}.data"
        onnx.save_model(proto, str(tmp))
        commit(data, Path(f"{out}.data"))
    commit(tmp, out)


def run_step(
    parent: Model,
    spec: StepSpec,
    *,
    path: str | Path | None = None,
    isolate: bool = True,
    timeout: float | None = None,
    cache: bool = True,
    validate: bool = True,
) -> Model:
    """Run one step on ``parent`` and return the resulting Model (see the module docstring).

    Args:
        path: where to write (must not exist); default a fresh name in the workspace.
        isolate: run the writer in the worker subprocess (a crash or hang cannot kill this process).
        timeout: seconds before the worker is stopped (default ``$WORKBENCH_STEP_TIMEOUT`` or 3600).
        cache: reuse an identical earlier result (same parent content, step, options, tools).
        validate: run the result and compare it with its parent and the original (``result.validation``).

    Progress goes to ``workbench.core.progress``: ``"running"``, ``"validating"``, ``"done"`` or ``"cached"``.
    """
    say = progress.report
    key = cache_key(parent, spec) if cache and path is None else None
    if key is not None:
        hit = _from_cache(parent, spec, key, validate)
        if hit is not None:
            say("cached")
            return hit
    say("running")
    out = Path(path) if path is not None else unique_path(_stem(parent, spec.tag), spec.suffix)
    if path is not None:
        # every file the artifact will take (the IR's .bin, ONNX external .data): a symlink counts, even dangling
        siblings = {**{k: (out.with_suffix(".bin"),) for k in WEIGHTS_BESIDE},
                    ".onnx": (Path(f"{out}.data"),)}.get(out.suffix, ())
        taken = [p for p in (out, *siblings) if p.exists() or p.is_symlink()]
        if taken:
            what = "a symlink" if taken[0].is_symlink() else ("a folder" if taken[0].is_dir() else "a file")
            raise StepError(f"{taken[0]} already exists ({what}) and would be overwritten"
                            + (f" by {out.name}'s weights" if taken[0] != out else ""),
                            "pass a new path, or leave path out")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StepError(f"cannot make the folder {out.parent} for {out.name} ({err.strerror or err})",
                            "pass a path in a folder you can write to") from None
        clean_once(out.parent)  # what a killed earlier run left beside it
    tmp = tmp_sibling(out)
    label = f"{spec.step} of {parent.name}"
    notes: list[str] = []
    start = time.perf_counter()
    try:
        meta = None
        if isolate:
            from workbench.steps.worker import NotIsolatable, run_isolated

            try:
                meta = run_isolated(_in_worker, spec.writer, portable(parent), tmp, spec.writer_kwargs,
                                    timeout=timeout, label=label)
            except NotIsolatable as err:  # e.g. a module holding a lock or an open file: run it here
                notes.append(f"ran in this process, not the worker: {err}")
        if meta is None:
            meta = spec.writer(parent, tmp, **spec.writer_kwargs) or {}
        _commit_all(tmp, out)
    except BaseException as err:
        _cleanup(tmp)
        if path is None:  # drop the name we reserved
            if out.is_dir() and out.suffix in FOLDER_SUFFIXES and not any(out.iterdir()):
                out.rmdir()
            elif out.is_file() and not out.is_symlink() and out.stat().st_size == 0:
                out.unlink()
            release(out)
        if isinstance(err, WorkbenchError | KeyboardInterrupt):
            raise
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        raise StepError(f"{label} failed: {type(err).__name__}: {first}",
                        "check the step's options; see the chained traceback for where it failed") from err
    seconds = time.perf_counter() - start
    if notes:
        meta["notes"] = notes
    result = _derive(parent, spec, out, meta, seconds)
    result.metadata["_sha256"] = record(result, cache_key=key)["sha256"]
    # a safe point inside the step (progress.cancellable): the artifact is written and recorded, so a later
    # run finds it in the cache; its validation, which may take as long as the step, is not started
    progress.check_cancelled(label)
    if validate:
        say("validating")
        # an explicit timeout= bounds the whole step: validation runs in the worker with what is left
        left = None if timeout is None else max(1.0, timeout - (time.perf_counter() - start))
        validate_and_record(result, parent, isolate=True if timeout is not None else None, timeout=left)
    if key is not None:
        _MEMO[_memo_key(key)] = result
    say("done")
    return result


def _memo_key(key: str) -> str:
    from workbench.steps.workspace import workspace

    return f"{workspace()}::{key}"


def _derive(parent: Model, spec: StepSpec, out: Path, meta: dict[str, Any], seconds: float,
            tool_vers: dict[str, str] | None = None) -> Model:
    from workbench.core.detect import load_path

    if spec.options.get("method") == "pt2e":  # torchao registers the quantized_decomposed ops the file uses
        import torchao.quantization.pt2e.quantize_pt2e  # noqa: F401
    loaded = load_path(out)
    entry = LineageEntry(spec.step, dict(spec.options), parent, tool_vers or tool_versions(*spec.tools), seconds)
    metadata = {**loaded.metadata, **meta}
    if "notes" in meta and "notes" in loaded.metadata:
        metadata["notes"] = [*loaded.metadata["notes"], *meta["notes"]]
    metadata["precision"] = spec.precision or meta.get("precision") or parent.metadata.get("precision", "fp32")
    result = parent.derive(loaded.format, out, entry, inputs=loaded.inputs, outputs=loaded.outputs,
                           native=loaded._native, native_loader=loaded._native_loader, metadata=metadata)
    entry.size_bytes = result.size_bytes
    result.validation = None
    return result


def validate_and_record(result: Model, parent: Model, *, isolate: bool | None = None,
                        timeout: float | None = None) -> None:
    """Validate ``result`` against ``parent`` and the original; keep the figures on the model and in the manifest.

    ``isolate``/``timeout``: run the models in the worker, each run within ``timeout`` seconds
    (``validate_step``; default: isolated in a published app only)."""
    from workbench.steps.validate import validate_step

    try:
        validation = validate_step(result, parent, isolate=isolate, timeout=timeout)
    except WorkbenchError as err:  # the artifact is kept; the validation says why it could not run
        from workbench.steps.validate import Validation

        validation = Validation.skipped_because(result, f"validation could not run: {err}")
    result.validation = validation
    result.metadata["validation"] = validation
    update_entry(result.path, validation=validation.to_dict())


def _from_cache(parent: Model, spec: StepSpec, key: str, validate: bool) -> Model | None:
    memo = _MEMO.get(_memo_key(key))
    if memo is not None and memo.path is not None and memo.path.exists():
        try:
            if model_sha256(memo) == memo.metadata.get("_sha256"):
                return _rebase(memo, parent, spec)
        except OSError:
            pass
    entry = find_cached(key)
    if entry is None:
        return None
    loaded = entry.pop("_model")
    result = _derive(parent, spec, loaded.path, {"cached": True}, float(entry.get("seconds", 0.0)),
                     entry.get("tool_versions"))
    result.metadata["cached"] = True
    result.metadata["_sha256"] = entry.get("sha256")
    if validate:
        from workbench.steps.validate import Validation

        if entry.get("validation"):
            result.validation = Validation.from_dict(entry["validation"])
            result.metadata["validation"] = result.validation
        else:
            validate_and_record(result, parent)
    _MEMO[_memo_key(key)] = result
    return result


def _rebase(memo: Model, parent: Model, spec: StepSpec) -> Model:
    """The cached result, with its lineage pointing at this ``parent`` object (same content) and
    recording this call's options."""
    last = memo.lineage[-1]
    if last.parent is parent and last.options == spec.options:
        memo.metadata["cached"] = True
        return memo
    entry = LineageEntry(last.step, dict(spec.options), parent, last.tool_versions, last.seconds, last.size_bytes)
    result = parent.derive(memo.format, memo.path, entry, inputs=memo.inputs, outputs=memo.outputs,
                           native=memo._native, native_loader=memo._native_loader, metadata=dict(memo.metadata))
    result.metadata["cached"] = True
    result.validation = getattr(memo, "validation", None)
    return result


def source_model(model: Model) -> Model:
    """``model`` with its history: a model loaded from an artifact of the workspace gets its lineage back
    from the manifest (and, when it descends from a zoo model, that model's task: its calibration and
    evaluation data), so a step run from the command line on ``digits-cnn.onnx`` calibrates on real
    digits and validates against torch. Other models are returned as they are."""
    if model.path is not None and not model.lineage and model.task is None:
        try:
            return relink(model)
        except Exception:  # noqa: BLE001 - without its history the model is still usable as is
            return model
    return model


def relink(model: Model, _depth: int = 0) -> Model:
    """``model`` with the lineage the workspace manifest records for its file (see ``source_model``)."""
    from workbench import zoo
    from workbench.core.detect import load_path
    from workbench.steps.workspace import read_manifest, relpath, workspace

    entries = {a["path"]: a for a in read_manifest()["artifacts"]}
    entry = entries.get(relpath(model.path))
    if entry is None or entry.get("sha256") != model_sha256(model) or _depth > 50:
        return model
    parent_info = entry.get("parent") or {}
    parent: Model | None = None
    if parent_info.get("path") and (workspace() / parent_info["path"]).exists():
        parent = relink(load_path(workspace() / parent_info["path"]), _depth + 1)
    elif parent_info.get("format") == "torch" and parent_info.get("name") in zoo.names():
        parent = zoo.load(parent_info["name"])
    if parent is None:
        return model
    step_entry = LineageEntry(entry["step"], entry.get("options", {}), parent, entry.get("tool_versions", {}),
                              float(entry.get("seconds", 0.0)), entry.get("size_bytes"))
    meta = dict(model.metadata)
    if entry.get("precision"):
        meta["precision"] = entry["precision"]
    return parent.derive(model.format, model.path, step_entry, inputs=model.inputs, outputs=model.outputs,
                         native=model._native, native_loader=model._native_loader, metadata=meta, name=parent.name)


def as_model(model: Any) -> Model:
    """``model`` itself when it is a Model; steps take Models (``wb.export`` and friends load names and paths)."""
    if isinstance(model, Model):
        return model
    raise InputError(f"steps take a workbench Model, not a {type(model).__name__}",
                     "load it first (wb.load(...)), or call wb.export / wb.convert / wb.quantize, which load "
                     "zoo names, paths and modules")


def resolve_step(kind: str, target: str, noun: str) -> StepPlugin:
    """The step registered as ``(kind, target)`` (or an alias), with the error naming it as ``noun``."""
    try:
        return registry.get_step(kind, target)
    except WorkbenchError:
        targets = ", ".join(registry.step_targets(kind))
        raise StepError(f"unknown {noun} {target!r}", f"choose one of {targets}") from None


def call_step(plugin: StepPlugin, model: Model, common: dict[str, Any], extra: dict[str, Any]) -> Model:
    """Call ``plugin`` with the ``common`` options its function names (a generic entry point's keywords
    that this target does not use are dropped) and every ``extra`` option (an unknown one is a TypeError)."""
    params = inspect.signature(plugin.func).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in common.items() if takes_any or k in params}
    return plugin.func(model, **kwargs, **extra)


def offer(label: str, *, ticked: bool = True, **options: Any) -> Callable[[Callable[..., Model]], Callable[..., Model]]:
    """Declare the choice the app offers for a step (``label``, and the options it runs with). Put it
    under ``@register_step``; steps without one are not offered by default (``workbench.ui.app``).
    ``ticked=False``: offered but not ticked when a model opens (edge and compiler toolchains that take
    long to import or build, so that the default run stays quick)."""

    def mark(func: Callable[..., Model]) -> Callable[..., Model]:
        func.app_offer = (label, dict(options))  # type: ignore[attr-defined]
        func.app_ticked = ticked  # type: ignore[attr-defined]
        return func

    return mark
