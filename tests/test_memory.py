"""glibc heap tuning (applied by the first kernel call or kernels.apply_speed_settings): a
freed 4 MB array's pages are reused by the next allocation (no new page faults), and MINIGRAD_MALLOC_TUNING=0 leaves malloc as it was (faults each time).
Each case runs in a fresh interpreter."""
import json
import os
import subprocess
import sys

import pytest

_PROBE = """
import json, resource
import numpy as np
import minigrad.fast.kernels, minigrad.fast.memory
minigrad.fast.kernels.apply_speed_settings()

def one_round():  # like a training step: a few large arrays made, used, freed
    arrays = [np.ones(2 << 20, np.float32) for _ in range(3)]  # 3 x 8 MB
    del arrays

def faults_per_round():
    for _ in range(3):  # warm up
        one_round()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        one_round()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10

print(json.dumps([minigrad.fast.memory.heap_tuned(), faults_per_round()]))
"""

def _is_glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (AttributeError, ValueError, OSError):
        return False


glibc_linux = pytest.mark.skipif(not sys.platform.startswith("linux") or not _is_glibc(),
                                 reason="heap tuning applies to glibc Linux only")


def _probe(**env):
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                         env=dict(os.environ, **env), timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@glibc_linux
def test_freed_blocks_are_reused_without_page_faults():
    tuned, faults = _probe()
    assert tuned and faults < 50  # fresh pages for 24 MB would be ~6000 faults per round


@glibc_linux
def test_opt_out_leaves_malloc_alone():
    tuned, faults = _probe(MINIGRAD_MALLOC_TUNING="0")
    assert not tuned and faults > 500  # the control: glibc gives memory back each round
