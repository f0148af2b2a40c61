"""`MLPRegressor`: identity outputs and half the squared error."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import RegressorMixin
from sklearn.utils.metaestimators import available_if

from backprop.estimators.lbfgs import LbfgsSolver
from backprop.estimators.modelfile import ModelFileMixin
from backprop.estimators.stochastic import StochasticSolver, has_partial_fit

__all__ = ["MLPRegressor"]


class MLPRegressor(RegressorMixin, StochasticSolver, LbfgsSolver, ModelFileMixin):
    """Multi-layer perceptron regressor (half squared error), scikit-learn compatible.

    Parameters are those of `MLPClassifier`; ``early_stopping`` uses the validation R^2.
    Targets may be (n_samples,) or (n_samples, n_outputs).

    Attributes
    ----------
    coefs_, intercepts_, loss_, best_loss_, loss_curve_, validation_scores_,
    best_validation_score_, n_iter_, t_, n_features_in_, feature_names_in_, n_layers_
        As in `MLPClassifier`. ``loss_`` is ``1/(2n) sum_i ||y_i - o_i||^2`` (summed over
        the outputs, see ``docs/estimators.md``) plus the L2 term.
    n_outputs_ : int
        Number of targets.
    out_activation_ : str
        ``"identity"``.

    Examples
    --------
    >>> import numpy as np
    >>> from backprop.estimators import MLPRegressor
    >>> X = np.linspace(-1, 1, 50).reshape(-1, 1)
    >>> reg = MLPRegressor((8,), max_iter=20, random_state=0).fit(X, np.c_[X, -X])
    >>> reg.predict(X).shape
    (50, 2)
    """

    _loss = "squared_error"
    _losses = ("squared_error",)

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> Any:
        """Train on X, y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(has_partial_fit)
    def partial_fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> Any:
        """One epoch over X, y, continuing from the current weights and optimiser state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def _prepare_y(
        self, y: np.ndarray, first_pass: bool, incremental: bool, classes: ArrayLike | None
    ) -> tuple[np.ndarray, int]:
        y2 = y.reshape(len(y), -1)
        if not first_pass and y2.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has {y2.shape[1]} target(s) but the network was fitted with "
                f"{self.n_outputs_}; set warm_start=False to start afresh"
            )
        return y2, y2.shape[1]

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted targets, in the network's dtype.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            1-D when the regressor was fitted on one target.
        """
        out = self._forward(X)
        return out[:, 0] if out.shape[1] == 1 else out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
