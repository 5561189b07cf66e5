"""Optimizers (SGD, Adam/AdamW, Adagrad, RMSprop) and learning-rate schedulers (StepLR,
CosineAnnealingLR), with PyTorch's update rules, names and defaults.

Updates are in place on ``param.data``; a parameter whose ``grad`` is None is skipped.
``state_dict()`` is a nested dict of ndarrays, numbers, strings and lists (what
``minigrad.save`` writes); ``load_state_dict`` restores it so resumed training is bit-identical::

    {"state": {0: {"step": 3, "exp_avg": ndarray, ...}, ...},      # by parameter index
     "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), ..., "params": [0, 1, ...]}]}
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from minigrad.fast import multi_tensor
from minigrad.tensor import Tensor

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "LRScheduler", "StepLR",
           "CosineAnnealingLR", "clip_grad_norm_", "clip_grad_value_"]


class Optimizer:
    """Holds parameter groups (dicts of "params" plus hyperparameters) and per-parameter state."""

    def __init__(self, params: Iterable[Tensor] | Iterable[dict], defaults: dict) -> None:
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state: dict[Tensor, dict] = {}
        for group in (params if isinstance(params[0], dict) else [{"params": params}]):
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        """Add a group of parameters (a dict with "params" and its own settings)."""
        group = dict(group)
        ps = group["params"]
        group["params"] = [ps] if isinstance(ps, Tensor) else list(ps)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameters must be Tensors, got "
                                f"{type(p).__name__}")
            if id(p) in seen:
                raise ValueError(f"{type(self).__name__}: a parameter appears in more than "
                                 "one group")
            seen.add(id(p))
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (set them to None, or to zeros with set_to_none=False)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad[...] = 0

    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, self._grad(p), self._state(p), group)

    def _grad(self, p: Tensor) -> np.ndarray:
        """p.grad, after checking that it can update p: a float ndarray of p's shape (a
        gradient set by hand in another shape would otherwise broadcast into the update)."""
        return check_grad(p.grad, p, f"{type(self).__name__}.step", self._where(p))

    def _where(self, p: Tensor) -> str:
        """How an error names p: its name if it has one, else its group and index."""
        for gi, group in enumerate(self.param_groups):
            for pi, q in enumerate(group["params"]):
                if q is p:
                    label = f"parameter {pi} of group {gi}"
                    return f"{p.name!r} ({label})" if p.name else label
        return "a parameter"

    def _update(self, p: Tensor, grad: np.ndarray, state: dict, group: dict) -> None:
        raise NotImplementedError

    def _state(self, p: Tensor) -> dict:
        """p's state, its arrays in p's dtype: after ``Module.to(dtype)`` between steps, the
        moments and buffers follow the parameters they belong to (converted once)."""
        state = self.state.setdefault(p, {})
        dtype = p.data.dtype
        for key, value in state.items():
            if type(value) is np.ndarray and value.dtype != dtype and value.shape == p.shape:
                state[key] = value.astype(dtype)
        return state

    # ---- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Per-parameter state (copies, keyed by parameter index) and the groups' settings."""
        index = {}
        groups = []
        for group in self.param_groups:
            g = {k: v for k, v in group.items() if k != "params"}
            g["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(g)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state and self.state[p]:
                    state[index[id(p)]] = {k: (v.copy() if isinstance(v, np.ndarray) else v)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore ``state_dict()`` output (copied). Errors name the group/parameter/shape."""
        name = type(self).__name__
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the state has {len(groups)} parameter "
                             f"groups, the optimizer has {len(self.param_groups)}")
        params = []
        for i, (saved, own) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(f"{name}.load_state_dict: group {i} has {len(saved['params'])} "
                                 f"parameters in the state, {len(own['params'])} here")
            params.extend(zip(saved["params"], own["params"]))
        saved_state = {int(k): v for k, v in state_dict["state"].items()}
        new_state: dict[Tensor, dict] = {}
        for idx, p in params:
            if idx not in saved_state:
                continue
            entry = {}
            for k, v in saved_state[idx].items():
                if isinstance(v, (np.ndarray, Tensor)):
                    arr = v.data if isinstance(v, Tensor) else v
                    if arr.shape != p.shape:
                        raise ValueError(f"{name}.load_state_dict: state {k!r} of parameter "
                                         f"{idx} has shape {arr.shape}, the parameter has "
                                         f"shape {p.shape}")
                    v = np.array(arr, order="C", copy=True)
                entry[k] = v
            new_state[p] = entry
        for saved, own in zip(groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    own[k] = tuple(v) if isinstance(v, list) else v
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(g.items()) if k != "params"]
        return "\n".join(lines + [")"])


def check_grad(grad: object, p: Tensor, op: str, where: str) -> np.ndarray:
    """``grad`` if it is a floating-point ndarray of p's shape, else a clear error naming the
    operation, the parameter and both shapes (shared by the optimizers and grad clipping)."""
    if not isinstance(grad, np.ndarray):
        raise TypeError(f"{op}: the .grad of {where} is a {type(grad).__name__}, expected an "
                        f"ndarray of the parameter's shape {p.shape}")
    if grad.shape != p.shape:
        raise ValueError(f"{op}: the .grad of {where} has shape {grad.shape}, the parameter "
                         f"has shape {p.shape}; a gradient must have its parameter's shape")
    if grad.dtype.kind != "f":
        raise TypeError(f"{op}: the .grad of {where} (shape {grad.shape}) has dtype "
                        f"{grad.dtype}, expected floating point like the parameter "
                        f"({p.dtype})")
    return grad


def _check(cls: str, **values: float) -> None:
    for k, v in values.items():
        if v < 0:
            raise ValueError(f"{cls}: invalid {k} {v} (must be >= 0)")


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, dampening, Nesterov, weight decay:
    g += wd p;  b = mu b + (1 - dampening) g (b = g at the first step);
    g = g + mu b (Nesterov) or b;  p -= lr g."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        _check("SGD", lr=lr, momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _update(self, p, grad, state, group):
        lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
        if wd != 0:
            grad = grad + wd * p.data
        if mu != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(grad, copy=True)
            else:
                buf *= mu
                buf += (1 - group["dampening"]) * grad
            grad = grad + mu * buf if group["nesterov"] else buf
        p.data -= lr * grad


class Adam(Optimizer):
    """Adam (Kingma & Ba), with L2 weight decay added to the gradient, or with
    ``decoupled_weight_decay=True`` the AdamW rule p *= 1 - lr wd. ``amsgrad`` keeps the
    running maximum of the second moment."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False,
                 decoupled_weight_decay: bool = False) -> None:
        _check(type(self).__name__, lr=lr, eps=eps, weight_decay=weight_decay)
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def step(self) -> None:
        """One update of every parameter that has a gradient, by the rule of ``_numpy_update``
        (steps 1-3). The parameters whose four arrays the multi-tensor kernel takes (not
        amsgrad; one dtype, shape and C order each) are handed to it together
        (``minigrad.fast.multi_tensor.AdamBatch``: one call per dtype, same rule)."""
        for group in self.param_groups:
            batch = multi_tensor.AdamBatch()
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self._state(p)
                grad, step_size, bc2_sqrt = self._begin(p, self._grad(p), state, group)
                m, v = state["exp_avg"], state["exp_avg_sq"]
                if group["amsgrad"] or not batch.add(p.data, grad, m, v, step_size, bc2_sqrt):
                    self._numpy_update(p, grad, state, group, step_size, bc2_sqrt)
            (beta1, beta2), eps = group["betas"], group["eps"]
            batch.run(beta1, beta2, eps)  # the hand-off: steps 1-3 for the gathered parameters

    @staticmethod
    def _begin(p, grad, state, group) -> tuple[np.ndarray, float, float]:
        """Count the step, apply weight decay; returns (gradient, lr / bc1, sqrt(bc2)), where
        bc1 = 1 - beta1^t and bc2 = 1 - beta2^t are the bias corrections."""
        lr, (beta1, beta2), wd = group["lr"], group["betas"], group["weight_decay"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        t = state["step"]
        if wd != 0:
            if group["decoupled_weight_decay"]:
                p.data *= 1 - lr * wd
            else:
                grad = grad + wd * p.data
        return grad, lr / (1 - beta1 ** t), math.sqrt(1 - beta2 ** t)

    @staticmethod
    def _numpy_update(p, grad, state, group, step_size: float, bc2_sqrt: float) -> None:
        """Steps 1-3 in plain numpy: the rule of every Adam update (the multi-tensor kernel
        computes the same for the parameters it takes; this runs amsgrad, and gradients set by
        hand in another dtype or layout)."""
        (beta1, beta2), m, v = group["betas"], state["exp_avg"], state["exp_avg_sq"]
        # 1. m = beta1 m + (1 - beta1) g   (written as m += (1 - beta1)(g - m), as torch's lerp)
        m += (1 - beta1) * (grad - m)
        # 2. v = beta2 v + (1 - beta2) g^2
        v *= beta2
        v += (1 - beta2) * (grad * grad)
        # 3. p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        p.data -= step_size * (m / (np.sqrt(v) / bc2_sqrt + group["eps"]))


class AdamW(Adam):
    """Adam with decoupled weight decay (default 1e-2), as torch.optim.AdamW."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad,
                         decoupled_weight_decay=True)


class Adagrad(Optimizer):
    """Adagrad: s += g^2;  p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)."""

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10) -> None:
        _check("Adagrad", lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps,
               initial_accumulator_value=initial_accumulator_value)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps))

    def _update(self, p, grad, state, group):
        if not state:
            state["step"] = 0
            state["sum"] = np.full_like(p.data, group["initial_accumulator_value"])
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * p.data
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"] += grad * grad
        p.data -= clr * (grad / (np.sqrt(state["sum"]) + group["eps"]))


class RMSprop(Optimizer):
    """RMSprop: v = alpha v + (1 - alpha) g^2; centered subtracts the squared running mean of g;
    with momentum b = mu b + g / (sqrt(v) + eps), p -= lr b; else p -= lr g / (sqrt(v) + eps)."""

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False
                 ) -> None:
        _check("RMSprop", lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
               momentum=momentum)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _update(self, p, grad, state, group):
        alpha, mu = group["alpha"], group["momentum"]
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p.data)
            if mu > 0:
                state["momentum_buffer"] = np.zeros_like(p.data)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(p.data)
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * p.data
        sq = state["square_avg"]
        sq *= alpha
        sq += (1 - alpha) * (grad * grad)
        if group["centered"]:
            ga = state["grad_avg"]
            ga += (1 - alpha) * (grad - ga)
            avg = np.sqrt(sq - ga * ga)
        else:
            avg = np.sqrt(sq)
        avg += group["eps"]
        if mu > 0:
            buf = state["momentum_buffer"]
            buf *= mu
            buf += grad / avg
            p.data -= group["lr"] * buf
        else:
            p.data -= group["lr"] * (grad / avg)


# ---- learning-rate schedulers ----------------------------------------------------------------
class LRScheduler:
    """Sets each group's "lr" once per ``step()`` (call it after ``optimizer.step()``)."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            if last_epoch == -1:
                group["initial_lr"] = group["lr"]
            elif "initial_lr" not in group:
                raise KeyError(f"{type(self).__name__}: last_epoch={last_epoch} needs "
                               "'initial_lr' in every parameter group")
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self.step()

    def get_lr(self) -> list[float]:
        """Each parameter group's learning rate at the current epoch (schedules define it)."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and set each group's learning rate from ``get_lr()``."""
        self._step_count += 1
        self.last_epoch += 1
        lrs = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = list(lrs)

    def get_last_lr(self) -> list[float]:
        """The learning rates the last ``step()`` set, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """The schedule's position and settings (everything but the optimizer)."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what ``state_dict()`` returned."""
        self.__dict__.update({k: list(v) if isinstance(v, tuple) else v
                              for k, v in state_dict.items()})


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` steps."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        if step_size <= 0:
            raise ValueError(f"StepLR: step_size must be positive, got {step_size}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        groups = self.optimizer.param_groups
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [g["lr"] for g in groups]
        return [g["lr"] * self.gamma for g in groups]


class CosineAnnealingLR(LRScheduler):
    """lr_t = eta_min + (base - eta_min)(1 + cos(pi t / T_max)) / 2, computed recursively from
    the current lr as PyTorch does (so it composes with manual lr changes the same way)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        groups, t, T, lo = self.optimizer.param_groups, self.last_epoch, self.T_max, self.eta_min
        if t == 0:
            return [g["lr"] for g in groups]
        if self._step_count == 1 and t > 0:
            return [lo + (b - lo) * (1 + math.cos(t * math.pi / T)) / 2 for b in self.base_lrs]
        if (t - 1 - T) % (2 * T) == 0:
            return [g["lr"] + (b - lo) * (1 - math.cos(math.pi / T)) / 2
                    for b, g in zip(self.base_lrs, groups)]
        return [(1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
                * (g["lr"] - lo) + lo for g in groups]


def clip_grad_norm_(*args: Any, **kwargs: Any) -> float:
    """Alias of ``minigrad.nn.utils.clip_grad_norm_``."""
    from minigrad.nn.utils import clip_grad_norm_ as clip
    return clip(*args, **kwargs)


def clip_grad_value_(*args: Any, **kwargs: Any) -> None:
    """Alias of ``minigrad.nn.utils.clip_grad_value_``."""
    from minigrad.nn.utils import clip_grad_value_ as clip
    return clip(*args, **kwargs)
