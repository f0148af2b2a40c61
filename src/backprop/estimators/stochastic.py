"""The stochastic solvers, ``solver="sgd"`` and ``"adam"``: scikit-learn's
``_fit_stochastic`` as the one engine, `backprop.trainer.Trainer`, plus callbacks.

scikit-learn's parameters become the optimiser, a penalty hook for ``alpha`` (the
optimisers' weight decay also decays biases and is not divided by the batch size) and
an `EarlyStopping` with scikit-learn's rule (``tol`` and ``n_iter_no_change`` on the
training loss, or on the validation score with ``early_stopping``); a callback keeps the
fitted attributes (``loss_curve_``, ``n_iter_``, ...) current. ``partial_fit`` is one
epoch that keeps the optimiser state between calls.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from backprop.callbacks import Callback, EarlyStopping, EpochLog, TrainerState
from backprop.estimators.base import (
    NON_FINITE,
    REGRESSION_LOSSES,
    STOCHASTIC_SOLVERS,
    MLPBase,
    l2_penalty,
)
from backprop.network import MLP
from backprop.optim import SGD, Adam, Optimizer
from backprop.schedules import Constant, InvScaling
from backprop.trainer import Trainer, TrainingDiverged

__all__ = [
    "FittedAttributes",
    "SklearnStopping",
    "StochasticSolver",
    "has_partial_fit",
    "no_change_message",
]


def has_partial_fit(est: MLPBase) -> bool:
    """``partial_fit`` exists for the stochastic solvers only (scikit-learn's rule; for
    `sklearn.utils.metaestimators.available_if`).

    Raises
    ------
    AttributeError
        For ``solver="lbfgs"``, with scikit-learn's message.
    """
    if est.solver not in STOCHASTIC_SOLVERS:
        raise AttributeError(
            "partial_fit is only available for stochastic optimizers. "
            f"{est.solver} is not stochastic."
        )
    return True


def no_change_message(est: MLPBase) -> str:
    """scikit-learn's wording of the no-improvement rule."""
    what = "Validation score" if est.early_stopping else "Training loss"
    return (
        f"{what} did not improve more than tol={est.tol:f} for "
        f"{est.n_iter_no_change} consecutive epochs."
    )


class SklearnStopping(EarlyStopping):
    """`EarlyStopping` with scikit-learn's learning-rate rules for ``solver="sgd"``: at
    each epoch's end "invscaling" sets the rate to ``InvScaling(lr0, power_t)(t_)`` (t_
    the examples seen), and "adaptive" divides the rate by 5 instead of stopping, until
    it is at most 1e-6 (scikit-learn's ``SGDOptimizer.trigger_stopping``).

    Parameters
    ----------
    est : MLPClassifier or MLPRegressor
        The estimator being fitted (its parameters and ``t_`` are read).
    **kw
        `EarlyStopping`'s parameters.
    """

    def __init__(self, est: MLPBase, **kw: Any) -> None:
        super().__init__(**kw)
        self.est = est
        self.rule = est.learning_rate if est.solver == "sgd" else "constant"
        self.inv = InvScaling(float(est.learning_rate_init), float(est.power_t))

    def on_epoch_end(self, epoch: int, log: EpochLog, trainer: TrainerState) -> bool | None:
        stop = super().on_epoch_end(epoch, log, trainer)
        opt = trainer.optimizer
        if self.rule == "invscaling":
            opt.schedule = Constant(self.inv(self.est.t_))
        if not stop or self.rule != "adaptive":
            return stop
        lr = opt.lr
        if lr <= 1e-6:
            if self.est.verbose:
                print(f"{no_change_message(self.est)} Learning rate too small. Stopping.")
            return True
        opt.schedule = Constant(lr / 5.0)
        self.wait = 0
        if self.est.verbose:
            print(f"{no_change_message(self.est)} Setting learning rate to {lr / 5.0:f}")
        return False


class FittedAttributes(Callback):
    """Keeps scikit-learn's fitted attributes current after every epoch (``verbose``
    prints them as scikit-learn does).

    Parameters
    ----------
    est : MLPClassifier or MLPRegressor
    n_samples : int
        Training examples per epoch (added to ``t_``).
    """

    def __init__(self, est: MLPBase, n_samples: int) -> None:
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


class StochasticSolver(MLPBase):
    """``solver="sgd"`` and ``"adam"``: epochs of mini-batches on the `Trainer`."""

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

    def _batch_size(self, n: int) -> int:
        """scikit-learn's rule: "auto" is min(200, n); larger than n is clipped (warning)."""
        if self.batch_size == "auto":
            return min(200, n)
        bs = int(self.batch_size)
        if bs > n:
            warnings.warn(
                f"batch_size={bs} is larger than the {n} training examples; it is clipped to {n}",
                UserWarning,
                stacklevel=5,
            )
            bs = n
        return bs

    def _diverged_epoch(self, n_samples: int) -> None:
        """Record an epoch whose loss became non-finite as scikit-learn does: its loss and
        validation score are NaN."""
        self.n_iter_ += 1
        self.t_ += n_samples
        self.loss_ = math.nan
        self.loss_curve_.append(math.nan)
        if self.validation_scores_ is not None:
            self.validation_scores_.append(math.nan)

    def _fit_stochastic(
        self,
        net: MLP,
        X: np.ndarray,
        y: np.ndarray,
        sw: np.ndarray | None,
        rs: np.random.RandomState,
        incremental: bool,
    ) -> None:
        """scikit-learn's ``_fit_stochastic`` as the one engine, `Trainer`, plus callbacks."""
        # Like scikit-learn: fit makes a new optimiser, partial_fit keeps its state.
        if not incremental or self._optimizer is None:
            self._optimizer = self._make_optimizer(net)
        rng = np.random.default_rng(int(rs.randint(np.iinfo(np.int32).max)))
        early = bool(self.early_stopping)
        validation = sw_val = None
        if early:
            # scikit-learn's split, train_test_split, stratified on the class for
            # single-label classification (a class of one member is an error): for two
            # classes on its boolean column (so the error names the class 'True', as
            # scikit-learn's), for more on the class codes (scikit-learn does not stratify
            # those, its one-hot targets having several columns; docs/estimators.md).
            labels = y > 0.5 if net.is_binary else y  # (n, 1) booleans, as scikit-learn
            idx_tr, idx_val = train_test_split(
                np.arange(X.shape[0]),
                test_size=float(self.validation_fraction),
                random_state=int(rng.integers(np.iinfo(np.int32).max)),
                stratify=labels if net.is_classifier or net.is_binary else None,
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
        trainer = Trainer(
            net,
            self._optimizer,
            batch_size=self._batch_size(n),
            seed=rng,
            shuffle=bool(self.shuffle),
            metric="r2" if self._loss in REGRESSION_LOSSES else "accuracy",
            penalty=l2_penalty(net, float(self.alpha)) if self.alpha else None,
            lr_name="learning_rate_init",
            dropout=float(self.dropout),
        )
        # scikit-learn's rule: stop when more than n_iter_no_change epochs in a row fail to
        # improve by tol, on the validation score (early_stopping) or the training loss.
        stop = SklearnStopping(
            self,
            monitor="val_metric" if early else "train_loss",
            mode="max" if early else "min",
            patience=float(self.n_iter_no_change) + 1,
            min_delta=float(self.tol),
            restore_best=early,
            best=self.best_validation_score_ if early else self.best_loss_,
        )
        stop.wait = self._no_improvement_count
        self.n_iter_ = 0
        try:
            result = trainer.fit(
                X,
                y,
                epochs=1 if incremental else int(self.max_iter),
                validation_data=validation,
                sample_weight=sw,
                validation_sample_weight=sw_val,
                callbacks=[FittedAttributes(self, n), stop],
            )
        except TrainingDiverged as exc:
            if early:
                # scikit-learn's early stopping survives a diverging loss (its #29504):
                # the epoch scores NaN and the best epoch's weights are kept, with a
                # warning here where scikit-learn trains on silently.
                self._diverged_epoch(n)
                stop.restore(trainer)
                warnings.warn(
                    f"training diverged in epoch {exc.epoch} (the {exc.what} became NaN or "
                    f"infinite with learning_rate_init={exc.lr:g}); the model keeps the "
                    "best epoch's weights (early stopping)",
                    ConvergenceWarning,
                    stacklevel=4,
                )
                return
            # scikit-learn's words first (users match them), then the trainer's own
            # account (what happened, what to do); the weights are the last finished
            # epoch's.
            raise TrainingDiverged(
                lr=exc.lr,
                epoch=exc.epoch,
                result=exc.result,
                what=exc.what,
                lr_name=exc.lr_name,
                context=NON_FINITE,
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
            self._no_improvement_count = stop.wait
            if early:
                self.best_validation_score_ = stop.best
            else:
                self.best_loss_ = stop.best
        if result.stopped_early:
            if self.verbose and stop.rule != "adaptive":
                print(f"{no_change_message(self)} Stopping.")
        elif not incremental and self.n_iter_ == self.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                "reached and the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=4,
            )
