"""Neural-network modules (mirrors torch.nn names and weight layouts)."""
from minigrad.nn.module import Module, Parameter

__all__ = ["Module", "Parameter"]
