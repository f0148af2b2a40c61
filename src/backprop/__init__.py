"""backprop: the classic backpropagation lecture notes as tested, fast NumPy code.

The public API: `MLP` (the engine), `notes` (the notes' equations, literally), and
`gradcheck` (finite-difference checks).
"""

from backprop.network import MLP

__all__ = ["MLP"]
__version__ = "0.1.0"
