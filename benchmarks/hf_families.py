"""Every tiny Hugging Face family of ``tests/hf_tiny.py`` through the workbench: load, ONNX export (validated),
OpenVINO conversion and ORT static INT8 (the default method), each with PASS / FAIL / SKIPPED and the reason.
Decoder LLMs also: the export with its KV cache and greedy generation through it on ONNX Runtime (tokens
vs the original without cache), and perplexity on PEP 20 (``formats/hf_perplexity.py``) of the original,
the ONNX export, static INT8 and weight-only INT4. Encoder-decoder models (T5, BART, Whisper) also: the
encoder + decoder-with-past pair, and greedy generation through it on ONNX Runtime and OpenVINO (fp32)
vs the whole original model without cache. One JSON line per family, then a line of counts::

    python benchmarks/hf_families.py [--families bert gpt2 ...] [--no-quantize] [--trained 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import hf_tiny  # noqa: E402 - the corpus lives with the tests


def _status(result: Any) -> str:
    v = result.validation
    if v is None or v.skipped:
        return f"SKIPPED: {v.skipped if v is not None else 'no validation'}"
    return "PASS" if v.passed else f"FAIL: {v.summary()}"


def run(family: str, root: Path, quantize: bool) -> dict[str, Any]:
    import workbench as wb

    row: dict[str, Any] = {"family": family}
    start = time.perf_counter()
    try:
        m = wb.load(hf_tiny.save(family, root / family))
        row.update(load="PASS", inputs=m.input_names)
        x = wb.export(m, "onnx", isolate=False, cache=False)
        row["onnx"] = _status(x)
        row["exporter"] = x.metadata.get("exporter")
        row["openvino"] = _status(wb.convert(x, "openvino", isolate=False, cache=False))
        if quantize:
            q = wb.quantize(x, "onnxruntime", isolate=False, cache=False)
            row["int8"] = _status(q)
            row["int8_rel_l2"] = q.validation.figures.get("rel_l2")
        if m.task is not None and m.task.name == "causal-lm-perplexity":
            _decoder(row, root / family, m, x, quantize)
        if "decoder_input_ids" in m.input_names:
            _pair(row, root / family, m)
    except Exception as err:  # noqa: BLE001 - a failed stage is a figure here
        row.setdefault("load", "PASS" if "inputs" in row else "FAIL")
        row["error"] = f"{type(err).__name__}: {str(err)[:300]}"
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def _decoder(row: dict[str, Any], folder: Path, m: Any, x: Any, quantize: bool) -> None:
    """KV-cache export + greedy generation through it; perplexity of the original and each step."""
    import workbench as wb
    from workbench.analysis import generate

    past = wb.load(folder, task="text-generation-with-past")
    xp = wb.export(past, "onnx", isolate=False, cache=False)
    row["with_past_onnx"] = _status(xp)
    prompt = m.example_inputs()["input_ids"][:, :6]
    reference = generate.greedy(wb.runner(m, "torch_eager"), prompt, 8)
    ours = generate.greedy_with_past(wb.runner(xp, "onnxruntime"), prompt, 8)
    row["with_past_generation"] = generate.agreement(ours, reference)
    ppl = {"original": m.evaluate("torch_eager")["perplexity"], "onnx": x.validation.metrics["perplexity"]}
    if quantize:
        for method in ("static", "int4"):
            q = wb.quantize(x, "onnxruntime", method, isolate=False, cache=False)
            ppl[method] = q.validation.metrics["perplexity"]
            row[f"{method}_perplexity_check"] = "PASS" if q.validation.passed else q.validation.summary()
    row["perplexity"] = {k: round(v, 4) for k, v in ppl.items()}


def _pair(row: dict[str, Any], folder: Path, m: Any) -> None:
    """The encoder + decoder-with-past pair; greedy generation through it vs the original without cache."""
    import workbench as wb
    from workbench.analysis import generate
    from workbench.core.registry import get_runtime

    task = ("automatic-speech-recognition-with-past" if "input_features" in m.input_names
            else "text2text-generation-with-past")
    pair = [wb.export(wb.load(folder, task=task, component=c), "onnx", isolate=False, cache=False)
            for c in ("encoder", "decoder")]
    row["pair_onnx"] = [_status(p) for p in pair]
    inputs = {k: v for k, v in m.example_inputs().items() if not k.startswith("decoder_")}
    reference = generate.greedy_seq2seq_reference(wb.runner(m, "torch_eager"), inputs, 8)
    for backend in ("onnxruntime", "openvino"):
        options = get_runtime(backend).reference_options()
        runners = [wb.runner(p, backend, **options) for p in pair]
        row[f"pair_generation_{backend}"] = generate.agreement(generate.greedy_seq2seq(*runners, inputs, 8),
                                                               reference)


def trained(root: Path, steps: int) -> dict[str, Any]:
    """A tiny Llama trained on the perplexity text itself (byte tokens, ``steps`` AdamW steps): its perplexity
    is low, so what export and quantization cost shows (a random-weight model sits at its vocabulary size)."""
    import torch
    import transformers

    import workbench as wb
    from workbench.formats.hf_perplexity import reference_text, tokenize

    start = time.perf_counter()
    config = transformers.LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    tokens = torch.from_numpy(tokenize(reference_text(), None, 256))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(steps):
        starts = torch.randint(0, len(tokens) - 64, (16,))
        batch = torch.stack([tokens[s:s + 64] for s in starts])
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval().save_pretrained(str(root / "llama-trained"))
    m = wb.load(root / "llama-trained")
    x = wb.export(m, "onnx", isolate=False, cache=False)
    row: dict[str, Any] = {"family": "llama-trained-on-the-text", "train_steps": steps, "train_loss": round(float(loss), 4),
                           "perplexity": {"original": m.evaluate("torch_eager")["perplexity"],
                                          "onnx": x.validation.metrics["perplexity"]}, "checks": {"onnx": _status(x)}}
    for method in ("dynamic", "static", "int4"):
        q = wb.quantize(x, "onnxruntime", method, isolate=False, cache=False)
        row["perplexity"][method] = q.validation.metrics["perplexity"]
        row["checks"][method] = _status(q)
    row["perplexity"] = {k: round(v, 4) for k, v in row["perplexity"].items()}
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="*", default=list(hf_tiny.FAMILIES))
    parser.add_argument("--no-quantize", action="store_true")
    parser.add_argument("--trained", type=int, default=0, metavar="STEPS",
                        help="also train a tiny Llama on the perplexity text for STEPS steps and report its perplexity "
                             "through export and quantization (e.g. 200)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="wb-hf-families-") as tmp:
        for family in args.families:
            rows.append(run(family, Path(tmp), not args.no_quantize))
            print(json.dumps(rows[-1]), flush=True)
        if args.trained:
            print(json.dumps(trained(Path(tmp), args.trained)), flush=True)
    stages = ("load", "onnx", "openvino", "int8")
    counts = {s: sum(r.get(s) == "PASS" for r in rows) for s in stages}
    counts["generation_same_tokens"] = sum(all(v["same_tokens"] for k, v in r.items() if k.endswith("generation")
                                               or k.startswith("pair_generation")) for r in rows
                                           if any(k.endswith("generation") or k.startswith("pair_generation")
                                                  for k in r))
    counts["generation_models"] = sum(any(k.endswith("generation") or k.startswith("pair_generation") for k in r)
                                      for r in rows)
    print(json.dumps({"families": len(rows), **counts}))


if __name__ == "__main__":
    main()
