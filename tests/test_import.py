import json
import subprocess
import sys

HEAVY = ["torch", "onnxruntime", "openvino", "coremltools", "triton", "ipywidgets", "transformers", "onnx", "pandas"]


def test_import_workbench_imports_no_runtime():
    code = "import sys, json, workbench as wb; wb.__version__; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(json.loads(out))
    assert not [m for m in HEAVY if m in loaded], f"import workbench pulled in {[m for m in HEAVY if m in loaded]}"


def test_public_api_names_resolve():
    import workbench as wb

    for name in ["load", "Model", "TensorSpec", "backends", "runner", "export", "zoo", "WorkbenchError"]:
        assert getattr(wb, name) is not None
    try:
        wb.no_such_thing  # noqa: B018
    except AttributeError as err:
        assert "no_such_thing" in str(err)
    else:
        raise AssertionError("unknown attribute did not raise")
