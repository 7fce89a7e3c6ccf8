"""A structure-aware ONNX fuzzer: seeded field-level mutations of real ONNX files, run through the
workbench in a worker process with a per-case time limit.

Each case mutates one to three fields of a ``ModelProto`` (input/output shapes and element types,
node attributes, node inputs and outputs, op types and domains, opset imports, the IR version,
initializer dims and data, external data locations/offsets/lengths, a few raw bytes), writes it into a
folder of its own (with an external data file beside it and a "secret" file outside the folder that
no call may read), then ``wb.load`` → ``describe`` → ``size_bytes`` → ``graph()`` → an ONNX Runtime
run on the example inputs. The verdict per case: ``ok``, ``workbench`` (a WorkbenchError: what bad
input must get), ``other`` (any other exception: a bug), ``hang`` (past the time limit), ``crash``
(the worker died). The worker is restarted after a hang or a crash.

Used by ``tests/security/test_onnx_fuzz.py`` (bounded, in CI) and ``benchmarks/fuzz_onnx.py`` (longer).
Run as ``python -m tests.security.onnx_fuzz --worker`` it is the worker: one case folder per stdin
line, one JSON verdict per stdout line.
"""

from __future__ import annotations

import json
import os
import random
import selectors
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
from onnx import AttributeProto, TensorProto

SECRET = b"WB-SECRET-OUTSIDE-THE-MODEL-FOLDER"
DATA_FILE = "weights.data"
#: element types ONNX defines (0 = undefined) and some it does not
ELEM_TYPES = [*range(0, 27), 99, 1 << 20]
DIMS = [0, 1, 2, 3, 7, 64, -1, -5, 1 << 31, 1 << 40, (1 << 63) - 1]


# -- mutations -------------------------------------------------------------------------------------
def _graphs(proto: onnx.ModelProto) -> list[onnx.GraphProto]:
    out = [proto.graph]
    for g in list(out):
        for n in g.node:
            for a in n.attribute:
                if a.type == AttributeProto.GRAPH:
                    out.append(a.g)
    return out


def _value_infos(proto: onnx.ModelProto) -> list[Any]:
    g = proto.graph
    return [*g.input, *g.output, *g.value_info]


def m_shape(p: onnx.ModelProto, r: random.Random) -> str:
    vis = [v for v in _value_infos(p) if v.type.HasField("tensor_type")]
    if not vis:
        return "shape:none"
    vi = r.choice(vis)
    shape = vi.type.tensor_type.shape
    choice = r.randrange(5)
    if choice == 0 and len(shape.dim):
        d = r.choice(shape.dim)
        d.dim_value = r.choice(DIMS) if r.random() < 0.9 else 0
        return f"shape:dim_value {vi.name}"
    if choice == 1 and len(shape.dim):
        r.choice(shape.dim).dim_param = r.choice(["", "batch", "N", "?", "x" * 300])
        return f"shape:dim_param {vi.name}"
    if choice == 2:
        shape.dim.add().dim_value = r.choice(DIMS)
        return f"shape:add_dim {vi.name}"
    if choice == 3 and len(shape.dim):
        del shape.dim[r.randrange(len(shape.dim))]
        return f"shape:drop_dim {vi.name}"
    vi.type.tensor_type.ClearField("shape")
    return f"shape:clear {vi.name}"


def m_dtype(p: onnx.ModelProto, r: random.Random) -> str:
    if r.random() < 0.6:
        vis = [v for v in _value_infos(p) if v.type.HasField("tensor_type")]
        if vis:
            vi = r.choice(vis)
            vi.type.tensor_type.elem_type = r.choice(ELEM_TYPES)
            return f"dtype:value_info {vi.name}"
    inits = list(p.graph.initializer)
    if inits:
        t = r.choice(inits)
        t.data_type = r.choice(ELEM_TYPES)
        return f"dtype:initializer {t.name}"
    return "dtype:none"


def m_attribute(p: onnx.ModelProto, r: random.Random) -> str:
    nodes = [n for g in _graphs(p) for n in g.node]
    if not nodes:
        return "attr:none"
    n = r.choice(nodes)
    if not n.attribute or r.random() < 0.2:
        a = n.attribute.add()
        a.name = r.choice(["axis", "perm", "kernel_shape", "bogus", "to", "group"])
        a.type = AttributeProto.INT
        a.i = r.choice(DIMS)
        return f"attr:add {n.op_type}.{a.name}"
    a = r.choice(n.attribute)
    choice = r.randrange(6)
    if choice == 0:
        a.i = r.choice(DIMS)
        a.type = AttributeProto.INT
    elif choice == 1:
        del a.ints[:]
        a.ints.extend(r.choice(DIMS) for _ in range(r.randrange(0, 6)))
        a.type = AttributeProto.INTS
    elif choice == 2:
        a.f = r.choice([float("nan"), float("inf"), -1e30, 0.0])
        a.type = AttributeProto.FLOAT
    elif choice == 3:
        a.type = r.choice([t for t in AttributeProto.AttributeType.values() if t != a.type])
    elif choice == 4:
        a.s = r.choice([b"", b"\xff\xfe", b"NOTSET", b"x" * 1000])
        a.type = AttributeProto.STRING
    else:
        n.attribute.remove(a)
        return f"attr:remove {n.op_type}.{a.name}"
    return f"attr:{choice} {n.op_type}.{a.name}"


def m_node_io(p: onnx.ModelProto, r: random.Random) -> str:
    g = p.graph
    if not g.node:
        return "io:none"
    n = r.choice(g.node)
    names = [x for nd in g.node for x in nd.output] + [i.name for i in g.input] + [i.name for i in g.initializer]
    choice = r.randrange(7)
    if choice == 0 and n.input:
        n.input[r.randrange(len(n.input))] = r.choice(["", "does_not_exist", *names])
    elif choice == 1:
        n.input.append(r.choice(["", "does_not_exist", *names]))
    elif choice == 2 and n.output:
        n.output[r.randrange(len(n.output))] = r.choice(["", *names])  # duplicate producers, cycles
    elif choice == 3:
        g.node.remove(n)
    elif choice == 4:
        g.node.append(n)  # a second copy: two producers of the same tensor
    elif choice == 5:
        n.op_type = r.choice(["", "NoSuchOp", "Loop", "If", "Scan", "Conv", "Reshape", "Gather", "Custom"])
    else:
        n.domain = r.choice(["", "ai.onnx.ml", "com.microsoft", "com.example", "ai.onnx.preview.training"])
    return f"io:{choice} {n.op_type}"


def m_opset(p: onnx.ModelProto, r: random.Random) -> str:
    choice = r.randrange(4)
    if choice == 0 and p.opset_import:
        p.opset_import[0].version = r.choice([0, 1, 6, 7, 12, 18, 21, 99, 10_000, -1])
    elif choice == 1:
        del p.opset_import[:]
    elif choice == 2:
        o = p.opset_import.add()
        o.domain, o.version = r.choice(["com.example", "ai.onnx", ""]), r.choice([1, 99])
    else:
        p.ir_version = r.choice([0, 1, 3, 7, 10, 11, 99, -1])
    return f"opset:{choice}"


def m_initializer(p: onnx.ModelProto, r: random.Random) -> str:
    inits = list(p.graph.initializer)
    if not inits:
        return "init:none"
    t = r.choice(inits)
    choice = r.randrange(5)
    if choice == 0 and t.dims:
        t.dims[r.randrange(len(t.dims))] = r.choice(DIMS)
    elif choice == 1:
        t.raw_data = t.raw_data[: len(t.raw_data) // 2]
    elif choice == 2:
        t.dims.append(r.choice(DIMS))
    elif choice == 3:
        t.name = r.choice(["", "x" * 500, p.graph.input[0].name if p.graph.input else "y"])
    else:
        t.ClearField("raw_data")
        t.float_data.extend([1.0] * r.randrange(0, 3))
    return f"init:{choice} {t.name[:40]}"


def m_external(p: onnx.ModelProto, r: random.Random) -> str:
    inits = [t for t in p.graph.initializer if t.HasField("raw_data") or t.data_location == TensorProto.EXTERNAL]
    if not inits:
        return "ext:none"
    t = r.choice(inits)
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    del t.external_data[:]
    location = r.choice([DATA_FILE, DATA_FILE, "", "../secret.bin", "../../secret.bin", "/etc/passwd",
                         "sub/../../secret.bin", "link_out.bin", "missing.bin", "sub", "fifo",
                         "C:\\\\secret.bin", "x\u00e9.bin"])
    entries = {"location": location}
    if r.random() < 0.7:
        entries["offset"] = str(r.choice([0, 0, 16, -1, 1 << 40, 7]))
    if r.random() < 0.7:
        entries["length"] = str(r.choice([0, 4, 64, -3, 1 << 40, 4096]))
    if r.random() < 0.1:
        entries["offset"] = "abc"
    for k, v in entries.items():
        e = t.external_data.add()
        e.key, e.value = k, v
    return f"ext:{location}"


def m_metadata(p: onnx.ModelProto, r: random.Random) -> str:
    """Node metadata the graph reader parses (the exporter's module scopes) and model metadata."""
    target = r.choice(p.graph.node) if p.graph.node and r.random() < 0.8 else p
    key = r.choice(["pkg.torch.onnx.name_scopes", "pkg.torch.onnx.name_scopes", "pkg.torch.onnx.class_hierarchy", ""])
    prop = next((m for m in target.metadata_props if m.key == key), None) or target.metadata_props.add()
    prop.key = key
    prop.value = r.choice(["{'a': 1}", "12", "[1, 2, 3]", "['', None, 'x']", "[" * 5000, "(" * 90 + ")" * 90,
                           "'" + "x" * 100_000 + "'", "__import__('os')", "[[['a']]]", "", "\x00"])
    return f"meta:{prop.key}"


def m_value_type(p: onnx.ModelProto, r: random.Random) -> str:
    """An input or output that is not a plain tensor: a sequence, map, optional, sparse tensor, or no type."""
    vis = [*p.graph.input, *p.graph.output]
    if not vis:
        return "type:none"
    vi = r.choice(vis)
    elem = vi.type.tensor_type.elem_type or TensorProto.FLOAT
    choice = r.randrange(5)
    if choice == 0:
        vi.type.CopyFrom(onnx.helper.make_sequence_type_proto(onnx.helper.make_tensor_type_proto(elem, None)))
    elif choice == 1:
        vi.type.CopyFrom(onnx.helper.make_map_type_proto(TensorProto.INT64, onnx.helper.make_tensor_type_proto(elem, [])))
    elif choice == 2:
        vi.type.CopyFrom(onnx.helper.make_optional_type_proto(onnx.helper.make_tensor_type_proto(elem, [1])))
    elif choice == 3:
        vi.type.CopyFrom(onnx.helper.make_sparse_tensor_type_proto(elem, [4, 4]))
    else:
        vi.ClearField("type")
    return f"type:{choice} {vi.name}"


MUTATIONS: list[Callable[[onnx.ModelProto, random.Random], str]] = [
    m_shape, m_dtype, m_attribute, m_node_io, m_opset, m_initializer, m_external, m_metadata, m_value_type]


def mutate(source: bytes, seed: int) -> tuple[bytes, list[str]]:
    """One case: ``source`` (a serialized ModelProto) with 1–3 field mutations (sometimes byte-level)."""
    r = random.Random(seed)
    proto = onnx.ModelProto()
    proto.ParseFromString(source)
    done = [r.choice(MUTATIONS)(proto, r) for _ in range(r.choice([1, 1, 2, 3]))]
    data = proto.SerializeToString()
    if r.random() < 0.08:  # byte-level: truncation or flipped bytes
        b = bytearray(data)
        if r.random() < 0.5:
            b = b[: r.randrange(1, len(b))]
            done.append("bytes:truncate")
        else:
            for _ in range(r.randrange(1, 4)):
                b[r.randrange(len(b))] = r.randrange(256)
            done.append("bytes:flip")
        data = bytes(b)
    return data, done


def write_case(folder: Path, data: bytes) -> Path:
    """A case folder: ``model.onnx``, its external data file, a symlink out and a FIFO beside it; a
    secret file one level up (outside the folder) that nothing may read."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder.parent / "secret.bin").write_bytes(SECRET * 256)
    (folder / DATA_FILE).write_bytes(bytes(range(256)) * 64)
    (folder / "sub").mkdir(exist_ok=True)
    link = folder / "link_out.bin"
    if not link.is_symlink():
        link.symlink_to(folder.parent / "secret.bin")
    if hasattr(os, "mkfifo") and not (folder / "fifo").exists():
        os.mkfifo(folder / "fifo")
    model = folder / "model.onnx"
    model.write_bytes(data)
    return model


# -- the worker ------------------------------------------------------------------------------------
def run_case(model_path: str) -> dict[str, Any]:
    """Everything a user does with a file: load, describe, size, graph, run. Returns the verdict."""
    import numpy as np

    import workbench as wb
    from workbench.core.errors import WorkbenchError

    stage = "load"
    try:
        m = wb.load(model_path)
        stage = "describe"
        text = m.describe()
        stage = "size_bytes"
        m.size_bytes  # noqa: B018 - counts the files, which must all lie inside the case folder
        from workbench.core.detect import model_files

        root = Path(model_path).parent.resolve()
        outside = [str(f) for f in model_files(m) if root not in Path(f).resolve().parents]
        if outside or SECRET in text.encode():
            return {"verdict": "other", "stage": stage, "error": "OutsideFile", "message": f"lists {outside}"}
        stage = "graph"
        g = m.graph()
        stage = "graph-view"  # what the graph views ask for: the summary, the layout payload, node details
        g.summary()
        json.dumps(g.to_view(), default=str)
        for node in g.nodes[:6]:
            json.dumps(g.details(node.name), default=str)
        for runtime in os.environ.get("WB_FUZZ_RUNTIMES", "onnxruntime").split(","):
            stage = f"infer:{runtime}"
            with wb.runner(m, runtime) as r:
                out = r.infer()
            for v in out.values():
                np.asarray(v)
    except WorkbenchError as err:
        text = str(err)
        if "\n" in text.strip():
            return {"verdict": "other", "stage": stage, "error": type(err).__name__,
                    "message": "multi-line WorkbenchError: " + text[:300]}
        return {"verdict": "workbench", "stage": stage, "error": type(err).__name__, "message": text[:300]}
    except Exception as err:  # noqa: BLE001 - what the fuzzer looks for
        import traceback

        tb = traceback.extract_tb(err.__traceback__)
        where = [f"{Path(f.filename).name}:{f.lineno}" for f in tb if "workbench" in f.filename][-3:]
        return {"verdict": "other", "stage": stage, "error": type(err).__name__, "message": str(err)[:300],
                "where": where}
    return {"verdict": "ok", "stage": "done"}


def worker_main() -> None:
    """One case folder path per stdin line; one JSON verdict per stdout line."""
    import resource
    import warnings

    warnings.simplefilter("ignore")
    limit = int(os.environ.get("WB_FUZZ_MEMORY", str(3 << 30)))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    out = sys.stdout
    sys.stdout = sys.stderr  # whatever the libraries print must not mix with the verdicts
    import workbench  # noqa: F401 - imported once, before the first case's clock starts

    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        try:
            verdict = run_case(line.strip())
        except BaseException as err:  # noqa: BLE001 - MemoryError, RecursionError at the top
            verdict = {"verdict": "other", "stage": "?", "error": type(err).__name__, "message": str(err)[:300]}
        out.write(json.dumps(verdict) + "\n")
        out.flush()


@dataclass
class FuzzReport:
    cases: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    others: list[dict[str, Any]] = field(default_factory=list)  # non-WorkbenchError failures
    hangs: list[dict[str, Any]] = field(default_factory=list)
    crashes: list[dict[str, Any]] = field(default_factory=list)
    outside_reads: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {"cases": self.cases, "ok": self.counts.get("ok", 0), "workbench_errors": self.counts.get("workbench", 0),
                "non_workbench_exceptions": len(self.others), "hangs": len(self.hangs), "crashes": len(self.crashes),
                "seconds": round(self.seconds, 1)}


class Worker:
    """The worker subprocess, restarted after a hang or a crash."""

    def __init__(self, env: dict[str, str], cwd: Path):
        self.env, self.cwd = env, cwd
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 120) -> None:
        root = Path(__file__).resolve().parents[2]
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.security.onnx_fuzz", "--worker"], cwd=root,
                                     env={**self.env, "PYTHONPATH": str(root)}, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        if self.read(timeout) is None:
            raise RuntimeError("the fuzz worker did not start")

    def read(self, timeout: float) -> dict[str, Any] | None:
        assert self.proc is not None and self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            if not sel.select(timeout):
                return None
            line = self.proc.stdout.readline()
        finally:
            sel.close()
        return json.loads(line) if line else {"verdict": "crash", "returncode": self.proc.poll()}

    def run(self, model: Path, timeout: float) -> dict[str, Any]:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(f"{model}\n")
        self.proc.stdin.flush()
        verdict = self.read(timeout)
        if verdict is None:
            self.stop()
            return {"verdict": "hang"}
        if verdict.get("verdict") == "crash":
            self.stop()
        return verdict

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def fuzz(sources: dict[str, bytes], *, seed: int, cases: int | None = None, seconds: float | None = None,
         timeout: float = 10.0, workdir: Path, on_case: Callable[[int, dict[str, Any]], None] | None = None,
         runtimes: tuple[str, ...] = ("onnxruntime",)) -> FuzzReport:
    """Run ``cases`` cases (or until ``seconds``), round robin over ``sources``, each run on ``runtimes``;
    see the module doc."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "WORKBENCH_ARTIFACTS": str(workdir / "artifacts"), "WORKBENCH_QUICK": "1",
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "WB_FUZZ_RUNTIMES": ",".join(runtimes)}
    worker = Worker(env, workdir)
    report = FuzzReport()
    start = time.monotonic()
    names = sorted(sources)
    try:
        for i in _counter():
            if cases is not None and i >= cases:
                break
            if seconds is not None and time.monotonic() - start > seconds:
                break
            name = names[i % len(names)]
            data, done = mutate(sources[name], seed * 1_000_003 + i)
            folder = workdir / "cases" / f"c{i % 4}"  # folders reused: the disk stays small
            shutil.rmtree(folder, ignore_errors=True)
            model = write_case(folder, data)
            verdict = worker.run(model, timeout)
            verdict.update(case=i, source=name, mutations=done)
            report.cases += 1
            kind = verdict["verdict"]
            report.counts[kind] = report.counts.get(kind, 0) + 1
            {"other": report.others, "hang": report.hangs, "crash": report.crashes}.get(kind, []).append(verdict)
            if on_case is not None:
                on_case(i, verdict)
    finally:
        worker.stop()
    report.seconds = time.monotonic() - start
    return report


def _counter() -> Iterator[int]:
    i = 0
    while True:
        yield i
        i += 1


def zoo_onnx_sources(folder: Path, names: tuple[str, ...] = ("digits-cnn", "tiny-transformer")) -> dict[str, bytes]:
    """The zoo's models exported to ONNX (into ``folder``), as serialized bytes (weights inline)."""
    import workbench as wb
    from workbench.steps.workspace import using_workspace

    out = {}
    with using_workspace(folder):
        for name in names:
            m = wb.export(wb.load(name), "onnx", validate=False, isolate=False)
            out[name] = onnx.load_model(str(m.path)).SerializeToString()
    return out


if __name__ == "__main__" and "--worker" in sys.argv:
    worker_main()
