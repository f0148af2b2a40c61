"""`MLPClassifier`: softmax cross-entropy, or scikit-learn's one logistic output for
two classes, or one per label for multilabel (binary cross-entropy)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import ClassifierMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels

from backprop.data import LabelEncoder
from backprop.estimators.base import MULTILABEL_LOSS
from backprop.estimators.lbfgs import LbfgsSolver
from backprop.estimators.modelfile import ModelFileMixin
from backprop.estimators.stochastic import StochasticSolver, has_partial_fit
from backprop.losses import sigmoid, softmax

__all__ = ["MLPClassifier"]


class MLPClassifier(ClassifierMixin, StochasticSolver, LbfgsSolver, ModelFileMixin):
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

    # Or MULTILABEL_LOSS, chosen by `fit` from y: multilabel, or two classes (one
    # logistic output, scikit-learn's layout).
    _loss = "softmax_cross_entropy"
    _losses = ("softmax_cross_entropy", MULTILABEL_LOSS)

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

    @available_if(has_partial_fit)
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
        if not first_pass and multilabel != (self._net.is_multilabel and not self._is_binary()):
            raise ValueError(
                "y is multilabel now but was not before (or the other way round); set "
                "warm_start=False to start afresh"
            )
        if multilabel:
            # scikit-learn's LabelBinarizer on an indicator matrix: classes_ are the
            # column indices, and the targets stay the 0/1 matrix (one sigmoid per label).
            if first_pass:
                self._loss = MULTILABEL_LOSS
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
            self._loss = MULTILABEL_LOSS if len(new_classes) == 2 else MLPClassifier._loss
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
        if self._loss == MULTILABEL_LOSS:  # binary: the 0/1 column of y == classes_[1]
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
