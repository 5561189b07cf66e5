"""Tensor.t, mm, bmm and the logical operators on boolean tensors, against torch and numpy."""
import numpy as np
import pytest

import minigrad as mg


def test_t_mm_bmm_values_and_gradients_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 5))
    p, q = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 5))
    ma, mb, mp, mq = (mg.tensor(x, requires_grad=True) for x in (a, b, p, q))
    ta, tb, tp, tq = (torch.tensor(x, requires_grad=True) for x in (a, b, p, q))
    out = (ma.mm(mb) * mg.mm(ma, mb)).sum() + mp.bmm(mq).sum() + (ma.t() ** 2).sum()
    ref = (ta.mm(tb) * torch.mm(ta, tb)).sum() + tp.bmm(tq).sum() + (ta.t() ** 2).sum()
    out.backward()
    ref.backward()
    assert np.isclose(out.item(), ref.item(), rtol=1e-12)
    for m, t in ((ma, ta), (mb, tb), (mp, tp), (mq, tq)):
        np.testing.assert_allclose(m.grad, t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_t_of_vectors_and_scalars_and_its_error():
    v = mg.tensor([1.0, 2.0])
    assert v.t() is v
    assert mg.tensor(np.ones((2, 3))).t().shape == (3, 2)
    with pytest.raises(ValueError, match="t\\(\\).*shape \\(2, 3, 4\\)"):
        mg.zeros(2, 3, 4).t()


def test_mm_refuses_batches_naming_the_shapes():
    with pytest.raises(ValueError, match=r"mm: .*\(2, 3, 4\) and \(4, 5\)"):
        mg.mm(mg.zeros(2, 3, 4), mg.zeros(4, 5))


def test_logical_operators_are_elementwise_on_boolean_tensors():
    x = mg.tensor([1.0, -2.0, 3.0, 0.0])
    pos, big = x > 0, x.abs() > 1.5
    np.testing.assert_array_equal((~pos).numpy(), [False, True, False, True])
    np.testing.assert_array_equal((pos & big).numpy(), [False, False, True, False])
    np.testing.assert_array_equal((pos | big).numpy(), [True, True, True, False])
    np.testing.assert_array_equal((pos ^ big).numpy(), [True, True, False, False])
    masked = x.masked_fill(~pos, 0.0)
    np.testing.assert_array_equal(masked.numpy(), [1.0, 0.0, 3.0, 0.0])


def test_logical_operators_refuse_float_tensors():
    x = mg.tensor([1.0, 2.0])
    with pytest.raises(TypeError, match="~: needs a boolean tensor, got dtype float32"):
        ~x
    with pytest.raises(TypeError, match="&: needs boolean tensors"):
        (x > 0) & x
