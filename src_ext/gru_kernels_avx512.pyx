# cython: language_level=3
"""gru_kernels.pyx compiled for AVX-512 CPUs (-march=x86-64-v4, see setup.py): the same code,
whose gate loops the compiler then vectorises 16 floats wide. minigrad.fast.kernels loads this
module instead of gru_kernels on a CPU that can run it."""
include "gru_kernels.pyx"
