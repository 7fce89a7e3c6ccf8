"""TorchScript models (``.pt`` archives written by ``torch.jit.save``).

TorchScript, ExportedProgram and ``torch.save`` files are all zip archives: detection tells them
apart by their members (``archive_members``), and ``explain_archive`` says why a zip is none of them.
"""

from __future__ import annotations

import json
import zipfile
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.detect import known_formats
from workbench.core.errors import ModelFormatError
from workbench.core.graph import Graph, Node, Tensor, Weight, dotted_scope, jsonable, mark_params
from workbench.core.model import UNKNOWN_SHAPE, Model, TensorSpec
from workbench.core.registry import Format, register_format

SPEC_FILE = "workbench_specs.json"  # written by wb.export into the archive's extra files
ZIP_MAGIC = b"PK\x03\x04"


def archive_members(path: Path, head: bytes) -> list[str]:
    """The member names of the zip archive at ``path`` (``[]`` when it is not a readable zip)."""
    if not head.startswith(ZIP_MAGIC) or not path.is_file():
        return []
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except zipfile.BadZipFile:
        return []


def explain_archive(path: Path, head: bytes) -> ModelFormatError | None:
    """Why a zip archive is not a torch model: damaged, or holding something else (None if not a zip)."""
    if not head.startswith(ZIP_MAGIC) or not path.is_file():
        return None
    try:
        with zipfile.ZipFile(path):
            pass
    except zipfile.BadZipFile as err:
        return ModelFormatError(f"{path} is a damaged zip archive ({err})",
                                "the file is truncated or corrupt: save or copy it again")
    return ModelFormatError(f"{path} is a zip archive but not a TorchScript or ExportedProgram file",
                            f"pass one of: {known_formats()}")


def specs_to_json(inputs: list[TensorSpec], outputs: list[TensorSpec]) -> str:
    return json.dumps({"inputs": [[s.name, list(s.shape), s.dtype] for s in inputs],
                       "outputs": [[s.name, list(s.shape), s.dtype] for s in outputs]})


def specs_from_json(text: str) -> tuple[list[TensorSpec], list[TensorSpec]]:
    data = json.loads(text)
    return ([TensorSpec(n, tuple(s), d) for n, s, d in data["inputs"]],
            [TensorSpec(n, tuple(s), d) for n, s, d in data["outputs"]])


def load(path: Path, example_inputs: Any = None, **options: Any) -> Model:
    import torch

    extra = {SPEC_FILE: ""}
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as err:  # noqa: BLE001
        first = str(err).strip().splitlines()[0][:200]
        raise ModelFormatError(f"{path} could not be loaded as TorchScript: {first}",
                               "save it again with torch.jit.save") from None
    module.eval()
    if extra[SPEC_FILE]:
        inputs, outputs = specs_from_json(extra[SPEC_FILE])
        return Model("torchscript", name=path.stem, path=path, inputs=inputs, outputs=outputs, native=module)
    if example_inputs is not None:  # a foreign TorchScript: learn the shapes by running it
        from workbench.formats.torch_module import from_module

        m = from_module(module, example_inputs, name=path.stem, **options)
        return Model("torchscript", name=path.stem, path=path, inputs=m.inputs, outputs=m.outputs,
                     native=module, example_feeds=m.example_inputs())
    names = [i.debugName().split(".")[0] for i in list(module.graph.inputs())[1:]]
    traced = traced_inputs(path)
    if traced is not None and len(traced) == len(names):  # torch.jit.trace kept the inputs it traced with
        from workbench.formats.torch_module import from_module

        m = from_module(module, dict(zip(names, traced, strict=True)), name=path.stem, **options)
        return Model("torchscript", name=path.stem, path=path, inputs=m.inputs, outputs=m.outputs,
                     native=module, example_feeds=m.example_inputs(),
                     metadata={"notes": ["input shapes from the inputs the file was traced with"]})
    inputs = [TensorSpec(n, UNKNOWN_SHAPE, "unknown") for n in names]
    return Model("torchscript", name=path.stem, path=path, inputs=inputs, outputs=[], native=module,
                 metadata={"shapes_from_first_run": True,
                           "notes": ["input shapes unknown (the file does not record them): the first run "
                                     "records them; pass example_inputs= to wb.load to fix them"]})


#: ``torch.<X>Storage`` class names in a TorchScript pickle -> NumPy dtypes
_STORAGE_DTYPES = {"FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
                   "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
                   "ByteStorage": "uint8", "BoolStorage": "bool"}


def _made_up(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """An input of a traced shape whose values the file does not hold: seeded normal floats; zeros for
    integer and bool inputs (valid token ids and indices for any model)."""
    if np.dtype(dtype).kind == "f":
        return np.random.default_rng(0).standard_normal(shape).astype(dtype)
    return np.zeros(shape, dtype)


def traced_inputs(path: Path) -> list[np.ndarray] | None:
    """The example inputs a ``torch.jit.trace``d file was traced with (``<archive>/traced_inputs.pkl``,
    written by torch ≥ 2.0), as arrays; None when the file has none (scripted, older torch) or they are
    not plain tensors.

    The pickle is read with an unpickler that only knows the handful of globals a list of tensors needs
    and builds arrays from the raw storage bytes itself (bounds-checked; made-up values of the traced shape
    where the file keeps the shapes only): nothing in the file is imported or called.
    """
    import pickle

    try:
        with zipfile.ZipFile(path) as archive:
            member = next((n for n in archive.namelist() if n.endswith("/traced_inputs.pkl")), None)
            if member is None:
                return None
            prefix = member[: -len("traced_inputs.pkl")]
            data = archive.read(member)
            storages = {n[len(prefix) + len("traced_inputs/"):]: n for n in archive.namelist()
                        if n.startswith(prefix + "traced_inputs/")}

            def rebuild(storage: tuple[str, str], offset: int, size: tuple[int, ...], stride: tuple[int, ...],
                        *_: Any) -> np.ndarray:
                dtype, key = storage
                shape = tuple(int(d) for d in size)
                raw = np.frombuffer(archive.read(storages[key]) if key in storages else b"", dtype=dtype)
                extent = int(offset) + sum((d - 1) * int(st) for d, st in zip(shape, stride, strict=True)) + 1
                if any(d == 0 for d in shape) or int(offset) < 0 or any(int(st) < 0 for st in stride):
                    return _made_up(shape, dtype)
                if raw.size < extent:  # torch keeps the traced inputs' shapes but may leave their bytes out
                    return _made_up(shape, dtype)
                item = raw.itemsize
                return np.lib.stride_tricks.as_strided(raw[int(offset):], shape, [int(st) * item for st in stride]).copy()

            class Reader(pickle.Unpickler):
                def find_class(self, module: str, name: str) -> Any:
                    if (module, name) == ("torch.jit._pickle", "restore_type_tag"):
                        return lambda value, _tag: value
                    if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                        return rebuild
                    if module == "torch" and name in _STORAGE_DTYPES:
                        return _STORAGE_DTYPES[name]
                    if (module, name) == ("collections", "OrderedDict"):
                        return dict
                    raise pickle.UnpicklingError(f"{module}.{name} is not part of a list of traced tensors")

                def persistent_load(self, pid: Any) -> Any:  # ("storage", dtype, key, device, numel)
                    return (pid[1], str(pid[2]))

            import io

            table = Reader(io.BytesIO(data)).load()
    except Exception:  # noqa: BLE001 - anything unexpected: the inputs stay unknown, the model still loads
        return None
    values = table.get("forward") if isinstance(table, dict) else None
    if not isinstance(values, list | tuple) or not all(isinstance(v, np.ndarray) for v in values):
        return None
    return list(values)


# -- the graph -----------------------------------------------------------------------------------
def read_graph(module: Any, example_inputs: Mapping[str, np.ndarray] | None = None,
                     name: str | None = None, input_names: list[str] | None = None) -> Graph:
    """Read a ``torch.jit.ScriptModule`` (inlined graph). Shapes come from running it node by node
    on ``example_inputs`` when given; the module path comes from the weights each node reads."""
    import torch

    graph = module.inlined_graph
    g_inputs = list(graph.inputs())
    tensors: dict[str, Tensor] = {}
    weights: dict[str, Weight] = {}
    nodes: list[Node] = []
    values: dict[str, Any] = {}  # debugName -> python/torch value (for shapes)
    attr_path: dict[str, str] = {g_inputs[0].debugName(): ""}  # GetAttr chains -> "layer1.0.conv1"
    notes: list[str] = []
    feeds = list(example_inputs.values()) if example_inputs else None
    inputs = [v.debugName() for v in g_inputs[1:]]
    if feeds is not None and len(feeds) == len(inputs):
        for v, arr in zip(inputs, feeds, strict=True):
            values[v] = torch.from_numpy(np.ascontiguousarray(arr))
    else:
        feeds = None
        notes.append("no example inputs: shapes and MACs are unknown for this TorchScript model")
    alias: dict[str, str] = {}  # graph input / GetAttr output -> public name or weight path
    if input_names and len(input_names) == len(inputs):
        alias.update(zip(inputs, input_names, strict=True))
    for v in g_inputs[1:]:
        nm = alias.get(v.debugName(), v.debugName())
        tensors[nm] = _ts_tensor(nm, values.get(v.debugName()))
    inputs = [alias.get(v, v) for v in inputs]
    running = feeds is not None
    lists: dict[str, list[str]] = {}
    containers = ("prim::ListConstruct", "prim::TupleConstruct")
    for n in graph.nodes():
        kind = n.kind()
        outs = [o.debugName() for o in n.outputs()]
        ins = [i.debugName() for i in n.inputs()]
        if kind == "prim::GetAttr":
            parent = attr_path.get(ins[0])
            if parent is None:
                continue
            path = f"{parent}.{n.s('name')}" if parent else n.s("name")
            attr_path[outs[0]] = path
            obj = _ts_attr(module, path)
            if isinstance(obj, torch.Tensor):
                if path not in weights:
                    weights[path] = Weight(path, tuple(obj.shape), str(obj.dtype).replace("torch.", ""),
                                           is_param=isinstance(obj, torch.nn.Parameter) or obj.requires_grad,
                                           loader=(lambda o=obj: o.detach().float().numpy()
                                                   if o.is_floating_point() else o.detach().numpy()))
                    tensors[path] = Tensor(path, tuple(obj.shape), weights[path].dtype)
                alias[outs[0]] = path
                values[outs[0]] = obj
            continue
        if kind == "prim::Constant":
            try:
                values[outs[0]] = n.output().toIValue()
            except Exception:  # noqa: BLE001
                values[outs[0]] = None
            continue
        if kind in containers:
            values[outs[0]] = [values.get(i) for i in ins]
            lists[outs[0]] = ins
            continue
        if kind in ("prim::ListUnpack", "prim::TupleUnpack") and ins[0] in values:
            for o, v in zip(outs, values[ins[0]] or [], strict=False):
                values[o] = v
        if running and kind.startswith("aten::"):
            try:
                res = _ts_call(n, [values[i] for i in ins])
                if len(outs) == 1:
                    values[outs[0]] = res
                else:
                    for o, r in zip(outs, res, strict=False):
                        values[o] = r
            except Exception as err:  # noqa: BLE001 - stop computing shapes, keep reading the graph
                running = False
                notes.append(f"shapes stop at {kind} ({str(err).splitlines()[0][:100]})")
        elif kind in ("prim::If", "prim::Loop", "prim::CallFunction", "prim::CallMethod"):
            running = False
        for o in outs:
            tensors[o] = _ts_tensor(o, values.get(o))
        flat: list[str] = []
        for i in ins:  # a list argument (cat's tensors) reads its elements
            flat += [alias.get(x, x) for x in lists[i]] if i in lists else [alias.get(i, i)]
        tensor_ins = [i for i in flat if i in tensors or i in weights]
        wts = [i for i in tensor_ins if i in weights]
        node = Node(outs[0] if outs else f"{kind}_{len(nodes)}", kind.replace("::", "."), tensor_ins, outs,
                    weights=wts, attrs=_ts_attrs(ins, values), scope=(),
                    positions={t: k for k, t in enumerate(tensor_ins)})
        if wts:
            node.scope = dotted_scope(wts[0].rsplit(".", 1)[0])
        nodes.append(node)
    # node names: prefer the module path of weights ("layer1.0.conv1/aten._convolution")
    _ts_fill_scopes(nodes)
    # tensors that are weights carry their weight name, keep node inputs pointing at weight keys
    outputs = [o.debugName() for o in graph.outputs()]
    # drop weights never read by a node (GetAttr of submodules)
    mark_params(nodes, weights, respect_flags=True)
    return Graph(name or "model", "torchscript", nodes, tensors, weights, inputs, outputs, notes)


def _ts_tensor(name: str, val: Any) -> Tensor:
    import torch

    if isinstance(val, torch.Tensor):
        return Tensor(name, tuple(int(d) for d in val.shape), str(val.dtype).replace("torch.", ""))
    return Tensor(name)


def _ts_attr(module: Any, path: str) -> Any:
    obj = module
    for p in path.split("."):
        try:
            obj = getattr(obj, p)
        except AttributeError:
            return None
    return obj


def _ts_call(n: Any, args: list[Any]) -> Any:
    """Run one TorchScript aten node on concrete values (keyword-only arguments by name)."""
    import torch

    schema = torch._C.parse_schema(n.schema())
    packet = getattr(torch.ops.aten, schema.name.split("::")[1])
    fn = getattr(packet, schema.overload_name or "default")
    pos = [v for a, v in zip(schema.arguments, args, strict=False) if not a.kwarg_only]
    kw = {a.name: v for a, v in zip(schema.arguments, args, strict=False) if a.kwarg_only}
    return fn(*pos, **kw)


def _ts_attrs(ins: list[str], values: dict[str, Any]) -> dict[str, Any]:
    """Non-tensor arguments (strides, padding, flags) of a TorchScript node, by position."""
    import torch

    attrs: dict[str, Any] = {}
    for k, i in enumerate(ins):
        v = values.get(i)
        if v is None or isinstance(v, torch.Tensor):
            continue
        if isinstance(v, list) and any(isinstance(x, torch.Tensor) for x in v):
            continue
        attrs[f"arg{k}"] = jsonable(v)
    return attrs


def _ts_fill_scopes(nodes: list[Node]) -> None:
    """Nodes without weights take the scope shared by their neighbours (relu after bn1 -> its block)."""
    producer = {t: n for n in nodes for t in n.outputs}
    consumers: dict[str, list[Node]] = defaultdict(list)
    for n in nodes:
        for t in n.inputs:
            consumers[t].append(n)
    for n in nodes:
        if n.scope:
            continue
        near = [producer[t].scope for t in n.inputs if t in producer and producer[t].scope]
        near += [c.scope for t in n.outputs for c in consumers.get(t, []) if c.scope]
        if near:
            common = near[0]
            for s in near[1:]:
                k = 0
                while k < min(len(common), len(s)) and common[k] == s[k]:
                    k += 1
                common = common[:k]
            n.scope = common[:-1] if common == near[0] and len(near) == 1 else common


@register_format
class TorchScriptFormat(Format):
    name = "torchscript"
    description = "TorchScript (.pt)"
    suffixes = (".pt",)
    priority = 10  # TorchScript archives also hold data.pkl: ask before the torch.save pickle format

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        names = archive_members(path, head)
        return any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names)

    @classmethod
    def explain(cls, path: Path, head: bytes) -> ModelFormatError | None:
        return explain_archive(path, head)

    @classmethod
    def load(cls, path: Path, **options: Any) -> Model:
        return load(path, **options)

    @classmethod
    def graph(cls, model: Model) -> Graph:
        try:
            feeds = model.example_inputs()
        except Exception:  # noqa: BLE001 - shapes are optional for TorchScript
            feeds = None
        return read_graph(model.native(), feeds, name=model.name,
                          input_names=model.input_names).with_file_size(model)
