"""glibc heap settings that keep freed memory for reuse (applied when the kernels first run).

Every training step allocates and frees the same large arrays: activations, gradients, gate
buffers. By default glibc serves blocks above its mmap threshold (128 KB at start) with freshly
mapped pages and unmaps them on free, and trims free memory off the top of the heap; either way
the next step touches brand-new pages and pays a page fault per 4 KB (the count per step on
the char-LM benchmark is in benchmarks/RESULTS.md). So when its kernels first run
(minigrad.fast.kernels.apply_speed_settings; importing minigrad changes nothing) minigrad
raises the mmap threshold to 32 MB (glibc's maximum), keeps 16 MB of padding at the top of the
heap and trims the heap only when 256 MB at its top are free: freed blocks stay in the process
and are handed out again.

This is process-wide, like the BLAS thread setting, and only on glibc Linux. Set
MINIGRAD_MALLOC_TUNING=0 to leave malloc alone (the process may then hold less memory when idle).
"""
from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
SETTINGS = ((M_MMAP_THRESHOLD, 32 << 20), (M_TOP_PAD, 16 << 20), (M_TRIM_THRESHOLD, 256 << 20))

_tuned = False


def heap_tuned() -> bool:
    """True when minigrad changed glibc's malloc settings in this process."""
    return _tuned


def tune_heap() -> bool:
    """Apply the settings above; False (nothing changed) off glibc or when opted out."""
    global _tuned
    if os.environ.get("MINIGRAD_MALLOC_TUNING") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")  # the glibc soname; musl and others have no mallopt
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _tuned = all([mallopt(param, value) == 1 for param, value in SETTINGS])
    return _tuned
