"""What this machine's CPU offers, as far as the steps' defaults depend on it.

Read once from ``/proc/cpuinfo`` (Linux; elsewhere the flags are unknown and the defaults stay as
they are on a modern CPU).
"""

from __future__ import annotations

import functools
import platform

#: x86 instructions that multiply uint8 by int8 into 32-bit sums (AVX-512 VNNI, AVX-VNNI, AMX)
INT8_DOT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


@functools.lru_cache(maxsize=1)
def cpu_info() -> tuple[str, frozenset[str]]:
    """The CPU's model name and its feature flags (empty where ``/proc/cpuinfo`` cannot be read)."""
    model, flags = platform.processor() or platform.machine(), frozenset[str]()
    try:
        with open("/proc/cpuinfo") as f:
            found_model = found_flags = False
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not found_model:
                    model, found_model = value.strip(), True
                elif key in ("flags", "Features") and not found_flags:
                    flags, found_flags = frozenset(value.split()), True
                if found_model and found_flags:
                    break
    except OSError:
        pass
    return model, flags


def int8_sums_saturate() -> bool:
    """True on an x86 CPU without VNNI/AMX: ONNX Runtime's uint8 x int8 kernels then add pairs of
    products in 16 bits (``VPMADDUBSW``), which saturate for large weights; 7-bit weights
    (``reduce_range=True``) keep the sums in range. False where the flags are unknown."""
    flags = cpu_info()[1]
    x86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
    return x86 and "avx2" in flags and flags.isdisjoint(INT8_DOT_FLAGS)
