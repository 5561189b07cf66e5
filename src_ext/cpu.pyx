# cython: language_level=3
"""What this CPU can run, asked once at run time (gcc's __builtin_cpu_supports):
minigrad.fast.kernels loads the *_avx512 builds of the kernels only where is_x86_64_v4() is True."""

cdef extern from *:
    """
    #if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    static int mg_cpu_is_x86_64_v4(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("x86-64-v4") != 0;
    }
    static int mg_cpu_has_avx512f(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") != 0;
    }
    #else
    static int mg_cpu_is_x86_64_v4(void) { return 0; }
    static int mg_cpu_has_avx512f(void) { return 0; }
    #endif
    """
    int mg_cpu_is_x86_64_v4() nogil
    int mg_cpu_has_avx512f() nogil


def is_x86_64_v4() -> bool:
    """True when this CPU runs code compiled with -march=x86-64-v4 (AVX-512 F/BW/CD/DQ/VL, AVX2,
    FMA, ...): the *_avx512 builds of the kernels."""
    return bool(mg_cpu_is_x86_64_v4())


def has_avx512f() -> bool:
    """True when this CPU has AVX-512 F, which the packed step-product tile (mg_gemm.h) needs."""
    return bool(mg_cpu_has_avx512f())
