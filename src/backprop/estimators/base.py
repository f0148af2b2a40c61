"""What both estimators and both solver families share: the parameters and their
validation, the checks and set-up of every ``fit``, and the fitted attributes that
describe the network (``coefs_`` and ``intercepts_`` are the engine's arrays).

The solvers (`backprop.estimators.stochastic`, `backprop.estimators.lbfgs`), the model
files (`backprop.estimators.modelfile`) and the targets (the classifier and regressor
modules) are subclasses that fill in the hooks `MLPBase._fit` calls.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from backprop.checks import (
    OptionError,
    check_choice,
    check_fraction,
    check_int,
    check_ints,
    check_real,
)
from backprop.network import MLP
from backprop.optim import Optimizer
from backprop.trainer import Penalty

__all__ = [
    "ACTIVATIONS",
    "MULTILABEL_LOSS",
    "NON_FINITE",
    "REGRESSION_LOSSES",
    "STOCHASTIC_SOLVERS",
    "MLPBase",
    "l2_penalty",
]

#: scikit-learn's activation names -> the engine's.
ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
SOLVERS = ("lbfgs", "sgd", "adam")
STOCHASTIC_SOLVERS = ("sgd", "adam")
LEARNING_RATES = ("constant", "invscaling", "adaptive")
#: scikit-learn's message for weights that became NaN or infinite, which its users match.
NON_FINITE = (
    "Solver produced non-finite parameter weights. The input data may contain large values "
    "and need to be preprocessed."
)
#: The engine's loss of two classes (one logistic output) and of multilabel.
MULTILABEL_LOSS = "sigmoid_binary_cross_entropy"
#: The regressor's ``loss`` values, scikit-learn's names, which are the engine's too.
REGRESSION_LOSSES = ("squared_error", "poisson")
#: scikit-learn's ``out_activation_`` for each engine loss.
OUT_ACTIVATIONS = {
    "softmax_cross_entropy": "softmax",
    MULTILABEL_LOSS: "logistic",
    "squared_error": "identity",
    "poisson": "exp",
}


def l2_penalty(net: MLP, alpha: float) -> Penalty:
    """scikit-learn's L2 term ``alpha / (2 n) sum ||W||^2`` (weights only, n the batch's
    weight sum) as a `Trainer` penalty: adds its gradient ``alpha W / n`` to the grads.

    Parameters
    ----------
    net : MLP
        Its weight arrays are captured: the penalty follows them in place.
    alpha : float

    Returns
    -------
    penalty : callable ``(grads, total) -> float``
    """
    weights = [(f"W{l}", net.params[f"W{l}"]) for l in range(1, net.n_layers + 1)]

    def penalty(grads: dict[str, np.ndarray], total: float) -> float:
        for key, W in weights:
            grads[key] += (alpha / total) * W
        return 0.5 * alpha * sum(float(np.vdot(W, W)) for _, W in weights) / total

    return penalty


class MLPBase(BaseEstimator):
    """Shared parameters, ``fit`` set-up and network attributes of the two estimators."""

    _loss: str = ""  # the engine's loss, set by the subclasses
    _losses: tuple[str, ...] = ()  # every engine loss the subclass fits (and loads)
    _net: MLP
    _optimizer: Optimizer | None
    # Epochs in a row without a gain of tol, carried across warm_start fits and
    # partial_fit calls (scikit-learn's name and rule: adaptive acts on it there too).
    _no_improvement_count: int
    # Fitted attributes (set by fit, or by from_model), for the type checker.
    n_iter_: int
    t_: int
    loss_: float
    best_loss_: float | None
    loss_curve_: list[float]
    validation_scores_: list[float] | None
    best_validation_score_: float | None

    def __init__(
        self,
        hidden_layer_sizes: int | Iterable[int] = (100,),
        activation: str = "relu",
        *,
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
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.learning_rate = learning_rate
        self.power_t = power_t
        self.dropout = dropout

    # ------------------------------------------------------------------ parameters
    def _hidden_sizes(self) -> list[int]:
        h = self.hidden_layer_sizes
        # scikit-learn takes an int, or any array-like of ints, for hidden_layer_sizes.
        sizes = [h] if isinstance(h, Integral) else list(h) if isinstance(h, Iterable) else h
        try:
            return list(check_ints("hidden_layer_sizes", sizes, low=1))
        except OptionError as exc:  # name the value as given, not the list made of it
            raise OptionError("hidden_layer_sizes", h, exc.requirement) from None

    def _check_params(self) -> None:
        """Validate every parameter (in fit, as the scikit-learn developer guide asks)."""
        self._hidden_sizes()
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("solver", self.solver, SOLVERS)
        check_int("max_fun", self.max_fun, low=1)
        check_choice("learning_rate", self.learning_rate, LEARNING_RATES)
        check_real("power_t", self.power_t, low=0)
        check_fraction("dropout", self.dropout)
        if self.dropout and self.solver == "lbfgs":
            # L-BFGS needs one fixed objective; dropout draws a new one every step.
            raise ValueError("dropout needs solver='sgd' or 'adam', not 'lbfgs'")
        check_real("alpha", self.alpha, low=0)
        if self.batch_size != "auto":
            check_int("batch_size", self.batch_size, low=1)
        check_real("learning_rate_init", self.learning_rate_init, low=0, low_open=True)
        check_int("max_iter", self.max_iter, low=1)
        check_real("tol", self.tol, low=0)
        check_fraction("momentum", self.momentum)
        fraction = self.validation_fraction
        check_real("validation_fraction", fraction, low=0, high=1, low_open=True, high_open=True)
        check_fraction("beta_1", self.beta_1)
        check_fraction("beta_2", self.beta_2)
        check_real("epsilon", self.epsilon, low=0, low_open=True)
        # np.inf disables the rule, as in scikit-learn.
        if not (isinstance(self.n_iter_no_change, float) and self.n_iter_no_change == math.inf):
            check_int("n_iter_no_change", self.n_iter_no_change, low=1)

    # ------------------------------------------------------------------ hooks
    def _prepare_y(
        self, y: np.ndarray, first_pass: bool, incremental: bool, classes: ArrayLike | None
    ) -> tuple[np.ndarray, int]:
        """Targets for the engine and the number of outputs (classifier, regressor)."""
        raise NotImplementedError

    def _fit_lbfgs(self, net: MLP, X: np.ndarray, y: np.ndarray, sw: np.ndarray | None) -> None:
        """Full-batch L-BFGS (`backprop.estimators.lbfgs`)."""
        raise NotImplementedError

    def _fit_stochastic(
        self,
        net: MLP,
        X: np.ndarray,
        y: np.ndarray,
        sw: np.ndarray | None,
        rs: np.random.RandomState,
        incremental: bool,
    ) -> None:
        """sgd and adam on the `Trainer` (`backprop.estimators.stochastic`)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ fit
    def _fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        sample_weight: ArrayLike | None,
        *,
        incremental: bool,
        classes: ArrayLike | None = None,
    ) -> MLPBase:
        """Validate, build (or check) the network, then hand over to the solver."""
        self._check_params()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X_arr: np.ndarray
        y_arr: np.ndarray
        X_arr, y_arr = validate_data(
            self,
            X,
            y,
            reset=first_pass,
            dtype=(np.float64, np.float32),
            accept_sparse="csr",  # CSC and the rest become CSR (row batches); never dense
            multi_output=True,
            y_numeric=self._loss in REGRESSION_LOSSES,
        )
        if y_arr.ndim == 2 and y_arr.shape[1] == 1:
            y_arr = column_or_1d(y_arr, warn=True)
        sw = None
        if sample_weight is not None:
            sw = _check_sample_weight(
                sample_weight, X_arr, dtype=X_arr.dtype, ensure_non_negative=True
            )
            if not sw.sum() > 0:
                raise ValueError("sample_weight must have a positive sum")
        yt, n_outputs = self._prepare_y(y_arr, first_pass, incremental, classes)
        layer_sizes = [X_arr.shape[1], *self._hidden_sizes(), n_outputs]
        rs = check_random_state(self.random_state)
        if first_pass:
            self._start(layer_sizes, X_arr.dtype, rs)
        else:
            net = self._sync_net_from_attributes()
            if list(net.layer_sizes) != layer_sizes:
                raise ValueError(
                    f"warm_start/partial_fit: the network has layer sizes "
                    f"{list(net.layer_sizes)}, but the parameters and data ask for "
                    f"{layer_sizes}; set warm_start=False to start afresh"
                )
            if X_arr.dtype != net.dtype:
                X_arr = X_arr.astype(net.dtype)
            if self.early_stopping and self.validation_scores_ is None:
                self.validation_scores_, self.best_validation_score_ = [], -math.inf
            if self.best_loss_ is None:
                self.best_loss_ = math.inf
        net = self._net
        if self._loss != "softmax_cross_entropy":  # targets or 0/1 indicators, not labels
            yt = yt.astype(net.dtype, copy=False)
        if sw is not None:
            sw = sw.astype(net.dtype, copy=False)
        if self.solver == "lbfgs":
            self._fit_lbfgs(net, X_arr, yt, sw)
        else:
            self._fit_stochastic(net, X_arr, yt, sw, rs, incremental)
        return self

    def _start(
        self, layer_sizes: list[int], dtype: np.dtype[Any], rs: np.random.RandomState
    ) -> None:
        """A fresh network and fresh fitted attributes (a first or non-warm ``fit``)."""
        net = MLP(
            layer_sizes, activation=ACTIVATIONS[self.activation], loss=self._loss, dtype=dtype
        )
        # scikit-learn's initialisation, drawn first from the same RandomState: the same
        # random_state gives scikit-learn's initial weights (its tests rely on them, e.g.
        # the effect of alpha), uniform in +-sqrt(f / (fan_in + fan_out)), f = 2 for
        # "logistic" and 6 otherwise, biases included.
        factor = 2.0 if self.activation == "logistic" else 6.0
        for l in range(1, net.n_layers + 1):
            W, b = net.params[f"W{l}"], net.params[f"b{l}"]
            bound = math.sqrt(factor / sum(W.shape))
            W[...] = rs.uniform(-bound, bound, W.shape)
            b[...] = rs.uniform(-bound, bound, b.shape)
        self._net = net
        self._set_structure()
        self._optimizer = None
        self._no_improvement_count = 0
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self.loss_ = math.nan
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -math.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = math.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Relink after unpickling: joblib stores each array on its own, so the
        attributes, the network and the optimiser would otherwise hold different copies
        and a reloaded estimator would not continue as the saved one."""
        super().__setstate__(state)
        net = getattr(self, "_net", None)
        if net is None or not hasattr(self, "coefs_"):
            return
        if self._check_coefs() != list(net.layer_sizes):
            return  # replaced coefs_ of another shape: fit/predict report it
        # Fresh writeable arrays (a reload from a read-only memmap gives read-only ones).
        for l, (W, b) in enumerate(zip(self.coefs_, self.intercepts_, strict=True), start=1):
            net.params[f"W{l}"] = np.array(W, dtype=net.dtype)
            net.params[f"b{l}"] = np.array(b, dtype=net.dtype)
        self._set_structure()
        opt = getattr(self, "_optimizer", None)
        if opt is not None:
            opt.rebind(net.params)

    # ------------------------------------------------------------------ attributes
    def _is_binary(self) -> bool:
        """scikit-learn's binary layout: one logistic output, the probability of
        ``classes_[1]`` (trained with binary cross-entropy on ``y == classes_[1]``)."""
        return self._net.is_binary

    def _set_structure(self) -> None:
        """Fitted attributes that describe the network; coefs_ share the engine's arrays."""
        net = self._net
        L = net.n_layers
        self.coefs_ = [net.params[f"W{l}"] for l in range(1, L + 1)]
        self.intercepts_ = [net.params[f"b{l}"] for l in range(1, L + 1)]
        self.n_layers_ = L + 1
        self.n_outputs_ = net.n_outputs
        self.out_activation_ = OUT_ACTIVATIONS[net.loss]

    def _check_coefs(self) -> list[int]:
        """Layer sizes implied by coefs_/intercepts_ (which a user may have replaced)."""
        coefs, intercepts = self.coefs_, self.intercepts_
        if len(coefs) != len(intercepts) or not coefs:
            raise ValueError(
                f"coefs_ has {len(coefs)} arrays and intercepts_ {len(intercepts)}; "
                "they must be equally long and non-empty"
            )
        sizes = [int(np.shape(coefs[0])[0])]
        for l, (W, b) in enumerate(zip(coefs, intercepts, strict=True)):
            W_shape, b_shape = np.shape(W), np.shape(b)
            if len(W_shape) != 2 or W_shape[0] != sizes[-1] or b_shape != (W_shape[1],):
                raise ValueError(
                    f"coefs_[{l}] has shape {W_shape} and intercepts_[{l}] {b_shape}; "
                    f"expected ({sizes[-1]}, m) and (m,)"
                )
            sizes.append(int(W_shape[1]))
        return sizes

    def _sync_net_from_attributes(self) -> MLP:
        """Before more training: copy replaced coefs_/intercepts_ into the engine's arrays
        (the optimiser holds those), and point the attributes back at them."""
        net = self._net
        if self._check_coefs() != list(net.layer_sizes):
            raise ValueError(
                f"coefs_ describe layer sizes {self._check_coefs()} but the network has "
                f"{list(net.layer_sizes)}"
            )
        for l, (W, b) in enumerate(zip(self.coefs_, self.intercepts_, strict=True), start=1):
            for key, value in ((f"W{l}", W), (f"b{l}", b)):
                if net.params[key] is not value:
                    np.copyto(net.params[key], value, casting="same_kind")
        self._set_structure()
        return net

    def _prediction_net(self) -> MLP:
        """The engine with the current coefs_/intercepts_ (a fresh one if they were
        replaced; the estimator itself is not modified)."""
        check_is_fitted(self)
        net = self._net
        coefs, intercepts = self.coefs_, self.intercepts_
        if len(coefs) == len(intercepts) == net.n_layers and all(
            net.params[f"W{l}"] is W and net.params[f"b{l}"] is b
            for l, (W, b) in enumerate(zip(coefs, intercepts, strict=True), start=1)
        ):
            return net
        other = MLP(self._check_coefs(), net.activation, net.loss, dtype=net.dtype, seed=0)
        for l, (W, b) in enumerate(zip(coefs, intercepts, strict=True), start=1):
            other.params[f"W{l}"] = np.asarray(W, dtype=net.dtype)
            other.params[f"b{l}"] = np.asarray(b, dtype=net.dtype)
        return other

    def _forward(self, X: ArrayLike) -> np.ndarray:
        """Validated network outputs of shape (n, n_outputs_)."""
        net = self._prediction_net()
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32), accept_sparse="csr")
        return net.forward(X, check=False)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # CSR/CSC: sparse-dense products in the first layer
        return tags
