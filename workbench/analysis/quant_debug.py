"""``wb.quantize_debug``: why did INT8 break my model? — and ``wb.quantize(..., accuracy_budget=)``, which
wins the accuracy back by keeping the fewest layers in float.

The debugger takes the float model and its INT8 copy and measures, for every quantized layer:

* ``alone``: the output error that layer adds on its own (that layer alone quantized, every other one
  float: ONNX Runtime's "qdq loss" question);
* ``share``: its share of the final error (that layer alone kept float, every other one quantized:
  ``(E_int8 - E_without) / E_int8``; what keeping it float buys);
* the activation ranges it sees on real data (min, max, 99.9th percentile of ``|x|``, the outlier ratio
  ``max|x| / p99.9``), the range the calibration method chose and the fraction of values it clips.

It does not re-quantize: it edits the quantized graph, which already holds every decision the quantizer
made. An ONNX QDQ model (ONNX Runtime's static INT8) keeps a layer float by wiring its inputs past their
``QuantizeLinear → DequantizeLinear`` pairs (and its weights to their float twins from the float model);
an OpenVINO IR with ``FakeQuantize`` ops (NNCF's INT8) by wiring its inputs past their ``FakeQuantize``.
A "layer" is a node whose inputs are quantized, named as the quantizer knows it: the names its
``nodes_to_exclude`` (ONNX Runtime) or ``ignored_scope`` (NNCF) take.

``quantize_within_budget`` (``wb.quantize(model, tool, accuracy_budget=0.01)``) runs the quantization,
measures the task metric, and when the drop exceeds the budget asks the debugger for the ranking, predicts
from the edited graphs how many of the top layers must stay float, and then runs real, cached, registered
quantization steps that exclude them (adding layers one by one if the prediction fell short) until the
metric is within the budget. The result's metadata (``"accuracy_budget"``) records every trial, the
layers kept float and why; its lineage holds the excluded layers as the step's options.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.analysis.compare import as_model
from workbench.core import progress, registry
from workbench.core.data import feeds_for
from workbench.core.errors import StepError, WorkbenchError
from workbench.core.model import Model
from workbench.core.results import result_type, to_json
from workbench.steps import onnxruntime as ort_steps
from workbench.steps import qdq, routing
from workbench.steps import quantize as quantize_step

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

Feeds = dict[str, np.ndarray]
Predict = Callable[[Feeds], Feeds]
#: ops that move or select quantized values without computing on them: not ranked on their own, kept float
#: with the layers they feed
PASSIVE_OPS = frozenset({"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Shape", "Gather", "Slice",
                         "Split", "Expand", "Identity", "IsNaN", "Where", "Tile", "Cast", "Concat", "MaxPool"})



@dataclass
class QuantLayer:
    """One quantized layer: the error it adds, its share of the final error, and what its inputs look like."""

    rank: int
    node: str  # the name the quantizer knows it by (nodes_to_exclude / ignored_scope)
    op_type: str
    index: int  # position in the quantized graph
    share: float  # fraction of the INT8 model's output error removed by keeping this layer float
    alone: float  # output rel. L2 error with only this layer quantized
    without: float  # output rel. L2 error with this layer alone kept float
    act_min: float = math.nan  # observed float range of its quantized activation inputs
    act_max: float = math.nan
    act_p999: float = math.nan  # 99.9th percentile of |x|
    outlier_ratio: float = math.nan  # max|x| / p99.9|x|: > ~5 means a few values set the range
    channel_spread: float = math.nan  # largest channel's max|x| / the median channel's: > ~20 is outlier channels
    weight_spread: float = math.nan  # the same for its weight's output channels
    score: float = math.nan  # the rank key: max(share, alone / the INT8 model's error)
    per_tensor_weights: bool = False  # one INT8 scale for its whole weight (not one per channel)
    quant_min: float = math.nan  # the range the calibration chose
    quant_max: float = math.nan
    step: float = math.nan  # the quantization step (scale) of its activations
    clipped: float = math.nan  # fraction of activation values outside the chosen range
    inputs: list[str] = field(default_factory=list)  # its quantized activation tensors
    weights: list[str] = field(default_factory=list)  # its quantized weight tensors
    note: str = ""

    @property
    def cause(self) -> str:
        """A short reading of the figures: what most likely makes this layer hurt."""
        if self.per_tensor_weights and not math.isnan(self.weight_spread) and self.weight_spread > 20:
            return (f"weight channels of unequal range (the largest output channel's is {self.weight_spread:.0f}x "
                    "the median's): one per-tensor INT8 scale leaves the others a few levels")
        if not math.isnan(self.channel_spread) and self.channel_spread > 20:
            return (f"outlier channels (the largest channel's range is {self.channel_spread:.0f}x the median "
                    "channel's): per-tensor INT8 leaves the other channels a few levels")
        if not math.isnan(self.clipped) and self.clipped > 0.01:
            return f"calibration clips {self.clipped:.1%} of its activations"
        if not math.isnan(self.outlier_ratio) and self.outlier_ratio > 5:
            return (f"activation outliers (max |x| is {self.outlier_ratio:.0f}x the 99.9th percentile): "
                    "the INT8 step is coarse for the bulk of the values")
        if self.inputs and self.weights:
            return "activation and weight rounding"
        return "weight rounding" if self.weights else "activation rounding"

    @property
    def fix(self) -> str:
        """The finer scheme its figures call for, short of keeping it float (``layer_schemes`` of ONNX
        Runtime's static INT8): ``"per_channel"`` for per-tensor weights with unequal channels;
        ``"smooth_quant"`` for a MatMul/Gemm whose input has outlier channels (their range moves into the
        weight, SmoothQuant-style); ``"int16"`` (16-bit activations, INT8 weights) for activation outliers
        or clipping; else ``"float"``."""
        if self.per_tensor_weights and not math.isnan(self.weight_spread) and self.weight_spread > 20:
            return "per_channel"
        if (self.op_type in ("MatMul", "Gemm") and self.weights and not math.isnan(self.channel_spread)
                and self.channel_spread > 20):
            return "smooth_quant"
        if self.inputs and ((not math.isnan(self.outlier_ratio) and self.outlier_ratio > 5)
                            or (not math.isnan(self.clipped) and self.clipped > 0.01)
                            or (not math.isnan(self.channel_spread) and self.channel_spread > 20)):
            return "int16"
        return "float"


@result_type("quant_debug_report")
@dataclass
class QuantDebugReport:
    """Per quantized layer, its error alone and its share of the INT8 model's error, ranked by ``score``: its
    share, or the fraction of the INT8 error it makes alone when that is larger (several broken layers).

    ``per_node(metric="share")`` gives ``{node: value}`` for ``GraphView.overlay`` (on the quantized
    model's graph: ``wb.show(quantized).overlay(report)``); ``top(k)`` the names to keep float;
    ``to_frame()``, ``to_json()``, ``plot()``, and a section in ``wb.html_report``.
    """

    model: str
    quantized: str
    scheme: str  # "qdq" (ONNX QuantizeLinear/DequantizeLinear) or "fake_quantize" (OpenVINO)
    layers: list[QuantLayer]
    full_error: float  # output rel. L2 error of the INT8 model against the float one on the same data
    samples: int
    metric_name: str = ""
    float_metric: float | None = None
    int8_metric: float | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ranked(self) -> list[QuantLayer]:
        return sorted(self.layers, key=lambda r: r.rank)

    def top(self, k: int) -> list[str]:
        """The names of the ``k`` layers whose float copy removes the most error."""
        return [r.node for r in self.ranked[:k]]

    def per_node(self, metric: str = "score") -> dict[str, float]:
        """``{node name: value}`` of ``metric`` (``score``: what the ranking uses, ``share``, ``alone``,
        ``without``, ``clipped``, ``outlier_ratio``, ``channel_spread``, ``weight_spread``)."""
        if self.layers and not hasattr(self.layers[0], metric):
            raise WorkbenchError(f"a quantization debug report has no per-layer figure {metric!r}",
                                 "use share, alone, without, clipped or outlier_ratio")
        return {r.node: float(getattr(r, metric)) for r in self.layers if not math.isnan(getattr(r, metric))}

    @property
    def metric_drop(self) -> float | None:
        if self.float_metric is None or self.int8_metric is None:
            return None
        return self.float_metric - self.int8_metric

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [{**asdict(r), "cause": r.cause} for r in self.ranked]
        return pd.DataFrame(rows).set_index("rank") if rows else pd.DataFrame()

    def summary(self, k: int = 5) -> str:
        lines = [f"{self.quantized} vs {self.model}: {len(self.layers)} quantized layers ({self.scheme}), "
                 f"output rel_l2={self.full_error:.3g} on {self.samples} samples"]
        if self.metric_drop is not None:
            lines.append(f"  {self.metric_name}: float {self.float_metric:.4f} -> INT8 {self.int8_metric:.4f} "
                         f"(drop {self.metric_drop:+.4f})")
        for r in self.ranked[:k]:
            lines.append(f"  #{r.rank} {r.node} ({r.op_type}): share {r.share:.0%}, alone rel_l2 {r.alone:.3g}; "
                         f"{r.cause}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<QuantDebugReport>\n{self.summary()}"

    def fixes(self, k: int | None = None) -> dict[str, str]:
        """``{node: scheme}`` for the top ``k`` layers (default: those whose score is at least 5% of the INT8
        error): the finer scheme each one's figures call for (``QuantLayer.fix``), for ``wb.quantize(...,
        layer_schemes=)``."""
        rows = self.ranked[:k] if k is not None else [r for r in self.ranked if r.score >= 0.05]
        return {r.node: r.fix for r in rows}

    def json_extras(self) -> dict[str, Any]:
        return {"ranking": self.top(len(self.layers)), "metric_drop": self.metric_drop}

    def to_json(self, indent: int | None = 2) -> str:
        """JSON with ``schema: "workbench.quant_debug_report"``; ``QuantDebugReport.from_json`` reads it back."""
        return to_json(self, indent=indent)

    html_title = "Quantization debugger"

    def html_sections(self) -> list[str]:
        from html import escape

        from workbench.analysis.report import svg_bars, svg_scatter

        top = self.ranked[:15]
        parts = [f"<pre>{escape(self.summary())}</pre>",
                 svg_bars({f"#{r.rank} {r.node}": 100 * r.share for r in top},
                          "Share of the INT8 error removed by keeping the layer float", "%"),
                 svg_scatter([{"x": r.index, "y": r.alone, "label": f"{r.node} ({r.op_type})",
                               "highlight": r.rank <= 3, "annotate": r.rank <= 3} for r in self.layers],
                             "Output error with only this layer quantized (orange: the top 3 by share)",
                             "layer index (graph order)", "rel L2", log_y=True)]
        return parts

    def plot(self, k: int = 15) -> Any:
        """A plotly figure: the top ``k`` layers' share of the INT8 error (bars) and, where measured, their
        output error alone quantized (hover)."""
        import plotly.graph_objects as go

        top = self.ranked[:k][::-1]
        names = [f"#{r.rank} {r.node[-48:]} ({r.op_type})" for r in top]
        hover = [f"alone rel_l2={r.alone:.3g}<br>{r.cause}" for r in top]
        fig = go.Figure(go.Bar(x=[100 * r.share for r in top], y=names, orientation="h", hovertext=hover,
                               marker_color="#e6550d"))
        fig.update_layout(title=f"{self.quantized}: share of the INT8 error removed by keeping a layer float",
                          xaxis_title="% of the output error", height=max(300, 60 + 28 * len(top)),
                          margin={"l": 10, "r": 10, "t": 50, "b": 40})
        return fig


# -- the quantized graph, edited ---------------------------------------------------------------------
@dataclass
class _Layer:
    node: str
    op_type: str
    index: int
    act_names: list[str]  # its quantized activation inputs (float tensors before quantization)
    weight_names: list[str]
    ranges: list[tuple[float, float, float]]  # (lo, hi, step) the quantizer chose, per activation input
    slots: list[int] = field(default_factory=list)  # FakeQuantize graphs: the inputs to bypass
    note: str = ""
    weight_spread: float = math.nan  # its weight's largest output channel's max|w| / the median channel's
    per_tensor: bool = False  # its weight has one INT8 scale for the whole tensor


def _weight_spread(node: Any, layer: Any, float_weights: dict[str, np.ndarray]) -> float:
    """How unequal the output channels of a layer's weight are (the first weight input of a Conv, MatMul
    or Gemm): max over channels of max|w| / its median. Per-tensor INT8 gives every channel the largest
    one's step: a spread of 100 leaves the median channel ~1 level of 127."""
    if node is None or not layer.weights or node.op_type not in ("Conv", "ConvTranspose", "MatMul", "Gemm"):
        return math.nan
    slot, fname, _ = layer.weights[0]
    w = float_weights.get(fname)
    if w is None or w.ndim < 2 or slot != 1:
        return math.nan
    if node.op_type == "Conv":
        axis = 0
    elif node.op_type == "Gemm":
        axis = 0 if any(a.name == "transB" and a.i for a in node.attribute) else 1
    else:  # MatMul, ConvTranspose: output channels on the last / second axis
        axis = w.ndim - 1 if node.op_type == "MatMul" else 1
    per = np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)).max(axis=1)
    median = float(np.median(per))
    if per.size < 4 or median <= 0:
        return math.nan
    return float(per.max() / median)


def _rel_l2(ref: list[Feeds], out: list[Feeds]) -> float:
    num = den = 0.0
    for r, o in zip(ref, out, strict=True):
        for k, v in r.items():
            a = np.asarray(v, np.float64)
            b = np.asarray(o[k], np.float64)
            num += float(((a - b) ** 2).sum())
            den += float((a ** 2).sum())
    return math.sqrt(num / den) if den > 0 else math.sqrt(num)


class _QdqGraph:
    """An ONNX QDQ model whose layers can be kept float one by one (``workbench.steps.qdq``)."""

    scheme = "qdq"

    def __init__(self, quantized: Model, reference: Model | None, folder: str):
        import onnx

        self.folder = folder
        self.proto = onnx.load_model(str(quantized.path))
        float_proto = None
        if reference is not None and reference.format == "onnx" and reference.path is not None:
            float_proto = onnx.load_model(str(reference.path))
        self.qdq = qdq.read(self.proto, float_proto)
        if self.qdq.missing and float_proto is not None:
            # the quantizer's pre-processing fused weights (a BatchNorm folded into a Conv): the float model
            # after the same pre-processing holds their float twins
            try:
                pre = ort_steps.preprocessed(reference.path, os.path.join(folder, "float-preprocessed.onnx"))
                again = qdq.read(self.proto, onnx.load_model(pre))
            except Exception as exc:  # noqa: BLE001 - the dequantized weights stand in, as the note says
                self.qdq.notes.append(f"the float model could not be pre-processed for its fused weights: {exc}")
            else:
                if again.missing < self.qdq.missing:
                    self.qdq = again
        self.relu_folded = self.qdq.relu_folded
        self.clip_folded = self.qdq.clip_folded
        self.notes = list(self.qdq.notes)
        nodes = {n.name: n for n in self.proto.graph.node}
        self.layers = [_Layer(x.node, x.op_type, x.index, x.act_names, x.weight_names, list(x.ranges),
                              weight_spread=_weight_spread(nodes.get(x.node), x, self.qdq.float_weights),
                              per_tensor=any(not pc for pc in x.per_channel[:1]))
                       for x in self.qdq.layers]
        inits = {t.name for t in self.proto.graph.initializer}
        self.input_names = [i.name for i in self.proto.graph.input if i.name not in inits]
        self._count = 0
        self._switched: Any = None
        self._producer = {o: n.name for n in self.proto.graph.node for o in n.output}
        self.passive = {x.node for x in self.layers if x.op_type in PASSIVE_OPS}
        self._acts = {x.node: x.act_names for x in self.layers}

    def expand(self, names: set[str]) -> set[str]:
        """``names`` and the data-movement layers upstream of their activations (a Reshape between two
        quantized layers re-reads the quantized tensor: a layer kept float needs them float too)."""
        out, stack = set(names), list(names)
        while stack:
            for a in self._acts.get(stack.pop(), ()):
                p = self._producer.get(a)
                if p in self.passive and p not in out:
                    out.add(p)
                    stack.append(p)
        return out

    def switched(self, keep_float: set[str]) -> Predict:
        """A predict function over one session of the model with a switch per layer (``qdq.switchable``):
        every variant the debugger asks for is a feed, not a new session."""
        if self._switched is None:
            import onnx

            proto = onnx.ModelProto()
            proto.CopyFrom(self.proto)
            switches = qdq.switchable(proto, self.qdq)
            path = os.path.join(self.folder, "switchable.onnx")
            onnx.save_model(proto, path)
            model = registry.get_format("onnx").load(Path(path))
            runner = routing.runner(model, registry.default_runtime("onnx"))
            runner.prepare()
            self._switched = (runner, switches)
        runner, switches = self._switched
        flags = {s: np.array(name in keep_float) for name, s in switches.items()}

        class _Switched:
            def __call__(self, feeds: Feeds) -> Feeds:
                return runner.infer({**feeds, **flags})

            def close(self) -> None:  # the session is shared by every variant: closed with the graph
                pass

        return _Switched()

    def close(self) -> None:
        if self._switched is not None:
            self._switched[0].close()
            self._switched = None

    def variant(self, keep_float: set[str], extra_outputs: Sequence[str] = ()) -> Predict:
        """A predict function for the model with the layers ``keep_float`` float (plus ``extra_outputs``)."""
        import onnx
        from onnx import TensorProto, helper

        proto = onnx.ModelProto()
        proto.CopyFrom(self.proto)
        qdq.keep_float(proto, keep_float, self.qdq)
        for name in extra_outputs:
            proto.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
        self._count += 1
        path = os.path.join(self.folder, f"variant-{self._count}.onnx")
        onnx.save_model(proto, path)
        model = registry.get_format("onnx").load(Path(path))
        runner = routing.runner(model, registry.default_runtime("onnx"))
        runner.prepare()
        return _Closing(runner, model)


class _Closing:
    """A prepared runner as a predict function; closed when the variant is done."""

    def __init__(self, runner: Any, model: Model):
        self.runner = runner
        self.model = model

    def __call__(self, feeds: Feeds) -> Feeds:
        return self.runner.infer(feeds_for(self.model, feeds))

    def close(self) -> None:
        self.runner.close()


class _FqGraph:
    """An OpenVINO IR with FakeQuantize ops (NNCF's INT8) whose layers can be kept float one by one."""

    scheme = "fake_quantize"

    def __init__(self, quantized: Model, reference: Model | None, folder: str):
        import openvino as ov

        self.core = ov.Core()
        self.path = str(quantized.path)
        model = self.core.read_model(self.path)
        self.layers = []
        self.notes: list[str] = []
        for index, op in enumerate(model.get_ordered_ops()):
            if op.get_type_name() in ("FakeQuantize", "Result"):
                continue
            layer = _Layer(op.get_friendly_name(), op.get_type_name(), index, [], [], [])
            for slot, port in enumerate(op.inputs()):
                fq = port.get_source_output().get_node()
                if fq.get_type_name() != "FakeQuantize":
                    continue
                layer.slots.append(slot)
                src = fq.input_value(0).get_node()
                while src.get_type_name() == "Convert":
                    src = src.input_value(0).get_node()
                if src.get_type_name() == "Constant":
                    layer.weight_names.append(fq.get_friendly_name())
                else:
                    layer.act_names.append(fq.get_friendly_name())
                    layer.ranges.append(self._range(fq))
            if layer.slots:
                self.layers.append(layer)
        self.input_names = [p.get_any_name() for p in model.inputs]
        self.output_names = [p.get_any_name() for p in model.outputs]
        self.passive: set[str] = set()

    def expand(self, names: set[str]) -> set[str]:
        return set(names)

    @staticmethod
    def _range(fq: Any) -> tuple[float, float, float]:
        def const(i: int) -> np.ndarray:
            node = fq.input_value(i).get_node()
            return np.asarray(node.get_data(), np.float64).reshape(-1) if hasattr(node, "get_data") else np.array([np.nan])

        lo, hi = const(1), const(2)
        levels = fq.get_attributes().get("levels", 256)
        return float(lo.min()), float(hi.max()), float(((hi - lo) / max(levels - 1, 1)).max())

    def variant(self, keep_float: set[str], extra_outputs: Sequence[str] = ()) -> Predict:
        model = self.core.read_model(self.path)
        ops = {op.get_friendly_name(): op for op in model.get_ordered_ops()}
        for layer in self.layers:
            if layer.node in keep_float:
                op = ops[layer.node]
                for slot in layer.slots:
                    fq = op.input(slot).get_source_output().get_node()
                    op.input(slot).replace_source_output(fq.input_value(0))
        outputs = list(self.output_names)
        if extra_outputs:
            model.add_outputs([ops[name].input_value(0) for name in extra_outputs])
        # fp32: the comparison is of the quantization, not of the device's default bf16/fp16
        compiled = self.core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        names = [*outputs, *extra_outputs]
        request = compiled.create_infer_request()

        class _Predict:
            def __call__(self, feeds: Feeds) -> Feeds:
                res = request.infer({k: np.ascontiguousarray(v) for k, v in feeds.items()})
                return {n: np.array(res[compiled.outputs[i]]) for i, n in enumerate(names)}

            def close(self) -> None:
                pass

        return _Predict()


def _graph_of(quantized: Model, reference: Model | None, folder: str) -> _QdqGraph | _FqGraph:
    if quantized.format == "onnx":
        g = _QdqGraph(quantized, reference, folder)
    elif quantized.path is not None and str(quantized.path).endswith(".xml"):
        g = _FqGraph(quantized, reference, folder)
    else:
        raise WorkbenchError(f"the quantization debugger reads ONNX QDQ models and OpenVINO IRs with FakeQuantize, "
                             f"not {quantized.format}",
                             "quantize with wb.quantize(x, 'onnxruntime', 'static') or wb.quantize(x, 'nncf')")
    if not g.layers:
        raise WorkbenchError(f"{quantized.name} has no quantized layers (no QuantizeLinear/DequantizeLinear or "
                             "FakeQuantize feeding a node)",
                             "pass the INT8 model made by a static quantization step (activations quantized)")
    return g


def _run_all(predict: Predict, feeds: list[Feeds], keys: Sequence[str] | None = None) -> list[Feeds]:
    outs = []
    for f in feeds:
        out = predict(f)
        outs.append({k: out[k] for k in (keys or out)})
    return outs


def _close(predict: Any) -> None:
    close = getattr(predict, "close", None)
    if close is not None:
        close()


def _data(model: Model, samples: int) -> list[Feeds]:
    """``samples`` inputs of real data where the model has them (its task's), one batch per feed."""
    batch = 8
    n = max(1, math.ceil(samples / batch))
    return [model.example_inputs(batch=batch, seed=100 + i) for i in range(n)]


def _float_model(quantized: Model, model: Model | None) -> Model | None:
    if model is not None:
        return model
    return quantized.lineage[-1].parent if quantized.lineage else None


#: ``alone=None`` measures each layer alone quantized only up to this many ranked layers (one more run each)
ALONE_AUTO_LAYERS = 64


def quantize_debug(model: Model, quantized: Model, *, samples: int = 32, alone: bool | None = True,
                   evaluate: bool = True, metric: str | None = None,
                   layers: Sequence[str] | None = None) -> QuantDebugReport:
    """Find the layers that make ``quantized`` (an INT8 copy of ``model``) wrong, and rank them.

    Args:
        model: the float model it was quantized from (the ONNX model for ONNX Runtime's static INT8; the
            ONNX model or IR for NNCF); its task data, where it has some, are the inputs.
        quantized: an ONNX QDQ model (``wb.quantize(x, "onnxruntime", "static")``) or an OpenVINO IR with
            FakeQuantize ops (``wb.quantize(x, "nncf")``).
        samples: how many inputs (real data where the model has a task) to measure the error on.
        alone: also measure each layer alone quantized (one more run per layer); ``None``: only when at
            most ``ALONE_AUTO_LAYERS`` layers are ranked.
        evaluate: also compute the task metric of the float and INT8 models (when the model has one).
        metric: which of the task's metrics (default its main one).
        layers: rank only these layers (node names or op types, e.g. ``["MatMul"]``); the others stay as
            they are (quantized) and are not measured. Default: every quantized layer but data movement.

    Returns:
        a QuantDebugReport, ranked by each layer's share of the final error.
    """
    model = as_model(model)
    quantized = as_model(quantized, "quantized model")
    start = time.perf_counter()
    feeds = _data(quantized if quantized.task is not None else model, samples)
    with tempfile.TemporaryDirectory(prefix="wb-quant-debug-") as folder:
        graph = _graph_of(quantized, model, folder)
        names = {layer.node for layer in graph.layers}
        acts = sorted({a for layer in graph.layers for a in layer.act_names})
        every = _graph_variant(graph, names, acts)
        try:
            first = every(feeds[0])
            out_keys = [k for k in first if k not in acts]
            float_runs = [every(f) for f in feeds]
        finally:
            _close(every)
        reference = [{k: r[k] for k in out_keys} for r in float_runs]
        stats = {a: _stack([np.asarray(r[a], np.float32) for r in float_runs]) for a in acts}
        for a in getattr(graph, "relu_folded", set()) & set(stats):  # what the layer sees in float: after the folded ReLU
            stats[a] = np.maximum(stats[a], 0)
        for a, (lo, hi) in getattr(graph, "clip_folded", {}).items():  # ... or the folded Clip (ReLU6)
            if a in stats:
                stats[a] = np.clip(stats[a], lo, hi)
        del float_runs

        def error(keep_float: set[str]) -> float:
            predict = _graph_variant(graph, keep_float)
            try:
                return _rel_l2(reference, _run_all(predict, feeds, out_keys))
            finally:
                _close(predict)

        try:
            full = error(set())
            rows = []
            wanted = set(layers) if layers is not None else None
            measured = [x for x in graph.layers if x.node not in graph.passive
                        and (wanted is None or x.node in wanted or x.op_type in wanted)]
            if not measured:
                raise WorkbenchError(f"none of the quantized layers of {quantized.name} matches layers={layers!r}",
                                     "pass node names or op types of the quantized model (report.to_frame())")
            if alone is None:
                alone = len(measured) <= ALONE_AUTO_LAYERS
            with progress.scope("quantize_debug", f"quantization debugger: {quantized.name}"):
                for i, layer in enumerate(measured):
                    progress.report("running", detail=f"layer {i + 1}/{len(measured)}: {layer.node}")
                    without = error(graph.expand({layer.node}))
                    only = error(names - {layer.node}) if alone else math.nan
                    rows.append(_row(layer, full, without, only, stats))
            metric_name, f_metric, q_metric = "", None, None
            task = model.task or quantized.task
            if evaluate and task is not None and task.has_evaluation:
                metric_name = metric or task.metric_name
                f_metric = _metric(graph, names, task, metric_name)
                q_metric = _metric(graph, set(), task, metric_name)
        finally:
            _close(graph)
        notes = list(graph.notes)
        if graph.passive:
            notes.append(f"{len(graph.passive)} data-movement layer(s) ({', '.join(sorted({x.op_type for x in graph.layers if x.node in graph.passive}))}) "
                         "are not ranked on their own: they stay float with the layers they feed")
    for r in rows:
        r.score = _score(r, full)
    rows.sort(key=lambda r: (-r.score, -r.share))
    for i, r in enumerate(rows, 1):
        r.rank = i
    return QuantDebugReport(model.name, quantized.name, graph.scheme, rows, full, sum(len(next(iter(f.values())))
                            for f in feeds), metric_name, f_metric, q_metric, time.perf_counter() - start, notes)


def _score(row: QuantLayer, full: float) -> float:
    """A layer's rank key: its share of the INT8 error, or, when larger, the fraction of that error it makes
    on its own (with several broken layers each one's float copy alone fixes nothing, as the output error
    stays saturated, while each one alone quantized already breaks the output)."""
    alone = row.alone / full if full > 0 and not math.isnan(row.alone) else 0.0
    return max(row.share, min(alone, 1.0))


def _graph_variant(graph: _QdqGraph | _FqGraph, keep_float: set[str], extra: Sequence[str] = ()) -> Predict:
    """``graph`` with the layers ``keep_float`` float, returning ``extra`` tensors too (a graph input among
    them is passed through from the feeds)."""
    if not extra and isinstance(graph, _QdqGraph):
        return graph.switched(keep_float)
    inputs = [e for e in extra if e in graph.input_names]
    predict = graph.variant(keep_float, [e for e in extra if e not in inputs])
    if not inputs:
        return predict

    class _WithInputs:
        def __call__(self, feeds: Feeds) -> Feeds:
            return {**predict(feeds), **{e: feeds[e] for e in inputs}}

        def close(self) -> None:
            _close(predict)

    return _WithInputs()


def _metric(graph: _QdqGraph | _FqGraph, keep_float: set[str], task: Any, metric: str | None = None) -> float:
    predict = _graph_variant(graph, keep_float)
    try:
        return float(task.evaluate(predict)[metric or task.metric_name])
    finally:
        _close(predict)


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    """The arrays joined along the batch axis (flattened when their shapes differ beyond it)."""
    try:
        return np.concatenate([a if a.ndim else a.reshape(1) for a in arrays])
    except ValueError:
        return np.concatenate([a.reshape(-1) for a in arrays])


def _channel_spread(x: np.ndarray, op_type: str) -> float:
    """max over channels of max|x| / its median over channels (channels: axis 1 of a 4-D feature map or of a
    convolution's input, else the last axis)."""
    if x.ndim < 2:
        return math.nan
    axis = 1 if (x.ndim == 4 or "Conv" in op_type) else x.ndim - 1
    per = np.abs(np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)).max(axis=1)
    if per.size < 4:
        return math.nan
    median = float(np.median(per))
    return float(per.max() / median) if median > 0 else math.inf if per.max() > 0 else math.nan


def _row(layer: _Layer, full: float, without: float, only: float, stats: dict[str, np.ndarray]) -> QuantLayer:
    with np.errstate(all="ignore"):  # masks of -inf (attention) give inf ranges: reported, not warned about
        return _row_figures(layer, full, without, only, stats)


def _row_figures(layer: _Layer, full: float, without: float, only: float, stats: dict[str, np.ndarray]) -> QuantLayer:
    share = (full - without) / full if full > 0 else 0.0
    row = QuantLayer(0, layer.node, layer.op_type, layer.index, share, only, without,
                     inputs=list(layer.act_names), weights=list(layer.weight_names), note=layer.note,
                     weight_spread=layer.weight_spread, per_tensor_weights=layer.per_tensor)
    values = [stats[a] for a in layer.act_names if a in stats and stats[a].size]
    if values:
        spreads = [_channel_spread(v, layer.op_type) for v in values]
        row.channel_spread = max((v for v in spreads if not math.isnan(v)), default=math.nan)
        x = np.concatenate([v.reshape(-1) for v in values])
        absx = np.abs(x)
        row.act_min, row.act_max = float(x.min()), float(x.max())
        row.act_p999 = float(np.percentile(absx, 99.9))
        row.outlier_ratio = float(absx.max() / row.act_p999) if row.act_p999 > 0 else math.nan
        clipped = 0
        for a, (lo, hi, step) in zip(layer.act_names, layer.ranges, strict=False):
            v = stats.get(a)
            if v is None or math.isnan(lo):
                continue
            clipped += int(((v < lo - step / 2) | (v > hi + step / 2)).sum())  # beyond the last level's half-step
        rng = [r for r in layer.ranges if not math.isnan(r[0])]
        if rng:
            row.quant_min = min(r[0] for r in rng)
            row.quant_max = max(r[1] for r in rng)
            row.step = max(r[2] for r in rng)
            row.clipped = clipped / x.size
    return row


# -- accuracy-aware quantization -------------------------------------------------------------------------
#: the option each quantization tool takes to keep named layers float
EXCLUDE_OPTION = {"onnx": "nodes_to_exclude", "fake_quantize": "ignored_scope"}


@result_type("quant_budget_search")
@dataclass
class BudgetSearch:
    """What ``wb.quantize(..., accuracy_budget=)`` tried: each trial's layers kept float and its metric."""

    metric_name: str
    budget: float
    float_metric: float
    int8_metric: float
    result_metric: float
    kept_float: list[dict[str, Any]]  # {node, op_type, share, why}
    trials: list[dict[str, Any]]  # {kind: "predicted" | "step", excluded: n, metric, within, seconds}
    layers: int  # quantized layers in the full INT8 model
    met: bool
    seconds: float = 0.0
    report: QuantDebugReport | None = None
    finer: list[dict[str, Any]] = field(default_factory=list)  # {node, op_type, scheme, why}: INT8, a finer scheme

    @property
    def int8_fraction(self) -> float:
        """The fraction of the quantized layers still in INT8 (weights and activations: a layer with 16-bit
        activations counts as not INT8; per-channel and SmoothQuant layers do)."""
        a16 = sum(1 for f in self.finer if f["scheme"] == "int16")
        return 1 - (len(self.kept_float) + a16) / self.layers if self.layers else 1.0

    def __bool__(self) -> bool:
        return self.met

    def summary(self) -> str:
        return (f"{self.metric_name}: float {self.float_metric:.4f}, full INT8 {self.int8_metric:.4f} "
                f"(drop {self.float_metric - self.int8_metric:+.4f}), result {self.result_metric:.4f} "
                f"(drop {self.float_metric - self.result_metric:+.4f}, budget {self.budget:g}: "
                f"{'met' if self.met else 'NOT met'}); {len(self.kept_float)} of {self.layers} layers kept float"
                + (f", {len(self.finer)} on a finer scheme ("
                   + ", ".join(sorted({f['scheme'] for f in self.finer})) + ")" if self.finer else "")
                + f" after {sum(1 for t in self.trials if t['kind'] == 'step')} quantization step(s)")

    def __repr__(self) -> str:
        return f"<BudgetSearch {self.summary()}>"

    def to_json(self, indent: int | None = 2) -> str:
        return to_json(self, indent=indent)


#: why a finer scheme fixes the cause the debugger found
SCHEME_WHY = {"per_channel": "one INT8 scale per output channel of its weight",
              "smooth_quant": "SmoothQuant moves its input's outlier channels into its (per-channel) weight",
              "int16": "16-bit activations for its inputs (weights stay INT8)"}


def _kept(r: QuantLayer, grouped: bool) -> dict[str, Any]:
    return {"node": r.node, "op_type": r.op_type, "share": r.share,
            "why": f"ranked #{r.rank}: keeping it float removes {r.share:.0%} of the INT8 output error; {r.cause}"
            + ("" if not grouped else f"; kept with the other {r.op_type} layers: that kind of layer "
               "as a whole holds the INT8 error")}


def _evaluate(model: Model, metric: str) -> float:
    values = model.evaluate()
    if metric not in values:
        raise WorkbenchError(f"the task of {model.name} has no metric {metric!r}",
                             f"pass metric= one of {', '.join(values)}")
    return float(values[metric])


def quantize_within_budget(model: Model, tool: str, method: str | None = None, *, accuracy_budget: float,
                           metric: str | None = None, max_steps: int = 8, debug_samples: int = 32,
                           report: QuantDebugReport | None = None, finer: bool = True, **options: Any) -> Model:
    """Quantize ``model`` with ``tool``, then keep the fewest layers float until the task metric drops by
    at most ``accuracy_budget`` (absolute, in the metric's units: 0.01 = one point of accuracy).

    Every quantization it runs is the registered, cached step ``wb.quantize(model, tool, method,
    nodes_to_exclude=[...])`` (``ignored_scope=`` for NNCF). The returned model's
    ``metadata["accuracy_budget"]`` is a ``BudgetSearch`` (trials, layers kept float and why); when the
    budget cannot be met within ``max_steps`` steps the best model found is returned and the search says so.
    ``metric``: which of the task's metrics the budget is on (default its main one, e.g. ``spearman``;
    higher is better, except for a main metric the task marks otherwise). ``report``: a ``quantize_debug``
    report of the same INT8 model to reuse (else one is made with ``debug_samples`` inputs). ``finer``:
    for an ONNX QDQ model, first try moving the layers found to the finer scheme their figures call for
    (``QuantLayer.fix``: per-channel weights, SmoothQuant, 16-bit activations; ``layer_schemes=`` of ONNX
    Runtime's static INT8), which keeps them INT8; keep them float only if that falls short. ``**options``
    go to the quantization.
    """
    model = as_model(model)
    task = model.task
    if task is None or not task.has_evaluation:
        raise WorkbenchError(f"accuracy_budget needs a task metric, and {model.name} has no evaluation data",
                             "use a model with a task (a zoo model such as 'minilm' or 'digits-cnn', or one derived "
                             "from it), or quantize without accuracy_budget and check it with wb.compare")
    if not (isinstance(accuracy_budget, (int, float)) and accuracy_budget >= 0):
        raise WorkbenchError(f"accuracy_budget must be a number >= 0, got {accuracy_budget!r}",
                             "pass the largest acceptable drop of the task metric, e.g. accuracy_budget=0.01")
    start = time.perf_counter()
    metric = metric or task.metric_name
    sign = -1.0 if metric == task.metric_name and not task.higher_is_better else 1.0
    float_metric = _evaluate(model, metric)

    def drop(value: float) -> float:
        return sign * (float_metric - value)

    full = quantize_step.quantize(model, tool, method, **options)
    int8_metric = _evaluate(full, metric)
    trials: list[dict[str, Any]] = [{"kind": "step", "excluded": 0, "metric": int8_metric,
                                     "within": drop(int8_metric) <= accuracy_budget, "model": full.name}]
    if drop(int8_metric) <= accuracy_budget:
        search = BudgetSearch(metric, accuracy_budget, float_metric, int8_metric, int8_metric, [], trials,
                              0, True, time.perf_counter() - start)
        full.metadata["accuracy_budget"] = search
        return full
    if report is None or report.quantized != full.name or not report.layers:
        report = quantize_debug(model, full, samples=debug_samples, alone=None, evaluate=False)
    ranked = report.ranked
    option = EXCLUDE_OPTION["onnx" if report.scheme == "qdq" else "fake_quantize"]
    given = list(options.pop(option, None) or [])

    # predict the prefix length from the edited graph (no re-quantization): doubling, then bisection, over two
    # orders: the layers by their own share, and the layers by op type (the op types whose float copy helps
    # most first: where INT8 hurts everywhere a little, as in a transformer's Softmax/LayerNorm/Add, single
    # layers each hold a tiny share and only a whole kind of layer brings the metric back); the shorter wins
    with tempfile.TemporaryDirectory(prefix="wb-quant-budget-") as folder:
        graph = _graph_of(full, model, folder)

        def predict(order: list[QuantLayer], k: int, label: str) -> float:
            t0 = time.perf_counter()
            value = _metric(graph, graph.expand({r.node for r in order[:k]}), task, metric)
            trials.append({"kind": "predicted", "order": label, "excluded": k, "metric": value,
                           "within": drop(value) <= accuracy_budget, "seconds": round(time.perf_counter() - t0, 3)})
            return value

        def shortest(order: list[QuantLayer], label: str) -> int:
            lo, hi = 0, 1
            while hi < len(order) and drop(predict(order, hi, label)) > accuracy_budget:
                lo, hi = hi, min(2 * hi, len(order))
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if drop(predict(order, mid, label)) <= accuracy_budget:
                    hi = mid
                else:
                    lo = mid
            return hi

        grouped = False
        try:
            k = shortest(ranked, "share")
            kinds = sorted({r.op_type for r in ranked})
            if len(kinds) > 1 and k > 1:
                gain = {t: predict([r for r in ranked if r.op_type == t], len(ranked), f"op type {t}") for t in kinds}
                by_kind = sorted(ranked, key=lambda r: (-sign * gain[r.op_type], kinds.index(r.op_type), r.rank))
                k_kind = shortest(by_kind, "op type")
                if k_kind < k:
                    ranked, k, grouped = by_kind, k_kind, True
            expand = graph.expand
        finally:
            _close(graph)
    best, best_metric, best_k = full, int8_metric, 0
    steps = 0
    schemes = {r.node: r.fix for r in ranked[:k]} if finer and report.scheme == "qdq" else {}
    if any(v != "float" for v in schemes.values()):
        t0 = time.perf_counter()
        floats = sorted(expand({n for n, v in schemes.items() if v == "float"}))
        kw = {option: [*given, *floats]} if given or floats else {}
        try:
            rest = {k: v for k, v in options.items() if k != "layer_schemes"}
            candidate = quantize_step.quantize(model, tool, method, **kw, **rest, layer_schemes={
                **(options.get("layer_schemes") or {}), **{n: v for n, v in schemes.items() if v != "float"}})
        except StepError as exc:  # a QDQ tool without per-layer schemes: keep layers float instead
            candidate, value, within = None, math.nan, False
            trials.append({"kind": "step", "scheme": "finer", "excluded": k, "error": str(exc)})
        else:
            value = _evaluate(candidate, metric)
            steps += 1
            within = drop(value) <= accuracy_budget
            trials.append({"kind": "step", "scheme": "finer", "excluded": k, "metric": value, "within": within,
                           "model": candidate.name, "seconds": round(time.perf_counter() - t0, 3)})
        if candidate is not None and within:
            layer = {r.node: r for r in ranked}
            kept = [_kept(layer[n], grouped) for n, v in schemes.items() if v == "float"]
            moved = [{"node": n, "op_type": layer[n].op_type, "scheme": v,
                      "why": f"ranked #{layer[n].rank}: {layer[n].cause}; {SCHEME_WHY[v]}"}
                     for n, v in schemes.items() if v != "float"]
            search = BudgetSearch(metric, accuracy_budget, float_metric, int8_metric, value, kept, trials, len(ranked),
                                  True, time.perf_counter() - start, report, moved)
            candidate.metadata["accuracy_budget"] = search
            return candidate
    while steps < max_steps and k <= len(ranked):
        t0 = time.perf_counter()
        excluded = sorted(expand({r.node for r in ranked[:k]}))
        candidate = quantize_step.quantize(model, tool, method, **{option: [*given, *excluded]}, **options)
        value = _evaluate(candidate, metric)
        steps += 1
        within = drop(value) <= accuracy_budget
        trials.append({"kind": "step", "excluded": k, "metric": value, "within": within,
                       "model": candidate.name, "seconds": round(time.perf_counter() - t0, 3)})
        if drop(value) < drop(best_metric) or within:
            best, best_metric, best_k = candidate, value, k
        if within:
            break
        k += 1
    kept = [_kept(r, grouped) for r in ranked[:best_k]]
    search = BudgetSearch(metric, accuracy_budget, float_metric, int8_metric, best_metric, kept, trials,
                          len(ranked), drop(best_metric) <= accuracy_budget, time.perf_counter() - start, report)
    best.metadata["accuracy_budget"] = search
    if not search.met:
        best.metadata.setdefault("notes", []).append(
            f"accuracy budget {accuracy_budget:g} not met after {steps} quantization steps: {search.summary()}")
    return best
