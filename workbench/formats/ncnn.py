"""ncnn models (``.param`` + ``.bin``, as pnnx writes them: ``model.ncnn.param`` / ``model.ncnn.bin``).

The ``.param`` file is a text graph: the magic ``7767517``, then ``<layers> <blobs>``, then one line per
layer (``Type name n_in n_out in_blobs… out_blobs… key=value…``). Detection reads the magic; the
graph, the interface and the op counts are read from the text alone (no ncnn needed). The weights are
in the ``.bin`` beside it, which ncnn reads in layer order.

ncnn runs one sample at a time and its blobs have no batch axis (pnnx drops it): an ``Input`` layer
declares ``0=w 1=h 11=d 2=c``, so a ``(c, h, w)`` blob is the ``(batch, c, h, w)`` input of the
model it came from. Outputs are the blobs no layer reads; ncnn records no output shapes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.errors import ModelFormatError
from workbench.core.graph import Graph, Node, Tensor, mark_params
from workbench.core.model import Model, TensorSpec
from workbench.core.registry import Format, register_format

MAGIC = b"7767517"
#: the most layers or blobs a .param may declare (a bound for untrusted files; ResNet-152 has ~500)
MAX_LAYERS = 1_000_000
#: how many floats each layer type's weight blobs hold, by the param key that says so
WEIGHT_KEYS = {"Convolution": "6", "ConvolutionDepthWise": "6", "Convolution1D": "6", "Convolution3D": "6",
               "ConvolutionDepthWise1D": "6", "ConvolutionDepthWise3D": "6", "Deconvolution": "6",
               "DeconvolutionDepthWise": "6", "InnerProduct": "2", "Embed": "3",
               "MultiHeadAttention": "2"}


@dataclass
class Layer:
    """One line of an ncnn ``.param``."""

    type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[str, Any] = field(default_factory=dict)


def _value(text: str) -> Any:
    """An ncnn param value: an int, a float, or an array written ``n,v1,v2,…`` (key ``-233xx``)."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def parse_param(text: str, source: str = "the .param file") -> list[Layer]:
    """The layers of an ncnn text ``.param``; raises ModelFormatError naming the first bad line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0] != MAGIC.decode():
        raise ModelFormatError(f"{source} does not start with the ncnn magic {MAGIC.decode()}",
                               "pass the .param file written by pnnx or ncnn's converters (text, not .param.bin)")
    try:
        n_layers, n_blobs = (int(v) for v in lines[1].split()[:2])
    except (IndexError, ValueError):
        raise ModelFormatError(f"{source}: line 2 must be '<layer count> <blob count>', found {lines[1:2]}",
                               "the file is damaged: export it again with pnnx") from None
    if not (0 < n_layers <= MAX_LAYERS and 0 < n_blobs <= MAX_LAYERS):
        raise ModelFormatError(f"{source} declares {n_layers} layers and {n_blobs} blobs",
                               "the file is damaged: export it again with pnnx")
    layers = []
    for lineno, line in enumerate(lines[2:], start=3):
        parts = line.split()
        try:
            kind, name, n_in, n_out = parts[0], parts[1], int(parts[2]), int(parts[3])
            if n_in < 0 or n_out < 0 or len(parts) < 4 + n_in + n_out:
                raise ValueError
        except (IndexError, ValueError):
            raise ModelFormatError(f"{source}, line {lineno}: not 'Type name inputs outputs blobs… key=value…': "
                                   f"{line[:120]!r}", "the file is damaged: export it again with pnnx") from None
        ins = parts[4:4 + n_in]
        outs = parts[4 + n_in:4 + n_in + n_out]
        params = {}
        for item in parts[4 + n_in + n_out:]:
            key, sep, value = item.partition("=")
            if not sep:
                raise ModelFormatError(f"{source}, line {lineno}: parameter {item!r} has no '='",
                                       "the file is damaged: export it again with pnnx")
            params[key] = [_value(v) for v in value.split(",")[1:]] if key.startswith("-233") else _value(value)
        layers.append(Layer(kind, name, ins, outs, params))
    if len(layers) != n_layers:
        raise ModelFormatError(f"{source} declares {n_layers} layers but holds {len(layers)}",
                               "the file is truncated or damaged: export it again with pnnx")
    return layers


def input_shape(layer: Layer) -> tuple[int | str, ...]:
    """The model input an ``Input`` layer stands for: ncnn's ``c, d, h, w`` with the batch axis in front
    (``"?"`` axes when the layer does not declare its shape)."""
    p = layer.params
    dims = [p.get(k) for k in ("2", "11", "1", "0")]  # c, d, h, w
    known = [int(d) for d in dims if isinstance(d, int) and d > 0]
    return ("batch", *known) if known else ("batch", "?")


def outputs_of(layers: list[Layer]) -> list[str]:
    """Blobs that some layer writes and no layer reads, in file order (ncnn has no output marker)."""
    read = {b for layer in layers for b in layer.inputs}
    return [b for layer in layers for b in layer.outputs if b not in read]


def weight_count(layer: Layer) -> int:
    key = WEIGHT_KEYS.get(layer.type)
    value = layer.params.get(key) if key else None
    return int(value) if isinstance(value, int) and value > 0 else 0


def read_layers(path: Path) -> list[Layer]:
    from workbench.core.safety import check_openable

    check_openable(path)
    size = path.stat().st_size
    if size > 256 << 20:  # a text graph of a million layers is ~100 MB
        raise ModelFormatError(f"{path.name} is {size >> 20} MB: too large for an ncnn .param",
                               "pass the .param (text graph), not the .bin (weights)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ModelFormatError(f"{path.name} is not text: ncnn's binary .param.bin is not read here",
                               "convert with pnnx / ncnn's tools to the text .param") from None
    return parse_param(text, path.name)


def load(path: Path, **_: Any) -> Model:
    layers = read_layers(path)
    bin_path = path.with_suffix(".bin")
    if not bin_path.is_file():
        raise ModelFormatError(f"the ncnn model {path.name} has no weights file {bin_path.name} next to it",
                               "copy the .param together with its .bin into the same folder")
    inputs = [TensorSpec(layer.outputs[0], input_shape(layer), "float32")
              for layer in layers if layer.type == "Input" and layer.outputs]
    if not inputs:
        raise ModelFormatError(f"{path.name} has no Input layer", "export the model again with pnnx")
    outputs = [TensorSpec(b, ("batch", "?"), "float32") for b in outputs_of(layers)]
    ops = Counter(layer.type for layer in layers if layer.type != "Input")
    meta: dict[str, Any] = {
        "layers": len(layers), "ops": dict(ops.most_common()),
        "parameters": sum(weight_count(layer) for layer in layers),
        "notes": ["ncnn runs one sample at a time (the runner loops over the batch); it records no output shapes"],
    }
    return Model("ncnn", name=path.name.removesuffix(".param").removesuffix(".ncnn"), path=path, inputs=inputs,
                 outputs=outputs, native_loader=lambda: layers, metadata=meta)


def read_graph(layers: list[Layer], name: str) -> Graph:
    """The workbench Graph of an ncnn model: one node per layer; ``MemoryData`` layers (constants) are
    weights; ``Split`` layers (ncnn's fan-out copies) are folded away."""
    from workbench.core.graph import Weight

    tensors: dict[str, Tensor] = {}
    weights: dict[str, Weight] = {}
    alias: dict[str, str] = {}
    nodes: list[Node] = []
    own: list[int] = []  # each node's weights held in its layer (from its weight_data_size)
    inputs: list[str] = []
    for layer in layers:
        ins = [alias.get(b, b) for b in layer.inputs]
        if layer.type == "Input":
            inputs.extend(layer.outputs)
            tensors[layer.outputs[0]] = Tensor(layer.outputs[0], input_shape(layer)[1:], "float32")
            continue
        if layer.type == "Split" and len(ins) == 1:
            alias.update({b: ins[0] for b in layer.outputs})
            continue
        if layer.type == "MemoryData" and layer.outputs:
            p = layer.params
            shape = tuple(int(p[k]) for k in ("2", "11", "1", "0") if isinstance(p.get(k), int) and p[k] > 0)
            weights[layer.outputs[0]] = Weight(layer.outputs[0], shape, "float32")
            continue
        for b in layer.outputs:
            tensors.setdefault(b, Tensor(b, None, "float32"))
        node = Node(layer.name, layer.type, ins, list(layer.outputs), weights=[b for b in ins if b in weights],
                    attrs={k: v for k, v in layer.params.items()}, positions={t: k for k, t in enumerate(ins)})
        nodes.append(node)
        own.append(weight_count(layer))
    mark_params(nodes, weights)
    for node, count in zip(nodes, own, strict=True):
        node.params += count  # ncnn keeps conv/fc weights inside the layer, not as blobs
    outputs = [alias.get(b, b) for b in outputs_of(layers)]
    return Graph(name, "ncnn", nodes, tensors, weights, inputs, outputs)


@register_format
class NcnnFormat(Format):
    name = "ncnn"
    description = "ncnn (.param text graph + .bin weights; pnnx writes .ncnn.param / .ncnn.bin)"
    suffixes = (".param",)
    pure_data = True  # read by a parser: nothing is unpickled, no code from the file runs
    priority = 30
    facts = ("layers", "parameters", "ops")

    @classmethod
    def sniff(cls, path: Path, head: bytes) -> bool:
        return path.is_file() and head.lstrip()[:8].rstrip() == MAGIC

    @classmethod
    def explain(cls, path: Path, head: bytes) -> ModelFormatError | None:
        if path.is_file() and path.suffix == ".param":
            return ModelFormatError(f"{path} does not start with ncnn's magic {MAGIC.decode()}",
                                    "pass the text .param written by pnnx (model.ncnn.param), with its .bin beside it")
        return None

    @classmethod
    def load(cls, path: Path, **options: Any) -> Model:
        return load(path, **options)

    @classmethod
    def files(cls, path: Path) -> list[Path]:
        return [p for p in (path, path.with_suffix(".bin")) if p.exists()]

    @classmethod
    def graph(cls, model: Model) -> Graph:
        return read_graph(model.native(), model.name).with_file_size(model)

    @classmethod
    def precision(cls, model: Model) -> str | None:
        return model.metadata.get("precision")
