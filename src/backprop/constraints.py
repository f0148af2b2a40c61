"""Weight constraints applied after each optimiser step: max-norm.

Max-norm (Srivastava et al. 2014, section 5.1) bounds the incoming weight vector of every
hidden unit: after each update, each column w of W(l) (the notes' row layout, page 7:
W(l) is fan_in x fan_out, so column j holds the weights *into* unit j) is projected onto
the ball ||w||_2 <= c,

    w <- w * min(1, c / ||w||_2),

which is PyTorch's ``torch.renorm(W, p=2, dim=1, maxnorm=c)``. It is a projection, not a
penalty: the gradient of page 6 is unchanged; the step is taken, then pulled back. The
output layer is left free (its scores set the softmax's confidence).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from backprop.checks import check_real

__all__ = ["MaxNorm"]


class MaxNorm:
    """Rescale each hidden unit's incoming weights to norm <= ``c``, in place.

    The column norms are computed into buffers preallocated here, so a call allocates
    nothing of its own (it runs after every training step).

    Parameters
    ----------
    params : mapping of str to ndarray
        The network's ``params`` (``"W1"``, ``"b1"``, ...), updated in place by each call.
    n_layers : int
        Weight layers L; ``W1`` .. ``W{L-1}`` (the hidden layers) are constrained.
    c : float
        The bound, > 0.

    Examples
    --------
    >>> import numpy as np
    >>> params = {"W1": np.array([[3.0, 0.1], [4.0, 0.1]]), "W2": np.ones((2, 1))}
    >>> MaxNorm(params, 2, 1.0)()
    >>> params["W1"]
    array([[0.6, 0.1],
           [0.8, 0.1]])
    """

    def __init__(self, params: Mapping[str, np.ndarray], n_layers: int, c: float) -> None:
        self.c = check_real("max_norm", c, low=0.0, low_open=True)
        self._weights = [params[f"W{l}"] for l in range(1, n_layers)]
        self._norms = [np.empty(W.shape[1], W.dtype) for W in self._weights]

    def __call__(self) -> None:
        """Project every constrained column onto the ball of radius ``c``."""
        c = self.c
        for W, norms in zip(self._weights, self._norms, strict=True):
            np.einsum("ij,ij->j", W, W, out=norms)  # squared column norms
            np.sqrt(norms, out=norms)
            # c / max(||w||, c) is min(1, c / ||w||), and 1 for a zero column.
            np.maximum(norms, c, out=norms)
            np.divide(c, norms, out=norms)
            W *= norms  # broadcast over rows: column j times its factor
