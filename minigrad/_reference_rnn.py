"""Pure-numpy twins of the recurrent kernels in src_ext/ (RNN, LSTM, GRU over a sequence).

Same signatures as the compiled kernels; derivation steps numbered identically in the .pyx."""
from __future__ import annotations

import numpy as np  # noqa: F401
