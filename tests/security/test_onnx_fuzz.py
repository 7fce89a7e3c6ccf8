"""Bounded, seeded, structure-aware fuzzing of the zoo's ONNX files (``tests/security/onnx_fuzz.py``).

Every mutated model goes through load → describe → size_bytes → graph → an ONNX Runtime run in a
worker process with a per-case time limit: each failure must be a one-line WorkbenchError, no call may
hang or kill the process, and no file outside the model's folder may be listed. The run stops after
``CASES`` cases or ``BUDGET_S`` seconds, whichever comes first (the longer run is
``benchmarks/fuzz_onnx.py``).
"""

from __future__ import annotations

import json

import pytest

from tests.security.onnx_fuzz import fuzz, zoo_onnx_sources

SEED = 14
CASES = 1000
BUDGET_S = 30.0
CASE_TIMEOUT_S = 20.0


@pytest.mark.slow
def test_mutated_onnx_files_get_workbench_errors_and_never_hang(tmp_path_factory):
    sources = zoo_onnx_sources(tmp_path_factory.mktemp("fuzz-sources"))
    report = fuzz(sources, seed=SEED, cases=CASES, seconds=BUDGET_S, timeout=CASE_TIMEOUT_S,
                  workdir=tmp_path_factory.mktemp("fuzz"))
    summary = report.summary()
    print(json.dumps(summary))
    assert report.cases >= 50, summary  # the budget covers a useful number of cases even on a slow machine
    assert report.counts.get("workbench", 0) > 0 and report.counts.get("ok", 0) > 0, summary  # it bites, and not always
    assert not report.others, json.dumps(report.others[:5], indent=1)
    assert not report.hangs, report.hangs[:5]
    assert not report.crashes, report.crashes[:5]
