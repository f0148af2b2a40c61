"""The package version, in a module of its own: the model files, ``metrics.json`` and the
CLI record it, and they sit below ``backprop/__init__.py``, which imports them."""

__version__ = "0.1.0"
