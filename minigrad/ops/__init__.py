"""Primitive Functions, one class per op, each with its local-gradient rule in its backward.
Where a compiled kernel runs a rule, it is called by name from the fast floor as
``kernels.name(...)`` (``from minigrad.fast import kernels``; the module attribute, so that
``kernels.use()`` switches implementations at run time)."""
