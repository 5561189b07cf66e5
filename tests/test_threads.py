"""BLAS thread policy: one thread by default, the user's choice respected, set_num_threads works.
Each case runs in a fresh interpreter with a controlled environment."""
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("threadpoolctl")

_PROBE = ("import json, minigrad, minigrad.kernels; "
          "print(json.dumps(sorted(set(minigrad.get_num_threads().values()))))")
_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "MINIGRAD_NUM_THREADS")


def _thread_counts(code: str = _PROBE, **env: str) -> list[int]:
    clean = {k: v for k, v in os.environ.items() if k not in _VARS}
    clean.update(env)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=clean, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_default_is_one_blas_thread():
    assert _thread_counts() == [1]


def test_minigrad_num_threads_variable():
    assert _thread_counts(MINIGRAD_NUM_THREADS="2") == [2]


def test_a_user_blas_variable_is_left_alone():
    assert _thread_counts(OPENBLAS_NUM_THREADS="2") == [2]


def test_set_num_threads_changes_every_blas_and_rejects_nonsense():
    code = ("import json, minigrad; minigrad.set_num_threads(2); "
            "print(json.dumps(sorted(set(minigrad.get_num_threads().values()))))")
    assert _thread_counts(code) == [2]
    import minigrad
    with pytest.raises(ValueError, match="set_num_threads"):
        minigrad.set_num_threads(0)
