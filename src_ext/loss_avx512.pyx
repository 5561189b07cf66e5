# cython: language_level=3
"""loss.pyx compiled for AVX-512 CPUs (-march=x86-64-v4, see setup.py): the same code, whose exp
loop the compiler then vectorises 16 floats wide. minigrad.fast.kernels loads this module instead of
loss on a CPU that can run it."""
include "loss.pyx"
