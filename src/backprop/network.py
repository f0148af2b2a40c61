"""`MLP`: the engine. The notes' two-layer network generalised to any depth.

The notes derive, for one hidden layer (Alg 3, page 4 and page 6),

    delta(2) = dJ/dS,    delta(1) = (delta(2) W(2)^T) * ReLU'(Z(1)),
    dJ/dW(l) = A(l-1)^T delta(l),    dJ/db(l) = 1_n^T delta(l),

in the "in practice" row layout of page 7 (X is n x d, W(l) is fan_in x fan_out). The same
recursion, delta(l) = (delta(l+1) W(l+1)^T) * f'(Z(l)), holds for every hidden layer of a
deeper network, and that is all `MLP.loss_and_grads` does.

For speed, the training pass writes into buffers preallocated per batch size and uses
in-place NumPy operations, so float32 stays float32 and a step allocates (almost) nothing;
prediction has its own lean forward pass that keeps no cache and runs in chunks.

Sparse X (scipy.sparse CSR, matrix or array; issue 17) is never densified: only the first
layer touches X, as the product X W(1) and the weight gradient X^T delta(1), and both are
sparse-dense products (the rest of the network is dense whatever X is).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from backprop import kernels
from backprop.layers import Activation, get_activation
from backprop.losses import FUSED_LOSSES, LOSSES, PREDICTIONS

__all__ = ["MLP", "issparse"]


def issparse(X: object) -> bool:
    """Whether ``X`` is a scipy.sparse matrix or array, without importing scipy.

    A sparse X can only exist once ``scipy.sparse`` is loaded, so a dense run never pays
    for importing it (a seventh of ``backprop``'s start-up).
    """
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and bool(sparse.issparse(X))


_PREDICT_CHUNK = 8192  # rows per chunk in `forward`: bounds memory for a huge X


class _Buffers:
    """Forward caches and backward deltas for one batch size (the notes keep Z and A).

    Z[l] : (n, fan_out of layer l+1), pre-activations; Z[-1] holds the scores S, then
        delta at the output (the loss gradient is written over the scores).
    A[l] : (n, width of hidden layer l+1), activations.
    D[l] : (n, width of hidden layer l+1), first dJ/dA, then delta = dJ/dZ in place.
    F[l] : (n, width of hidden layer l+1), f'(Z[l]).
    ones : (n,), the notes' 1_n, so that dJ/db = 1_n^T delta is one BLAS call.
    X0 : (n, d), the inputs after input dropout (allocated on first use).
    """

    def __init__(self, n: int, layer_sizes: Sequence[int], dtype: np.dtype) -> None:
        self.Z = [np.empty((n, width), dtype) for width in layer_sizes[1:]]
        self.A = [np.empty((n, width), dtype) for width in layer_sizes[1:-1]]
        self.D = [np.empty((n, width), dtype) for width in layer_sizes[1:-1]]
        self.F = [np.empty((n, width), dtype) for width in layer_sizes[1:-1]]
        self.ones = np.ones(n, dtype)
        self.X0: np.ndarray | None = None


class MLP:
    """A fully connected network trained by backpropagation.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[d, m1, ..., c]``: input width, hidden widths, output width. ``[d, m, c]`` is the
        notes' two-layer network.
    activation : str, default "relu"
        Activation of every hidden layer, a key of `backprop.layers.ACTIVATIONS` ("relu",
        "tanh", "sigmoid", "identity"). The output layer is linear (scores).
    loss : {"softmax_cross_entropy", "sigmoid_binary_cross_entropy", "squared_error", \
"poisson"}, default "softmax_cross_entropy"
        Classification (softmax on the scores), multilabel classification (an independent
        sigmoid per output), regression, or Poisson regression (the scores are log-means,
        the prediction e^s); a key of `backprop.losses.LOSSES`.
    dtype : {np.float32, np.float64}, default np.float32
        Type of parameters and of every computation.
    seed : int or None, default 0
        Seed of the weight initialisation, the activation's own (`Activation.init_weights`:
        He normal, std sqrt(2 / fan_in), for ReLU; Glorot uniform, limit
        sqrt(6 / (fan_in + fan_out)), for the others); biases start at 0.

    Attributes
    ----------
    params : dict of str to ndarray
        ``"W1"`` of shape (d, m1), ``"b1"`` of shape (m1,), ..., ``"WL"`` of shape
        (m_{L-1}, c), ``"bL"`` of shape (c,): W stored (fan_in, fan_out), page 7's layout.

    Examples
    --------
    >>> import numpy as np, backprop
    >>> net = backprop.MLP([4, 8, 3], seed=0)
    >>> X = np.ones((5, 4), np.float32)
    >>> loss, grads = net.loss_and_grads(X, np.array([0, 1, 2, 0, 1]))
    >>> grads["W1"].shape, net.forward(X).shape
    ((4, 8), (5, 3))
    """

    #: Run the training pass's bias add + activation and the loss through the one-pass
    #: kernels of `backprop.kernels` (same numbers as the NumPy code, which stays the
    #: reference). Off by default; `backprop.trainer.Trainer.fit` sets it for large runs.
    fused: bool = False

    def __init__(
        self,
        layer_sizes: Sequence[int],
        activation: str = "relu",
        loss: str = "softmax_cross_entropy",
        dtype: DTypeLike = np.float32,
        seed: int | None = 0,
    ) -> None:
        sizes = list(layer_sizes)
        if len(sizes) < 2:
            raise ValueError(f"layer_sizes needs at least an input and an output size, got {sizes}")
        if not all(isinstance(s, int | np.integer) and not isinstance(s, bool) for s in sizes):
            raise ValueError(f"layer_sizes must be whole numbers, got {sizes}")
        if any(s < 1 for s in sizes):
            raise ValueError(f"every layer size must be at least 1, got {sizes}")
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
        if loss == "softmax_cross_entropy" and sizes[-1] < 2:
            raise ValueError("softmax_cross_entropy needs at least 2 output classes")
        self._act = get_activation(activation)
        dt = np.dtype(dtype)
        if dt not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dt}")
        self.layer_sizes: tuple[int, ...] = tuple(int(s) for s in sizes)
        self.activation = activation
        self.loss = loss
        self.dtype = dt
        self._loss_fn = LOSSES[loss]
        self._buffers: dict[int, _Buffers] = {}
        # Parameter names per layer, built once: the hot path formats no strings.
        self._W_keys = [f"W{l}" for l in range(1, len(sizes))]
        self._b_keys = [f"b{l}" for l in range(1, len(sizes))]
        self.params: dict[str, np.ndarray] = {}
        self.init_params(seed)

    # ----------------------------------------------------------------- structure
    @property
    def n_layers(self) -> int:
        """Number of weight layers L (2 for the notes' network)."""
        return len(self.layer_sizes) - 1

    @property
    def n_inputs(self) -> int:
        """Input width d."""
        return self.layer_sizes[0]

    @property
    def n_outputs(self) -> int:
        """Output width c (classes or regression targets)."""
        return self.layer_sizes[-1]

    @property
    def is_classifier(self) -> bool:
        """True for softmax cross-entropy."""
        return self.loss == "softmax_cross_entropy"

    @property
    def is_multilabel(self) -> bool:
        """True for independent sigmoid outputs (binary cross-entropy per label)."""
        return self.loss == "sigmoid_binary_cross_entropy"

    @property
    def is_binary(self) -> bool:
        """True for scikit-learn's binary layout: one sigmoid output, the probability of
        the second class."""
        return self.is_multilabel and self.n_outputs == 1

    @property
    def act(self) -> Activation:
        """The hidden layers' activation: f, f' and the initialisation (`backprop.layers`)."""
        return self._act

    @property
    def n_params(self) -> int:
        """Total number of scalar parameters."""
        return sum(p.size for p in self.params.values())

    def __getstate__(self) -> dict[str, Any]:
        # The work buffers are scratch, rebuilt on the next pass: not pickled (a
        # memory-mapped joblib reload would make them read-only, and they can be large).
        return {**self.__dict__, "_buffers": {}}

    def __repr__(self) -> str:
        return (
            f"MLP({list(self.layer_sizes)}, activation={self.activation!r}, "
            f"loss={self.loss!r}, dtype=np.{self.dtype.name})"
        )

    def init_params(self, seed: int | None = 0) -> None:
        """(Re)initialise every parameter in place of the old dict, seeded.

        Parameters
        ----------
        seed : int or None
            Seed for ``numpy.random.default_rng``.
        """
        rng = np.random.default_rng(seed)
        params: dict[str, np.ndarray] = {}
        for l, (fan_in, fan_out) in enumerate(
            zip(self.layer_sizes[:-1], self.layer_sizes[1:], strict=True), start=1
        ):
            # Every layer, the output one included, is drawn as the hidden activation
            # asks (He normal for ReLU, Glorot uniform otherwise: `layers.ACTIVATIONS`).
            W = self._act.init_weights(rng, fan_in, fan_out)
            params[f"W{l}"] = W.astype(self.dtype)
            params[f"b{l}"] = np.zeros(fan_out, self.dtype)
        self.params = params

    # ----------------------------------------------------------------- validation
    def check_X(self, X: Any) -> np.ndarray:
        """Validate inputs and return them as a C-contiguous array of the network's dtype.

        Parameters
        ----------
        X : array-like or scipy.sparse matrix/array of shape (n, d)

        Returns
        -------
        X : ndarray of shape (n, d), or scipy.sparse CSR of shape (n, d) for sparse input
            (CSR: the training loop slices rows)

        Raises
        ------
        ValueError
            If X is not 2-D, has the wrong width, no rows, or NaN/inf values.
        """
        if issparse(X):
            return self._check_sparse_X(X)
        X = np.asarray(X)
        if X.ndim != 2:
            hint = " (for one example use X.reshape(1, -1))" if X.ndim == 1 else ""
            raise ValueError(f"X must be 2-D of shape (n, {self.n_inputs}), got {X.shape}{hint}")
        if X.shape[1] != self.n_inputs:
            raise ValueError(
                f"X has {X.shape[1]} features per row but the network expects {self.n_inputs}"
            )
        if X.shape[0] == 0:
            raise ValueError("X is empty: the batch has no rows")
        if not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
            raise ValueError(f"X must be real numbers, got dtype {X.dtype}")
        X = np.ascontiguousarray(X, dtype=self.dtype)
        if not np.isfinite(X).all():
            bad = int(np.count_nonzero(~np.isfinite(X)))
            raise ValueError(f"X contains {bad} NaN or infinite value(s)")
        return X

    def _check_sparse_X(self, X: Any) -> Any:
        """`check_X` for scipy.sparse input: CSR in the network's dtype, finite stored values."""
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise ValueError(f"X must be 2-D of shape (n, {self.n_inputs}), got {X.shape}")
        if X.shape[0] == 0:
            raise ValueError("X is empty: the batch has no rows")
        if not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X.data):
            raise ValueError(f"X must be real numbers, got dtype {X.dtype}")
        X = X.tocsr().astype(self.dtype, copy=False)
        if not np.isfinite(X.data).all():
            bad = int(np.count_nonzero(~np.isfinite(X.data)))
            raise ValueError(f"X contains {bad} NaN or infinite value(s)")
        return X

    def check_y(self, y: ArrayLike, n: int) -> np.ndarray:
        """Validate targets for a batch of n examples.

        Parameters
        ----------
        y : array-like
            Class labels in ``0 .. c-1`` of shape (n,) for classification; a 0/1 indicator
            matrix of shape (n, c) for multilabel classification; targets of shape (n,)
            (one output) or (n, c) for regression.
        n : int
            Number of rows of the matching X.

        Returns
        -------
        y : ndarray
            int64 labels of shape (n,), or indicators or targets of shape (n, c) in the
            network's dtype.

        Raises
        ------
        ValueError
            On a length mismatch, labels that are not integers or out of range, a wrong
            number of regression targets, or NaN/inf targets.
        """
        y = np.asarray(y)
        if y.shape[:1] != (n,):
            raise ValueError(f"y has {y.shape[0] if y.ndim else 0} entries but X has {n} rows")
        c = self.n_outputs
        if self.is_classifier:
            if y.ndim != 1:
                raise ValueError(f"class labels must be 1-D of shape ({n},), got {y.shape}")
            if not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
                raise ValueError(f"class labels must be integers 0..{c - 1}, got dtype {y.dtype}")
            if y.min() < 0 or y.max() >= c:
                raise ValueError(
                    f"class label out of range: labels must be in 0..{c - 1}, "
                    f"got min {y.min()} and max {y.max()}"
                )
            return y.astype(np.int64, copy=False)
        if self.is_multilabel:
            if y.ndim != 2 or y.shape[1] != c:
                raise ValueError(
                    f"multilabel targets must be a 0/1 indicator matrix of shape ({n}, {c}), "
                    f"got {y.shape}"
                )
            if (
                not (np.issubdtype(y.dtype, np.number) or y.dtype == bool)
                or not np.isin(y, (0, 1)).all()
            ):
                raise ValueError("multilabel targets must be 0 or 1 (an indicator matrix)")
            return np.ascontiguousarray(y, dtype=self.dtype)
        if not np.issubdtype(y.dtype, np.number):
            raise ValueError(f"regression targets must be numbers, got dtype {y.dtype}")
        if y.ndim == 1:
            y = y.reshape(n, 1)
        if y.ndim != 2 or y.shape[1] != c:
            raise ValueError(f"regression targets must have shape ({n}, {c}), got {y.shape}")
        y = np.ascontiguousarray(y, dtype=self.dtype)
        if not np.isfinite(y).all():
            raise ValueError(f"y contains {int(np.count_nonzero(~np.isfinite(y)))} NaN or inf")
        return y

    # ----------------------------------------------------------------- prediction
    def forward(self, X: Any, *, check: bool = True) -> np.ndarray:
        """Outputs of the network (scores for classification), in chunks of rows.

        Parameters
        ----------
        X : array-like or scipy.sparse matrix/array of shape (n, d)
        check : bool, default True
            Validate X first (skip only for data already checked; sparse X must then be
            CSR).

        Returns
        -------
        out : ndarray of shape (n, c)
        """
        if check:
            X = self.check_X(X)
        elif not issparse(X):
            X = np.asarray(X, dtype=self.dtype)
        out = np.empty((X.shape[0], self.n_outputs), self.dtype)
        for start in range(0, X.shape[0], _PREDICT_CHUNK):
            stop = start + _PREDICT_CHUNK
            out[start:stop] = self._forward_lean(X[start:stop])
        return out

    def _forward_lean(self, X: np.ndarray) -> np.ndarray:
        """Forward pass without caches: each activation overwrites its pre-activation.

        A sparse X (CSR rows) needs nothing special: ``X @ W`` is scipy's sparse-dense
        product, a dense (n, m) array."""
        A = X
        for l in range(1, self.n_layers + 1):
            Z = A @ self.params[f"W{l}"]  # Z = A W + 1_n b (page 7)
            Z += self.params[f"b{l}"]
            if l < self.n_layers:
                self._act.forward(Z, out=Z)
            A = Z
        return A

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities softmax(S), or per-label sigmoid(S) for multilabel.

        Parameters
        ----------
        X : array-like of shape (n, d)

        Returns
        -------
        p : ndarray of shape (n, c)
        """
        if not (self.is_classifier or self.is_multilabel):
            raise ValueError(f"predict_proba needs a classifier, not loss={self.loss!r}")
        scores = self.forward(X)
        return PREDICTIONS[self.loss](scores, out=scores)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Class indices for classification, predicted values for regression.

        Parameters
        ----------
        X : array-like of shape (n, d)

        Returns
        -------
        y : ndarray of shape (n,) or (n, c)
            int64 class indices of shape (n,) for a classifier; the int64 0/1 indicator
            matrix (n, c) for multilabel (sigmoid(s) > 0.5, i.e. s > 0); for a regressor
            its loss's prediction from the outputs (`backprop.losses.PREDICTIONS`: the
            outputs themselves, or the Poisson mean e^s), of shape (n,) when it has one
            output and (n, c) otherwise (fixed by the network, never by n).
        """
        out = self.forward(X)
        if self.is_multilabel:
            return (out > 0).astype(np.int64)
        if self.is_classifier:
            return out.argmax(axis=1)
        out = PREDICTIONS[self.loss](out, out=out)
        return out[:, 0] if self.n_outputs == 1 else out

    # ----------------------------------------------------------------- training pass
    def _buffers_for(self, n: int) -> _Buffers:
        buf = self._buffers.get(n)
        if buf is None:
            if len(self._buffers) >= 2:  # a full batch size and a last partial one
                self._buffers.pop(next(iter(self._buffers)))
            buf = self._buffers[n] = _Buffers(n, self.layer_sizes, self.dtype)
        return buf

    def compute_loss(self, X: ArrayLike, y: ArrayLike) -> float:
        """The loss J on a batch, without gradients.

        Parameters
        ----------
        X : array-like of shape (n, d)
        y : array-like
            As in `loss_and_grads`.

        Returns
        -------
        J : float
        """
        X = self.check_X(X)
        y = self.check_y(y, X.shape[0])
        return self._loss_fn(self.forward(X, check=False), y)[0]

    def loss_and_grads(
        self,
        X: Any,
        y: ArrayLike,
        *,
        sample_weight: ArrayLike | None = None,
        grads: dict[str, np.ndarray] | None = None,
        check: bool = True,
        masks: Sequence[np.ndarray | None] | None = None,
        label_smoothing: float = 0.0,
    ) -> tuple[float, dict[str, np.ndarray]]:
        """Forward pass, loss, and backpropagation (the notes' Alg 3 in row layout).

        Parameters
        ----------
        X : array-like or scipy.sparse CSR of shape (n, d)
            A batch of examples, one per row (sparse: sparse-dense products in the first
            layer, X never densified).
        y : array-like
            int labels of shape (n,) for a classifier; targets of shape (n,) or (n, c)
            for a regressor.
        sample_weight : array-like of shape (n,), optional
            Per-example weights; J becomes their weighted mean.
        grads : dict of str to ndarray, optional
            Arrays shaped like ``params`` to write the gradients into (the training loop
            preallocates them). By default a fresh dict is returned; nothing is kept or
            accumulated between calls.
        check : bool, default True
            Validate X and y (skip only for data already checked).
        masks : sequence of (ndarray or None), optional
            Inverted dropout (``docs/training.md``): ``masks[0]`` of shape (n, d) for the
            inputs and ``masks[l]`` of shape (n, m_l) for hidden layer l, each the 0/1 mask
            M already divided by its keep probability (None: no dropout there). The forward
            pass uses A(l) = f(Z(l)) * M(l) and the backward pass the same product,
            delta(l) = dJ/dA(l) * f'(Z(l)) * M(l). Training only; prediction never drops.
        label_smoothing : float, default 0.0
            Classifier only: train against (1 - e) onehot(y) + e / c
            (`backprop.losses.softmax_cross_entropy`).

        Returns
        -------
        J : float
            Mean loss over the batch.
        grads : dict of str to ndarray
            dJ/dW1, dJ/db1, ...: same keys and shapes as ``params``.
        """
        if check:
            X = self.check_X(X)
            y = self.check_y(y, X.shape[0])
        else:
            X = X if issparse(X) else np.asarray(X)
            y = np.asarray(y)
            if not self.is_classifier and y.ndim == 1:
                y = y.reshape(-1, 1)
        w = None if sample_weight is None else np.asarray(sample_weight, self.dtype)
        # Finite, and so is their sum in the network's dtype (the loss divides by it):
        # an infinite weight would turn J and every gradient into NaN.
        if w is not None and (
            w.shape != (X.shape[0],) or not np.all(w >= 0) or not 0 < w.sum() < np.inf
        ):
            raise ValueError(
                f"sample_weight must be {X.shape[0]} finite non-negative numbers with a "
                "positive finite sum"
            )
        if grads is None:
            grads = {k: np.empty_like(p) for k, p in self.params.items()}
        L = self.n_layers
        P = self.params
        W, b = self._W_keys, self._b_keys
        buf = self._buffers_for(X.shape[0])
        act = self._act
        # An activation whose forward pass yields f'(Z) for free (ReLU's mask) writes it into
        # F now; the others compute f'(Z) in the backward pass, unless dropout scales A (then
        # f'(Z) is taken from the unscaled A here, and F holds f'(Z) * M from the start).
        fused = act.f_and_f_prime
        drop = [None] * L if masks is None else list(masks)
        if len(drop) != L:
            raise ValueError(f"masks must have {L} entries (inputs, then each hidden layer)")
        fprime_in_forward = fused is not None or any(m is not None for m in drop[1:])
        # Running fused (`backprop.kernels`, set by the Trainer for large runs): the bias
        # add and f_and_f_prime in one pass, and the loss in one pass; the same numbers.
        kern = kernels.get() if self.fused else None
        bias_f_fprime = (
            getattr(kern, act.fused_kernel)
            if kern is not None and act.fused_kernel and fused is not None
            else None
        )

        # Forward (page 7): Z(l) = A(l-1) W(l) + 1_n b(l),  A(l) = f(Z(l)),  A(0) = X.
        sparse = issparse(X)
        if drop[0] is not None:
            if sparse:  # the mask keeps X's zeros: the product stays sparse
                # X is sparse, so scipy.sparse is loaded: no import needed here.
                X = sys.modules["scipy.sparse"].csr_matrix(X.multiply(drop[0]))
            else:
                if buf.X0 is None:
                    buf.X0 = np.empty_like(X, dtype=self.dtype)
                X = np.multiply(X, drop[0], out=buf.X0)  # input dropout: A(0) = X * M(0)
        A_prev = X
        for l in range(L):
            if sparse and l == 0:  # scipy's sparse-dense product, X W(1) (page 7)
                Z = buf.Z[0]
                Z[...] = X @ P[W[0]]
            else:
                Z = np.matmul(A_prev, P[W[l]], out=buf.Z[l])
            if l == L - 1:  # the output layer: the scores S, no activation
                Z += P[b[l]]
                continue
            A_prev = buf.A[l]
            if bias_f_fprime is not None:
                bias_f_fprime(Z, P[b[l]], A_prev, buf.F[l])  # Z += b, f and f' at once
            else:
                Z += P[b[l]]
                if fused is not None:
                    fused(Z, A_prev, buf.F[l])
                else:
                    act.f(Z, A_prev)
                    if fprime_in_forward:
                        act.f_prime(Z, A_prev, buf.F[l])
            M = drop[l + 1]
            if M is not None:  # A = f(Z) * M, and dA/dZ = f'(Z) * M
                A_prev *= M
                buf.F[l] *= M

        # Output delta: delta(L) = dJ/dS, written over the scores S (page 5).
        # Label smoothing is an option of the cross-entropy alone (issue 15).
        smooth = {"label_smoothing": label_smoothing} if label_smoothing else {}
        loss_fn = self._loss_fn
        if kern is not None and not label_smoothing:
            loss_fn = FUSED_LOSSES.get(self.loss, loss_fn)
        J, delta = loss_fn(buf.Z[L - 1], y, out=buf.Z[L - 1], sample_weight=w, **smooth)

        # Backward (pages 6-7), from the last layer to the first.
        for l in range(L - 1, -1, -1):
            if sparse and l == 0:  # dJ/dW(1) = X^T delta(1), sparse-dense (CSC times dense)
                grads[W[0]][...] = X.T @ delta
            else:
                A_prev = np.asarray(X) if l == 0 else buf.A[l - 1]  # (no copy: X is an array)
                np.matmul(A_prev.T, delta, out=grads[W[l]])  # dJ/dW = A^T delta
            np.matmul(buf.ones, delta, out=grads[b[l]])  # dJ/db = 1_n^T delta
            if l > 0:
                dJ_dA = np.matmul(delta, P[W[l]].T, out=buf.D[l - 1])  # delta W^T
                # delta(l) = dJ/dA * f'(Z(l)), in place in the same buffer.
                fprime = buf.F[l - 1]
                if not fprime_in_forward:  # else F holds f'(Z) (* M) since the forward pass
                    act.f_prime(buf.Z[l - 1], buf.A[l - 1], fprime)
                delta = np.multiply(dJ_dA, fprime, out=dJ_dA)
        return J, grads


def flat_views(arrays: Mapping[str, np.ndarray], flat: np.ndarray) -> dict[str, np.ndarray]:
    """Views into ``flat``, in the order and shapes of ``arrays``.

    One flat buffer behind all of a network's gradients (or parameters) lets one call
    treat them as one vector: an Allreduce across ranks, scipy's L-BFGS.

    Parameters
    ----------
    arrays : mapping of str to ndarray
        The shapes, in order (``net.params``).
    flat : ndarray of shape (m,), m >= the total size of ``arrays``

    Returns
    -------
    dict of str to ndarray
        ``views[k]`` has ``arrays[k]``'s shape and shares memory with ``flat``.
    """
    views, start = {}, 0
    for key, a in arrays.items():
        views[key] = flat[start : start + a.size].reshape(a.shape)
        start += a.size
    return views
