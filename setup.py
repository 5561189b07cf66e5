"""Build every src_ext/*.pyx into minigrad/_ext/<name>.

All Cython compiler directives live in COMPILER_DIRECTIVES below. Set
MINIGRAD_CYTHON_DEBUG=1 to turn bounds and wraparound checks on (slow, for debugging).

The recurrent kernels split their work across threads with OpenMP (cython.parallel.prange).
It is on on Linux when the compiler takes -fopenmp; MINIGRAD_OPENMP=1 asks for it elsewhere,
MINIGRAD_OPENMP=0 turns it off. Without it the same code runs on one thread.

src_ext/*_avx512.pyx are the recurrent kernels again, compiled with -march=x86-64-v4 so that
their gate loops use AVX-512; minigrad.fast.kernels loads them only on CPUs that can run them. They
are built on x86-64 Linux when the compiler takes -march=x86-64-v4 (MINIGRAD_BUILD_AVX512=0
skips them, =1 asks for them elsewhere). src_ext/cpu.pyx asks the CPU what it can run.
"""
import glob
import os
import platform
import subprocess
import sys
import sysconfig
import tempfile

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("MINIGRAD_CYTHON_DEBUG", "") == "1"

COMPILER_DIRECTIVES = {
    "language_level": "3",
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "nonecheck": False,
    "embedsignature": True,
}

# -fno-math-errno: sqrt and friends need not set errno, so their loops vectorise
COMPILE_ARGS = ["-O0", "-g"] if DEBUG else ["-O3", "-fno-math-errno"]


def compiler_accepts(flags: list[str]) -> bool:
    """Does the C compiler Python was built with compile and link a small program with these
    flags? (gcc < 11 has no -march=x86-64-v4; some compilers have no OpenMP.)"""
    cc = (sysconfig.get_config_var("CC") or "cc").split()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write("int main(void) { return 0; }\n")
        try:
            done = subprocess.run(cc + flags + [src, "-o", os.path.join(tmp, "probe")],
                                  capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return False
        return done.returncode == 0


def wanted(variable: str, default: bool) -> bool:
    value = os.environ.get(variable)
    return default if value is None else value == "1"


LINUX = sys.platform.startswith("linux")
OPENMP_ARGS = (["-fopenmp"] if wanted("MINIGRAD_OPENMP", LINUX) and compiler_accepts(["-fopenmp"])
               else [])
AVX512_ARGS = ["-march=x86-64-v4", "-mprefer-vector-width=512"]
AVX512 = (wanted("MINIGRAD_BUILD_AVX512", LINUX and platform.machine() in ("x86_64", "AMD64"))
          and compiler_accepts(AVX512_ARGS))


def sources() -> list[str]:
    paths = sorted(glob.glob(os.path.join("src_ext", "*.pyx")))
    return [p for p in paths if AVX512 or not p.endswith("_avx512.pyx")]


extensions = [
    Extension(
        f"minigrad._ext.{os.path.splitext(os.path.basename(path))[0]}",
        [path],
        include_dirs=[numpy.get_include(), "src_ext"],
        depends=sorted(glob.glob(os.path.join("src_ext", "*.h"))),  # rebuild when one changes
        extra_compile_args=COMPILE_ARGS + OPENMP_ARGS
        + (AVX512_ARGS if path.endswith("_avx512.pyx") else []),
        extra_link_args=OPENMP_ARGS,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for path in sources()
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=COMPILER_DIRECTIVES,
        include_path=["src_ext"],
    ),
)
