"""torch.export ExportedProgram models (``.pt2`` archives written by ``torch.export.save``)."""

from __future__ import annotations

import operator
from collections import defaultdict
from pathlib import Path
from typing import Any

from workbench.core.errors import ModelFormatError, UntrustedPickleError
from workbench.core.graph import Graph, Node, Tensor, Weight, jsonable, mark_params
from workbench.core.model import Model, TensorSpec
from workbench.core.registry import Format, register_format
from workbench.formats.torchscript import archive_members, explain_archive


def _dim(d: Any, i: int) -> int | str:
    from torch.fx.experimental.symbolic_shapes import is_concrete_int

    if is_concrete_int(d):
        return int(d)
    return "batch" if i == 0 else str(d)  # a SymInt: dynamic


def specs_of(ep: Any) -> tuple[list[TensorSpec], list[TensorSpec]]:
    from workbench.formats.torch_module import torch_dtype_name

    user_inputs = set(ep.graph_signature.user_inputs)
    inputs, outputs = [], []
    for node in ep.graph.nodes:
        if node.op == "placeholder" and node.name in user_inputs:
            val = node.meta.get("val")
            if val is not None and hasattr(val, "shape"):
                inputs.append(TensorSpec(node.name, tuple(_dim(d, i) for i, d in enumerate(val.shape)),
                                         torch_dtype_name(val.dtype)))
    user_outputs = list(ep.graph_signature.user_outputs)
    out_node = next(n for n in ep.graph.nodes if n.op == "output")
    vals = out_node.args[0] if isinstance(out_node.args[0], tuple | list) else (out_node.args[0],)
    n_user = len(user_outputs)
    vals = list(vals)[-n_user:] if n_user else list(vals)
    single = len(vals) == 1
    for i, v in enumerate(vals):
        val = getattr(v, "meta", {}).get("val")
        if val is not None and hasattr(val, "shape"):
            name = "output" if single else f"output_{i}"
            outputs.append(TensorSpec(name, tuple(_dim(d, j) for j, d in enumerate(val.shape)),
                                      torch_dtype_name(val.dtype)))
    return inputs, outputs


def _load_torchao_ops() -> bool:
    """Register torchao's quantized ops (used by pt2e-quantized programs), if torchao is installed."""
    import importlib.util

    if importlib.util.find_spec("torchao") is None:
        return False
    try:
        import torchao.quantization.pt2e.quantize_pt2e  # noqa: F401
    except Exception:  # noqa: BLE001 - a broken torchao install: the original error is the one to show
        return False
    return True


#: where torch.export.save puts what torch.export.load unpickles (payload configs name the rest)
_PAYLOAD_CONFIG_SUFFIX = "_config.json"
_OBJECT_PREFIXES = ("custom_obj", "opaque_obj")  # torchbind objects / arbitrary pickled Python objects


def _is_weights_only(data: bytes) -> bool:
    """True when ``data`` (a ``torch.save`` payload) loads with torch's restricted unpickler."""
    import io

    import torch

    try:
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - any refusal means "needs the full unpickler"
        return False
    return True


def unsafe_members(path: Path) -> list[str]:
    """The members of a ``.pt2`` archive that ``torch.export.load`` would unpickle with the full
    unpickler (running code from the file): sample inputs, ``use_pickle`` weights and constants,
    torchbind / opaque objects, legacy ``.pt`` payloads, that torch's weights-only unpickler refuses.

    torch reads sample inputs weights-only and silently falls back to a full unpickle, and reads a
    payload marked ``use_pickle`` with ``weights_only=False`` outright: each such member is checked
    here first, with the restricted unpickler, so nothing is unpickled without ``trust=True``.
    """
    import json
    import zipfile

    from workbench.core.safety import check_zip_bytes, read_member

    unsafe: list[str] = []
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        raw: set[str] = set()  # members torch reads as raw tensor bytes, never unpickled
        for name in names:
            if not name.endswith(_PAYLOAD_CONFIG_SUFFIX):
                continue
            try:
                config = json.loads(read_member(archive, name)).get("config", {})
            except (ValueError, AttributeError):
                continue  # not a payload config torch can use either
            folder = name.rsplit("/", 1)[0] + "/"
            for entry in config.values() if isinstance(config, dict) else ():
                if not isinstance(entry, dict) or not isinstance(entry.get("path_name"), str):
                    continue
                member = folder + entry["path_name"]
                if entry["path_name"].startswith(_OBJECT_PREFIXES):
                    unsafe.append(member)
                elif not entry.get("use_pickle"):
                    raw.add(member)
        for name in names:
            base = name.rsplit("/", 1)[-1]
            if name in raw or name.endswith("/") or name.endswith(".json") or name in unsafe:
                continue
            if base.startswith(_OBJECT_PREFIXES):
                unsafe.append(name)
                continue
            info = archive.getinfo(name)
            if info.file_size < 2:
                continue
            with archive.open(name) as member:
                head = member.read(4)
            # a torch.save payload (a nested zip), or a bare pickle (protocol >= 2 starts with 0x80)
            if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80" or name.endswith((".pt", ".pkl"))):
                continue
            data = read_member(archive, name)
            check_zip_bytes(data, f"{path}:{name}")
            if not _is_weights_only(data):
                unsafe.append(name)
    return unsafe


def load(path: Path, *, trust: bool = False, **_: Any) -> Model:
    import torch

    from workbench.formats.torchscript import SPEC_FILE, specs_from_json

    if not trust:
        try:
            unsafe = unsafe_members(path)
        except ModelFormatError:
            raise
        except Exception as err:  # noqa: BLE001 - a damaged archive: torch would fail on it too
            raise ModelFormatError(f"{path} is a damaged .pt2 archive ({type(err).__name__}: {err})",
                                   "save it again with torch.export.save") from None
        if unsafe:
            shown = ", ".join(unsafe[:3]) + (f" and {len(unsafe) - 3} more" if len(unsafe) > 3 else "")
            raise UntrustedPickleError(
                f"{path} holds pickled Python objects ({shown}) that torch.export.load would unpickle, "
                "running code from the file",
                "if you trust the file, wb.load(path, trust=True); else ask for a .pt2 saved by "
                "torch.export.save from plain tensors, or an ONNX file")
    extra = {SPEC_FILE: ""}
    import logging

    # torch logs its weights-only fallback with a broken format string (one argument for two %s): a
    # logging handler that raises on errors (pytest's) would fail the load of a trusted file
    serde_log = logging.getLogger("torch._export.serde.serialize")
    level = serde_log.level
    serde_log.setLevel(logging.ERROR)
    try:
        try:
            ep = torch.export.load(str(path), extra_files=extra)
        except Exception:
            if not _load_torchao_ops():
                raise
            ep = torch.export.load(str(path), extra_files=extra)  # a pt2e-quantized program: its ops now exist
    except Exception as err:  # noqa: BLE001
        first = str(err).strip().splitlines()[0][:200]
        raise ModelFormatError(f"{path} could not be loaded as an ExportedProgram: {first}",
                               "save it again with torch.export.save (same torch version)") from None
    finally:
        serde_log.setLevel(level)
    inputs, outputs = specs_of(ep)
    if extra[SPEC_FILE]:  # written by wb.export: the original input/output names
        saved_in, saved_out = specs_from_json(extra[SPEC_FILE])
        if len(saved_out) == len(outputs):
            outputs = [TensorSpec(s.name, o.shape, o.dtype) for s, o in zip(saved_out, outputs, strict=True)]
        if [s.name for s in saved_in] == [s.name for s in inputs]:
            inputs = saved_in
    meta: dict[str, Any] = {"nodes": sum(1 for n in ep.graph.nodes if n.op == "call_function")}
    if trust:
        meta["trusted"] = True  # steps that reopen the file (in the worker) open it with trust too
    return Model("exported_program", name=path.stem, path=path, inputs=inputs, outputs=outputs, native=ep,
                 metadata=meta)


# -- the graph -----------------------------------------------------------------------------------
def read_graph(ep: Any, name: str | None = None,
                          input_names: list[str] | None = None) -> Graph:
    """Read a ``torch.export.ExportedProgram`` (shapes from FX metadata, scope from nn_module_stack)."""
    import torch

    sig = ep.graph_signature
    params = dict(sig.inputs_to_parameters)
    buffers = dict(sig.inputs_to_buffers)
    consts = dict(getattr(sig, "inputs_to_lifted_tensor_constants", {}) or {})
    state = ep.state_dict
    constants = getattr(ep, "constants", {}) or {}
    tensors: dict[str, Tensor] = {}
    weights: dict[str, Weight] = {}
    nodes: list[Node] = []
    inputs: list[str] = []
    outputs: list[str] = []
    alias: dict[str, str] = {}  # fx node name -> tensor / weight name
    element_of: dict[str, list[str]] = defaultdict(list)  # multi-output node -> its getitem tensors
    user_inputs = list(sig.user_inputs)
    rename = dict(zip(user_inputs, input_names, strict=False)) if input_names and len(input_names) == len(
        user_inputs) else {}

    def val_tensor(nm: str, val: Any) -> Tensor:
        if isinstance(val, torch.Tensor):
            return Tensor(nm, tuple(int(d) if isinstance(d, int) or str(d).isdigit() else str(d)
                                    for d in val.shape), str(val.dtype).replace("torch.", ""))
        return Tensor(nm)

    for fx in ep.graph.nodes:
        if fx.op == "placeholder":
            target = params.get(fx.name) or buffers.get(fx.name) or consts.get(fx.name)
            if target is not None:
                value = state.get(target, constants.get(target))
                t = val_tensor(target, value if value is not None else fx.meta.get("val"))
                weights[target] = Weight(target, tuple(int(d) for d in (t.shape or ())), t.dtype or "",
                                         is_param=fx.name in params,
                                         loader=(lambda v=value: v.detach().float().cpu().numpy()
                                                 if v.is_floating_point() else v.detach().cpu().numpy()))
                tensors[target] = t
                alias[fx.name] = target
            elif fx.name in user_inputs:
                nm = rename.get(fx.name, fx.name)
                alias[fx.name] = nm
                tensors[nm] = val_tensor(nm, fx.meta.get("val"))
                inputs.append(nm)
            continue
        if fx.op == "output":
            for a in _fx_nodes(fx.args):
                outputs.append(alias.get(a.name, a.name))
            continue
        if fx.op != "call_function":
            continue
        if fx.target is operator.getitem:  # a multi-output op's element: name it producer:index
            src = fx.args[0]
            alias[fx.name] = f"{alias.get(src.name, src.name)}:{fx.args[1]}"
            tensors[alias[fx.name]] = val_tensor(alias[fx.name], fx.meta.get("val"))
            element_of[src.name].append(alias[fx.name])
            continue
        ins = [alias.get(a.name, a.name) for a in _fx_nodes((fx.args, fx.kwargs))]
        val = fx.meta.get("val")
        if isinstance(val, list | tuple):
            outs = [f"{fx.name}:{k}" for k in range(len(val))]
            for k, v in enumerate(val):
                tensors[outs[k]] = val_tensor(outs[k], v)
        else:
            outs = [fx.name]
            tensors[fx.name] = val_tensor(fx.name, val)
        stack = fx.meta.get("nn_module_stack") or {}
        scope = tuple(path for path, _ in stack.values() if path)
        node = Node(fx.name, _torch_op_name(fx.target), ins, outs, weights=[t for t in ins if t in weights],
                    attrs=_fx_attrs(fx), scope=scope,
                    positions={t: k for k, t in enumerate(ins)})
        nodes.append(node)
    # a getitem alias "x:0" must name the producer's output
    for n in nodes:
        n.outputs += [t for t in element_of.get(n.name, []) if t not in n.outputs]
    mark_params(nodes, weights, respect_flags=True)
    return Graph(name or "model", "exported_program", nodes, tensors, weights, inputs, outputs)


def _fx_nodes(obj: Any) -> list[Any]:
    import torch.fx

    out: list[Any] = []
    if isinstance(obj, torch.fx.Node):
        out.append(obj)
    elif isinstance(obj, list | tuple):
        for x in obj:
            out += _fx_nodes(x)
    elif isinstance(obj, dict):
        for x in obj.values():
            out += _fx_nodes(x)
    return out


def _torch_op_name(target: Any) -> str:
    name = str(target)
    if name.startswith("aten.") and name.count(".") >= 2:
        name = name.rsplit(".", 1)[0]  # drop the overload (".default")
    return name if "<" not in name else getattr(target, "__name__", name)


def _fx_attrs(fx: Any) -> dict[str, Any]:
    import torch.fx

    schema = getattr(fx.target, "_schema", None)
    names = [a.name for a in schema.arguments] if schema is not None else []
    attrs: dict[str, Any] = {}
    for i, a in enumerate(fx.args):
        if isinstance(a, torch.fx.Node) or (isinstance(a, list | tuple) and any(
                isinstance(x, torch.fx.Node) for x in a)):
            continue
        attrs[names[i] if i < len(names) else f"arg{i}"] = jsonable(a)
    for k, a in fx.kwargs.items():
        if not isinstance(a, torch.fx.Node):
            attrs[k] = jsonable(a)
    return attrs


@register_format
class ExportedProgramFormat(Format):
    name = "exported_program"
    description = "torch.export ExportedProgram (.pt2)"
    suffixes = (".pt2",)
    priority = 20  # after TorchScript: both are zip archives, told apart by their members
    facts = ("nodes",)

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        names = archive_members(path, head)
        return any(n.endswith("models/model.json") or n.endswith("serialized_exported_program.json")
                   for n in names)

    @classmethod
    def explain(cls, path: Path, head: bytes) -> ModelFormatError | None:
        return explain_archive(path, head)

    @classmethod
    def load(cls, path: Path, **options: Any) -> Model:
        return load(path, **options)

    @classmethod
    def graph(cls, model: Model) -> Graph:
        return read_graph(model.native(), name=model.name, input_names=model.input_names).with_file_size(model)

