"""Apache TVM's step: ONNX or ExportedProgram → Relax → a library compiled for this CPU (``.tvm`` folder).

* ``wb.convert(model, "tvm")``: imports the model into Relax (TVM's graph IR), lowers it, and compiles it
  with LLVM for ``llvm_target`` (a TVM target as JSON; default: this machine's CPU as TVM detects it,
  e.g. ``{"kind": "llvm", "mcpu": "znver4", "mtriple": …}``). A torch ``nn.Module`` is exported to ONNX first.
* ``schedule="parallel"`` (default): TVM's default CPU pipeline leaves every kernel as plain
  sequential loops (seconds per ResNet-18 call); the workbench applies a generic schedule to each kernel
  (spatial loops fused and run in parallel, the innermost output loop vectorised across the reduction).
  ``schedule="none"``: TVM's pipeline as it is.
* ``tune_trials=N`` (default 0, off): MetaSchedule searches kernel schedules with a budget of ``N`` trials
  in all (TVM's ``static_shape_tuning`` pipeline; shapes fixed at the example's, batch 1). Tuning takes
  minutes to hours and gives TVM its real speed; the trials are measured on this machine. With
  apache-tvm 0.27.0.post1 on the 2-core test machine MetaSchedule crashed in native code (SIGSEGV)
  after extracting the tasks: the worker contains it and the step raises a StepError.

The artifact is the compiled library ``lib.so`` (native code for this CPU) beside ``tvm_model.json``
(interface, target, the Relax graph before lowering, op counts). Building the library needs a C
compiler on the PATH (TVM links with ``g++``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from workbench.core.errors import StepError
from workbench.core.model import Model
from workbench.core.registry import register_step
from workbench.steps.base import StepSpec, as_model, offer, run_step
from workbench.steps.convert import need_extra, need_format, via_onnx

TARGET = "tvm"
SOURCES = ("onnx", "exported_program")
SCHEDULES = ("parallel", "none")


@register_step("convert", TARGET, accepts=(*SOURCES, "torch"), produces=TARGET, aliases=("apache-tvm", "relax"),
               requires=("apache-tvm",))
@offer("Apache TVM (compiled for this CPU)", ticked=False)
def convert_tvm(model: Model, *, schedule: str = "parallel", tune_trials: int = 0, llvm_target: str | None = None,
                path: str | Path | None = None, isolate: bool = True, timeout: float | None = None,
                cache: bool = True, validate: bool = True) -> Model:
    """A TVM library compiled for this CPU from ONNX or an ExportedProgram (``tune_trials``: MetaSchedule)."""
    model = as_model(model)
    need_format(model, (*SOURCES, "torch"), TARGET, "export it to ONNX first: wb.export(model, 'onnx')")
    need_extra("tvm", TARGET)
    if schedule not in SCHEDULES:
        raise StepError(f"unknown TVM schedule {schedule!r}", f"use one of {', '.join(SCHEDULES)}")
    if not isinstance(tune_trials, int) or tune_trials < 0:
        raise StepError(f"tune_trials must be a whole number of trials, not {tune_trials!r}",
                        "leave it at 0 (no tuning) or give a budget such as 200")
    if shutil.which("g++") is None and shutil.which("gcc") is None:
        raise StepError("TVM links its library with a C compiler, and none is on the PATH",
                        "install one (Debian: apt-get install g++)")
    if model.format == "torch":
        model = via_onnx(model, isolate=isolate, timeout=timeout, cache=cache)
    options: dict[str, Any] = {"schedule": schedule, "tune_trials": tune_trials,
                               "llvm_target": check_target(llvm_target) if llvm_target else host_target()}
    spec = StepSpec(f"convert:{TARGET}", options, ".tvm", _write_tvm, dict(options),
                    tag=f"tuned{tune_trials}" if tune_trials else "", tools=("apache-tvm",))
    return run_step(model, spec, path=path, isolate=isolate, timeout=timeout, cache=cache, validate=validate)


def host_target() -> str:
    """This CPU as TVM describes it (``{"kind": "llvm", "mcpu": "znver4", "mtriple": …}``), as JSON text;
    part of the cache key, so a library is never reused on another kind of CPU."""
    import tvm

    return str(tvm.target.Target.from_device(tvm.cpu()))


def check_target(target: str) -> str:
    """``target`` as TVM reads it (JSON, ``{"kind": "llvm", "mcpu": "znver4"}``), or a StepError saying so."""
    import tvm

    try:
        return str(tvm.target.Target(target))
    except Exception as err:  # noqa: BLE001 - TVM raises ValueError with its parser's message
        raise StepError(f"TVM cannot read the target {target!r}: {str(err).strip().splitlines()[-1][:200]}",
                        'give it as JSON, e.g. \'{"kind": "llvm", "mcpu": "skylake-avx512"}\', or leave it out '
                        "for this CPU") from None


# -- writer (runs in the worker) -------------------------------------------------------------------
def _write_tvm(model: Model, tmp: Path, *, schedule: str, tune_trials: int, llvm_target: str) -> dict[str, Any]:
    import tvm
    from tvm import relax

    tgt = tvm.target.Target(llvm_target)
    if tune_trials:  # MetaSchedule sizes its parallel schedules by the target's core count
        import json

        import psutil

        config = json.loads(str(tgt))  # this TVM writes a target as JSON
        config.setdefault("num-cores", int(psutil.cpu_count(logical=False) or 1))
        tgt = tvm.target.Target(config)
    mod = _import(model, static=tune_trials > 0)
    graph = relax_graph(mod)
    try:
        with tempfile.TemporaryDirectory(prefix="wb-tvm-") as work:
            if tune_trials:
                mod = relax.pipeline.static_shape_tuning_pipeline(total_trials=tune_trials, target=tgt,
                                                                  work_dir=work)(mod)
            elif schedule == "parallel":
                mod = parallel_schedule(mod, tgt)
            executable = relax.build(mod, target=tgt)
            tmp.mkdir()
            executable.export_library(str(tmp / "lib.so"))
    except StepError:
        raise
    except Exception as err:  # noqa: BLE001 - TVM raises its own error types with C++ traces
        lines = [ln for ln in str(err).strip().splitlines() if ln.strip()]
        raise StepError(f"TVM could not compile {model.name}: {(lines[-1] if lines else type(err).__name__)[:400]}",
                        ("compile from ONNX instead (its dynamic dimensions import better): wb.export(model, 'onnx')"
                         if model.format == "exported_program" else
                         "try schedule='none', or run the model on ONNX Runtime / OpenVINO")) from None
    from workbench.formats.tvm import KIND, MARKER, describe_json

    feeds = model.example_inputs() if tune_trials else None
    info = {
        "kind": KIND, "target": llvm_target, "tvm_version": tvm.__version__, "schedule": schedule,
        "tuning_trials": tune_trials, "source_format": model.format,
        "inputs": [{"name": s.name, "shape": list(feeds[s.name].shape) if feeds else list(s.shape), "dtype": s.dtype}
                   for s in model.inputs],
        "outputs": [{"name": s.name, "shape": list(s.shape), "dtype": s.dtype} for s in model.outputs],
        "ops": dict(Counter(n["op"] for n in graph["nodes"]).most_common()), "graph": graph,
    }
    (tmp / MARKER).write_text(describe_json(info), encoding="utf-8")
    return {"trusted": True}  # compiled here, now: the runtime may load it


def _import(model: Model, *, static: bool) -> Any:
    """The model as a Relax IRModule with its weights bound as constants."""
    try:
        if model.format == "onnx":
            import onnx
            from tvm.relax.frontend.onnx import from_onnx

            shapes = None
            if static:
                feeds = model.example_inputs()
                shapes = {s.name: list(feeds[s.name].shape) for s in model.inputs}
            return from_onnx(onnx.load(str(model.path)), shape_dict=shapes, keep_params_in_input=False)
        from tvm.relax.frontend.torch import from_exported_program

        return from_exported_program(model.native(), keep_params_as_input=False)
    except Exception as err:  # noqa: BLE001 - the frontends raise on any operator they lack
        first = str(err).strip().splitlines()[0][:400] if str(err).strip() else type(err).__name__
        raise StepError(f"TVM's Relax frontend could not import {model.name} ({model.format}): {first}",
                        "TVM lacks an operator of this model: try the other source (ONNX or ExportedProgram), "
                        "or run it on ONNX Runtime / OpenVINO") from None


def parallel_schedule(mod: Any, target: Any) -> Any:
    """Legalize ``mod``'s operators to TIR kernels and give each a generic CPU schedule: spatial loops
    first and fused into one parallel loop; in a reduction kernel, the innermost spatial loop split by
    8 and vectorised inside the reduction loops (so the reduction accumulates 8 outputs at once)."""
    import tvm
    from tvm import relax, s_tir, tirx
    from tvm.s_tir import dlight
    from tvm.s_tir.dlight.analysis import normalize_prim_func

    class CPUParallel(dlight.ScheduleRule):
        def apply(self, func: Any, _target: Any, _tunable: bool) -> Any:
            if not isinstance(func, tirx.PrimFunc):
                return None
            sch = s_tir.Schedule(func)
            infos = normalize_prim_func(sch)
            if infos is None:
                return None
            for info in infos:
                block, kinds = info.block_rv, info.dom_kind()
                loops = sch.get_loops(block)
                spatial = [lp for lp, k in zip(loops, kinds, strict=False) if k == "S"]
                reduce = [lp for lp, k in zip(loops, kinds, strict=False) if k == "R"]
                if not spatial or len(spatial) + len(reduce) != len(loops):
                    continue  # opaque loops: leave the kernel as TVM wrote it
                sch.reorder(*spatial, *reduce)
                if not reduce or len(spatial) < 2:
                    sch.parallel(sch.fuse(*spatial))
                    continue
                outer = sch.fuse(*spatial[:-1]) if len(spatial) > 2 else spatial[0]
                sch.parallel(outer)
                inner = spatial[-1]
                extent = sch.get(inner).extent
                if isinstance(extent, tirx.IntImm) and extent.value >= 8:
                    io, ii = sch.split(inner, factors=[None, 8])
                    sch.reorder(outer, io, *reduce, ii)
                    sch.decompose_reduction(block, reduce[0])
                    try:
                        sch.vectorize(ii)
                    except Exception:  # noqa: BLE001 - not vectorisable (e.g. strided): stays a loop
                        pass
                else:
                    sch.reorder(outer, *reduce, inner)
                    sch.decompose_reduction(block, reduce[0])
            return sch

    with target:
        passes = [relax.transform.LegalizeOps(), relax.transform.AnnotateTIROpPattern(),
                  relax.transform.FoldConstant(), relax.transform.FuseOps(), relax.transform.FuseTIR(),
                  dlight.ApplyDefaultSchedule(CPUParallel())]
        return tvm.transform.Sequential(passes)(mod)


def relax_graph(mod: Any) -> dict[str, Any]:
    """The ``main`` function of a Relax module as plain data: one node per operator call, tensors with
    their shapes and dtypes, constants as weights (what ``formats/tvm.py`` turns into a Graph). Read by
    attribute (TVM renames its expression classes between releases); a graph it cannot read is empty
    and says why."""
    try:
        return _relax_graph(mod)
    except Exception as err:  # noqa: BLE001 - the graph is for display; the library is what counts
        return {"nodes": [], "tensors": {}, "weights": {}, "inputs": [], "outputs": [],
                "error": f"{type(err).__name__}: {str(err)[:200]}"}


def _relax_graph(mod: Any) -> dict[str, Any]:
    fn = mod["main"]
    names: dict[int, str] = {}
    taken: set[str] = set()
    keep: list[Any] = []  # id() keys stay valid while the objects live

    def name_of(obj: Any, hint: str) -> str:
        key = id(obj)
        if key not in names:
            keep.append(obj)
            name, k = hint or "v", 1
            while name in taken:
                name, k = f"{hint}_{k}", k + 1
            taken.add(name)
            names[key] = name
        return names[key]

    def type_of(obj: Any) -> tuple[list[Any] | None, str | None]:
        ty = getattr(obj, "ty", None) or getattr(obj, "struct_info", None)
        values = getattr(getattr(ty, "shape", None), "values", None)
        shape = None if values is None else [int(d) if type(d).__name__ == "IntImm" else str(d) for d in values]
        dtype = getattr(ty, "dtype", None)
        return shape, (str(dtype) if dtype else None)

    tensors: dict[str, Any] = {}
    weights: dict[str, Any] = {}
    nodes: list[dict[str, Any]] = []
    alias: dict[int, list[str]] = {}

    def refs(expr: Any) -> list[str]:
        const = getattr(expr, "value", None) if type(expr).__name__ in ("GenericConst", "Constant") else None
        if const is not None and hasattr(const, "shape"):
            name = name_of(expr, f"const{len(weights)}")
            weights[name] = ([int(d) for d in const.shape], str(const.dtype))
            return [name]
        if hasattr(expr, "fields"):  # a tuple
            return [r for f in expr.fields for r in refs(f)]
        if id(expr) in alias:
            return alias[id(expr)]
        if type(expr).__name__.endswith("Var"):
            return [name_of(expr, str(getattr(expr, "name", "v")))]
        return []

    inputs = [name_of(p, str(p.name)) for p in fn.params]
    for p, name in zip(fn.params, inputs, strict=True):
        tensors[name] = type_of(p)
    body = fn.body
    for block in body.blocks:
        for binding in block.bindings:
            value, var = binding.value, binding.var
            op = getattr(value, "op", None)
            if op is not None and hasattr(value, "args") and hasattr(op, "name"):
                out = name_of(var, str(var.name))
                tensors[out] = type_of(var)
                nodes.append({"name": out, "op": str(op.name).removeprefix("relax."),
                              "inputs": [r for a in value.args for r in refs(a)], "outputs": [out]})
            elif hasattr(value, "index"):  # TupleGetItem
                found = refs(getattr(value, "tuple_value", None) or getattr(value, "tuple", None))
                alias[id(var)] = [found[value.index]] if value.index < len(found) else found
                keep.append(var)
            else:
                alias[id(var)] = refs(value)
                keep.append(var)
    return {"nodes": nodes, "tensors": tensors, "weights": weights, "inputs": inputs, "outputs": refs(body.body)}
