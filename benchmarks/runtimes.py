"""Every runtime of the registry on ResNet-18 and MobileNetV2: ``wb.benchmark`` against a plain loop over the
runtime's own Python API, and each against OpenVINO's best.

For each model and each runtime the registry lists (``wb.backends()``: the ones that cannot run here print
why and the fix), the model is brought to the runtime's format by the registry's route (the same
conversion ``wb.runner`` makes: pnnx for ncnn, MNNConvert for MNN, Relax + LLVM for TVM, …), checked once
against torch (``rel_l2`` of the outputs), then timed in interleaved rounds (A B, B A, …) by

* ``wb.benchmark`` (its p50, inference only), and
* a plain loop written with the runtime's own API (``InferenceSession.run``, ``InferRequest.infer``,
  ``Extractor.extract``, ``Module.forward``, the Relax VM's ``main``, …), with the same threads and
  precision defaults, its median per-call time.

Each runtime prints a JSON line with both medians, their ratio (the claim: within ±5%), the latency
against OpenVINO's best (the lower of OpenVINO's default — bf16 on CPUs with AMX/AVX-512 BF16 — and
fp32), the artifact's size and its agreement with torch. A runtime without a plain loop written here
(one added later) still gets its ``wb.benchmark`` figures.

    python benchmarks/runtimes.py                               # 3 rounds of 2 s per tool
    python benchmarks/runtimes.py --models mobilenetv2 --runtimes ncnn,mnn --rounds 5
    WORKBENCH_QUICK=1 python benchmarks/runtimes.py             # 1 round of 0.5 s: a smoke run

On a shared machine the figures move with other people's load: each line gives the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

QUICK = os.environ.get("WORKBENCH_QUICK", "") not in ("", "0")


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


# -- plain loops: the runtime's own Python API, nothing of the workbench -----------------------------
def plain_onnxruntime(model: Any, feeds: dict[str, np.ndarray]) -> Callable[[], Any]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
    return lambda: session.run(None, feeds)


def plain_openvino(model: Any, feeds: dict[str, np.ndarray]) -> Callable[[], Any]:
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(str(model.path), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    for i, name in enumerate(model.input_names):
        request.set_input_tensor(i, ov.Tensor(np.ascontiguousarray(feeds[name])))
    return request.infer


def plain_torch_eager(model: Any, feeds: dict[str, np.ndarray]) -> Callable[[], Any]:
    import torch

    module = model.native().eval()
    args = [torch.from_numpy(feeds[n]) for n in model.input_names]

    def call() -> Any:
        with torch.inference_mode():
            return module(*args)

    return call


def plain_torchscript(model: Any, feeds: dict[str, np.ndarray]) -> Callable[[], Any]:
    import torch

    module = torch.jit.load(str(model.path)).eval()
    args = [torch.from_numpy(feeds[n]) for n in model.input_names]

    def call() -> Any:
        with torch.inference_mode():
            return module(*args)

    return call


def plain_ncnn(model: Any, feeds: dict[str, np.ndarray]) -> Callable[[], Any]:
    import ncnn
    import psutil

    net = ncnn.Net()
    net.opt.num_threads = int(psutil.cpu_count(logical=False) or 1)
    net.load_param(str(model.path))
    net.load_model(str(model.path.with_suffix(".bin")))
    mats = {n: ncnn.Mat(np.ascontiguousarray(feeds[n][0])) for n in model.input_names}
    outputs = model.output_names

    def call() -> Any:
        with net.create_extractor() as ex:
            for name, mat in mats.items():
                ex.input(name, mat)
            return [ex.extract(o)[1] for o in outputs]

    return call


def plain_mnn(model: Any, feeds: dict[str, np.ndarray]) -> Callable[[], Any]:
    import MNN.expr as F
    import MNN.nn as mnn_nn
    import psutil

    module = mnn_nn.load_module_from_file(str(model.path), model.input_names, model.output_names,
                                          shape_mutable=True, thread_num=int(psutil.cpu_count(logical=False) or 1))
    inputs = [F.const(np.ascontiguousarray(feeds[n]), list(feeds[n].shape), F.NCHW) for n in model.input_names]
    return lambda: [v.read() for v in module.forward(inputs)]


def plain_tvm(model: Any, feeds: dict[str, np.ndarray]) -> Callable[[], Any]:
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(tvm.runtime.load_module(str(model.path / "lib.so")), tvm.cpu())
    main = vm["main"]
    args = [tvm.runtime.tensor(np.ascontiguousarray(feeds[n])) for n in model.input_names]
    return lambda: main(*args)


def plain_executorch(model: Any, feeds: dict[str, np.ndarray]) -> Callable[[], Any]:
    import torch
    from executorch.runtime import Runtime

    method = Runtime.get().load_program(str(model.path)).load_method("forward")
    args = [torch.from_numpy(feeds[n]) for n in model.input_names]
    return lambda: method.execute(args)


def plain_litert(model: Any, feeds: dict[str, np.ndarray]) -> Callable[[], Any]:
    import psutil
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model.path), num_threads=int(psutil.cpu_count(logical=False) or 1))
    interpreter.allocate_tensors()
    details = interpreter.get_input_details()
    for spec, detail in zip(model.inputs, details, strict=False):
        interpreter.set_tensor(detail["index"], np.ascontiguousarray(feeds[spec.name]))
    return interpreter.invoke


PLAIN: dict[str, Callable[[Any, dict[str, np.ndarray]], Callable[[], Any]]] = {
    "onnxruntime": plain_onnxruntime, "openvino": plain_openvino, "torch_eager": plain_torch_eager,
    "torchscript": plain_torchscript, "ncnn": plain_ncnn, "mnn": plain_mnn, "tvm": plain_tvm,
    "executorch": plain_executorch, "litert": plain_litert,
}


def time_plain(call: Callable[[], Any], seconds: float, warmup: int, min_calls: int) -> float:
    """Median milliseconds per call of ``call`` over ``seconds`` (at least ``min_calls`` calls)."""
    for _ in range(warmup):
        call()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < min_calls:
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def natural(original: Any, runtime: str) -> Any:
    """``original`` in the runtime's own format where a registered route reaches it (OpenVINO's IR rather
    than the torch model OpenVINO also takes), else in the first format of the runtime's that one does."""
    from workbench.core import registry
    from workbench.core.errors import WorkbenchError

    cls = registry.get_runtime(runtime)
    for fmt in (*cls.default_for, *cls.formats):
        if fmt == original.format:
            return original
        try:
            chain = registry.route(original.format, fmt)
        except WorkbenchError:
            continue
        current = original
        for step in chain:
            current = step.func(current, validate=False)  # checked against torch below
        return current
    return registry.prepare_for(original, runtime)


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


def main() -> None:
    import workbench as wb
    from workbench.core import registry

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="resnet18,mobilenetv2")
    parser.add_argument("--runtimes", default="", help="comma-separated (default: every registered runtime)")
    parser.add_argument("--rounds", type=int, default=1 if QUICK else 3)
    parser.add_argument("--seconds", type=float, default=0.5 if QUICK else 2.0)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--min-calls", type=int, default=3, help="at least this many timed calls per tool and round")
    args = parser.parse_args()

    names = [r for r in args.runtimes.split(",") if r] or list(registry.runtimes())
    for model_name in args.models.split(","):
        original = wb.load(model_name)
        feeds = original.example_inputs(batch=1, seed=0)
        with wb.runner(original, registry.default_runtime(original.format)) as ref:
            expected = list(ref.infer(feeds).values())[0]

        def wb_p50(m: Any, runtime: str, options: dict[str, Any] | None = None, feeds: Any = feeds) -> float:
            report = wb.benchmark((m, runtime, options or {}), duration_s=args.seconds, warmup=args.warmup,
                                  min_iterations=args.min_calls, inputs=feeds)
            result = report.results[0]
            if result.error:
                raise RuntimeError(result.error)
            return result.latency.p50

        ov_best = None
        if "openvino" in registry.runtimes() and registry.get_runtime("openvino").availability():
            ir = natural(original, "openvino")
            ov = {label: min(wb_p50(ir, "openvino", opts) for _ in range(args.rounds))
                  for label, opts in (("default", {}), ("fp32", {"precision": "fp32"}))}
            ov_best = min(ov.values())
            emit(model=model_name, openvino_best_ms=round(ov_best, 3),
                 openvino_ms={k: round(v, 3) for k, v in ov.items()})
        for runtime in names:
            cls = registry.get_runtime(runtime)
            avail = cls.availability()
            if not avail:
                emit(model=model_name, runtime=runtime, available=False, reason=avail.reason, fix=avail.fix)
                continue
            line: dict[str, Any] = {"model": model_name, "runtime": runtime, "version": avail.version}
            try:
                start = time.perf_counter()
                m = natural(original, runtime)
                line.update(format=m.format, convert_s=round(time.perf_counter() - start, 1), size_bytes=m.size_bytes)
                with wb.runner(m, runtime) as r:
                    got = list(r.infer(feeds).values())[0]
                line["rel_l2_vs_torch"] = float(f"{rel_l2(got, expected):.3g}")
                plain_call = PLAIN[runtime](m, feeds) if runtime in PLAIN else None
                wb_times, plain_times = [], []
                for rnd in range(args.rounds):
                    order = ("wb", "plain") if rnd % 2 == 0 else ("plain", "wb")
                    for tool in order:
                        if tool == "wb":
                            wb_times.append(wb_p50(m, runtime))
                        elif plain_call is not None:
                            plain_times.append(time_plain(plain_call, args.seconds, args.warmup, args.min_calls))
                line["wb_p50_ms"] = round(statistics.median(wb_times), 3)
                if plain_times:
                    line["plain_p50_ms"] = round(statistics.median(plain_times), 3)
                    line["ratio_wb_over_plain"] = round(line["wb_p50_ms"] / line["plain_p50_ms"], 3)
                else:
                    line["plain_p50_ms"] = None
                    line["note"] = "no plain loop written for this runtime in benchmarks/runtimes.py"
                if ov_best:
                    line["vs_openvino_best"] = round(line["wb_p50_ms"] / ov_best, 2)
                line["load1"] = round(os.getloadavg()[0], 1)  # the machine's run queue (others' load too)
            except Exception as err:  # noqa: BLE001 - one runtime failing must not stop the others
                line["error"] = f"{type(err).__name__}: {str(err).strip().splitlines()[0][:300] if str(err).strip() else ''}"
            emit(**line)


if __name__ == "__main__":
    main()
