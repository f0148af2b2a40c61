"""``solver="lbfgs"``: scikit-learn's ``_fit_lbfgs``, the one full-batch path beside the
engine's `Trainer`: scipy's L-BFGS-B over one flat view of the parameters, with the
engine's ``loss_and_grads`` (the notes' backward pass, pages 4-7) plus the ``alpha``
penalty as the objective.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backprop.estimators.base import NON_FINITE, MLPBase, l2_penalty
from backprop.network import MLP, flat_views

__all__ = ["LbfgsSolver", "flatten_params"]


def flatten_params(net: MLP) -> np.ndarray:
    """Make the network's parameters views into one flat buffer (once; kept after).

    Parameters
    ----------
    net : MLP
        Its ``params`` are replaced by the views, unless they already are.

    Returns
    -------
    flat : ndarray of shape (net.n_params,)
        The buffer, which L-BFGS reads and writes as one vector.
    """
    base = next(iter(net.params.values())).base
    if (
        isinstance(base, np.ndarray)
        and base.ndim == 1
        and base.size == net.n_params
        and all(p.base is base for p in net.params.values())
    ):
        return base
    flat = np.empty(net.n_params, net.dtype)
    views = flat_views(net.params, flat)
    for key, p in net.params.items():
        views[key][...] = p
    net.params = views
    return flat


class LbfgsSolver(MLPBase):
    """``solver="lbfgs"``: full-batch L-BFGS-B (scipy) on the whole data."""

    def _fit_lbfgs(self, net: MLP, X: np.ndarray, y: np.ndarray, sw: np.ndarray | None) -> None:
        """scikit-learn's ``_fit_lbfgs``.

        Each evaluation copies scipy's point into the network's flat buffer and nothing
        else of parameter size.
        """
        from scipy.optimize import minimize
        from sklearn.utils.optimize import _check_optimize_result

        flat = flatten_params(net)
        self._set_structure()  # coefs_ are the views now
        if self._optimizer is not None:
            # An earlier sgd/adam fit's optimiser (for a later partial_fit) follows the
            # parameters into the flat buffer.
            self._optimizer.rebind(net.params)
        gflat = np.empty_like(flat)
        grads = flat_views(net.params, gflat)
        total = float(X.shape[0]) if sw is None else float(sw.sum())
        penalty = l2_penalty(net, float(self.alpha)) if self.alpha else None

        def loss_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
            np.copyto(flat, x, casting="same_kind")
            J, _ = net.loss_and_grads(X, y, sample_weight=sw, grads=grads, check=False)
            if penalty is not None:
                J += penalty(grads, total)
            # scipy works in float64 and may keep the gradient it is given: a copy.
            return J, gflat.astype(np.float64)

        def record(intermediate_result: Any) -> None:
            self.loss_curve_.append(float(intermediate_result.fun))
            if self.verbose:
                print(f"Iteration {len(self.loss_curve_)}, loss = {self.loss_curve_[-1]:.8f}")

        self.loss_curve_ = []
        res = minimize(
            loss_grad,
            flat.astype(np.float64),
            method="L-BFGS-B",
            jac=True,
            callback=record,
            options={"maxfun": int(self.max_fun), "maxiter": int(self.max_iter), "gtol": self.tol},
        )
        # scikit-learn's own check: its ConvergenceWarning wording, n_iter_ = min(nit, max_iter).
        self.n_iter_ = _check_optimize_result("lbfgs", res, int(self.max_iter))
        np.copyto(flat, res.x, casting="same_kind")
        self.loss_ = float(res.fun)
        self.best_loss_ = min(self.loss_curve_, default=self.loss_)
        self.t_ += X.shape[0] * self.n_iter_
        # scikit-learn's check and wording (the stochastic solvers stop earlier, at the
        # first non-finite loss, with `TrainingDiverged`).
        if not np.isfinite(flat).all():
            raise ValueError(NON_FINITE)
