"""Every WORKBENCH_* setting is read in one place (workbench.core.settings), at call time."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.core import settings
from workbench.core.errors import WorkbenchError


@pytest.mark.parametrize("text, expected", [("1", True), ("true", True), ("YES", True), ("on", True),
                                            ("", False), ("0", False), ("False", False), ("off", False)])
def test_quick_is_read_at_call_time(monkeypatch, text, expected):
    monkeypatch.setenv("WORKBENCH_QUICK", text)
    assert settings.quick() is expected
    monkeypatch.delenv("WORKBENCH_QUICK")
    assert settings.quick() is False


def test_paths_and_numbers(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_ARTIFACTS", str(tmp_path / "art"))
    assert settings.artifacts_dir() == (tmp_path / "art").resolve()
    monkeypatch.delenv("WORKBENCH_ARTIFACTS")
    assert settings.artifacts_dir() == (Path.cwd() / "workbench-artifacts").resolve()
    monkeypatch.setenv("WORKBENCH_CACHE", "~/somewhere")
    assert settings.cache_dir() == Path.home() / "somewhere"
    monkeypatch.setenv("WORKBENCH_STEP_TIMEOUT", "12.5")
    assert settings.step_timeout_s() == 12.5
    monkeypatch.delenv("WORKBENCH_STEP_TIMEOUT")
    assert settings.step_timeout_s() == 3600.0
    monkeypatch.setenv("WORKBENCH_ONNX_EXTERNAL_BYTES", "1_000")
    assert settings.onnx_external_bytes() == 1000
    monkeypatch.setenv("WORKBENCH_TRITON_MODE", " Interpreter ")
    assert settings.triton_mode() == "interpreter"
    monkeypatch.setenv("WORKBENCH_TRITON_MODE", "auto")
    assert settings.triton_mode() == ""


@pytest.mark.parametrize("name, text", [("WORKBENCH_QUICK", "maybe"), ("WORKBENCH_STEP_TIMEOUT", "-1"),
                                        ("WORKBENCH_STEP_TIMEOUT", "soon"), ("WORKBENCH_TRITON_MODE", "gpu"),
                                        ("WORKBENCH_ONNX_EXTERNAL_BYTES", "lots")])
def test_a_bad_value_names_the_variable_and_the_fix(monkeypatch, name, text):
    monkeypatch.setenv(name, text)
    setting = next(s for s in settings.SETTINGS if s.name == name)
    with pytest.raises(WorkbenchError, match=f"{name}=.* is not a valid .* fix: .*unset {name}"):
        setting.get()
    row = next(r for r in settings.describe() if r["name"] == name)
    assert row["set"] and str(row["value"]).startswith("invalid")


def test_describe_lists_every_setting():
    names = [r["name"] for r in settings.describe()]
    assert names == [s.name for s in settings.SETTINGS] and len(set(names)) == len(names)
    assert all(n.startswith("WORKBENCH_") for n in names)
    for name in names:  # documented in the module's table
        assert f"``{name}``" in settings.__doc__


def test_default_artifacts_folder_is_the_project_roots(monkeypatch, tmp_path):
    """Notebooks in notebooks/, apps in notebooks/apps/ and the CLI at the root share one artifacts folder."""
    monkeypatch.delenv("WORKBENCH_ARTIFACTS", raising=False)
    project = tmp_path / "proj"
    (project / "notebooks" / "apps").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    for where in (project, project / "notebooks", project / "notebooks" / "apps"):
        monkeypatch.chdir(where)
        assert settings.artifacts_dir() == (project / "workbench-artifacts").resolve()
    # no marker at or above: the working directory, never a folder above it
    loose = tmp_path / "loose" / "deeper"
    loose.mkdir(parents=True)
    monkeypatch.chdir(loose)
    assert settings.project_root() == loose.resolve()
    assert settings.artifacts_dir() == (loose / "workbench-artifacts").resolve()
    # the home folder is never taken as a project, even when it holds .git
    monkeypatch.setenv("HOME", str(tmp_path / "loose"))
    (tmp_path / "loose" / ".git").mkdir()
    assert settings.project_root() == loose.resolve()
    monkeypatch.chdir(tmp_path / "loose")  # unless the user works in it
    assert settings.project_root() == (tmp_path / "loose").resolve()
