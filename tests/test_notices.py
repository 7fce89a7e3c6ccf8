"""Known library notices are dropped at their source, one message each; everything else still shows."""

from __future__ import annotations

import logging
import os
import sys

import workbench  # noqa: F401 - importing the package installs the filters
from workbench.core.notices import native_notices


def test_known_logger_notices_are_dropped_and_others_kept(caplog):
    caplog.set_level(logging.WARNING)
    logging.getLogger("torchao").warning("Failed to load /x/torchao/_C_mxfp8.so: Could not load this library")
    logging.getLogger("coremltools").warning("Failed to load _MLModelProxy: No module named "
                                             "'coremltools.libcoremlpython'")
    logging.warning("Please consider to run pre-processing before quantization. Refer to example: ...")
    logging.getLogger("torchao").warning("a real torchao problem")
    logging.getLogger("coremltools").error("conversion failed: unsupported op")
    logging.warning("some other root warning")
    assert [r.getMessage() for r in caplog.records] == ["a real torchao problem", "conversion failed: unsupported op",
                                                        "some other root warning"]


def test_native_notices_drop_one_line_and_keep_the_rest(capfd):
    with native_notices(r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$", r"^\[cpuinfo_utils\.cpp:\d+\] "):
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\nERROR: a real native error\n")
        for piece in ("[", "cpuinfo_utils.cpp", ":", "71", "] ", "Reading file /sys/x", "\n", "a real python-side line\n"):
            sys.stderr.write(piece)  # as ExecuTorch's binding writes in a Jupyter kernel
    err = capfd.readouterr().err
    assert "a real native error" in err and "a real python-side line" in err
    assert "XNNPACK" not in err and "cpuinfo" not in err
    os.write(2, b"after the block\n")  # the descriptor is restored
    assert "after the block" in capfd.readouterr().err
