"""The foundation: Model, TensorSpec, errors, tolerances, precision, data, results, the registry.

Nothing in ``workbench.core`` imports anything above it.
"""
