"""``minigrad.nn.functional``: the user-level functions (as torch.nn.functional)."""
from minigrad.functional import *  # noqa: F401,F403
from minigrad.functional import __all__  # noqa: F401
