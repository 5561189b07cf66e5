"""Concurrent backward: two Python threads running forward + backward on one model add every
contribution into the shared parameters' ``.grad`` (PyTorch guarantees the same)."""
from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from minigrad import Tensor, nn
from minigrad.nn import functional as F

REPEATS = 50


def _run_threads(model, losses, repeats: int = REPEATS) -> None:
    """Each thread i runs ``losses[i]().backward()`` ``repeats`` times, all started together."""
    barrier = threading.Barrier(len(losses))
    errors: list[BaseException] = []

    def work(make_loss):
        try:
            barrier.wait()
            for _ in range(repeats):
                make_loss().backward()
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up
    try:
        threads = [threading.Thread(target=work, args=(f,)) for f in losses]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert not errors, errors


def _grads_of(model, make_loss) -> dict:
    model.zero_grad()
    make_loss().backward()
    out = {n: p.grad.copy() for n, p in model.named_parameters()}
    model.zero_grad()
    return out


def _check_sum(model, losses) -> None:
    """After the threads ran, each parameter's grad is exactly REPEATS times the sum of the
    gradients each loss gives on its own (computed one at a time beforehand)."""
    single = [_grads_of(model, f) for f in losses]
    _run_threads(model, losses)
    for name, p in model.named_parameters():
        want = REPEATS * sum(s[name] for s in single)
        np.testing.assert_allclose(p.grad, want, rtol=1e-9, atol=1e-12,
                                   err_msg=f"{name}: a contribution was lost")


def test_two_threads_backward_on_a_shared_linear_lose_nothing():
    rng = np.random.default_rng(0)
    model = nn.Linear(200, 300, dtype=np.float64, rng=np.random.default_rng(1))
    xs = [Tensor(rng.standard_normal((8, 200))) for _ in range(2)]
    losses = [lambda x=x: (model(x) ** 2).sum() for x in xs]
    _check_sum(model, losses)


@pytest.mark.parametrize("fused", [True, False])
def test_two_threads_backward_on_a_shared_lstm_lose_nothing(fused):
    rng = np.random.default_rng(1)
    model = nn.LSTM(16, 128, dtype=np.float64, fused=fused, rng=np.random.default_rng(2))
    xs = [Tensor(rng.standard_normal((6, 4, 16))) for _ in range(2)]
    target = Tensor(rng.standard_normal((6, 4, 128)))
    losses = [lambda x=x: F.mse_loss(model(x)[0], target) for x in xs]
    _check_sum(model, losses)
