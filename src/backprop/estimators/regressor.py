"""`MLPRegressor`: identity outputs and half the squared error, or (``loss="poisson"``)
log-mean outputs, the prediction e^s, and the half Poisson deviance."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import RegressorMixin
from sklearn.utils.metaestimators import available_if

from backprop.checks import check_choice
from backprop.estimators.base import REGRESSION_LOSSES
from backprop.estimators.lbfgs import LbfgsSolver
from backprop.estimators.modelfile import ModelFileMixin
from backprop.estimators.stochastic import StochasticSolver, has_partial_fit
from backprop.losses import PREDICTIONS

__all__ = ["MLPRegressor"]


class MLPRegressor(RegressorMixin, StochasticSolver, LbfgsSolver, ModelFileMixin):
    """Multi-layer perceptron regressor (half squared error, or half Poisson deviance),
    scikit-learn compatible.

    Parameters are those of `MLPClassifier`, and scikit-learn's ``loss``;
    ``early_stopping`` uses the validation R^2. Targets may be (n_samples,) or
    (n_samples, n_outputs).

    Parameters
    ----------
    loss : {"squared_error", "poisson"}, default "squared_error"
        Keyword only. "poisson": the half Poisson deviance with a log link
        (`backprop.losses.half_poisson_deviance`): the network's outputs are log-means s,
        `predict` gives e^s, and y must be >= 0. ``early_stopping`` is not available with
        it (``docs/estimators.md``).

    Attributes
    ----------
    coefs_, intercepts_, loss_, best_loss_, loss_curve_, validation_scores_,
    best_validation_score_, n_iter_, t_, n_features_in_, feature_names_in_, n_layers_
        As in `MLPClassifier`. ``loss_`` is ``1/(2n) sum_i ||y_i - o_i||^2`` (summed over
        the outputs, see ``docs/estimators.md``), or the mean half Poisson deviance,
        plus the L2 term.
    n_outputs_ : int
        Number of targets.
    out_activation_ : str
        ``"identity"``; ``"exp"`` for ``loss="poisson"``.

    Examples
    --------
    >>> import numpy as np
    >>> from backprop.estimators import MLPRegressor
    >>> X = np.linspace(-1, 1, 50).reshape(-1, 1)
    >>> reg = MLPRegressor((8,), max_iter=20, random_state=0).fit(X, np.c_[X, -X])
    >>> reg.predict(X).shape
    (50, 2)
    """

    _loss = "squared_error"  # set from ``loss`` by `_check_params`
    _losses = REGRESSION_LOSSES

    def __init__(
        self,
        hidden_layer_sizes: int | Iterable[int] = (100,),
        activation: str = "relu",
        *,
        loss: str = "squared_error",
        solver: str = "adam",
        alpha: float = 1e-4,
        batch_size: int | str = "auto",
        learning_rate_init: float = 1e-3,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
        tol: float = 1e-4,
        verbose: bool = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        max_fun: int = 15000,
        learning_rate: str = "constant",
        power_t: float = 0.5,
        dropout: float = 0.0,
    ) -> None:
        # scikit-learn reads the parameters from this signature (no **kwargs), hence all.
        super().__init__(
            hidden_layer_sizes,
            activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate_init=learning_rate_init,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            learning_rate=learning_rate,
            power_t=power_t,
            dropout=dropout,
        )
        self.loss = loss

    def _check_params(self) -> None:
        """`MLPBase._check_params` and ``loss``, which chooses the engine's loss."""
        super()._check_params()
        check_choice("loss", self.loss, REGRESSION_LOSSES)
        self._loss = self.loss

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
        if self._loss == "poisson" and np.any(y2 < 0):
            # scikit-learn's words (its PoissonRegressor's; its MLPRegressor checks nothing)
            raise ValueError(
                "Some value(s) of y are out of the valid range of the loss 'HalfPoissonLoss'."
            )
        if not first_pass and self._net.loss != self._loss:
            raise ValueError(
                f"loss={self._loss!r} but the network was fitted with loss="
                f"{self._net.loss!r}; set warm_start=False to start afresh"
            )
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
            1-D when the regressor was fitted on one target; e^s for ``loss="poisson"``
            (the loss's prediction, `backprop.losses.PREDICTIONS`).
        """
        out = self._forward(X)
        out = PREDICTIONS[self._net.loss](out, out=out)
        return out[:, 0] if out.shape[1] == 1 else out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
