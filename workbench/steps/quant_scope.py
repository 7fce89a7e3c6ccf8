"""Which nodes of an ONNX graph static INT8 quantization should touch, read from the graph itself.

Two rules, both generic (no model names):

* **Index arithmetic stays float.** Nodes whose values do not depend on the model's float data (no float
  graph input, no float weight upstream of them: ``Shape → Range → Cast → Log → Mul → Cast(int64)``, the
  relative-position buckets of T5, attention-mask arithmetic built from an integer mask) compute indices
  and masks, not activations. Quantizing them is never useful and can be fatal: T5's bucket computation
  takes ``log(0) = -inf`` on a branch that ``Where`` then discards; a calibrated range with ``-inf`` gives a
  NaN zero point, and the ``Gather`` on ``relative_attention_bias`` receives index -9.2e18.
  ``index_nodes(graph)`` lists them; ONNX Runtime static quantization excludes them always.
* **Transformers quantize their weight ops only.** In a graph with attention (``Softmax``) or layer
  normalisation, quantizing every activation (residual ``Add``, ``LayerNormalization``, ``Softmax``, GELU)
  with one per-tensor uint8 range rounds away the small features next to the residual stream's outliers:
  a tiny random ViT goes to rel_l2 0.44 (the quantization debugger puts 88% of the error on the residual
  ``Add`` nodes and the rest on ``LayerNormalization``), while quantizing only ``MatMul`` / ``Gemm`` /
  ``Conv`` (their inputs and per-channel weights, where the compute is) gives rel_l2 0.021 — the scheme
  Optimum and Intel Neural Compressor default to for transformers. Of the MatMuls, those with a constant
  weight: attention's two activation-by-activation products (``Q @ K^T``, ``softmax @ V``) stay float, as
  most W8A8 schemes keep them; a tiny random Whisper's logits go from rel_l2 0.39 to 0.022 with them float
  (with them in INT8, a per-tensor uint8 range on the masked attention probabilities).
  ``plan(graph, op_types)`` returns that for such graphs and ``None`` (ONNX Runtime's full set) for the
  rest (CNNs keep every op in INT8, which is what makes them fast there).
"""

from __future__ import annotations

from typing import Any

#: op types whose output describes a tensor's shape, not its values
SHAPE_OPS = frozenset({"Shape", "Size"})
#: ONNX float element types (FLOAT, FLOAT16, DOUBLE, BFLOAT16)
FLOAT_TYPES = frozenset({1, 10, 11, 16})
#: ops that mark a transformer block: attention's softmax, layer normalisations (fused or ORT's)
TRANSFORMER_MARKERS = frozenset({"Softmax", "LayerNormalization", "SimplifiedLayerNormalization",
                                 "SkipLayerNormalization", "SkipSimplifiedLayerNormalization", "Attention",
                                 "MultiHeadAttention", "GroupQueryAttention"})
#: what a transformer's static INT8 quantizes by default: the ops with weights, where the compute is
WEIGHT_OPS = ("MatMul", "Gemm", "Conv", "ConvTranspose")


def _nodes(graph: Any) -> list[Any]:
    """Every node of ``graph``, its subgraphs' (If/Loop/Scan bodies) included."""
    out = []
    for node in graph.node:
        out.append(node)
        for attr in node.attribute:
            if attr.type == attr.GRAPH:
                out.extend(_nodes(attr.g))
            elif attr.type == attr.GRAPHS:
                for g in attr.graphs:
                    out.extend(_nodes(g))
    return out


def _numel(dims: Any) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n


def index_nodes(graph: Any) -> list[str]:
    """The names of the nodes of ``graph`` (an ``onnx.GraphProto``) whose outputs do not depend on float
    data: neither a float graph input nor a float weight (an initializer or ``Constant`` of more than one
    element) reaches them except through ``Shape`` / ``Size``. Nodes come in topological order (ONNX's
    rule), so one pass decides each from its inputs; a subgraph's node counts as data-dependent when its
    parent does (it may read outer values)."""
    data: set[str] = set()
    for vi in graph.input:
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type in FLOAT_TYPES:
            data.add(vi.name)
    for init in graph.initializer:
        if init.data_type in FLOAT_TYPES and _numel(init.dims) > 1:
            data.add(init.name)
    found = []
    for node in graph.node:
        if node.op_type == "Constant":
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is not None and value.data_type in FLOAT_TYPES and _numel(value.dims) > 1:
                data.update(node.output)
            continue
        reads_data = node.op_type not in SHAPE_OPS and (
            any(i in data for i in node.input) or any(a.type in (a.GRAPH, a.GRAPHS) for a in node.attribute))
        if reads_data:
            data.update(node.output)
        elif node.name and node.op_type not in SHAPE_OPS:
            found.append(node.name)
    return found


def activation_matmuls(graph: Any) -> list[str]:
    """The names of the ``MatMul`` nodes of ``graph`` with no constant operand: attention's scores
    (``Q @ K^T``) and its weighted sum (``softmax @ V``), where both sides are activations."""
    consts = {i.name for i in graph.initializer} | {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    return [n.name for n in graph.node if n.op_type == "MatMul" and n.name and not any(i in consts for i in n.input)]


def plan(graph: Any, op_types: Any) -> tuple[list[str] | None, list[str]]:
    """``(op types to quantize, nodes to keep float)`` for static INT8 of ``graph``: ``op_types`` as the user
    gave it (``"all"``: ONNX Runtime's full set, None), or for ``None`` the default of ``default_op_types``,
    where a transformer also keeps its activation-by-activation MatMuls float; index arithmetic is always
    kept float."""
    keep = index_nodes(graph)
    if op_types == "all":
        return None, keep
    if op_types is not None:
        return list(op_types), keep
    chosen = default_op_types(graph)
    if chosen is not None:
        keep += activation_matmuls(graph)
    return chosen, keep


def is_transformer(graph: Any) -> bool:
    """Whether ``graph`` has attention or layer normalisation (see ``TRANSFORMER_MARKERS``)."""
    return any(n.op_type in TRANSFORMER_MARKERS for n in _nodes(graph))


def default_op_types(graph: Any) -> list[str] | None:
    """The op types static INT8 quantizes when the user names none: the weight ops for a transformer,
    ``None`` (ONNX Runtime's full set) otherwise."""
    return list(WEIGHT_OPS) if is_transformer(graph) else None
