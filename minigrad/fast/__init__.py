"""The fast floor: what makes minigrad fast, kept beside the readable floor it speeds up.

The readable floor (``minigrad.tensor``, ``function``, ``engine``, ``ops``, ``nn``, ``optim``,
...) states every rule in numpy and is the specification; it reaches this package only through
named hand-offs, each proven equal to the readable computation by tests:

=============================== =============================================================
hand-off                        called from
=============================== =============================================================
``kernels.<name>(...)``         the primitive ops' forward/backward (tanh, sigmoid, Linear,
                                Embedding, cross-entropy), under the formula they compute
``fused.sequence(...)``         ``nn.RNN/LSTM/GRU.forward``: one node per layer direction
``multi_tensor.AdamBatch``      ``optim.Adam.step``: every parameter of a dtype in one call
``multi_tensor.sum_of_squares`` ``nn.utils.clip_grad_norm_``: the total norm in one call
=============================== =============================================================

Modules: ``kernels`` (dispatch: the compiled ``minigrad._ext`` modules built from
``src_ext/*.pyx`` or their numpy twins ``_reference`` / ``_reference_rnn``, chosen as an
explicit ``Implementation`` object), ``fused`` (the fused sequence Functions), ``multi_tensor``
(optimizer and norm over many arrays at once), ``threads`` (kernel workers and BLAS threads)
and ``memory`` (glibc heap tuning). Importing minigrad changes nothing in the process: threads
and memory settings are applied by the first kernel call (``kernels.apply_speed_settings``).
"""
