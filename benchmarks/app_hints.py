"""Do the app's hints work? The Deploy tab's default steps on a model (default: the zoo's MiniLM, whose
INT8 presets fail), then, for each step that FAILs its check, the first hint the app shows that can be
applied with one click ("Try this": the same step with other options), run again.

Prints one JSON line per step of the first run (verdict, cosine, the first hint) and one per retried
step (the options applied, the new verdict and cosine), then a summary line. The hint's own figures
(``workbench/steps/hints.py``) come from this script.

    python benchmarks/app_hints.py                 # minilm, ~3 minutes on 2 cores
    python benchmarks/app_hints.py --model digits-mobilenet
"""

from __future__ import annotations

import argparse
import json
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm", help="a zoo model (default minilm)")
    args = parser.parse_args()
    os.environ.setdefault("WORKBENCH_QUICK", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import workbench as wb
    from workbench.ui.pipeline_stepper import PipelineStepper

    stepper = PipelineStepper(wb.load(args.model))
    start = time.perf_counter()
    stepper.run(background=False)
    first = {r["label"]: r for r in stepper.rows}
    failed = []
    for label, row in first.items():
        cosine = next((f["value"] for f in row["figures"] if f["name"] == "cosine"), None)
        hint = next((h for h in row["hints"] if h["options"]), None)
        print(json.dumps({"run": "presets", "model": args.model, "step": label, "verdict": row["verdict"] or row["status"],
                          "cosine": cosine, "seconds": row["seconds"], "first_hint": hint}), flush=True)
        if row["verdict"] == "FAIL" and hint is not None:
            failed.append((label, hint["options"]))
    fixed = 0
    for label, options in failed:
        for other in list(stepper.steps):  # the failed step and the steps it needs, nothing else
            stepper.tick(other["label"], other["label"] == label or other["label"] in _needs(stepper, label))
        stepper.set_options(label, **options)
        stepper.run(background=False)
        row = next(r for r in stepper.rows if r["label"] == label)
        cosine = next((f["value"] for f in row["figures"] if f["name"] == "cosine"), None)
        fixed += row["verdict"] == "PASS"
        print(json.dumps({"run": "hint applied", "model": args.model, "step": label, "options": options,
                          "verdict": row["verdict"] or row["status"], "cosine": cosine}), flush=True)
    print(json.dumps({"summary": True, "model": args.model, "failed_presets": len(failed), "fixed_by_first_hint": fixed,
                      "seconds": round(time.perf_counter() - start, 1)}), flush=True)


def _needs(stepper, label: str) -> set[str]:
    """The labels ``label`` needs, transitively."""
    by_label = {s["label"]: s for s in stepper.steps}
    out: set[str] = set()
    todo = list(by_label[label]["needs"])
    while todo:
        need = todo.pop()
        if need not in out:
            out.add(need)
            todo.extend(by_label[need]["needs"])
    return out


if __name__ == "__main__":
    main()
