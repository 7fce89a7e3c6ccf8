"""ExecuTorch programs (``.pte``).

A ``.pte`` is a FlatBuffer with the file identifier ``ET`` + two digits (``ET12``) at bytes 4–8: that is
what detection reads. The program holds execution plans (``forward``, plus constant methods); a plan's
chain is a list of instructions: kernel calls (portable ``aten::*.out`` operators) and delegate calls
(a subgraph compiled ahead of time for a backend, e.g. ``XnnpackBackend``). The graph view shows those
instructions, and an XNNPACK delegate's own graph read from its payload (another delegate is one node);
per-operator times come from ETDump (``Runner.profile_nodes``).

A program written by the workbench carries a constant method ``workbench_io`` (a JSON string) with the
source model's input and output names and the precision it computes in; other programs get
``input_0`` … names and the precision their operators imply.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from workbench.core.errors import BackendUnavailable, ModelFormatError
from workbench.core.graph import Graph, Node, Tensor, Weight
from workbench.core.model import Model, TensorSpec
from workbench.core.registry import Format, register_format

INSTALL = "pip install 'deployment-workbench[executorch]'"
#: the constant method the workbench writes into its programs (a JSON string)
IO_METHOD = "workbench_io"
_IDENTIFIER = re.compile(rb"ET\d\d")
# ExecuTorch ScalarType names -> NumPy's names
SCALAR_TYPES = {"BYTE": "uint8", "CHAR": "int8", "SHORT": "int16", "INT": "int32", "LONG": "int64",
                "HALF": "float16", "FLOAT": "float32", "DOUBLE": "float64", "BOOL": "bool",
                "QINT8": "int8", "QUINT8": "uint8", "QINT32": "int32", "BFLOAT16": "bfloat16",
                "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64"}
#: operators that make a program compute in int8 (PT2E quantization left outside a delegate)
QUANTIZED_OP = re.compile(r"quantized_decomposed|quantize_per|dequantize_per")


def is_pte(head: bytes) -> bool:
    """True when ``head`` starts like an ExecuTorch program (FlatBuffer identifier ``ETnn``)."""
    return len(head) >= 8 and _IDENTIFIER.fullmatch(head[4:8]) is not None


def read_program(path: Path) -> Any:
    """The ``executorch.exir.schema.Program`` in ``path`` (ExecuTorch's own deserializer)."""
    try:
        from executorch.exir._serialize._program import deserialize_pte_binary
    except ImportError:
        raise BackendUnavailable("ExecuTorch is not installed (it reads .pte programs)", INSTALL) from None
    data = path.read_bytes()
    try:
        pte = deserialize_pte_binary(data)
    except Exception as err:  # noqa: BLE001 - flatbuffer errors of many kinds
        raise ModelFormatError(f"{path} could not be read as an ExecuTorch program: {type(err).__name__}: "
                               f"{str(err).strip()[:200]}",
                               "the file is damaged or from another ExecuTorch version: export it again") from None
    return getattr(pte, "program", pte)  # ExecuTorch >= 1.0 wraps the program with its named data


def _scalar(value: Any) -> str:
    name = getattr(value, "name", str(value))
    return SCALAR_TYPES.get(name, name.lower())


def _plans(program: Any) -> tuple[Any, dict[str, str]]:
    """(the method to run, the constant strings of constant methods by name)."""
    constants: dict[str, str] = {}
    runnable = []
    for plan in program.execution_plan:
        instructions = sum(len(c.instructions) for c in plan.chains)
        if instructions == 0 and not plan.inputs and len(plan.outputs) == 1:  # a constant method: one value
            val = plan.values[plan.outputs[0]].val
            if hasattr(val, "string_val"):
                constants[plan.name] = val.string_val
            continue
        runnable.append(plan)
    if not runnable:
        raise ModelFormatError("the ExecuTorch program has no method to run (only constants)",
                               "export the model's forward method with ExecuTorch")
    plan = next((p for p in runnable if p.name == "forward"), runnable[0])
    return plan, constants


def _io_info(constants: dict[str, str]) -> dict[str, Any]:
    try:
        info = json.loads(constants.get(IO_METHOD, "{}"))
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def _spec(plan: Any, index: int, name: str) -> TensorSpec:
    val = plan.values[index].val
    if hasattr(val, "sizes") and hasattr(val, "scalar_type"):
        return TensorSpec(name, tuple(int(d) for d in val.sizes), _scalar(val.scalar_type))
    kind = type(val).__name__
    return TensorSpec(name, (), {"Int": "int64", "Double": "float64", "Bool": "bool"}.get(kind, kind.lower()))


def _names(given: Any, n: int, prefix: str) -> list[str]:
    if isinstance(given, list) and len(given) == n and all(isinstance(x, str) for x in given):
        return list(given)
    return [f"{prefix}_{i}" for i in range(n)]


def operator_names(plan: Any) -> list[str]:
    """``aten::convolution.out``-style names of a plan's kernel operators."""
    return [f"{op.name}.{op.overload}" if op.overload else op.name for op in plan.operators]


def load(path: Path, **_: Any) -> Model:
    program = read_program(path)
    plan, constants = _plans(program)
    info = _io_info(constants)
    in_names = _names(info.get("inputs"), len(plan.inputs), "input")
    out_names = _names(info.get("outputs"), len(plan.outputs), "output")
    inputs = [_spec(plan, i, n) for i, n in zip(plan.inputs, in_names, strict=True)]
    outputs = [_spec(plan, i, n) for i, n in zip(plan.outputs, out_names, strict=True)]
    ops = operator_names(plan)
    backends = [d.id for d in plan.delegates]
    instructions = sum(len(c.instructions) for c in plan.chains)
    precision = info.get("precision") or ("int8" if any(QUANTIZED_OP.search(o) for o in ops) else None)
    meta: dict[str, Any] = {
        "method": plan.name,
        "methods": [p.name for p in program.execution_plan],
        "instructions": instructions,
        "operators": sorted(set(ops)),
        "delegates": backends,
        "pte_version": program.version,
        "producer": info.get("producer"),
    }
    if precision:
        meta["precision"] = precision
    if backends and instructions == len(backends):
        meta["notes"] = [f"the whole method runs in {', '.join(sorted(set(backends)))} (delegated): the graph "
                         "shows an XNNPACK delegate's own operators (others as one node); "
                         "wb.profile_nodes(m, ['executorch']) times them (ETDump)"]
    return Model("executorch", name=path.stem, path=path, inputs=inputs, outputs=outputs,
                 native_loader=lambda: read_program(path), metadata=meta)


# -- the graph -----------------------------------------------------------------------------------
XNNPACK = "XnnpackBackend"
_NONE_ID = 4294967295  # XNNPACK's "no external id"


def xnnpack_subgraph(blob: bytes) -> dict[str, Any] | None:
    """The XNNPACK delegate's own graph (``XNNGraph``: ``xnodes``, ``xvalues``, ``input_ids``, ``output_ids``)
    from its payload (header ``XH00``, then a FlatBuffer), read with the ``flatc`` and schema ExecuTorch
    ships; None when the payload is not one."""
    import subprocess
    import tempfile

    import executorch
    import executorch.backends.xnnpack.serialization as serialization

    if len(blob) < 30 or blob[4:8] != b"XH00":
        return None
    offset, size = int.from_bytes(blob[10:14], "little"), int.from_bytes(blob[14:18], "little")
    flatc = Path(next(iter(executorch.__path__))) / "data" / "bin" / "flatc"
    schema = Path(next(iter(serialization.__path__))) / "runtime_schema.fbs"
    if not flatc.is_file() or not schema.is_file() or offset + size > len(blob):
        return None
    with tempfile.TemporaryDirectory(prefix="wb-xnn-") as tmp:
        graph = Path(tmp) / "graph.bin"
        graph.write_bytes(blob[offset:offset + size])
        done = subprocess.run([str(flatc), "--json", "--strict-json", "--defaults-json", "--raw-binary", "-o", tmp,
                               str(schema), "--", str(graph)], capture_output=True, timeout=120)
        text = (Path(tmp) / "graph.json").read_text() if done.returncode == 0 else ""
    if not text:
        return None
    text = re.sub(r'(?<![\w"])(-?)inf\b', r"\1Infinity", text)  # flatc writes bare inf and nan
    text = re.sub(r'(?<![\w"])-?nan\b', "NaN", text)
    return json.loads(text)


def _xnn_nodes(sub: dict[str, Any], label: str, ins: list[str], outs: list[str], tensors: dict[str, Tensor],
               weights: dict[str, Weight]) -> list[Node]:
    """The XNNPACK subgraph's nodes, its external tensors named as the delegate call's ``ins``/``outs``."""
    names: dict[int, str] = {}  # XNNPACK value id -> tensor name; input_ids/output_ids are value ids
    for vid, name in zip(sub.get("input_ids", []), ins, strict=False):
        names[int(vid)] = name
    for vid, name in zip(sub.get("output_ids", []), outs, strict=False):
        names[int(vid)] = name
    for value in sub.get("xvalues", []):
        v = value.get("xvalue_union") or {}
        v = v.get("tensor_value", v)  # quantized tensors wrap the tensor value
        vid = int(v.get("id_out", 0))
        name = names.setdefault(vid, f"{label}/x{vid}")
        dtype = str(v.get("datatype", "")).replace("xnn_datatype_", "")
        dtype = {"fp32": "float32", "fp16": "float16", "qint8": "int8", "quint8": "uint8", "qcint8": "int8",
                 "qint32": "int32", "qcint32": "int32", "qdint8": "int8", "qbint4": "int4", "qcint4": "int4"}.get(
                     dtype, dtype)
        shape = tuple(int(d) for d in v.get("dims", []))
        if name not in tensors:
            tensors[name] = Tensor(name, shape, dtype)
        if int(v.get("constant_buffer_idx", 0)) > 0:
            weights[name] = Weight(name, shape, dtype)
    nodes = []
    for k, node in enumerate(sub.get("xnodes", [])):
        kind = str(node.get("xnode_union_type", "?")).removeprefix("XNN")
        fields = node.get("xnode_union") or {}
        n_in, n_out, attrs = [], [], {}
        for key, value in fields.items():
            ids = value if key.endswith("_ids") and isinstance(value, list) else [value] if key.endswith("_id") else None
            if ids is None:
                attrs[key] = value
                continue
            for vid in ids:
                if int(vid) == _NONE_ID or int(vid) not in names:
                    continue
                (n_out if key.startswith("output") else n_in).append(names[int(vid)])
        nodes.append(Node(f"{label}/{kind}_{k}", kind, n_in, n_out, weights=[t for t in n_in if t in weights],
                          attrs=attrs, scope=(label,), positions={t: p for p, t in enumerate(n_in)}))
    return nodes


def read_graph(program: Any, name: str, method: str | None = None) -> Graph:
    """The instructions of ``method`` (default: the model's) as a graph: kernel calls and delegate calls
    are nodes; a value an instruction reads before any instruction wrote it is an input or a constant."""
    plan, constants = _plans(program)
    if method is not None:
        plan = next((p for p in program.execution_plan if p.name == method), plan)
    info = _io_info(constants)
    names: dict[int, str] = {}
    for idx, n in zip(plan.inputs, _names(info.get("inputs"), len(plan.inputs), "input"), strict=True):
        names[idx] = n
    for idx, n in zip(plan.outputs, _names(info.get("outputs"), len(plan.outputs), "output"), strict=True):
        names.setdefault(idx, n)
    ops = operator_names(plan)
    tensors: dict[str, Tensor] = {}
    weights: dict[str, Weight] = {}
    defined = set(plan.inputs)

    def tensor_of(idx: int) -> str | None:
        val = plan.values[idx].val
        if not hasattr(val, "sizes"):
            return None
        tname = names.setdefault(idx, f"v{idx}")
        if tname not in tensors:
            shape = tuple(int(d) for d in val.sizes)
            tensors[tname] = Tensor(tname, shape, _scalar(val.scalar_type))
            # a constant: stored in the program (data_buffer_idx > 0) and not memory-planned
            if getattr(val, "data_buffer_idx", 0) and getattr(val, "allocation_info", None) is None:
                weights[tname] = Weight(tname, shape, _scalar(val.scalar_type))
                defined.add(idx)
        return tname

    def expand(idx: int) -> list[int]:
        val = plan.values[idx].val
        items = getattr(val, "items", None)
        if isinstance(items, list) and type(val).__name__ in ("TensorList", "OptionalTensorList"):
            return [i for i in items if i >= 0]
        return [idx]

    nodes: list[Node] = []
    expanded: list[str] = []
    for chain in plan.chains:
        for k, instruction in enumerate(chain.instructions):
            call = instruction.instr_args
            kind = type(call).__name__
            if kind == "KernelCall":
                op, label = ops[call.op_index], ops[call.op_index].split("::")[-1]
                attrs: dict[str, Any] = {}
            elif kind == "DelegateCall":
                delegate = plan.delegates[call.delegate_index]
                op, label = delegate.id, f"{delegate.id}_{call.delegate_index}"
                attrs = {"delegate": delegate.id,
                         "compile_specs": {c.key: bytes(c.value)[:64].hex() for c in delegate.compile_specs}}
            else:  # MoveCall, JumpFalseCall, FreeCall: control flow and memory, not operators
                continue
            ins: list[str] = []
            outs: list[str] = []
            scalars = []
            for arg in call.args:
                for idx in expand(arg):
                    tname = tensor_of(idx)
                    if tname is None:
                        scalars.append(_scalar_value(plan.values[idx].val))
                    elif idx in defined:
                        if tname not in ins:
                            ins.append(tname)
                    elif tname not in outs:
                        outs.append(tname)
            defined.update(i for arg in call.args for i in expand(arg))
            if scalars:
                attrs["args"] = scalars
            if kind == "DelegateCall" and op == XNNPACK:
                inner = _delegate_nodes(program, plan.delegates[call.delegate_index], label, ins, outs, tensors,
                                        weights)
                if inner:
                    nodes += inner
                    expanded.append(label)
                    continue
            nodes.append(Node(f"{label}#{k}", op, ins, outs, weights=[t for t in ins if t in weights], attrs=attrs))
    inputs = [names[i] for i in plan.inputs if plan.values[i].val is not None and tensor_of(i)]
    outputs = [t for t in (tensor_of(i) for i in plan.outputs) if t is not None]
    notes = [f"{n.op}: a delegate, compiled ahead of time; its operators are not stored as a graph"
             for n in nodes if n.op in {d.id for d in plan.delegates}][:1]
    if expanded:
        notes.append(f"{', '.join(expanded)}: the XNNPACK delegate's own graph, as serialized in the program")
    return Graph(name, "executorch", nodes, tensors, weights, inputs, outputs, notes=notes)


def _delegate_nodes(program: Any, delegate: Any, label: str, ins: list[str], outs: list[str],
                    tensors: dict[str, Tensor], weights: dict[str, Weight]) -> list[Node]:
    """An XNNPACK delegate's nodes, or [] when its payload cannot be read (the delegate stays one node)."""
    try:
        blob = bytes(program.backend_delegate_data[delegate.processed.index].data)
        sub = xnnpack_subgraph(blob)
        return _xnn_nodes(sub, label, ins, outs, tensors, weights) if sub else []
    except Exception:  # noqa: BLE001 - a payload of another version: show the delegate as one node
        return []


def _scalar_value(val: Any) -> Any:
    for attr in ("int_val", "double_val", "bool_val", "string_val", "items"):
        if hasattr(val, attr):
            return getattr(val, attr)
    return None if val is None or type(val).__name__ == "Null" else type(val).__name__


@register_format
class ExecuTorchFormat(Format):
    name = "executorch"
    description = "ExecuTorch program (.pte)"
    suffixes = (".pte",)
    pure_data = True  # read by a parser: nothing is unpickled, no code from the file runs
    priority = 20  # four bytes at a fixed offset: cheap and exact
    facts = ("method", "instructions", "delegates", "operators", "pte_version", "producer", "precision")

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return path.is_file() and is_pte(head)

    @classmethod
    def explain(cls, path: Path, head: bytes) -> ModelFormatError | None:
        if path.is_file() and not is_pte(head):
            return ModelFormatError(f"{path} has no ExecuTorch program identifier (ETnn at byte 4)",
                                    "pass a .pte written by ExecuTorch's to_executorch() (wb.convert(m, 'executorch'))")
        return None

    @classmethod
    def load(cls, path: Path, **options: Any) -> Model:
        return load(path, **options)

    @classmethod
    def graph(cls, model: Model) -> Graph:
        program = model.native() if model.native() is not None else read_program(model.path)
        return read_graph(program, model.name).with_file_size(model)

    @classmethod
    def precision(cls, model: Model) -> str | None:
        return model.metadata.get("precision")
