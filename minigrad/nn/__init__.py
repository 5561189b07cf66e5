"""Neural-network modules (mirrors torch.nn names and weight layouts).

Names are resolved on first use, so ``import minigrad.nn`` stays cheap."""
import importlib

from minigrad.nn.module import Module, Parameter

_LAZY = {
    "Linear": "minigrad.nn.layers", "Embedding": "minigrad.nn.layers",
    "Dropout": "minigrad.nn.layers", "Sequential": "minigrad.nn.layers",
    "ReLU": "minigrad.nn.layers", "Tanh": "minigrad.nn.layers", "Sigmoid": "minigrad.nn.layers",
    "StateDictError": "minigrad.nn.module",
    "RNNCell": "minigrad.nn.rnn", "LSTMCell": "minigrad.nn.rnn", "GRUCell": "minigrad.nn.rnn",
    "RNN": "minigrad.nn.rnn", "LSTM": "minigrad.nn.rnn", "GRU": "minigrad.nn.rnn",
    "ModuleList": "minigrad.nn.containers", "ModuleDict": "minigrad.nn.containers",
    "Softmax": "minigrad.nn.activations", "LogSoftmax": "minigrad.nn.activations",
    "GELU": "minigrad.nn.activations", "Identity": "minigrad.nn.activations",
    "Flatten": "minigrad.nn.activations", "LayerNorm": "minigrad.nn.normalization",
    "CrossEntropyLoss": "minigrad.nn.losses", "NLLLoss": "minigrad.nn.losses",
    "MSELoss": "minigrad.nn.losses", "BCEWithLogitsLoss": "minigrad.nn.losses",
    "Attention": "minigrad.nn.attention",
}
_SUBMODULES = ("functional", "utils", "init", "layers", "rnn", "attention")

__all__ = ["Module", "Parameter", *_LAZY, *_SUBMODULES]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"minigrad.nn.{name}")
    raise AttributeError(f"module 'minigrad.nn' has no attribute {name!r}")
