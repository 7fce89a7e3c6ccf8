"""wb.sweep on a real local Ray (2 CPUs, started once for the module): a small grid of the zoo's
digits-cnn, a trial that cannot run reported beside the others, the result cache, the sequential
executor agreeing with Ray, and the cores each trial was pinned to."""

from __future__ import annotations

import os

import pytest

import workbench as wb
from workbench.analysis import sweep as sweep_module
from workbench.core import progress
from workbench.core.errors import WorkbenchError

ray = pytest.importorskip("ray")

ORT, OV = "onnxruntime", "openvino"
GRID = {"steps": [("export", "onnx")], "runtimes": [ORT, OV], "precisions": ["fp32", "bf16"], "threads": [1, 2]}
FIGURES = ("passed", "rel_l2", "cosine", "max_abs", "top1")


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """One Ray for the module (starting it takes seconds), and a workspace of the module's own."""
    from workbench.steps.workspace import using_workspace

    with using_workspace(tmp_path_factory.mktemp("sweep-ws")), sweep_module.ray_session(num_cpus=2) as (r, where):
        assert where == "local" and r.cluster_resources()["CPU"] == 2
        yield r


@pytest.fixture(scope="module")
def first_run(local_ray):
    events: list[progress.Event] = []
    result = wb.sweep("digits-cnn", **GRID, executor="ray", progress=events.append)
    return result, events


def test_grid_on_ray_reports_the_failed_trial_and_runs_the_others(first_run):
    result, events = first_run
    assert result.executor == "ray" and len(result) == 8
    by = {(t.runtime, t.precision, t.threads): t for t in result.trials}
    for threads in (1, 2):
        bad = by[(ORT, "bf16", threads)]
        assert bad.status == "failed" and "bf16" in bad.error and "\n" not in bad.error
        for key in ((ORT, "fp32", threads), (OV, "fp32", threads), (OV, "bf16", threads)):
            t = by[key]
            assert t.status == "done", t.error
            assert t.passed and t.p50_ms > 0 and t.throughput > 0 and t.rel_l2 < 1e-2
            assert t.artifact.endswith((".onnx", ".xml"))
            if hasattr(os, "sched_setaffinity"):  # pinned to as many cores as threads, within the 2 Ray has
                assert t.cores is not None and len(t.cores) == threads and set(t.cores) <= os.sched_getaffinity(0)
    assert len(result.failed) == 2 and not result
    # progress streamed through the one channel: each trial submitted, then its final status
    finals = {e.key: e.status for e in events if e.status in ("done", "failed", "cached")}
    assert finals == {t.index: t.status for t in result.trials}
    assert {e.key for e in events if e.status == "planned"} == {t.index for t in result.trials}
    # one frame, and one JSON document that reads back
    frame = result.to_frame()
    assert list(frame.index) == list(range(8)) and set(frame["status"]) == {"done", "failed"}
    back = wb.SweepResult.from_json(result.to_json())
    assert [(t.label, t.status, t.error, t.cores) for t in back.trials] == \
        [(t.label, t.status, t.error, t.cores) for t in result.trials]


def test_rerun_reads_finished_trials_from_the_cache(first_run):
    result, _ = first_run
    again = wb.sweep("digits-cnn", **GRID, executor="ray", progress=False)
    for old, new in zip(result.trials, again.trials, strict=True):
        assert new.key == old.key
        if old.status == "done":
            assert new.status == "cached" and new.p50_ms == old.p50_ms and new.rel_l2 == old.rel_l2
        else:  # failures are not cached: tried again, failing again
            assert new.status == "failed" and new.error == old.error
    assert again.wall_s < result.wall_s


def test_sequential_gives_the_same_validation_figures_as_ray(first_run):
    result, _ = first_run
    events: list[progress.Event] = []
    seq = wb.sweep("digits-cnn", steps=GRID["steps"], runtimes=[ORT, OV], threads=[1], executor="sequential",
                   cache=False, progress=events.append)
    assert seq.executor == "sequential" and all(t.status == "done" for t in seq.trials)
    # the trials' own steps (the cached export) report to nobody: one final event per trial
    assert sorted(e.key for e in events if e.status in progress.FINAL) == [0, 1]
    on_ray = {(t.runtime, t.precision, t.threads): t for t in result.trials}
    for t in seq.trials:
        twin = on_ray[(t.runtime, t.precision, t.threads)]
        assert twin.key == t.key
        assert [getattr(t, f) for f in FIGURES] == [getattr(twin, f) for f in FIGURES]


def test_threads_beyond_the_largest_node_fail_that_trial_only(local_ray):
    res = wb.sweep("digits-cnn", steps=GRID["steps"], runtimes=[ORT], threads=[1, 4], executor="ray",
                   progress=False)
    ok, too_many = res.trials
    assert ok.status == "cached"  # the first run's trial
    assert too_many.status == "failed" and "needs 4 CPUs" in too_many.error and "has 2" in too_many.error


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux-only")
def test_pinned_cores_are_never_shared():
    allowed = sorted(os.sched_getaffinity(0))
    with sweep_module.pinned_cores(1) as first:
        assert first is not None and os.sched_getaffinity(0) == set(first)
        with sweep_module.pinned_cores(len(allowed)) as rest:  # one is taken: not enough left
            assert rest is None
        if len(allowed) > 1:
            with sweep_module.pinned_cores(1) as second:
                assert second is not None and set(second).isdisjoint(first)
    assert sorted(os.sched_getaffinity(0)) == allowed  # restored


@pytest.mark.parametrize(("options", "words"), [
    ({"executor": "threads"}, "unknown executor"),
    ({"threads": [0]}, "threads=0"),
    ({"precisions": ["fp8"]}, "unknown precision"),
    ({"runtimes": ["no-such-runtime"]}, "no-such-runtime"),
    ({"executor": "sequential", "address": "auto"}, "address="),
])
def test_bad_arguments_are_clear_errors(options, words):
    with pytest.raises(WorkbenchError, match=words.replace("(", r"\(")):
        wb.sweep("digits-cnn", **{"progress": False, **options})


def test_autotune_on_ray_times_each_configuration_as_a_pinned_task(local_ray):
    space = {"backends": [ORT], "precisions": ["fp32"], "threads": [1, 2], "graph_optimization_level": ["all"]}
    tuned = wb.autotune("digits-cnn", max_metric_drop=0.02, space=space, include_torch=False, duration_s=0.1,
                        confirm=0, executor="ray")
    assert [t.options.get("threads") for t in tuned.trials] == [1, 2]
    for t in tuned.trials:
        assert t.error is None, t.error
        assert t.p50_ms > 0 and t.metric is not None and 0.8 < t.metric <= 1.0 and t.valid
    assert tuned.best in tuned.trials
    with pytest.raises(WorkbenchError, match="unknown executor"):
        wb.autotune("digits-cnn", space=space, executor="dask")


def test_without_ray_auto_runs_sequentially_and_ray_says_how_to_install_it():
    """In a child interpreter where ``import ray`` fails (as without the extra)."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['ray'] = None\n"
            "from workbench.analysis.sweep import resolve_executor\n"
            "from workbench.core.errors import BackendUnavailable\n"
            "assert resolve_executor('auto') == 'sequential'\n"
            "for args in (('ray',), ('auto', 'ray://head:10001')):\n"
            "    try:\n"
            "        resolve_executor(*args)\n"
            "    except BackendUnavailable as err:\n"
            "        print(err)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2 and all("Ray is not installed" in x and "[ray]" in x for x in lines)


def test_exclusive_trials_run_one_per_node_at_a_time(local_ray):
    """Two threads=1 trials fit the 2 CPUs together; exclusive=True times them one after the other."""
    res = wb.sweep("digits-cnn", steps=GRID["steps"], runtimes=[ORT, OV], threads=[1], exclusive=True,
                   executor="ray", progress=False)
    a, b = res.trials
    assert a.status == b.status == "done", (a.error, b.error)  # exclusive is part of the key: not the cached rows
    assert a.finished <= b.started or b.finished <= a.started
    opts = sweep_module.task_options(1, {"cpus_per_node": [8, 16], "bench_slots": 0}, exclusive=True)
    assert opts["num_cpus"] == 8 and opts["scheduling_strategy"] == "SPREAD"  # no bench slots: the smallest node


def test_an_in_memory_module_travels_to_the_ray_task(local_ray):
    torch = pytest.importorskip("torch")
    module = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Tanh()).eval()
    m = wb.load(module, example_inputs=(torch.randn(2, 6),))
    res = wb.sweep(m, steps=GRID["steps"], runtimes=[ORT], threads=[1], executor="ray", progress=False)
    (t,) = res.trials
    assert t.status == "done" and t.passed and t.rel_l2 < 1e-5, t.error


def test_the_same_call_runs_on_a_cluster_by_its_address(local_ray, first_run, tmp_path):
    """A second driver (a child process, as a laptop or the head node would be) joins the running Ray by its
    address; the sweep runs there and leaves the cluster running. (The first run's ONNX file as the model:
    no torch to import in the new job's workers.)"""
    import json
    import subprocess
    import sys

    onnx_file = next(t.artifact for t in first_run[0].trials if t.runtime == ORT and t.status == "done")
    address = local_ray.get_runtime_context().gcs_address
    code = ("import json, workbench as wb\n"
            f"res = wb.sweep({onnx_file!r}, runtimes=['{ORT}'], threads=[1],\n"
            f"               executor='ray', address='{address}', cache=False, progress=False)\n"
            "print(json.dumps([res.address, res.cluster, [(t.status, t.error, t.cores) for t in res.trials]]))\n")
    env = {**os.environ, "WORKBENCH_ARTIFACTS": str(tmp_path / "ws")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    where, cluster, rows = json.loads(out.stdout.strip().splitlines()[-1])
    assert where == address and cluster["nodes"] == 1 and cluster["cpus_per_node"] == [2]
    assert rows == [["done", None, rows[0][2]]] and len(rows[0][2]) == 1
    assert local_ray.is_initialized() and local_ray.cluster_resources()["CPU"] == 2  # still up


@pytest.mark.parametrize("executor", ["sequential", "ray"])
def test_a_cancelled_sweep_keeps_the_trials_that_finished(first_run, executor):
    """A token cancelled when the first trial finishes: the sweep stops (Ray's pending tasks cancelled)
    and raises Cancelled carrying a SweepResult of what finished."""
    token = progress.CancelToken()

    def on_event(event: progress.Event) -> None:
        if event.status in progress.FINAL and event.key is not None:
            token.cancel()

    with progress.cancellable(token), pytest.raises(progress.Cancelled) as info:
        wb.sweep("digits-cnn", steps=GRID["steps"], runtimes=[ORT, OV], threads=[1, 2], executor=executor,
                 cache=False, progress=on_event)
    partial = info.value.partial
    assert isinstance(partial, sweep_module.SweepResult) and 1 <= len(partial.trials) < 4
    assert all(t.status in ("done", "failed") for t in partial.trials)
