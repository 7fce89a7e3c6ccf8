"""Writes notebooks/00_quickstart.ipynb (outputs stripped). Run: python tools/make_quickstart.py"""

from pathlib import Path

import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
    md("# Quickstart: one model, every runtime\n\n"
       "Load a model from the built-in zoo, see what it takes and returns, list the runtimes this machine has, "
       "run the model on each of them and check that they all compute the same thing.\n\n"
       "Nothing is downloaded: `digits-cnn` is a small CNN trained (once, in seconds) on scikit-learn's "
       "handwritten digits."),
    code("import os\n\nimport numpy as np\n\nimport workbench as wb\n\n"
         "QUICK = os.environ.get(\"WORKBENCH_QUICK\") == \"1\"  # CI and Binder set this for a short run"),
    md("## 1. Load a model\n\n`wb.load` takes a zoo name, a `torch.nn.Module` (with `example_inputs=`), or a file: "
       "`.onnx`, OpenVINO `.xml`, TorchScript `.pt`, ExportedProgram `.pt2`, Core ML `.mlpackage`, "
       "or a Hugging Face model folder."),
    code("wb.zoo.list()"),
    code("model = wb.load(\"digits-cnn\")\nmodel"),
    code("model.inputs, model.outputs"),
    md("## 2. The runtimes on this machine\n\nEvery runtime the workbench knows, whether it can run here, and if not, why and how to fix it."),
    code("table = wb.backends()\ntable[[\"available\", \"version\", \"formats\", \"reason\"]]"),
    md("## 3. Run the model on each runtime\n\n`wb.runner(model, backend)` converts the model when a runtime needs "
       "another format (ONNX Runtime gets an ONNX export, TorchScript a trace). OpenVINO runs twice: in fp32, "
       "and with its default precision, which on CPUs with bf16 support (like most recent Xeons) is **bf16**."),
    code("feeds = model.example_inputs(batch=4)\n"
         "runs = [(\"torch_eager\", {}), (\"torchscript\", {}), (\"onnxruntime\", {}),\n"
         "        (\"openvino\", {\"precision\": \"fp32\"}), (\"openvino\", {})]\n"
         "if not QUICK:\n"
         "    runs.append((\"torch_compile\", {}))\n"
         "runs = [(b, o) for b, o in runs if table.loc[b, \"available\"]]\n\n"
         "predictions = {}\n"
         "for backend, options in runs:\n"
         "    with wb.runner(model, backend, **options) as r:\n"
         "        logits = r.infer(feeds)[\"logits\"]\n"
         "    label = backend + (f\" {options}\" if options else \"\")\n"
         "    predictions[label] = logits.argmax(axis=1)\n"
         "    print(f\"{label:35s} predicted digits {predictions[label]}  first call {r.timing.first_infer_s * 1e3:.2f} ms\")"),
    md("## 4. Do they agree?\n\n`wb.compare` runs the reference and every candidate on the same inputs and reports, per output, "
       "the max and mean absolute error, relative L2 error, cosine similarity and top-k agreement, against the tolerance "
       "of each candidate's precision (stated in one place: `workbench/core/tolerances.py`)."),
    code("comparison = wb.compare(model, [(model, b, o) for b, o in runs if b != \"torch_eager\"])\n"
         "print(\"all match:\", bool(comparison))\n"
         "comparison.to_frame()"),
    md("## 5. The task metric\n\nZoo models with real data carry their evaluation set: here the held-out 25% of the digits."),
    code("print(\"torch eager :\", model.evaluate(\"torch_eager\"))\nprint(\"ONNX Runtime:\", model.evaluate(\"onnxruntime\"))"),
    md("## 6. Export it\n\nEvery step writes a file into the workspace (the project's `workbench-artifacts/` by default, "
       "the same folder for notebooks, apps and the CLI) and returns a new `Model` that remembers where it came from."),
    code("onnx_model = wb.export(model, \"onnx\")\nprint(onnx_model.describe())\nonnx_model.lineage"),
    md("## 7. The whole tour on one screen\n\n`wb.Workbench` puts all of this behind buttons: pick a model (or upload one), "
       "look at its graph, step it to ONNX, OpenVINO and INT8 with every step checked against the original, and time the "
       "results. It is also a Voilà app: `scripts/start --app`."),
    code("wb.Workbench(\"digits-cnn\")"),
    md("## Where next\n\nThe notebooks are a learning path; each is short, runs top to bottom and ends with what to try next.\n\n"
       "* `01_load_and_inspect.ipynb`: load from the zoo, a file, an `nn.Module` or a Hugging Face folder; "
       "inputs, outputs, dynamic axes; the graph, Netron, overlays.\n"
       "* `02_export.ipynb`: TorchScript, torch.export, ONNX, and what breaks on the way (and how to fix it).\n"
       "* `03_convert.ipynb`: ONNX Runtime-optimized, OpenVINO, Core ML, each checked against the original.\n"
       "* `04_quantize.ipynb`: INT8 on a real pretrained classifier: accuracy against speed.\n"
       "* `05_compare_and_benchmark.ipynb`: comparisons and timings you can trust; autotune.\n"
       "* `06_debug_accuracy.ipynb`: why INT8 broke a model, and the fix.\n"
       "* `07_transformer_end_to_end.ipynb`: a transformer from load to INT8 to generation with a KV cache.\n"
       "* `08_deployment_landscape.ipynb`: every runtime and format, and what each is for.\n"
       "* `09_serving_and_sweeps.ipynb`: serve a model, load-test it, sweep on Ray.\n"
       "* `apps/`: Voilà apps (the workbench, a model explorer, which runtime is fastest here); "
       "`../kernels_tutorials/`: write Triton kernels and drop them into a model."),
]
for i, cell in enumerate(cells):
    cell.id = f"quickstart-{i:02d}"  # stable ids: regenerating changes only what changed
nb = nbf.v4.new_notebook(cells=cells, metadata={
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
})
Path(__file__).resolve().parents[1].joinpath("notebooks", "00_quickstart.ipynb").write_text(nbf.writes(nb))
