"""scikit-learn compatible estimators: `MLPClassifier` and `MLPRegressor`.

They take the parameters, and set the fitted attributes, of
``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor`` wherever the meaning is the
same, so they drop into pipelines, grid searches and cross-validation; the arithmetic
is the engine's (`backprop.network.MLP`: the notes' delta recursion, pages 4-7) and the
training is the one engine, `backprop.trainer.Trainer`, that `backprop.train` and the CLI
drive too. This module only translates: scikit-learn's parameters into the optimiser, a
penalty hook for ``alpha`` (``alpha / (2 n_batch) * sum ||W||^2`` on weights only: the
optimisers' weight decay also decays biases and is not divided by the batch size), and
an `EarlyStopping` callback with scikit-learn's rule (``tol`` and ``n_iter_no_change`` on
the training loss, or on the validation score with ``early_stopping``); a callback keeps
the fitted attributes (``loss_curve_``, ``n_iter_``, ...) current. ``partial_fit`` is one
epoch that keeps the optimiser state between calls. ``solver="lbfgs"`` is the one
full-batch path beside the engine: scipy's L-BFGS-B over one flat view of the
parameters, with the engine's ``loss_and_grads`` plus the ``alpha`` penalty as objective.

Deliberate differences from scikit-learn are listed in ``docs/estimators.md``; the main
ones: the multi-output squared error and its gradient are scaled consistently, and ReLU
weights start He-normal and biases at 0. Two classes get scikit-learn's layout: one
logistic output (``coefs_[-1]`` has 1 column) trained with binary cross-entropy.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from backprop.callbacks import Callback, EarlyStopping, EpochLog, TrainerState
from backprop.checks import (
    OptionError,
    check_choice,
    check_fraction,
    check_int,
    check_ints,
    check_real,
)
from backprop.data import LabelEncoder, Preprocessor, train_val_split
from backprop.network import MLP, flat_views
from backprop.optim import SGD, Adam, Constant, InvScaling, Optimizer
from backprop.trainer import Penalty, Trainer, TrainingDiverged

__all__ = ["MLPClassifier", "MLPRegressor"]

# scikit-learn's activation names -> the engine's.
_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_SOLVERS = ("lbfgs", "sgd", "adam")
# scikit-learn's message for weights that became NaN or infinite, which its users match.
_NON_FINITE = (
    "Solver produced non-finite parameter weights. The input data may contain large values "
    "and need to be preprocessed."
)
_STOCHASTIC_SOLVERS = ("sgd", "adam")
_MULTILABEL_LOSS = "sigmoid_binary_cross_entropy"
#: scikit-learn's ``out_activation_`` for each engine loss.
_OUT_ACTIVATIONS = {
    "softmax_cross_entropy": "softmax",
    _MULTILABEL_LOSS: "logistic",
    "squared_error": "identity",
}
_LEARNING_RATES = ("constant", "invscaling", "adaptive")


def _l2_penalty(net: MLP, alpha: float) -> Penalty:
    """scikit-learn's L2 term ``alpha / (2 n) sum ||W||^2`` (weights only, n the batch's
    weight sum) as a `Trainer` penalty: adds its gradient ``alpha W / n`` to the grads."""
    weights = [(f"W{l}", net.params[f"W{l}"]) for l in range(1, net.n_layers + 1)]

    def penalty(grads: dict[str, np.ndarray], total: float) -> float:
        for key, W in weights:
            grads[key] += (alpha / total) * W
        return 0.5 * alpha * sum(float(np.vdot(W, W)) for _, W in weights) / total

    return penalty


def _flatten_params(net: MLP) -> np.ndarray:
    """The network's parameters as views into one flat buffer (made once, kept): the
    buffer, which L-BFGS reads and writes as one vector."""
    first = next(iter(net.params.values()))
    base = first.base
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


class _SklearnStopping(EarlyStopping):
    """`EarlyStopping` with scikit-learn's learning-rate rules for ``solver="sgd"``: at
    each epoch's end "invscaling" sets the rate to ``InvScaling(lr0, power_t)(t_)`` (t_
    the examples seen), and "adaptive" divides the rate by 5 instead of stopping, until
    it is at most 1e-6 (scikit-learn's ``SGDOptimizer.trigger_stopping``)."""

    def __init__(self, est: _BaseMLP, **kw: Any) -> None:
        super().__init__(**kw)
        self.est = est
        rule = est.learning_rate if est.solver == "sgd" else "constant"
        self.rule = rule
        self._inv = InvScaling(float(est.learning_rate_init), float(est.power_t))

    def on_epoch_end(self, epoch: int, log: EpochLog, trainer: TrainerState) -> bool | None:
        stop = super().on_epoch_end(epoch, log, trainer)
        opt = trainer.optimizer
        if self.rule == "invscaling":
            opt.schedule = Constant(self._inv(self.est.t_))
        if not stop or self.rule != "adaptive":
            return stop
        lr = opt.lr
        if lr <= 1e-6:
            if self.est.verbose:
                print(f"{_no_change_message(self.est)} Learning rate too small. Stopping.")
            return True
        opt.schedule = Constant(lr / 5.0)
        self.wait = 0
        if self.est.verbose:
            print(f"{_no_change_message(self.est)} Setting learning rate to {lr / 5.0:f}")
        return False


def _no_change_message(est: _BaseMLP) -> str:
    """scikit-learn's wording of the no-improvement rule."""
    what = "Validation score" if est.early_stopping else "Training loss"
    return (
        f"{what} did not improve more than tol={est.tol:f} for "
        f"{est.n_iter_no_change} consecutive epochs."
    )


class _FittedAttributes(Callback):
    """Keeps scikit-learn's fitted attributes current after every epoch (``verbose``
    prints them as scikit-learn does)."""

    def __init__(self, est: _BaseMLP, n_samples: int) -> None:
        self.est = est
        self.n_samples = n_samples

    def on_epoch_end(self, epoch: int, log: EpochLog, trainer: TrainerState) -> bool | None:
        est = self.est
        est.n_iter_ += 1
        est.t_ += self.n_samples
        est.loss_ = log.train_loss
        est.loss_curve_.append(log.train_loss)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")
        if est.validation_scores_ is not None and not math.isnan(log.val_metric):
            est.validation_scores_.append(log.val_metric)
            if est.verbose:
                print(f"Validation score: {log.val_metric:f}")
        return None


def _jsonable_float(v: float | None) -> str | None:
    """Floats as repr strings, so inf and NaN survive JSON (which has neither)."""
    return None if v is None else repr(float(v))


def _from_json_float(v: str | None) -> float | None:
    return None if v is None else float(v)


class _BaseMLP(BaseEstimator):
    """Shared parameters, training loop, save and load of the two estimators."""

    _loss: str = ""  # the engine's loss, set by the subclasses
    _losses: tuple[str, ...] = ()  # every engine loss the subclass fits (and loads)

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
        check_choice("activation", self.activation, _ACTIVATIONS)
        check_choice("solver", self.solver, _SOLVERS)
        check_int("max_fun", self.max_fun, low=1)
        check_choice("learning_rate", self.learning_rate, _LEARNING_RATES)
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

    def _check_solver(self) -> bool:
        """``partial_fit`` exists for the stochastic solvers only (scikit-learn's rule)."""
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. "
                f"{self.solver} is not stochastic."
            )
        return True

    # ------------------------------------------------------------------ hooks
    def _prepare_y(
        self, y: np.ndarray, first_pass: bool, incremental: bool, classes: ArrayLike | None
    ) -> tuple[np.ndarray, int]:
        """Targets for the engine and the number of outputs (subclasses)."""
        raise NotImplementedError

    def _fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        sample_weight: ArrayLike | None,
        *,
        incremental: bool,
        classes: ArrayLike | None = None,
    ) -> _BaseMLP:
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
            y_numeric=self._loss == "squared_error",
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
        hidden = self._hidden_sizes()
        layer_sizes = [X_arr.shape[1], *hidden, n_outputs]
        rs = check_random_state(self.random_state)

        if first_pass:
            self._net = MLP(
                layer_sizes,
                activation=_ACTIVATIONS[self.activation],
                loss=self._loss,
                dtype=X_arr.dtype,
                seed=int(rs.randint(np.iinfo(np.int32).max)),
            )
            self._set_structure()
            self.n_iter_ = 0
            self.t_ = 0
            self.loss_curve_: list[float] = []
            self.loss_ = math.nan
            if self.early_stopping:
                self.validation_scores_: list[float] | None = []
                self.best_validation_score_: float | None = -math.inf
                self.best_loss_: float | None = None
            else:
                self.best_loss_ = math.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None
            self._optimizer: Optimizer | None = None
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
            # scikit-learn's check and wording (the stochastic solvers stop earlier, at
            # the first non-finite loss, with `TrainingDiverged`).
            if not all(np.isfinite(p).all() for p in net.params.values()):
                raise ValueError(_NON_FINITE)
            return self
        # Like scikit-learn: fit makes a new optimiser, partial_fit keeps its state.
        if not incremental or getattr(self, "_optimizer", None) is None:
            self._optimizer = self._make_optimizer(net)
        self._epochs(net, X_arr, yt, sw, rs, incremental)
        return self

    def _fit_lbfgs(self, net: MLP, X: np.ndarray, y: np.ndarray, sw: np.ndarray | None) -> None:
        """scikit-learn's ``_fit_lbfgs``: full-batch L-BFGS-B (scipy) on the whole data.

        The objective is the engine's ``loss_and_grads`` (the notes' backward pass, pages
        4-7) plus the ``alpha`` penalty, over one flat view of the parameters: the
        network's arrays are views into one buffer, so each evaluation copies scipy's
        point into that buffer and nothing else of parameter size.
        """
        from scipy.optimize import minimize
        from sklearn.utils.optimize import _check_optimize_result

        flat = _flatten_params(net)
        self._set_structure()  # coefs_ are the views now
        gflat = np.empty_like(flat)
        grads = flat_views(net.params, gflat)
        total = float(X.shape[0]) if sw is None else float(sw.sum())
        penalty = _l2_penalty(net, float(self.alpha)) if self.alpha else None

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

    def _make_optimizer(self, net: MLP) -> Optimizer:
        if self.solver == "sgd":
            mu = float(self.momentum)
            return SGD(
                net.params,
                float(self.learning_rate_init),
                momentum=mu,
                nesterov=bool(self.nesterovs_momentum) and mu > 0,
            )
        return Adam(
            net.params,
            float(self.learning_rate_init),
            beta1=float(self.beta_1),
            beta2=float(self.beta_2),
            eps=float(self.epsilon),
        )

    def _epochs(
        self,
        net: MLP,
        X: np.ndarray,
        y: np.ndarray,
        sw: np.ndarray | None,
        rs: np.random.RandomState,
        incremental: bool,
    ) -> None:
        """scikit-learn's ``_fit_stochastic`` as the one engine, `Trainer`, plus callbacks."""
        rng = np.random.default_rng(int(rs.randint(np.iinfo(np.int32).max)))
        early = bool(self.early_stopping)
        validation = sw_val = None
        if early:
            classify = self._loss == "softmax_cross_entropy" or self._is_binary()
            # Split row indices (stratified for classification, binary included: its one
            # 0/1 column is the class), then gather X, y, weights.
            idx_tr, idx_val, _, _ = train_val_split(
                np.arange(X.shape[0]),
                y[:, 0] if self._is_binary() else y,
                float(self.validation_fraction),
                seed=int(rng.integers(np.iinfo(np.int32).max)),
                stratify=classify,
            )
            if len(idx_val) < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' "
                    "or the size of your dataset."
                )
            validation = (X[idx_val], y[idx_val])
            sw_val = None if sw is None else sw[idx_val]
            X, y = X[idx_tr], y[idx_tr]
            sw = None if sw is None else sw[idx_tr]

        n = X.shape[0]
        if self.batch_size == "auto":
            bs = min(200, n)
        else:
            bs = int(self.batch_size)
            if bs > n:
                warnings.warn(
                    f"batch_size={bs} is larger than the {n} training examples; "
                    f"it is clipped to {n}",
                    UserWarning,
                    stacklevel=4,
                )
                bs = n
        assert self._optimizer is not None
        trainer = Trainer(
            net,
            self._optimizer,
            batch_size=bs,
            seed=rng,
            shuffle=bool(self.shuffle),
            metric="r2" if self._loss == "squared_error" else "accuracy",
            penalty=_l2_penalty(net, float(self.alpha)) if self.alpha else None,
            lr_name="learning_rate_init",
            dropout=float(self.dropout),
        )
        # scikit-learn's rule: stop when more than n_iter_no_change epochs in a row fail to
        # improve by tol, on the validation score (early_stopping) or the training loss.
        stop = _SklearnStopping(
            self,
            monitor="val_metric" if early else "train_loss",
            mode="max" if early else "min",
            patience=float(self.n_iter_no_change) + 1,
            min_delta=float(self.tol),
            restore_best=early,
            best=self.best_validation_score_ if early else self.best_loss_,
        )
        self.n_iter_ = 0
        try:
            result = trainer.fit(
                X,
                y,
                epochs=1 if incremental else int(self.max_iter),
                validation_data=validation,
                sample_weight=sw,
                validation_sample_weight=sw_val,
                callbacks=[_FittedAttributes(self, n), stop],
            )
        except TrainingDiverged as exc:
            # scikit-learn's words first (users match them), then what happened and what
            # to do; the weights are the last finished epoch's.
            raise TrainingDiverged(
                f"{_NON_FINITE} ({exc})", lr=exc.lr, epoch=exc.epoch, result=exc.result
            ) from None
        except KeyboardInterrupt:
            # numpy updates each array whole between Python signal checks, so the weights
            # are finite and usable (those of the last step, or the best epoch's below).
            warnings.warn(
                f"Training interrupted by user after {self.n_iter_} finished epoch(s); "
                "the model keeps its current weights"
                + (" (the best epoch's, early stopping)" if early else ""),
                UserWarning,
                stacklevel=4,
            )
            stop.restore(trainer)
            return
        finally:
            if early:
                self.best_validation_score_ = stop.best
            else:
                self.best_loss_ = stop.best
        if result.stopped_early:
            if self.verbose and stop.rule != "adaptive":
                print(f"{_no_change_message(self)} Stopping.")
        elif not incremental and self.n_iter_ == self.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                "reached and the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=4,
            )

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
            opt.params = dict(net.params)
            opt._scratch = {k: np.empty_like(p) for k, p in net.params.items()}
            opt._state = {n: {k: np.array(v) for k, v in b.items()} for n, b in opt._state.items()}

    # ------------------------------------------------------------------ attributes
    def _is_binary(self) -> bool:
        """scikit-learn's binary layout: one logistic output, the probability of
        ``classes_[1]`` (trained with binary cross-entropy on ``y == classes_[1]``)."""
        return self._loss == _MULTILABEL_LOSS and self._net.n_outputs == 1

    def _set_structure(self) -> None:
        """Fitted attributes that describe the network; coefs_ share the engine's arrays."""
        net = self._net
        L = net.n_layers
        self.coefs_ = [net.params[f"W{l}"] for l in range(1, L + 1)]
        self.intercepts_ = [net.params[f"b{l}"] for l in range(1, L + 1)]
        self.n_layers_ = L + 1
        self.n_outputs_ = net.n_outputs
        self.out_activation_ = _OUT_ACTIVATIONS[net.loss]

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
        if (
            all(
                net.params[f"W{l}"] is W and net.params[f"b{l}"] is b
                for l, (W, b) in enumerate(zip(self.coefs_, self.intercepts_, strict=True), start=1)
            )
            and len(self.coefs_) == net.n_layers
        ):
            return net
        other = MLP(self._check_coefs(), net.activation, net.loss, dtype=net.dtype, seed=0)
        for l, (W, b) in enumerate(zip(self.coefs_, self.intercepts_, strict=True), start=1):
            other.params[f"W{l}"] = np.asarray(W, dtype=net.dtype)
            other.params[f"b{l}"] = np.asarray(b, dtype=net.dtype)
        return other

    def _forward(self, X: ArrayLike) -> np.ndarray:
        """Validated network outputs of shape (n, n_outputs_), computed in chunks."""
        net = self._prediction_net()
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32), accept_sparse="csr")
        return net.forward(X, check=False)

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
        """Write the fitted estimator as a backprop model file (safetensors).

        The file is the one `backprop.save` writes (the CLI reads it too): the network,
        the class labels, the feature names, and under ``config`` the estimator's name,
        its parameters and its training record (``n_iter_``, ``loss_curve_``, ...).

        Parameters
        ----------
        path : str or path-like
        overwrite : bool, default True

        Returns
        -------
        path : Path
        """
        from backprop.io import save

        return save(path, self.to_model(), overwrite=overwrite)

    def to_model(self) -> Any:
        """The fitted estimator as a `backprop.io.Model` (what `save` writes).

        Returns
        -------
        model : backprop.io.Model
        """
        from backprop.io import Model

        net = self._prediction_net()
        if net.is_multilabel and net.n_outputs > 1:
            raise ValueError("saving a multilabel classifier is not supported (model files)")
        params = self.get_params()
        params["hidden_layer_sizes"] = self._hidden_sizes()
        if not (params["random_state"] is None or isinstance(params["random_state"], Integral)):
            params["random_state"] = None  # a RandomState object cannot be stored
        fitted = {
            "n_iter_": int(self.n_iter_),
            "t_": int(self.t_),
            "loss_": _jsonable_float(self.loss_),
            "best_loss_": _jsonable_float(self.best_loss_),
            "loss_curve_": [_jsonable_float(v) for v in self.loss_curve_],
            "validation_scores_": None
            if self.validation_scores_ is None
            else [_jsonable_float(v) for v in self.validation_scores_],
            "best_validation_score_": _jsonable_float(self.best_validation_score_),
        }
        names = getattr(self, "feature_names_in_", None)
        # An estimator does not preprocess (as in scikit-learn): the preprocessor only
        # records the column names.
        pre = Preprocessor(
            n_features=net.n_inputs,
            feature_names=None if names is None else tuple(str(s) for s in names),
        )
        return Model(
            net,
            preprocessor=pre,
            classes=getattr(self, "classes_", None),
            config={"estimator": type(self).__name__, "params": params, "fitted": fitted},
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Any:
        """Read a model file (from `save`, `backprop.save` or the CLI) as a fitted estimator.

        Parameters
        ----------
        path : str or path-like

        Returns
        -------
        estimator : MLPClassifier or MLPRegressor
            Predicts exactly as the saved model; ``warm_start``/``partial_fit`` can
            continue training (with a fresh optimiser state).

        Raises
        ------
        backprop.io.ModelFileError
            If the file is not a valid model file.
        ValueError
            If it holds a regressor and ``cls`` is the classifier, or the other way round.
        """
        from backprop.io import load

        return cls.from_model(load(path))

    @classmethod
    def from_model(cls, model: Any) -> Any:
        """A fitted estimator from a `backprop.io.Model`.

        A model's input pipeline (raw-input scale c, mean m, scale s; see
        `backprop.data.Preprocessor`) is folded into the first layer:
        ``((X / c - m) / s) W + b = X (W / (c s)^T) + (b - (m / s) W)``, so the estimator
        takes the same raw inputs as the model (the out-of-range warning is not kept).

        Parameters
        ----------
        model : backprop.io.Model

        Returns
        -------
        estimator : MLPClassifier or MLPRegressor
        """
        net: MLP = model.net
        if net.loss not in cls._losses:
            kind = "regressor" if net.loss == "squared_error" else "classifier"
            raise ValueError(f"the model is a {kind}; load it with the matching estimator")
        config = model.config if isinstance(model.config, dict) else {}
        mine = config.get("estimator") == cls.__name__
        valid = cls().get_params()
        params = {k: v for k, v in (config.get("params") or {}).items() if mine and k in valid}
        if isinstance(params.get("hidden_layer_sizes"), list):
            params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        params["hidden_layer_sizes"] = tuple(net.layer_sizes[1:-1])
        params["activation"] = {v: k for k, v in _ACTIVATIONS.items()}[net.activation]
        est = cls(**params)
        est._loss = net.loss  # a classifier's: softmax, or binary's one logistic output
        new = MLP(net.layer_sizes, net.activation, net.loss, dtype=net.dtype, seed=0)
        new.params = {k: np.array(p, dtype=net.dtype, order="C") for k, p in net.params.items()}
        # The model's raw-input pipeline is affine per feature, z = (X / s_in - m) / s
        # = X * k - m / s with k = 1 / (s_in * s): fold it into the first layer (page 7's
        # s = x W + b), so the estimator takes raw input as the model did.
        pre = model.pre
        s_in = 1.0 if pre.input_scale is None else pre.input_scale
        s = np.ones(net.n_inputs) if pre.scale is None else np.broadcast_to(pre.scale, net.n_inputs)
        m = np.zeros(net.n_inputs) if pre.mean is None else np.broadcast_to(pre.mean, net.n_inputs)
        if pre.input_scale is not None or pre.mean is not None:
            k = 1.0 / (s_in * s)
            W1 = net.params["W1"].astype(np.float64)
            new.params["W1"] = (W1 * k[:, None]).astype(net.dtype)
            b1 = net.params["b1"].astype(np.float64) - (m / s) @ W1
            new.params["b1"] = b1.astype(net.dtype)
        est._net = new
        est._optimizer = None  # continued training starts a fresh optimiser state
        est._set_structure()
        est.n_features_in_ = net.n_inputs
        if mine and model.feature_names is not None:
            est.feature_names_in_ = np.asarray(model.feature_names, dtype=object)
        if net.loss != "squared_error":
            n_classes = 2 if model.is_binary else net.n_outputs
            est.classes_ = (
                np.arange(n_classes) if model.classes is None else np.asarray(model.classes)
            )
        fitted = config.get("fitted") if mine else None
        if isinstance(fitted, dict):
            est.n_iter_ = int(fitted.get("n_iter_", 0))
            est.t_ = int(fitted.get("t_", 0))
            loss = _from_json_float(fitted.get("loss_"))
            est.loss_ = math.nan if loss is None else loss
            est.best_loss_ = _from_json_float(fitted.get("best_loss_"))
            est.loss_curve_ = [float(v) for v in fitted.get("loss_curve_") or []]
            scores = fitted.get("validation_scores_")
            est.validation_scores_ = None if scores is None else [float(v) for v in scores]
            est.best_validation_score_ = _from_json_float(fitted.get("best_validation_score_"))
        else:
            est.n_iter_, est.t_, est.loss_, est.loss_curve_ = 0, 0, math.nan, []
            est.best_loss_, est.validation_scores_, est.best_validation_score_ = (
                math.inf,
                None,
                None,
            )
        return est

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # CSR/CSC: sparse-dense products in the first layer
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier, scikit-learn compatible: softmax cross-entropy,
    or for two classes (and multilabel) logistic outputs with binary cross-entropy.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default (100,)
        Width of each hidden layer (an empty tuple: no hidden layer).
    activation : {"relu", "tanh", "logistic", "identity"}, default "relu"
        Hidden activation ("logistic" is the engine's "sigmoid").
    solver : {"adam", "sgd", "lbfgs"}, default "adam"
        "lbfgs": full-batch L-BFGS-B (scipy); no ``partial_fit``, ``batch_size``,
        ``shuffle`` or ``early_stopping``; ``tol`` is its gradient tolerance.
    alpha : float, default 1e-4
        L2 penalty ``alpha / (2 n) * sum ||W||^2`` over the weights (not the biases) of
        every layer, n the batch's total sample weight (its size without weights).
    batch_size : int or "auto", default "auto"
        ``"auto"`` is ``min(200, n_samples)``; larger than the data is clipped (warning).
    learning_rate_init : float, default 1e-3
        Constant learning rate.
    max_iter : int, default 200
        Maximum number of epochs; reaching it warns (``ConvergenceWarning``).
    shuffle : bool, default True
        Reshuffle the examples every epoch.
    random_state : int, RandomState or None, default None
        Seeds the initialisation, the shuffling and the validation split.
    tol : float, default 1e-4
        Improvement of the training loss (or validation score with ``early_stopping``)
        below which an epoch counts as no improvement.
    verbose : bool, default False
        Print the loss of every epoch.
    warm_start : bool, default False
        Continue from the current weights in ``fit``.
    momentum : float, default 0.9
        For ``solver="sgd"``.
    nesterovs_momentum : bool, default True
        For ``solver="sgd"`` with ``momentum > 0``.
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the data (stratified), stop when its
        accuracy stops improving, and restore the best epoch's weights.
    validation_fraction : float, default 0.1
    beta_1, beta_2, epsilon : float, default 0.9, 0.999, 1e-8
        For ``solver="adam"``.
    n_iter_no_change : int or np.inf, default 10
        Stop after more than this many epochs without an improvement of ``tol``
        (``np.inf``: never).
    learning_rate : {"constant", "invscaling", "adaptive"}, default "constant"
        For ``solver="sgd"``, scikit-learn's rules: "invscaling" sets the rate to
        ``learning_rate_init / (t_ + 1) ** power_t`` after each epoch; "adaptive"
        divides it by 5 where the ``n_iter_no_change`` rule would stop, and stops once
        it is at most 1e-6.
    power_t : float, default 0.5
        The exponent of "invscaling".
    dropout : float, default 0.0
        Beyond scikit-learn: inverted dropout on every hidden layer while training with
        "sgd" or "adam" (each unit zeroed with this probability, the rest scaled by
        1 / (1 - dropout); docs/training.md); never at prediction.
    max_fun : int, default 15000
        For ``solver="lbfgs"``: the most loss evaluations (reaching it warns).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coefs_ : list of ndarray
        ``coefs_[i]`` of shape (fan_in, fan_out): the weights of layer i + 1. For two
        classes the last one has 1 column (one logistic output, as in scikit-learn).
    intercepts_ : list of ndarray
        ``intercepts_[i]`` of shape (fan_out,).
    loss_ : float
        Loss (with the L2 term) of the last epoch.
    best_loss_ : float or None
        Lowest epoch loss (None with early stopping).
    loss_curve_ : list of float
    validation_scores_ : list of float or None
        Validation accuracy per epoch (early stopping only).
    best_validation_score_ : float or None
    n_iter_ : int
        Epochs run by the last call to fit (1 after partial_fit).
    t_ : int
        Training examples seen, all calls together.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when X had string column names.
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Number of network outputs: the number of classes (1 for two classes; the
        number of labels for multilabel).
    out_activation_ : str
        ``"softmax"``; ``"logistic"`` for two classes and for multilabel.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from backprop.estimators import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier((16,), max_iter=300, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
    """

    # Or _MULTILABEL_LOSS, chosen by `fit` from y: multilabel, or two classes (one
    # logistic output, scikit-learn's layout).
    _loss = "softmax_cross_entropy"
    _losses = ("softmax_cross_entropy", _MULTILABEL_LOSS)

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> Any:
        """Train on X, y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (any hashable, sortable values).
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
        classes: ArrayLike | None = None,
    ) -> Any:
        """One epoch over X, y, continuing from the current weights and optimiser state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional
        classes : array-like of shape (n_classes,), optional
            Every class of the whole data set: required on the first call, and must
            not change afterwards.

        Returns
        -------
        self
        """
        if not hasattr(self, "classes_") and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def _prepare_y(
        self, y: np.ndarray, first_pass: bool, incremental: bool, classes: ArrayLike | None
    ) -> tuple[np.ndarray, int]:
        multilabel = type_of_target(y) == "multilabel-indicator"
        if y.ndim != 1 and not multilabel:
            raise ValueError(
                f"multi-output classification is not supported (y has shape {y.shape}, "
                f"type {type_of_target(y)!r}); pass 1-D class labels or a 0/1 indicator "
                "matrix (multilabel)"
            )
        check_classification_targets(y)
        if not first_pass and multilabel != (
            self._loss == _MULTILABEL_LOSS and not self._is_binary()
        ):
            raise ValueError(
                "y is multilabel now but was not before (or the other way round); set "
                "warm_start=False to start afresh"
            )
        if multilabel:
            # scikit-learn's LabelBinarizer on an indicator matrix: classes_ are the
            # column indices, and the targets stay the 0/1 matrix (one sigmoid per label).
            if first_pass:
                self._loss = _MULTILABEL_LOSS
                self.classes_ = np.arange(y.shape[1])
            elif y.shape[1] != len(self.classes_):
                raise ValueError(
                    f"y has {y.shape[1]} labels but the classifier was fitted on "
                    f"{len(self.classes_)}"
                )
            return y, y.shape[1]
        if first_pass:
            if incremental and classes is not None:
                new_classes = unique_labels(np.asarray(classes))
            else:
                new_classes = unique_labels(y)
            if len(new_classes) < 2:
                raise ValueError(
                    f"the classifier needs at least 2 classes, got 1 class: {new_classes}"
                )
            self.classes_ = new_classes
            # Two classes: scikit-learn's one logistic output, p = P(classes_[1]), trained
            # with binary cross-entropy (the multilabel loss with one label); more: softmax.
            self._loss = _MULTILABEL_LOSS if len(new_classes) == 2 else MLPClassifier._loss
        else:
            if classes is not None and not np.array_equal(
                unique_labels(np.asarray(classes)), self.classes_
            ):
                raise ValueError(
                    f"classes={np.asarray(classes)} differs from the classes of the first "
                    f"call, {self.classes_}; the set of classes cannot change"
                )
            seen = unique_labels(y)
            if self.warm_start and not incremental:
                if set(seen) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in "
                        f"the previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{seen}"
                    )
        unknown = np.setdiff1d(unique_labels(y), self.classes_)
        if len(unknown):
            raise ValueError(
                f"`y` has classes not in `self.classes_`: {unknown}. `self.classes_` has "
                f"{self.classes_}; the set of classes cannot change between calls"
            )
        codes = LabelEncoder(self.classes_).transform(y)
        if self._loss == _MULTILABEL_LOSS:  # binary: the 0/1 column of y == classes_[1]
            return codes.reshape(-1, 1), 1
        return codes, len(self.classes_)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_labels)
            Values of ``classes_``; for multilabel the int 0/1 indicator matrix, 1 where
            the label's probability exceeds 0.5 (scikit-learn's threshold).
        """
        scores = self._forward(X)  # first: raises NotFittedError if unfitted
        if self._net.is_multilabel:
            on = (scores > 0).astype(int)  # sigmoid(s) > 0.5 exactly where s > 0
            return self.classes_[on[:, 0]] if self._is_binary() else on
        return self.classes_[scores.argmax(axis=1)]

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities (softmax of the scores), in the network's dtype.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        p : ndarray of shape (n_samples, n_classes)
            Column i is ``classes_[i]``; rows sum to 1. For multilabel, the independent
            probability of each label (sigmoid of its score).
        """
        from backprop.losses import sigmoid, softmax

        scores = self._forward(X)
        if self._net.is_multilabel:
            if self._is_binary():
                # [1 - p, p] as scikit-learn, with 1 - sigmoid(s) as sigmoid(-s): no
                # cancellation, so P(classes_[0]) stays > 0 where p rounds to 1.
                return sigmoid(np.hstack([-scores, scores]))
            return sigmoid(scores, out=scores)
        return softmax(scores, out=scores)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True  # as scikit-learn's MLPClassifier
        return tags

    def predict_log_proba(self, X: ArrayLike) -> np.ndarray:
        """Log class probabilities, computed stably as ``s - logsumexp(s)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_p : ndarray of shape (n_samples, n_classes)
            Finite even where ``predict_proba`` underflows to 0, except for two classes
            (one logistic output): there ``-inf`` exactly where ``predict_proba`` is 0,
            as scikit-learn's ``log(predict_proba)``.
        """
        from backprop.losses import sigmoid

        s = self._forward(X)
        if self._net.is_multilabel:
            binary = self._is_binary()
            if binary:  # log(1 - sigmoid(s)) = log sigmoid(-s)
                s = np.hstack([-s, s])
            # log sigmoid(s) = -log(1 + e^{-s}) = min(s, 0) - log1p(e^{-|s|}), per label.
            log_p = np.minimum(s, 0.0) - np.log1p(np.exp(-np.abs(s)))
            if binary:
                # scikit-learn's contract (its check_classifiers_train): log_proba is the
                # log of predict_proba, so -inf exactly where that underflows to 0.
                log_p[sigmoid(s) == 0] = -np.inf
            return log_p
        s -= s.max(axis=1, keepdims=True)
        s -= np.log(np.exp(s).sum(axis=1, keepdims=True))
        return s


class MLPRegressor(RegressorMixin, _BaseMLP):
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

    @available_if(lambda est: est._check_solver())
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
