"""Estimators as backprop model files: `save`, `load`, `to_model`, `from_model`, and the
schema of the training record (``n_iter_``, ``loss_curve_``, ...) they store under the
model's ``config["fitted"]``.

`backprop.io` checks only that the record is a JSON object: what is in it is the
estimators' business, checked here when an estimator is built from a model.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np

from backprop.checks import is_int, is_real
from backprop.data import Preprocessor
from backprop.estimators.base import ACTIVATIONS, MLPBase
from backprop.exporter import fold_preprocessor
from backprop.io import Model, ModelFileError
from backprop.io import load as load_model
from backprop.io import save as save_model

__all__ = ["FITTED_FIELDS", "FittedRecordError", "ModelFileMixin", "read_fitted"]


class FittedRecordError(ValueError):
    """A model's ``config["fitted"]`` is not a training record an estimator can use."""


def _is_count(v: object) -> bool:
    return is_int(v) and 0 <= v < 2**63  # type: ignore[operator]


def _is_float_text(v: object) -> bool:
    """A float as `to_model` stores it (``repr`` text, so inf and NaN survive JSON)."""
    if is_real(v):
        return abs(v) <= 2**1023  # type: ignore[arg-type]
    if not isinstance(v, str) or len(v) > 64:
        return False
    try:
        float(v)
    except ValueError:
        return False
    return True


def _is_float_list(v: object) -> bool:
    return isinstance(v, list) and all(map(_is_float_text, v))


#: The fitted attributes in ``config["fitted"]``, each with what it must be to convert as
#: `read_fitted` converts it (int() or float()).
FITTED_FIELDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "n_iter_": ("a count", _is_count),
    "t_": ("a count", _is_count),
    "loss_": ("a number or null", lambda v: v is None or _is_float_text(v)),
    "best_loss_": ("a number or null", lambda v: v is None or _is_float_text(v)),
    "best_validation_score_": ("a number or null", lambda v: v is None or _is_float_text(v)),
    "loss_curve_": ("a list of numbers", _is_float_list),
    "validation_scores_": ("a list of numbers or null", lambda v: v is None or _is_float_list(v)),
}


def _jsonable_float(v: float | None) -> str | None:
    """Floats as repr strings, so inf and NaN survive JSON (which has neither)."""
    return None if v is None else repr(float(v))


def _from_json_float(v: str | None) -> float | None:
    return None if v is None else float(v)


def read_fitted(record: object) -> dict[str, Any]:
    """The fitted attributes a model's ``config["fitted"]`` holds, checked and converted.

    Parameters
    ----------
    record : dict or None
        As `ModelFileMixin.to_model` writes it; None (or missing fields) gives the
        attributes of an estimator that was never trained.

    Returns
    -------
    dict of str to object
        ``n_iter_``, ``t_``, ``loss_``, ``best_loss_``, ``loss_curve_``,
        ``validation_scores_``, ``best_validation_score_``.

    Raises
    ------
    FittedRecordError
        If the record is not a dict, or a field is not what it must be (named).
    """
    if record is None:
        record = {"best_loss_": "inf"}  # what a fit that ran no epoch leaves
    if not isinstance(record, Mapping):
        raise FittedRecordError(f"config fitted must be a JSON object, got {_short(record)}")
    for key, (kind, ok) in FITTED_FIELDS.items():
        if key in record and not ok(record[key]):
            raise FittedRecordError(
                f"config fitted must be a JSON object of counts (n_iter_, t_) and numbers "
                f"(loss_, loss_curve_, ...): {key} must be {kind}, got {_short(record[key])}"
            )
    loss = _from_json_float(record.get("loss_"))
    scores = record.get("validation_scores_")
    return {
        "n_iter_": int(record.get("n_iter_", 0)),
        "t_": int(record.get("t_", 0)),
        "loss_": math.nan if loss is None else loss,
        "best_loss_": _from_json_float(record.get("best_loss_")),
        "loss_curve_": [float(v) for v in record.get("loss_curve_") or []],
        "validation_scores_": None if scores is None else [float(v) for v in scores],
        "best_validation_score_": _from_json_float(record.get("best_validation_score_")),
    }


def _short(v: object) -> str:
    got = repr(v)
    return got if len(got) <= 60 else got[:57] + "..."


class ModelFileMixin(MLPBase):
    """`save`/`load` as backprop model files, `to_model`/`from_model` as `Model`."""

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
        return save_model(path, self.to_model(), overwrite=overwrite)

    def to_model(self) -> Model:
        """The fitted estimator as a `backprop.io.Model` (what `save` writes).

        Returns
        -------
        model : backprop.io.Model
        """
        net = self._prediction_net()
        if net.is_multilabel and net.n_outputs > 1:
            raise ValueError("saving a multilabel classifier is not supported (model files)")
        params = self.get_params()
        params["hidden_layer_sizes"] = self._hidden_sizes()
        if not (params["random_state"] is None or isinstance(params["random_state"], Integral)):
            params["random_state"] = None  # a RandomState object cannot be stored
        scores = self.validation_scores_
        fitted = {
            "n_iter_": int(self.n_iter_),
            "t_": int(self.t_),
            "loss_": _jsonable_float(self.loss_),
            "best_loss_": _jsonable_float(self.best_loss_),
            "loss_curve_": [_jsonable_float(v) for v in self.loss_curve_],
            "validation_scores_": None if scores is None else list(map(_jsonable_float, scores)),
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
            If the file is not a valid model file, or its training record is broken.
        ValueError
            If it holds a regressor and ``cls`` is the classifier, or the other way round.
        """
        model = load_model(path)
        try:
            return cls.from_model(model)
        except FittedRecordError as exc:  # the file's fault: name it, as io does
            raise ModelFileError(f"{path}: inconsistent model file: {exc}") from None

    @classmethod
    def from_model(cls, model: Model) -> Any:
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

        Raises
        ------
        ValueError
            If the model is of the other kind (regressor, classifier).
        FittedRecordError
            If the model was saved by this estimator and its ``config["fitted"]`` is
            broken (a `ValueError`).
        """
        net = model.net
        if net.loss not in cls._losses:
            kind = "classifier" if net.is_classifier or net.is_multilabel else "regressor"
            raise ValueError(f"the model is a {kind}; load it with the matching estimator")
        config = model.config if isinstance(model.config, dict) else {}
        mine = config.get("estimator") == cls.__name__
        # Checked before anything is built; another estimator's record is not read.
        fitted = read_fitted(config.get("fitted") if mine else None)
        valid = cls().get_params()
        params = {k: v for k, v in (config.get("params") or {}).items() if mine and k in valid}
        params["hidden_layer_sizes"] = tuple(net.layer_sizes[1:-1])
        params["activation"] = {v: k for k, v in ACTIVATIONS.items()}[net.activation]
        if "loss" in valid:  # the regressor's loss: scikit-learn's names are the engine's
            params["loss"] = net.loss
        est = cls(**params)
        est._adopt(model, fitted, feature_names=mine)
        return est

    def _adopt(self, model: Model, fitted: dict[str, Any], *, feature_names: bool) -> None:
        """Take the model's network (its input pipeline folded in) and the fitted record."""
        net = model.net
        self._loss = net.loss  # a classifier's: softmax, or binary's one logistic output
        # The estimator takes raw input as the model did: the model's input pipeline
        # folded into the first layer (page 7's S1 = X W1 + b1), on fresh copies.
        self._net = fold_preprocessor(model)
        self._optimizer = None  # continued training starts a fresh optimiser state
        self._no_improvement_count = 0
        self._set_structure()
        self.n_features_in_ = net.n_inputs
        if feature_names and model.feature_names is not None:
            self.feature_names_in_ = np.asarray(model.feature_names, dtype=object)
        if (labels := model.labels) is not None:
            self.classes_ = labels
        for name, value in fitted.items():
            setattr(self, name, value)
