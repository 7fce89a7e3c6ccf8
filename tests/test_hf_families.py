"""Hugging Face folders of every family load with their own class and inputs, run, and export to ONNX.

The models are tiny random-weight ones built from configs and saved with ``save_pretrained``
(``tests/hf_tiny.py``): no hub access."""

from __future__ import annotations

import numpy as np
import pytest

import workbench as wb
from tests import hf_tiny
from workbench.core.errors import StepError

pytest.importorskip("transformers")

EXPECTED_INPUTS = {
    "bert": ["input_ids", "attention_mask", "token_type_ids"],
    "distilbert": ["input_ids", "attention_mask"],
    "gpt2": ["input_ids", "attention_mask"],
    "llama": ["input_ids", "attention_mask"],
    "qwen2": ["input_ids", "attention_mask"],
    "t5-encoder": ["input_ids", "attention_mask"],
    "t5": ["input_ids", "attention_mask", "decoder_input_ids"],
    "bart": ["input_ids", "attention_mask", "decoder_input_ids"],
    "clip": ["pixel_values", "input_ids", "attention_mask"],
    "vit": ["pixel_values"],
    "convnext": ["pixel_values"],
    "detr": ["pixel_values"],
    "wav2vec2": ["input_values"],
    "whisper": ["input_features", "decoder_input_ids"],
}


@pytest.fixture(scope="session")
def hf_folders(tmp_path_factory):
    """One saved folder per family, made once for the session."""
    root = tmp_path_factory.mktemp("hf-tiny")
    return {family: hf_tiny.save(family, root / family) for family in hf_tiny.FAMILIES}


@pytest.fixture(scope="session")
def hf_models(hf_folders):
    """The loaded Models, one per family (loaded lazily, once)."""
    cache: dict[str, wb.Model] = {}

    def get(family: str) -> wb.Model:
        if family not in cache:
            cache[family] = wb.load(hf_folders[family])
        return cache[family]

    return get


@pytest.mark.parametrize("family", hf_tiny.FAMILIES)
def test_loads_with_its_own_class_and_inputs(hf_models, hf_folders, family):
    import json

    m = hf_models(family)
    saved_as = json.loads((hf_folders[family] / "config.json").read_text())["architectures"][0]
    assert m.metadata["class"] == saved_as  # T5EncoderModel stays an encoder, not a T5 with a random decoder
    assert m.input_names == EXPECTED_INPUTS[family]
    out = wb.runner(m, "torch_eager").infer()
    assert set(out) == set(m.output_names) and all(np.isfinite(v).all() for v in out.values())


def test_inputs_are_passed_by_name(hf_models, hf_folders):
    """GPT-2's second positional parameter is past_key_values: a mask passed by position would land there."""
    import torch
    import transformers

    m = hf_models("gpt2")
    feeds = m.example_inputs()
    feeds["attention_mask"][:, -5:] = 0  # right padding changes nothing before it, but only if it is a mask
    ours = wb.runner(m, "torch_eager").infer(feeds)["logits"]
    ref = transformers.GPT2LMHeadModel.from_pretrained(str(hf_folders["gpt2"])).eval()
    with torch.no_grad():
        theirs = ref(input_ids=torch.from_numpy(feeds["input_ids"]),
                     attention_mask=torch.from_numpy(feeds["attention_mask"]), use_cache=False).logits.numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_task_picks_the_auto_class(hf_folders):
    m = wb.load(hf_folders["gpt2"], task="feature-extraction")
    assert m.metadata["class"] == "GPT2Model" and m.output_names == ["last_hidden_state"]
    with pytest.raises(wb.WorkbenchError, match="unknown task"):
        wb.load(hf_folders["gpt2"], task="summon-demons")


def test_example_inputs_keep_the_models_lengths(hf_models):
    """Made-up inputs for validation keep the sizes the model needs (wav2vec2's samples), not 16."""
    m = hf_models("wav2vec2")
    feeds = m.example_inputs(batch=3, seed=1)
    assert feeds["input_values"].shape == (3, m.example_inputs()["input_values"].shape[1])
    bert = hf_models("bert").example_inputs(batch=3, seed=1)
    assert not bert["token_type_ids"].any()  # a single segment: ids beyond type_vocab_size would crash


@pytest.fixture(scope="session")
def hf_onnx(hf_models):
    """The ONNX exports (in-process, uncached), one per family, made once."""
    cache: dict[str, wb.Model] = {}

    def get(family: str) -> wb.Model:
        if family not in cache:
            cache[family] = wb.export(hf_models(family), "onnx", isolate=False, cache=False)
        return cache[family]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("family", ["bert", "gpt2", "llama", "qwen2", "t5-encoder", "vit", "wav2vec2", "whisper"])
def test_exports_to_onnx_and_validates(hf_models, hf_onnx, family):
    x = hf_onnx(family)
    assert x.validation.passed, x.validation.summary()
    assert x.input_names == hf_models(family).input_names


def _greedy(step, ids: np.ndarray, n: int) -> np.ndarray:
    """``n`` greedy tokens through a no-cache decoder: the whole sequence each step."""
    for _ in range(n):
        logits = step({"input_ids": ids, "attention_mask": np.ones_like(ids)})["logits"]
        ids = np.concatenate([ids, logits[:, -1].argmax(-1)[:, None].astype(ids.dtype)], axis=1)
    return ids


@pytest.mark.slow
def test_exported_decoder_generates_the_same_tokens(hf_models, hf_onnx):
    m, x = hf_models("llama"), hf_onnx("llama")
    prompt = m.example_inputs()["input_ids"][:, :6]
    ort = wb.runner(x, "onnxruntime")
    torch_runner = wb.runner(m, "torch_eager")
    ours = _greedy(ort.infer, prompt, 8)
    theirs = _greedy(torch_runner.infer, prompt, 8)
    assert ours.shape == (2, 14) and (ours == theirs).all()


@pytest.mark.slow
def test_decoder_with_kv_cache_exports_and_generates_the_same_tokens(hf_folders, hf_models):
    """task="text-generation-with-past": past_key_values.{i}.key/value in, present.{i}.… out (dynamic batch,
    sequence and past length); greedy generation through ONNX Runtime, feeding the cache back, gives the
    tokens of the original model run without a cache."""
    m = wb.load(hf_folders["qwen2"], task="text-generation-with-past")
    layers = m.metadata["kv_cache_layers"]
    assert m.input_names[2:4] == ["past_key_values.0.key", "past_key_values.0.value"]
    assert m.output_names[:2] == ["logits", "present.0.key"] and len(m.output_names) == 1 + 2 * layers
    # perplexity through the cache (half a window, then the rest fed its present) is the plain model's
    through_cache = m.evaluate("torch_eager")["perplexity"]
    assert through_cache == pytest.approx(hf_models("qwen2").evaluate("torch_eager")["perplexity"], rel=1e-5)
    x = wb.export(m, "onnx", isolate=False, cache=False)
    assert x.validation.passed, x.validation.summary()
    assert x.validation.metrics["perplexity"] == pytest.approx(through_cache, rel=1e-4)
    prompt = hf_models("qwen2").example_inputs()["input_ids"][:, :6]
    spec = m.inputs[2]
    past = {n: np.zeros((2, spec.shape[1], 0, spec.shape[3]), np.float32) for n in m.input_names[2:]}
    ort, ids, tokens = wb.runner(x, "onnxruntime"), prompt, []
    for _ in range(6):
        out = ort.infer({"input_ids": ids, "attention_mask": np.ones((2, prompt.shape[1] + len(tokens)), np.int64),
                         **past})
        ids = out["logits"][:, -1].argmax(-1)[:, None].astype(np.int64)
        tokens.append(ids)
        past = {n: out[n.replace("past_key_values", "present")] for n in past}
    reference = _greedy(wb.runner(hf_models("qwen2"), "torch_eager").infer, prompt, 6)[:, 6:]
    assert (np.concatenate(tokens, axis=1) == reference).all()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["int4", "dynamic"])
def test_decoder_quantization_keeps_the_greedy_tokens(hf_models, hf_onnx, method):
    """Weight-only INT4 (MatMulNBits) and dynamic INT8 of the exported Llama: validation passes and the
    quantized model predicts the original's greedy tokens."""
    x = hf_onnx("llama")
    q = wb.quantize(x, "onnxruntime", method=method, isolate=False, cache=False)
    assert q.validation.passed, q.validation.summary()
    if method == "int4":
        assert any(n.op.endswith("MatMulNBits") for n in q.graph().nodes)
    prompt = hf_models("llama").example_inputs()["input_ids"][:, :6]
    text = _greedy(wb.runner(hf_models("llama"), "torch_eager").infer, prompt, 8)  # the original's continuation
    # teacher-forced: does the quantized model predict each next token of it? (free-running greedy would
    # amplify one early difference into all later tokens)
    logits = wb.runner(q, "onnxruntime").infer({"input_ids": text, "attention_mask": np.ones_like(text)})["logits"]
    agreement = float((logits[:, 5:-1].argmax(-1) == text[:, 6:]).mean())
    assert agreement >= (0.6 if method == "int4" else 0.9), agreement
    # perplexity on PEP 20 (formats/hf_perplexity.py) is part of the validation, within the precision's bound
    v = q.validation
    assert set(v.metrics) == {"perplexity", "nll"} and v.figures["metric_tolerance"]["perplexity"] > 0
    assert v.metric_drop["perplexity"] <= v.figures["metric_tolerance"]["perplexity"]


def test_both_exporters_failing_do_not_send_the_user_back_and_forth():
    import torch

    from tests.steps import mystery_ops

    m = wb.load(mystery_ops.MysteryNet().eval(), example_inputs=torch.randn(2, 4))
    with pytest.raises(StepError) as info:
        wb.export(m, "onnx", isolate=False, cache=False)
    text = str(info.value)
    assert "both ONNX exporters failed" in text and "dynamo export failed" in text
    assert "exporter='torchscript'" not in text and "exporter='dynamo'" not in text


@pytest.mark.parametrize("family", ["vit", "detr"])
def test_example_images_come_from_the_folders_image_processor(hf_models, hf_folders, family):
    """A folder saved with its image processor: the example pixels are that processor's output (resized,
    rescaled, normalised), not made-up noise."""
    import transformers

    pixels = hf_models(family).example_inputs()["pixel_values"]
    processor = transformers.AutoImageProcessor.from_pretrained(str(hf_folders[family]), local_files_only=True)
    h, w = pixels.shape[2:]
    gradient = np.linspace(0, 255, h * w * 3).reshape(h, w, 3).astype(np.uint8)  # the first example image
    expected = processor(images=[gradient], return_tensors="np")["pixel_values"][0]
    np.testing.assert_allclose(pixels[0], expected, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["t5-encoder", "vit", "whisper"])
def test_static_int8_of_transformers_validates(hf_onnx, family):
    """ORT static INT8 (the default method) passes for T5 (its relative-position bucket arithmetic, with
    log(0) = -inf on a discarded branch, stays float: before, the bias Gather got index -9.2e18), ViT
    (only the weight ops quantized: with every residual Add / LayerNorm in INT8, rel_l2 was 0.44) and
    Whisper (attention's activation-by-activation MatMuls float: in INT8 its logits were off by rel_l2 0.39)."""
    q = wb.quantize(hf_onnx(family), "onnxruntime", isolate=False, cache=False)
    assert q.validation.passed, q.validation.summary()
    assert q.metadata["quantized_op_types"] == ["MatMul", "Gemm", "Conv", "ConvTranspose"]
    if family == "t5-encoder":  # the index rule alone: every op type quantized, the arithmetic still float
        every = wb.quantize(hf_onnx(family), "onnxruntime", op_types="all", isolate=False, cache=False)
        assert every.metadata["nodes_kept_float_by_scope"] > 0
        assert every.validation.passed, every.validation.summary()


@pytest.mark.slow
def test_encoder_decoder_pair_with_kv_cache_generates_the_originals_tokens(hf_folders, hf_models):
    """T5 as Optimum deploys it: the encoder, and one decoder graph with its self-attention cache
    (``past_key_values.{i}.decoder.key`` in, ``present.{i}.decoder.key`` out; an empty past on the first step).
    Greedy generation through the two ONNX graphs on ONNX Runtime gives the tokens, and the logits, of the
    whole original model run without a cache."""
    from workbench.analysis import generate

    task = "text2text-generation-with-past"
    encoder = wb.load(hf_folders["t5"], task=task, component="encoder")
    decoder = wb.load(hf_folders["t5"], task=task, component="decoder")
    assert encoder.output_names == ["last_hidden_state"]
    assert decoder.input_names[:3] == ["input_ids", "encoder_attention_mask", "encoder_hidden_states"]
    assert decoder.output_names[1:3] == ["present.0.decoder.key", "present.0.decoder.value"]
    assert decoder.outputs[1].shape == ("batch", 4, "total_sequence", 8)
    pair = [wb.export(part, "onnx", isolate=False, cache=False) for part in (encoder, decoder)]
    assert all(x.validation.passed for x in pair), [x.validation.summary() for x in pair]
    inputs = {k: v for k, v in hf_models("t5").example_inputs().items() if not k.startswith("decoder_")}
    inputs["attention_mask"][1, -5:] = 0  # a padded row: the mask reaches the decoder's cross-attention
    reference = generate.greedy_seq2seq_reference(wb.runner(hf_models("t5"), "torch_eager"), inputs, 6)
    ours = generate.greedy_seq2seq(*(wb.runner(x, "onnxruntime") for x in pair), inputs, 6)
    result = generate.agreement(ours, reference)
    assert result["same_tokens"] and result["logits_max_abs"] < 1e-4, result
    with pytest.raises(wb.WorkbenchError, match="component='encoder'"):
        wb.load(hf_folders["t5"], task=task)


def test_perplexity_task_measures_the_text():
    """Perplexity on PEP 20: a uniform predictor scores the vocabulary size, one that knows the text ~1;
    the tolerance follows the precision."""
    from workbench.formats.hf_perplexity import PerplexityTask, reference_text, tokenize

    assert reference_text().startswith("The Zen of Python, by Tim Peters\n\nBeautiful is better than ugly.")
    tokens = tokenize(reference_text(), None, 99)
    task = PerplexityTask(tokens, {"input_ids": tokens[None, :16], "attention_mask": np.ones((1, 16), np.int64)}, 32)
    uniform = task.evaluate(lambda f: {"logits": np.zeros((*f["input_ids"].shape, 99), np.float32)})
    assert uniform["perplexity"] == pytest.approx(99.0)

    def oracle(feeds):
        ids = feeds["input_ids"]
        logits = np.zeros((*ids.shape, 99), np.float32)
        np.put_along_axis(logits[:, :-1], ids[:, 1:, None], 50.0, axis=-1)
        return {"logits": logits}

    assert task.evaluate(oracle)["perplexity"] == pytest.approx(1.0, abs=1e-6)
    assert task.metric_tolerance("int8", {"perplexity": 100.0}) == {"perplexity": pytest.approx(5.0)}
    assert task.metric_tolerance("fp32", {"perplexity": 100.0}) == {"perplexity": pytest.approx(0.1)}
    assert task.calibration_data(n=2)[0]["input_ids"].shape == (1, 32)


def test_a_step_that_raises_perplexity_beyond_its_tolerance_fails(hf_folders):
    """Validation compares the perplexity of a causal LM's step with the original's: a copy whose output layer
    is three times as sharp (what a broken scale in a quantized graph does) exceeds the INT8 bound and fails."""
    import copy

    import torch

    from workbench.core.model import LineageEntry
    from workbench.steps.validate import validate_step

    m = wb.load(hf_folders["gpt2"])
    damaged = copy.deepcopy(m.native())
    with torch.no_grad():
        damaged.model.lm_head.weight.mul_(3.0)
    step = m.derive("hf", m.path, LineageEntry("quantize:demo", {"precision": "int8"}, m), native=damaged)
    v = validate_step(step, m, isolate=False)
    assert not v.passed and v.figures["metric_exceeded"] == ["perplexity"], v.summary()
    assert v.metric_drop["perplexity"] > v.figures["metric_tolerance"]["perplexity"] > 0
    same = m.derive("hf", m.path, LineageEntry("quantize:demo", {"precision": "int8"}, m),
                    native=copy.deepcopy(m.native()))
    ok = validate_step(same, m, isolate=False)
    assert ok.passed and "metric_exceeded" not in ok.figures, ok.summary()
