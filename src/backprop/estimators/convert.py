"""`register_skl2onnx`: the estimators as skl2onnx operators, so ``skl2onnx.to_onnx(est,
X[:1])`` converts a fitted `MLPClassifier` or `MLPRegressor` as it does scikit-learn's.

The graph is `backprop.exporter.onnx_network`'s, the one ``backprop export --to onnx``
writes, built from the estimator's public fitted attributes (``coefs_``, ``intercepts_``,
``activation``, ``out_activation_``, ``classes_``), so a user's replaced ``coefs_`` are
converted as they predict. skl2onnx is an optional extra: it is imported when
`register_skl2onnx` is called, never on ``import backprop``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backprop.estimators.base import ACTIVATIONS, MULTILABEL_LOSS, OUT_ACTIVATIONS
from backprop.estimators.classifier import MLPClassifier
from backprop.estimators.regressor import MLPRegressor
from backprop.exporter import ExportError, OnnxGraph, onnx_network
from backprop.network import MLP

__all__ = ["register_skl2onnx"]

_LOSS_OF_OUT_ACTIVATION = {out: loss for loss, out in OUT_ACTIVATIONS.items()}


def _network(est: Any, dtype: type[np.floating[Any]]) -> MLP:
    """The fitted estimator's network, from its public attributes, in ``dtype``."""
    sizes = [int(np.shape(est.coefs_[0])[0])] + [int(np.shape(W)[1]) for W in est.coefs_]
    loss = _LOSS_OF_OUT_ACTIVATION[est.out_activation_]
    net = MLP(sizes, ACTIVATIONS[est.activation], loss, dtype=dtype, seed=0)
    for l, (W, b) in enumerate(zip(est.coefs_, est.intercepts_, strict=True), start=1):
        net.params[f"W{l}"] = np.asarray(W, dtype=dtype)
        net.params[f"b{l}"] = np.asarray(b, dtype=dtype)
    return net


def _labels(classes: np.ndarray) -> np.ndarray:
    """The class labels as an ONNX tensor holds them: strings, or int64 (as skl2onnx
    gives scikit-learn's MLPClassifier)."""
    if classes.dtype.kind in "US":
        return classes.astype(object)
    if classes.dtype.kind == "f" and not np.all(classes == np.round(classes)):
        raise ExportError("class labels that are non-integer floats cannot be ONNX labels")
    return classes.astype(np.int64)


def _dtype_of(operator: Any) -> type[np.floating[Any]]:
    from skl2onnx.common.data_types import DoubleTensorType  # registered: installed

    return np.float64 if isinstance(operator.inputs[0].type, DoubleTensorType) else np.float32


def _shapes(operator: Any) -> None:
    """skl2onnx's shape calculator: classifier outputs (label, probabilities), a
    regressor's (variable)."""
    from skl2onnx.common.data_types import (  # registered: installed
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )

    est = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    real = DoubleTensorType if _dtype_of(operator) is np.float64 else FloatTensorType
    width = int(np.shape(est.coefs_[-1])[1])
    if isinstance(est, MLPRegressor):
        operator.outputs[0].type = real([n, width])
        return
    multilabel = est.out_activation_ == "logistic" and width > 1
    if multilabel:
        operator.outputs[0].type = Int64TensorType([n, width])
    elif _labels(est.classes_).dtype == object:
        operator.outputs[0].type = StringTensorType([n])
    else:
        operator.outputs[0].type = Int64TensorType([n])
    operator.outputs[1].type = real([n, len(est.classes_)])


def _convert(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx's converter: `onnx_network`'s nodes, then the labels of a classifier."""
    est = operator.raw_operator
    dtype = _dtype_of(operator)
    net = _network(est, dtype)
    g = OnnxGraph(prefix=scope.get_unique_variable_name("backprop_"))
    elem = g.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    x = g.op("Cast", [operator.inputs[0].full_name], "input", to=elem)
    out = onnx_network(g, net, None, x)  # an estimator takes its input as given
    if isinstance(est, MLPRegressor):
        g.nodes.append(_identity(g, out, operator.outputs[0].full_name))
    else:
        proba = operator.outputs[1].full_name
        g.nodes.append(_identity(g, out, proba))
        if net.loss == MULTILABEL_LOSS and not net.is_binary:
            # scikit-learn's threshold: the label is on where its probability > 0.5.
            on = g.op("Greater", [proba, g.const("half", np.asarray(0.5, dtype))], "on")
            label = g.op("Cast", [on], "label", to=g.onnx.TensorProto.INT64)
        else:
            index = g.op("ArgMax", [proba], "index", axis=1, keepdims=0)
            label = g.op("Gather", [g.const("classes", _labels(est.classes_)), index], "label")
        g.nodes.append(_identity(g, label, operator.outputs[0].full_name))
    for tensor in g.initializers:
        # skl2onnx copies a TensorProto's raw bytes only, and strings have none.
        strings = tensor.data_type == g.onnx.TensorProto.STRING
        content = list(tensor.string_data) if strings else tensor
        container.add_initializer(tensor.name, tensor.data_type, list(tensor.dims), content)
    helper = g.onnx.helper
    for node in g.nodes:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        container.add_node(
            node.op_type, list(node.input), list(node.output), name=node.name, **attrs
        )


def _identity(g: OnnxGraph, src: str, dst: str) -> Any:
    """A node copying ``src`` to skl2onnx's output name ``dst``."""
    return g.onnx.helper.make_node("Identity", [src], [dst], name=dst + "_identity")


def register_skl2onnx() -> None:
    """Register `MLPClassifier` and `MLPRegressor` with skl2onnx (idempotent).

    Afterwards ``skl2onnx.to_onnx(est, X[:1])`` converts a fitted estimator: a classifier
    gives ``label`` (shape (n,), or (n, k) for multilabel) and ``probabilities`` (a ZipMap
    unless ``options={"zipmap": False}``), a regressor ``variable`` of shape (n, k).

    Raises
    ------
    backprop.exporter.ExportError
        If skl2onnx is not installed.
    """
    try:
        from skl2onnx import update_registered_converter  # optional extra, asked for here
    except ImportError:
        raise ExportError(
            "registering with skl2onnx needs it: pip install 'backprop-mlp[export]'"
        ) from None
    update_registered_converter(
        MLPClassifier,
        "BackpropMLPClassifier",
        _shapes,
        _convert,
        options={"zipmap": [True, False, "columns"], "nocl": [True, False]},
    )
    update_registered_converter(MLPRegressor, "BackpropMLPRegressor", _shapes, _convert)
