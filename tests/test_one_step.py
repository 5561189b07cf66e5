"""The one-step / one-row strategy of the compiled kernels equals the numpy twins.

A call with one time step does not pack W_hh (products.packed_weights: packing reads and
writes all of W_hh, which the one product would read once), and a product with one row (batch
1, or a generated token through Linear) is a matrix-vector product (products.matmul_nt /
matmul_nn: gemv). These are the shapes of generating text a character at a time: T = 1, B = 1,
the state carried from call to call. Every cell, float32 and float64, forward (outputs and
final states) and backward, against the twins; and a carried-state loop of one-step calls
against one call over the whole sequence.
"""
from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
from minigrad.fast import _reference, _reference_rnn, kernels

from test_recurrent_kernels import CELLS, compiled, make_args, run_kernels

TOL = {np.float32: 2e-5, np.float64: 1e-12}

pytestmark = pytest.mark.skipif(kernels.COMPILED is None, reason="the extension is not built")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("T", [1, 2, 5])
@pytest.mark.parametrize("cell", CELLS)
def test_one_step_and_one_row_calls_equal_the_twin(cell, T, B, dtype):
    """T = 1 (no packing), B = 1 (gemv in the step and the projection), and the neighbours
    that take the other routes (T > 1 packed, B > 1 gemm)."""
    for reverse in (False, True):
        for H in (5, 40):
            a, g = make_args(cell, T, B, 7, H, dtype, seed=T * 10 + B)
            got = run_kernels(compiled(cell), cell, a, g, None, reverse)
            want = run_kernels(_reference_rnn, cell, a, g, None, reverse)
            for k, (u, v) in enumerate(zip(got, want)):
                if v is None:
                    assert u is None
                else:
                    # absolute tolerance on the array's scale (the relu RNN's values reach
                    # hundreds here: float32 rounding of those is 1e-5 on an element that
                    # cancels to near zero)
                    scale = max(1.0, float(np.abs(v).max(initial=0.0)))
                    np.testing.assert_allclose(u, v, rtol=TOL[dtype], atol=TOL[dtype] * scale,
                                               err_msg=f"output {k}, H {H}, reverse {reverse}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_on_one_row_equals_the_twin(dtype):
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in ((1, 37), (65, 37), (65,)))
    g = rng.standard_normal((1, 65)).astype(dtype)
    lin = kernels.COMPILED.linear
    np.testing.assert_allclose(lin.linear_forward(x, w, b), _reference.linear_forward(x, w, b),
                               rtol=TOL[dtype], atol=TOL[dtype])
    for u, v in zip(lin.linear_backward(g, x, w, (True, True, True)),
                    _reference.linear_backward(g, x, w, (True, True, True))):
        np.testing.assert_allclose(u, v, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_generating_step_by_step_equals_one_call_over_the_sequence(kind, dtype):
    """A 2-layer layer fed one step at a time with its carried state (the one-step route)
    gives the outputs and final state of one call over the whole sequence (the packed route),
    on the compiled kernels and on the twins."""
    mg.manual_seed(0)
    layer = getattr(nn, kind)(6, 40, num_layers=2, dtype=dtype)
    x = np.random.default_rng(1).standard_normal((9, 1, 6)).astype(dtype)
    before = kernels.backend()
    try:
        for backend in ("compiled", "numpy"):
            kernels.use(backend)
            with mg.no_grad():
                whole, state_whole = layer(mg.tensor(x))
                state, outs = None, []
                for t in range(9):
                    y, state = layer(mg.tensor(x[t:t + 1]), state)
                    outs.append(y.numpy())
            tol = TOL[dtype] * 10
            np.testing.assert_allclose(np.concatenate(outs), whole.numpy(), rtol=tol, atol=tol)
            for u, v in zip(state if kind == "LSTM" else (state,),
                            state_whole if kind == "LSTM" else (state_whole,)):
                np.testing.assert_allclose(u.numpy(), v.numpy(), rtol=tol, atol=tol)
    finally:
        kernels.use(before)
