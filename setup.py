"""Build every src_ext/*.pyx into minigrad/_ext/<name>.

All Cython compiler directives live in COMPILER_DIRECTIVES below. Set
MINIGRAD_CYTHON_DEBUG=1 to turn bounds and wraparound checks on (slow, for debugging).

The recurrent kernels split their work across threads with OpenMP (cython.parallel.prange).
It is on where the compiler is known to take -fopenmp (gcc on Linux); MINIGRAD_OPENMP=1 forces
it on elsewhere, MINIGRAD_OPENMP=0 off. Without it the same code runs on one thread.
"""
import glob
import os
import sys

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

COMPILE_ARGS = ["-O0", "-g"] if DEBUG else ["-O3"]
OPENMP = os.environ.get("MINIGRAD_OPENMP", "1" if sys.platform.startswith("linux") else "0") == "1"
OPENMP_ARGS = ["-fopenmp"] if OPENMP else []

extensions = [
    Extension(
        f"minigrad._ext.{os.path.splitext(os.path.basename(path))[0]}",
        [path],
        include_dirs=[numpy.get_include(), "src_ext"],
        extra_compile_args=COMPILE_ARGS + OPENMP_ARGS,
        extra_link_args=OPENMP_ARGS,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for path in sorted(glob.glob(os.path.join("src_ext", "*.pyx")))
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=COMPILER_DIRECTIVES,
        include_path=["src_ext"],
    ),
)
