"""The kernel backend: compiled when built, numpy twins (with one warning) when not, and an
ImportError under MINIGRAD_REQUIRE_EXT=1. Each case runs in a fresh interpreter in which the
compiled modules are made unimportable."""
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
