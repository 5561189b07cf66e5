"""Primitive Functions, one class per op. Kernels are called as ``kernels.name(...)`` (module
attribute, never imported by name) so that ``kernels.use()`` switches them at run time."""
