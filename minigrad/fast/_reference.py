"""Pure-numpy twins of every compiled kernel in src_ext/, with the same signatures.

These are the readable specification: each compiled kernel is tested equal to its twin, and
the library falls back to them when the extension is not built. Derivation steps are numbered
identically here and in the .pyx files.
"""
from __future__ import annotations

import numpy as np

from minigrad.ops.stable import stable_sigmoid


# Arithmetic with numpy's broadcasting: numpy's operators are the specification (the compiled
# build gives their bits, one rounded IEEE operation per element).
def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a + b."""
    return a + b


def sub(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a - b."""
    return a - b


def mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a * b."""
    return a * b


def div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b."""
    return a / b


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), overflow-free (minigrad.ops.stable.stable_sigmoid)."""
    if isinstance(x, np.ndarray) and not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)  # (as the compiled kernel: it reads any layout)
    _check_float("sigmoid", "x", x, np.ndim(x))
    return stable_sigmoid(x)


def tanh_backward(y: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """d/dx tanh(x) given y = tanh(x):  (1) dy/dx = 1 - y^2   (2) dx = grad * (1 - y^2)."""
    _check_pair("tanh_backward", y, grad)
    return grad * (1 - y * y)


def sigmoid_backward(y: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """d/dx sigmoid(x) given y = sigmoid(x):  (1) dy/dx = y (1 - y)   (2) dx = grad * y (1 - y)."""
    _check_pair("sigmoid_backward", y, grad)
    return grad * y * (1 - y)


def _check_pair(name: str, y: np.ndarray, g: np.ndarray) -> None:
    """ndarrays of one float dtype and one shape (the compiled wrappers use these checks too)."""
    if not isinstance(y, np.ndarray) or not isinstance(g, np.ndarray):
        raise ValueError(f"{name}: expected ndarrays, got {type(y).__name__} and "
                         f"{type(g).__name__}")
    if y.dtype != g.dtype or y.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name}: y and grad must share dtype float32 or float64, got "
                         f"{y.dtype} and {g.dtype}")
    if y.shape != g.shape:
        raise ValueError(f"{name}: y has shape {y.shape} but grad has shape {g.shape}")
    if not (y.flags.c_contiguous and g.flags.c_contiguous):
        raise ValueError(f"{name}: y and grad must be C-contiguous (shapes {y.shape}, "
                         f"{g.shape})")


def adam_update(param: np.ndarray, grad: np.ndarray, exp_avg: np.ndarray,
                exp_avg_sq: np.ndarray, beta1: float, beta2: float, eps: float,
                step_size: float, bc2_sqrt: float) -> None:
    """One Adam step in place on param, exp_avg (m) and exp_avg_sq (v); step_size is
    lr / (1 - beta1^t) and bc2_sqrt is sqrt(1 - beta2^t). One scratch array, no others.

    (1) m = beta1 m + (1 - beta1) g, as m += (1 - beta1) (g - m)
    (2) v = beta2 v + (1 - beta2) g^2
    (3) p -= step_size * m / (sqrt(v) / sqrt(bc2) + eps), step_size = lr / bc1"""
    _check_adam(param, grad, exp_avg, exp_avg_sq)
    _adam_steps(param, grad, exp_avg, exp_avg_sq, beta1, beta2, eps, step_size, bc2_sqrt)


def _adam_steps(param, grad, m, v, beta1, beta2, eps, step_size, bc2_sqrt) -> None:
    # adam_update's steps (1)-(3) on checked arrays
    tmp = np.subtract(grad, m)
    tmp *= 1 - beta1
    m += tmp
    v *= beta2
    np.multiply(grad, grad, out=tmp)
    tmp *= 1 - beta2
    v += tmp
    denom = np.sqrt(v, out=tmp)
    denom /= bc2_sqrt
    denom += eps
    np.divide(m, denom, out=tmp)
    tmp *= step_size
    param -= tmp


def adam_update_many(params: list, grads: list, exp_avgs: list, exp_avg_sqs: list,
                     beta1: float, beta2: float, eps: float, step_sizes, bc2_sqrts) -> None:
    """adam_update on every parameter of the lists (one "multi-tensor" call); step_sizes[k]
    and bc2_sqrts[k] are parameter k's step_size and bc2_sqrt."""
    count = _check_adam_many(params, grads, exp_avgs, exp_avg_sqs, step_sizes, bc2_sqrts)
    for k in range(count):  # the arrays were checked with the lists
        _adam_steps(params[k], grads[k], exp_avgs[k], exp_avg_sqs[k], beta1, beta2, eps,
                    float(step_sizes[k]), float(bc2_sqrts[k]))


def _check_adam_many(params, grads, exp_avgs, exp_avg_sqs, step_sizes, bc2_sqrts) -> int:
    """adam_update_many's checks (the twin's and the compiled wrapper's): lists of one length,
    each parameter's four arrays as adam_update wants them, one dtype for all. Returns the
    number of parameters."""
    lists = {"params": params, "grads": grads, "exp_avgs": exp_avgs,
             "exp_avg_sqs": exp_avg_sqs, "step_sizes": step_sizes, "bc2_sqrts": bc2_sqrts}
    lengths = {k: len(v) for k, v in lists.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"adam_update_many: the lists must have one length, got {lengths}")
    for k, arrays in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs)):
        try:
            _check_adam(*arrays)
        except ValueError as exc:
            raise ValueError(f"adam_update_many: parameter {k}: {exc}") from None
        if arrays[0].dtype != params[0].dtype:
            raise ValueError(f"adam_update_many: parameter {k} is {arrays[0].dtype}, parameter "
                             f"0 is {params[0].dtype}; one call takes one dtype")
    return len(params)


def sum_of_squares_many(arrays: list) -> float:
    """sum of x^2 over every element of every array, in float64: the squared 2-norm of all of
    them together (clip_grad_norm_). One call takes C-contiguous arrays of one float dtype."""
    _check_squares(arrays)
    total = 0.0
    for a in arrays:
        r = a.reshape(-1).astype(np.float64)
        total += float(np.dot(r, r))
    return total


def _check_squares(arrays) -> None:
    """sum_of_squares_many's checks (the twin's and the compiled wrapper's)."""
    if not isinstance(arrays, (list, tuple)):
        raise ValueError(f"sum_of_squares_many: expected a list of arrays, got "
                         f"{type(arrays).__name__}")
    for k, a in enumerate(arrays):
        if type(a) is not np.ndarray or a.dtype not in (np.float32, np.float64) or \
                not a.flags.c_contiguous or a.dtype != arrays[0].dtype:
            raise ValueError(
                f"sum_of_squares_many: array {k} must be a C-contiguous float32 or float64 "
                f"ndarray of array 0's dtype; got {type(a).__name__} "
                f"{getattr(a, 'dtype', '')} {getattr(a, 'shape', '')}")


def _check_adam(param, grad, exp_avg, exp_avg_sq) -> None:
    """adam_update's checks (the twin's and the compiled wrapper's)."""
    arrays = (param, grad, exp_avg, exp_avg_sq)
    if all(type(a) is np.ndarray for a in arrays) and param.dtype in (np.float32, np.float64) \
            and all(a.dtype == param.dtype and a.shape == param.shape and a.flags.c_contiguous
                    for a in arrays) and param.flags.writeable and exp_avg.flags.writeable \
            and exp_avg_sq.flags.writeable:
        return  # the usual case, tested at once; the messages below name the defect
    named = {"param": param, "grad": grad, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
    for what, a in named.items():
        if not isinstance(a, np.ndarray):
            raise ValueError(f"adam_update: {what} must be an ndarray, got {type(a).__name__}")
    if param.dtype not in (np.float32, np.float64) or \
            any(a.dtype != param.dtype for a in arrays):
        raise ValueError("adam_update: all arrays must share dtype float32 or float64, got "
                         + ", ".join(f"{k} {a.dtype}" for k, a in named.items()))
    if any(a.shape != param.shape for a in arrays):
        raise ValueError("adam_update: all arrays must have one shape, got "
                         + ", ".join(f"{k} {a.shape}" for k, a in named.items()))
    for what, a in named.items():
        if not a.flags.c_contiguous or (what != "grad" and not a.flags.writeable):
            raise ValueError(f"adam_update: {what} of shape {a.shape} must be C-contiguous"
                             + ("" if what == "grad" else " and writeable"))



# ---- embedding (twin of src_ext/embedding.pyx) -------------------------------------------------

def embedding_backward(indices: np.ndarray, grad: np.ndarray,
                       num_embeddings: int) -> np.ndarray:
    """d weight for out[n] = weight[indices[n]]: scatter-add each grad row to its index row.

    (1) out[n, d] = W[idx[n], d]  =>  dW[k, d] = sum over n with idx[n] == k of grad[n, d]
    (2) repeated indices accumulate (never overwrite)."""
    _check_embedding("embedding_backward", indices, grad, num_embeddings)
    dweight = np.zeros((num_embeddings, grad.shape[1]), dtype=grad.dtype)
    np.add.at(dweight, indices, grad)
    return dweight


def _check_embedding(name: str, indices: np.ndarray, grad: np.ndarray,
                     num_embeddings: int) -> None:
    if not isinstance(indices, np.ndarray) or indices.dtype != np.int64 or indices.ndim != 1:
        raise ValueError(f"{name}: indices must be a 1-D int64 ndarray, got "
                         f"{getattr(indices, 'dtype', type(indices).__name__)} with shape "
                         f"{getattr(indices, 'shape', None)}")
    _check_float(name, "grad", grad, 2)
    if grad.shape[0] != indices.shape[0]:
        raise ValueError(f"{name}: grad has shape {grad.shape} but indices has shape "
                         f"{indices.shape} (need grad (N, D) with N = len(indices))")
    if indices.size and (indices.min() < 0 or indices.max() >= num_embeddings):
        bad = int(np.flatnonzero((indices < 0) | (indices >= num_embeddings))[0])
        raise ValueError(f"{name}: index {int(indices[bad])} at position {bad} is out of range "
                         f"for num_embeddings={num_embeddings}")


def _check_float(name: str, what: str, arr: np.ndarray, ndim: int) -> None:
    if not isinstance(arr, np.ndarray) or arr.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name}: {what} must be a float32 or float64 ndarray, got "
                         f"{getattr(arr, 'dtype', type(arr).__name__)}")
    if arr.ndim != ndim:
        raise ValueError(f"{name}: {what} must be {ndim}-D, got shape {arr.shape}")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{name}: {what} of shape {arr.shape} must be C-contiguous")


# ---- linear layer (twin of src_ext/linear.pyx) --------------------------------------------------

def linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """y (R, O) = x (R, I) @ w (O, I)^T + b (O,) (b may be None).

    (1) y = x W^T + b"""
    _check_linear("linear_forward", x, w, b)
    y = x @ w.T
    if b is not None:
        y += b
    return y


def linear_backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, needs: tuple) -> tuple:
    """(dx (R, I), dw (O, I), db (O,)) for y = x w^T + b and dL/dy = g (R, O); each is None
    unless asked for by ``needs`` = (dx, dw, db).

    (2) dX = G W
    (3) dW = G^T X
    (4) db = G^T 1"""
    _check_linear("linear_backward", x, w, None, g)
    dx = g @ w if needs[0] else None
    dw = g.T @ x if needs[1] else None
    db = g.sum(axis=0) if needs[2] else None
    return dx, dw, db


def _check_linear(name: str, x, w, b, g=None) -> None:
    """x (R, I), w (O, I), b (O,) or None, g (R, O) or None: one float dtype, C-contiguous."""
    _check_float(name, "x", x, 2)
    _check_float(name, "w", w, 2)
    arrays = {"x": x, "w": w, "b": b, "g": g}
    expected = {"x": x.shape, "w": (w.shape[0], x.shape[1]), "b": (w.shape[0],),
                "g": (x.shape[0], w.shape[0])}
    for what, arr in arrays.items():
        if arr is None:
            continue
        if not isinstance(arr, np.ndarray) or arr.dtype != x.dtype or \
                arr.shape != expected[what] or not arr.flags.c_contiguous:
            raise ValueError(f"{name}: {what} must be a C-contiguous {x.dtype} array of shape "
                             f"{expected[what]} (x {x.shape}, w {w.shape}), got "
                             f"{getattr(arr, 'dtype', type(arr).__name__)} with shape "
                             f"{getattr(arr, 'shape', None)}")


# ---- softmax cross-entropy (twin of src_ext/loss.pyx) ------------------------------------------

def softmax_xent_forward(logits: np.ndarray, target: np.ndarray,
                         ignore_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-row loss -log softmax(logits)[target] and the softmax probabilities.

    (1) m = max_c x_c                       (shift: exp never overflows)
    (2) s = sum_c exp(x_c - m)
    (3) lse = m + log(s)                    (log-sum-exp)
    (4) p_c = exp(x_c - m) / s
    (5) loss = lse - x_t ; 0 for rows whose target == ignore_index."""
    _check_xent("softmax_xent_forward", logits, target, ignore_index)
    m = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - m)
    s = e.sum(axis=1, keepdims=True)
    probs = e / s
    lse = (m + np.log(s))[:, 0]
    keep = target != ignore_index
    safe = np.where(keep, target, 0)
    x_t = logits[np.arange(logits.shape[0]), safe]
    loss = np.where(keep, lse - x_t, 0).astype(logits.dtype)
    return loss, probs.astype(logits.dtype, copy=False)


def softmax_xent_backward(probs: np.ndarray, target: np.ndarray, ignore_index: int,
                          grad_rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """d logits of loss_n = lse(x_n) - x_n[t_n], each row scaled by grad_rows[n]; written into
    ``out`` when given (which may be ``probs`` itself).

    (6) d loss / d x_c = p_c - [c == t]
    (7) dx = grad_rows[n] * (p - onehot(t)) ; 0 for ignored rows."""
    _check_xent_backward(probs, target, ignore_index, grad_rows, out)
    if out is None:
        out = np.empty_like(probs)
    keep = target != ignore_index
    dx = out
    if dx is not probs:
        dx[...] = probs
    rows = np.flatnonzero(keep)
    dx[rows, target[rows]] -= 1
    dx *= np.where(keep, grad_rows, 0)[:, None]
    return dx


def _check_xent_backward(probs, target, ignore_index, grad_rows, out) -> None:
    """softmax_xent_backward's checks (the twin's and the compiled wrapper's)."""
    _check_xent("softmax_xent_backward", probs, target, ignore_index)
    if not isinstance(grad_rows, np.ndarray) or grad_rows.dtype != probs.dtype or \
            grad_rows.shape != target.shape or not grad_rows.flags.c_contiguous:
        raise ValueError(f"softmax_xent_backward: grad_rows must be a C-contiguous {probs.dtype} "
                         f"array of shape {target.shape}, got "
                         f"{getattr(grad_rows, 'dtype', type(grad_rows).__name__)} with shape "
                         f"{getattr(grad_rows, 'shape', None)}")
    if out is not None and (not isinstance(out, np.ndarray) or out.dtype != probs.dtype or
                            out.shape != probs.shape or not out.flags.c_contiguous or
                            not out.flags.writeable):
        raise ValueError(f"softmax_xent_backward: out must be a writeable C-contiguous "
                         f"{probs.dtype} array of shape {probs.shape}, got "
                         f"{getattr(out, 'dtype', type(out).__name__)} with shape "
                         f"{getattr(out, 'shape', None)}")


def _check_xent(name: str, logits: np.ndarray, target: np.ndarray, ignore_index: int) -> None:
    _check_float(name, "logits", logits, 2)
    if not isinstance(target, np.ndarray) or target.dtype != np.int64 or \
            target.shape != logits.shape[:1] or not target.flags.c_contiguous:
        raise ValueError(f"{name}: target must be a C-contiguous int64 array of shape "
                         f"{logits.shape[:1]} for logits {logits.shape}, got "
                         f"{getattr(target, 'dtype', type(target).__name__)} with shape "
                         f"{getattr(target, 'shape', None)}")
    n_classes = logits.shape[1]
    if not target.size or (target.min() >= 0 and target.max() < n_classes):
        return  # every target a class (two reductions); else look closer: ignored rows pass
    bad = (target != ignore_index) & ((target < 0) | (target >= n_classes))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}: target {int(target[row])} in row {row} is out of range for "
                         f"{n_classes} classes (logits {logits.shape}, "
                         f"ignore_index={ignore_index})")
