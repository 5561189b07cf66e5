"""The kernel backend: compiled when built, numpy twins (with one warning) when not, and an
ImportError under MINIGRAD_REQUIRE_EXT=1. Each case runs in a fresh interpreter in which the
compiled modules are made unimportable."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

# Makes `import minigrad._ext.<anything>` fail, as on a machine where the build did not happen.
_HIDE_EXT = textwrap.dedent("""
    import sys
    class _NoExt:
        def find_spec(self, name, path=None, target=None):
            if name.startswith("minigrad._ext."):
                raise ImportError(f"hidden for the test: {name}")
            return None
    sys.meta_path.insert(0, _NoExt())
""")


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("MINIGRAD_REQUIRE_EXT", "MINIGRAD_BACKEND")}
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", _HIDE_EXT + textwrap.dedent(code)],
                          capture_output=True, text=True, env=full_env, timeout=120)


def test_missing_extension_falls_back_to_numpy_with_one_warning():
    result = _run("""
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import minigrad, minigrad.nn as nn, minigrad.nn.functional as F
            import numpy as np
            lstm = nn.LSTM(3, 4)
            out, _ = lstm(minigrad.tensor(np.ones((5, 2, 3), dtype=np.float32)))
            loss = F.cross_entropy(out, minigrad.tensor(np.zeros((5, 2), dtype=np.int64)))
            loss.backward()
        ours = [w for w in caught if "compiled kernels not available" in str(w.message)]
        print(minigrad.backend(), len(ours), np.isfinite(lstm.weight_hh_l0.grad).all())
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["numpy", "1", "True"]


def test_require_ext_turns_a_missing_extension_into_import_error():
    result = _run("import minigrad", MINIGRAD_REQUIRE_EXT="1")
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "MINIGRAD_REQUIRE_EXT=1" in result.stderr


def test_backend_reports_compiled_when_the_extension_is_built():
    if os.environ.get("MINIGRAD_REQUIRE_EXT") != "1":  # CI sets it: there this never skips
        pytest.importorskip("minigrad._ext.elementwise", reason="extension not built here")
    env = {k: v for k, v in os.environ.items() if k != "MINIGRAD_BACKEND"}  # not forced off
    result = subprocess.run([sys.executable, "-c", "import minigrad; print(minigrad.backend())"],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.stdout.strip() == "compiled", result.stderr


_IMPORT_PROBE = textwrap.dedent("""
    import json
    import numpy as np
    import scipy.linalg.cython_blas  # the BLAS libraries minigrad's kernels use, loaded first
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas():
        return {i["filepath"]: i["num_threads"] for i in threadpool_info()
                if i["user_api"] == "blas"}

    threadpool_limits(limits=3, user_api="blas")  # a setting minigrad's default would change
    before = blas()
    import minigrad, minigrad.fast.memory, minigrad.nn as nn
    after_import, tuned_at_import = blas(), minigrad.fast.memory.heap_tuned()
    lstm = nn.LSTM(3, 4)
    lstm(minigrad.tensor(np.ones((2, 1, 3), np.float32)))
    print(json.dumps([before, after_import, tuned_at_import, blas(),
                      minigrad.fast.memory.heap_tuned()]))
""")


def test_import_changes_nothing_and_the_first_kernel_applies_the_speed_settings():
    """`import minigrad` leaves the BLAS thread counts and glibc's malloc settings as they
    were; the first fused layer call sets BLAS to one thread and tunes the heap (glibc)."""
    pytest.importorskip("threadpoolctl")
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                        "MINIGRAD_MALLOC_TUNING")}
    out = subprocess.run([sys.executable, "-c", _IMPORT_PROBE], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    before, after_import, tuned_at_import, after_run, tuned_after_run = \
        json.loads(out.stdout.strip().splitlines()[-1])
    assert before and set(before.values()) == {3}
    assert after_import == before and not tuned_at_import
    assert set(after_run.values()) == {1}
    glibc = sys.platform.startswith("linux") and \
        os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    assert tuned_after_run == glibc


def test_every_kernel_exists_in_both_implementations_with_its_dispatch_function():
    """kernels.GROUPS names each kernel; the numpy twins and (when built) the compiled modules
    define it, and kernels.<name> hands calls to the active implementation's module."""
    import inspect

    from minigrad.fast import kernels
    impls = [kernels.NUMPY] + ([kernels.COMPILED] if kernels.COMPILED is not None else [])
    for group, (_, names) in kernels.GROUPS.items():
        for name in names:
            for impl in impls:
                assert callable(getattr(getattr(impl, group), name)), (impl.name, name)
            source = inspect.getsource(getattr(kernels, name))
            assert f"_run().{group}.{name}(" in source, name
    assert kernels.active() in impls and kernels.backend() == kernels.active().name
