"""Fused elementwise kernels for the training step: one pass where NumPy makes several.

Beyond its five matrix products (pages 6-7), a training step is elementwise work: the bias
add and ReLU of the forward pass, the softmax cross-entropy's output delta (page 5), and
the optimiser's update of every parameter. NumPy does each operation as its own pass over
memory (Adam's update alone is ten passes over W1), and that work, not the products, is
what kept the step from the speed of its products (issue 12; docs/benchmarks.md has the
measurements). The kernels here do each of those in one pass, compiled by numba.

The NumPy code in `backprop.network`, `backprop.losses` and `backprop.optim` stays the
reference, next to the notes' equations; each kernel repeats its arithmetic in the same
order and in the array's own dtype (scalars are cast to it first, as NumPy does with a
Python float), so that ``tests/test_kernels.py`` can hold them to it. Where only the
exponential's last bit may differ (numba's ``exp`` and ``log`` against NumPy's), the
tests use a relative tolerance.

When they are used (`use_fused`): numba's import and a first compilation cost seconds
(cached on disk after the first run), which a small network never wins back, so the
`Trainer` uses them only when ``steps x parameters`` of the run reaches `FUSED_MIN_WORK`;
``BACKPROP_KERNELS=numpy`` or ``fused`` (or ``Trainer.fit(kernels=...)``) decides instead.
The kernels run in the calling thread: a second thread of their own would spin against
OpenBLAS's threads on the other core (docs/benchmarks.md, "Threads").
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import numpy as np

__all__ = [
    "FUSED_MIN_WORK",
    "KERNEL_CHOICES",
    "KernelsError",
    "available",
    "get",
    "use_fused",
]

#: Steps x parameters from which a run uses the fused kernels: about two seconds of the
#: NumPy update's extra passes (about a nanosecond per parameter per step), more than
#: numba's import and the loading of the cached kernels take.
FUSED_MIN_WORK = 2e9

#: The values of ``BACKPROP_KERNELS`` and of ``kernels=``.
KERNEL_CHOICES = ("auto", "numpy", "fused")

_lock = threading.Lock()
_kernels: SimpleNamespace | None = None
_import_error: str | None = None


class KernelsError(ValueError):
    """An unknown kernel choice, or ``fused`` asked for where numba is missing."""


def _build(cache: bool = True) -> SimpleNamespace:
    """Compile (or load from numba's cache) the kernels; numba is imported here only."""
    import numba

    # error_model="numpy": a division by zero gives inf as in NumPy instead of a Python
    # exception, whose check would keep LLVM from vectorising the loops.
    jit = numba.njit(cache=cache, nogil=True, boundscheck=False, error_model="numpy")

    @jit
    def bias_relu_mask(Z: Any, b: Any, A: Any, F: Any) -> None:  # pragma: no cover
        # Z(l) = A(l-1) W(l) + 1_n b(l) (page 7), F = ReLU'(Z) = 1{Z > 0} (page 2),
        # A = Z * F: `network` does Z += b, then `layers._relu_and_mask`.
        n, m = Z.shape
        for i in range(n):
            for j in range(m):
                z = Z[i, j] + b[j]
                Z[i, j] = z
                if z > 0:
                    F[i, j] = 1
                    A[i, j] = z
                else:  # z * 0: -0.0 for a negative z, NaN for -inf, as NumPy's product
                    F[i, j] = 0
                    A[i, j] = z * F[i, j]

    @jit
    def softmax_xent(S: Any, y: Any, w: Any, total: Any) -> float:  # pragma: no cover
        # delta(L) = dJ/dS = (P - Y) w / total (page 5, the corrected dJ/ds), written over
        # S. Returns J = sum_i w_i loss_i / total, each loss_i = log sum_j e^{s_j - max} -
        # (s_y - max) as `losses` computes it, summed in float64.
        n, c = S.shape
        J = 0.0
        for i in range(n):
            mx = S[i, 0]
            for k in range(1, c):
                if S[i, k] > mx:
                    mx = S[i, k]
            picked = S[i, y[i]] - mx
            norm = np.exp(S[i, 0] - mx)  # in the scores' dtype
            S[i, 0] = norm
            for k in range(1, c):
                e = np.exp(S[i, k] - mx)
                S[i, k] = e
                norm += e
            loss = np.log(norm) - picked
            J += loss * w[i] if w.size else loss
            for k in range(c):
                S[i, k] = S[i, k] / norm
            S[i, y[i]] -= 1
            for k in range(c):
                if w.size:  # sample weights (else every weight is 1)
                    S[i, k] = S[i, k] * w[i] / total
                else:
                    S[i, k] = S[i, k] / total
        return J / total

    @jit
    def sgd(
        p: Any, g: Any, v: Any, lr: Any, mu: Any, lr_mu: Any, wd: Any, kind: int
    ) -> None:  # pragma: no cover
        # kind 0: p -= lr g;  1: v = mu v + g, p -= lr v;  2 (Nesterov): v = mu v + g,
        # p -= lr g, p -= lr mu v. With wd: g = grad + wd p first (`optim.SGD._update`).
        for i in range(p.size):
            pi = p[i]
            gi = g[i]
            if wd != 0:
                gi = pi * wd + gi
            if kind == 0:
                pi = pi - gi * lr
            else:
                vi = v[i] * mu + gi
                v[i] = vi
                if kind == 2:
                    pi = pi - gi * lr
                    pi = pi - vi * lr_mu
                else:
                    pi = pi - vi * lr
            p[i] = pi

    @jit
    def adam(
        p: Any,
        g: Any,
        M: Any,
        V: Any,
        b1: Any,
        b2: Any,
        eps_hat: Any,
        step: Any,
        decay: Any,
        l2: Any,
    ) -> None:  # pragma: no cover
        # M = b1 M + g, V = b2 V + g^2, p -= step M / (sqrt(V) + eps_hat), after
        # p *= decay (AdamW) or g = grad + l2 p (Adam): `optim.Adam._update` in one pass.
        for i in range(p.size):
            pi = p[i]
            if decay != 1:
                pi = pi * decay
            gi = g[i]
            if l2 != 0:
                gi = pi * l2 + gi
            m = M[i] * b1 + gi
            s = V[i] * b2 + gi * gi
            M[i] = m
            V[i] = s
            p[i] = pi - m / (np.sqrt(s) + eps_hat) * step

    return SimpleNamespace(
        bias_relu_mask=bias_relu_mask, softmax_xent=softmax_xent, sgd=sgd, adam=adam
    )


def available() -> bool:
    """Whether numba imports here (the fused kernels can run)."""
    try:
        get()
    except KernelsError:
        return False
    return True


def get() -> SimpleNamespace:
    """The compiled kernels (numba is imported on the first call).

    Raises
    ------
    KernelsError
        If numba cannot be imported.
    """
    global _kernels, _import_error
    if _kernels is not None:  # the hot path: every fused step asks
        return _kernels
    with _lock:
        if _kernels is None and _import_error is None:
            try:
                try:
                    _kernels = _build()
                except RuntimeError:  # numba finds no writable cache directory
                    _kernels = _build(cache=False)
            except ImportError as exc:  # numba missing or broken for this NumPy
                _import_error = str(exc)
        if _kernels is None:
            raise KernelsError(
                f"the fused kernels need numba, which did not import: {_import_error}"
            )
        return _kernels


def check_choice(kernels: str | None, env: Mapping[str, str] | None = None) -> str:
    """The kernel choice in force: ``kernels`` if given, else ``BACKPROP_KERNELS``, else auto."""
    env = os.environ if env is None else env
    choice = kernels if kernels is not None else (env.get("BACKPROP_KERNELS", "").strip() or "auto")
    if choice not in KERNEL_CHOICES:
        source = "kernels" if kernels is not None else "BACKPROP_KERNELS"
        raise KernelsError(f"{source} must be one of {', '.join(KERNEL_CHOICES)}, got {choice!r}")
    return choice


def use_fused(
    n_params: int,
    steps: int,
    kernels: str | None = None,
    env: Mapping[str, str] | None = None,
) -> bool:
    """Whether a run of ``steps`` steps on ``n_params`` parameters uses the fused kernels.

    Parameters
    ----------
    n_params : int
        Parameters of the network.
    steps : int
        Steps the run will take (epochs x batches per epoch).
    kernels : {"auto", "numpy", "fused"}, optional
        Explicit choice; default ``BACKPROP_KERNELS`` from ``env``, else "auto".
    env : mapping, optional
        Default ``os.environ``.

    Returns
    -------
    bool
        "fused": True (numba must import); "numpy": False; "auto": True when
        ``n_params * steps >= FUSED_MIN_WORK`` and numba imports.

    Raises
    ------
    KernelsError
        An unknown choice, or "fused" without numba.
    """
    choice = check_choice(kernels, env)
    if choice == "numpy":
        return False
    if choice == "fused":
        get()
        return True
    return float(n_params) * float(steps) >= FUSED_MIN_WORK and available()
