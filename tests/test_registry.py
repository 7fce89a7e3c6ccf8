"""The registry's promise: a runtime is one class and its registration, a step one decorated function.

This module registers a toy runtime (ONNX models run through ONNX Runtime's Python API, wrapped in a
Runner of its own) and toy export and convert steps, from here, touching no other file, and finds them
in ``wb.backends()``, the command line, Pipeline planning and ``wb.benchmark``. The registry is
restored afterwards. Entry-point discovery is checked with a plugin module written to a temporary folder.
"""

from __future__ import annotations

import sys
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import workbench as wb
from workbench.cli import build_parser, main
from workbench.core import registry
from workbench.core.errors import BackendUnavailable
from workbench.core.model import Model
from workbench.core.runner import Runner
from workbench.steps.base import StepSpec, run_step

TOY_RUNTIME = "toy_session"


class ToySession(Runner):
    """Runs ONNX models with a plain ``onnxruntime.InferenceSession``: the smallest useful runtime."""

    name = TOY_RUNTIME
    formats = ("onnx",)
    precisions = ("fp32",)

    @classmethod
    def _check_available(cls) -> str | None:
        try:
            import onnxruntime
        except ImportError:
            raise BackendUnavailable("onnxruntime is not installed", "pip install onnxruntime") from None
        return f"toy on {onnxruntime.__version__}"

    def _prepare_impl(self) -> None:
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(self.model.path), providers=["CPUExecutionProvider"])

    def _infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self.session.run(None, feeds)
        return dict(zip(self.model.output_names, values, strict=True))


def export_fixed(model: Model, *, path: Any = None, isolate: bool = True, timeout: float | None = None,
                 cache: bool = True, validate: bool = True) -> Model:
    """ONNX with every shape fixed (the registered ONNX export, dynamic=False)."""
    onnx_export = registry.get_step("export", "onnx").func
    return onnx_export(model, dynamic=False, path=path, isolate=isolate, timeout=timeout, cache=cache,
                       validate=validate)


def write_stamped(model: Model, tmp: Path, *, stamp: str) -> dict[str, Any]:
    import onnx

    proto = onnx.load_model(str(model.path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "toy.stamp", stamp
    onnx.save_model(proto, str(tmp))
    return {"stamp": stamp}


def convert_stamped(model: Model, *, stamp: str = "toy", path: Any = None, isolate: bool = True,
                    timeout: float | None = None, cache: bool = True, validate: bool = True) -> Model:
    """The same ONNX graph with a stamp in its metadata."""
    spec = StepSpec("convert:onnx-stamped", {"stamp": stamp}, ".onnx", write_stamped, {"stamp": stamp},
                    tag="stamped", tools=("onnx",))
    return run_step(model, spec, path=path, isolate=False, timeout=timeout, cache=cache, validate=validate)


@pytest.fixture
def toy_plugins():
    """Register the toy runtime and steps (with the decorators) for one test; restore the registry after."""
    saved = registry.snapshot()
    registry.register_runtime(ToySession)
    registry.register_step("export", "onnx-fixed", accepts=("torch", "hf", "exported_program"),
                           produces="onnx")(export_fixed)
    registry.register_step("convert", "onnx-stamped", accepts=("onnx",), produces="onnx",
                           aliases=("stamp",))(convert_stamped)
    yield
    registry.restore(saved)
    assert TOY_RUNTIME not in registry.runtimes()


def test_toy_runtime_is_listed_by_backends(toy_plugins):
    frame = wb.backends()
    assert TOY_RUNTIME in frame.index
    row = frame.loc[TOY_RUNTIME]
    assert bool(row["available"]) and row["formats"] == "onnx" and row["version"].startswith("toy on")


def test_command_line_lists_and_runs_the_toy_plugins(toy_plugins, tmp_path, capsys):
    assert main(["backends"]) == 0
    assert TOY_RUNTIME in capsys.readouterr().out
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices  # noqa: SLF001 - argparse's own API
    export_target = next(a for a in sub["export"]._actions if a.dest == "target")  # noqa: SLF001
    assert "onnx-fixed" in export_target.choices and "onnx" in export_target.choices
    assert "onnx-stamped" in sub["convert"].format_help()
    ws = ["--workspace", str(tmp_path)]
    assert main(["export", "digits-cnn", "onnx-fixed", "--no-validate", *ws]) == 0
    assert main(["convert", str(tmp_path / "digits-cnn.onnx"), "stamp", "-o", "stamp='cli'", "--no-validate", *ws]) == 0
    out = capsys.readouterr().out
    assert "lineage: export:onnx → convert:onnx-stamped" in out


def test_pipeline_plans_and_runs_with_the_toy_steps(toy_plugins, zoo, tmp_path):
    from workbench.steps.workspace import using_workspace

    m = zoo("digits-cnn")
    p = wb.Pipeline([("export", "onnx-fixed"), ("convert", "onnx-stamped", {"stamp": "pipeline"})])
    rows = p.plan(m)
    assert [(r["takes"], r["gives"], r["ok"]) for r in rows] == [("torch", "onnx", True), ("onnx", "onnx", True)]
    bad = wb.Pipeline([("convert", "onnx-stamped")]).plan(m)
    assert not bad[0]["ok"] and bad[0]["problem"] == "needs onnx, gets torch"
    with using_workspace(tmp_path):
        run = p.run(m, progress=False)
    assert [r.status for r in run.records] == ["done", "done"]
    assert run.final.metadata["stamp"] == "pipeline" and run.final.validation, run.final.validation.summary()
    assert "wb.convert(m1, 'onnx-stamped', stamp='pipeline')" in p.to_script()


def test_benchmark_runs_the_toy_runtime(toy_plugins, digits_onnx):
    report = wb.benchmark((digits_onnx, TOY_RUNTIME), duration_s=0.2, warmup=2)
    result = report[0]
    assert result.ok, result.error
    assert result.latency.p50 > 0
    with wb.runner(digits_onnx, TOY_RUNTIME) as r:
        ours = r.infer(digits_onnx.example_inputs())
    with wb.runner(digits_onnx, registry.default_runtime("onnx")) as r:
        theirs = r.infer(digits_onnx.example_inputs())
    for name in theirs:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-5, atol=1e-6)


PLUGIN = '''
from workbench.core.registry import register_runtime
from workbench.core.runner import Runner


@register_runtime
class EntryPointRuntime(Runner):
    name = "entry_point_toy"
    formats = ("onnx",)

    @classmethod
    def _check_available(cls):
        return "1.0"
'''


def test_entry_points_add_plugins_and_report_broken_ones(tmp_path, monkeypatch):
    (tmp_path / "wb_toy_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    good = importlib_metadata.EntryPoint("toy", "wb_toy_plugin", "workbench.runtimes")
    broken = importlib_metadata.EntryPoint("broken", "wb_no_such_plugin_module", "workbench.steps")

    def entry_points(group: str) -> list[importlib_metadata.EntryPoint]:
        return [ep for ep in (good, broken) if ep.group == group]

    saved = registry.snapshot()
    monkeypatch.setattr(importlib_metadata, "entry_points", entry_points)
    monkeypatch.setattr(registry, "_discovered", False)  # discover again, with these entry points
    monkeypatch.setattr(registry, "_discovery_errors", [])
    try:
        registry.discover()
        assert "entry_point_toy" in registry.runtimes()
        assert registry.get_runtime("entry_point_toy").availability().version == "1.0"
        errors = registry.discovery_errors()
        assert len(errors) == 1 and "'broken'" in errors[0] and "wb_no_such_plugin_module" in errors[0]
        assert registry.default_runtime("onnx") != "entry_point_toy"  # a newcomer does not take the default
    finally:
        registry.restore(saved)
        sys.modules.pop("wb_toy_plugin", None)
    assert "entry_point_toy" not in registry.runtimes()


def test_evaluate_on_a_runtime_that_needs_a_conversion(fresh_workspace, zoo):
    """Model.evaluate (core) reaches a runtime that does not take the model's format through the
    registry's route, as wb.runner does."""
    from workbench.core import registry

    model = zoo("digits-cnn")
    other = next(n for n in registry.runtimes() if model.format not in registry.get_runtime(n).formats
                 and registry.get_runtime(n).availability() and "onnx" in registry.get_runtime(n).formats)
    accuracy = model.evaluate(other)["accuracy"]
    assert accuracy == pytest.approx(model.evaluate()["accuracy"], abs=0.01) and accuracy > 0.9
