"""backprop: the classic backpropagation lecture notes as tested, fast NumPy code."""

__version__ = "0.1.0"
