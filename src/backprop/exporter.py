"""Export a model to where it will run: ONNX, and a PyTorch state dict that takes raw input.

A `backprop.io.Model` is the network plus its input pipeline, ``((X / input_scale) -
mean) / scale`` (`backprop.data.Preprocessor`), and its labels. Both exports keep the
pipeline inside, so the file runs on raw input (digits pixels 0..16, uint8 images,
CSV values) exactly as ``backprop predict`` does:

- `to_onnx`: the whole model as an ONNX graph, raw input -> what ``backprop predict
  --proba`` gives (softmax probabilities; ``[1 - p, p]`` for the binary one-output
  layout; independent sigmoids for multilabel; a regressor's values in the target's
  units, which `backprop.run.to_model` already folded into the last layer). The
  preprocessing is three explicit nodes (Div, Sub, Div), the operations of
  `Preprocessor.apply` in the same order and dtype. Needs the optional ``onnx`` package
  (``pip install 'backprop-mlp[export]'``), imported only when called.
- `to_torch_state_dict`: the ``nn.Sequential(Linear, act, Linear, ...)`` state dict
  with the preprocessing folded into the first ``Linear`` (`fold_preprocessor`), so
  ``load_state_dict`` + forward on raw input gives the model's scores.
- `export`: either, written to a file atomically; what ``backprop export`` runs.

The folding is the notes' first layer, page 7's ``S1 = X W1 + 1_n b1``, with X replaced
by the affine map z = X * k - m / s, k = 1 / (input_scale * s), one k per feature:
``z W1 + b1 = X (diag(k) W1) + (b1 - (m / s) W1)``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from backprop._fileutil import atomic_write_bytes
from backprop._version import __version__
from backprop.data import Preprocessor
from backprop.io import Model, load, save, to_state_dict
from backprop.network import MLP

if TYPE_CHECKING:
    import onnx

__all__ = [
    "EXPORTERS",
    "ONNX_IR_VERSION",
    "ONNX_OPSET",
    "ExportError",
    "OnnxGraph",
    "export",
    "fold_preprocessor",
    "onnx_network",
    "to_onnx",
    "to_torch_state_dict",
]

#: Opset 13: the oldest in which every operator emitted here (MatMul, Add, Sub, Div, Neg,
#: Concat, Relu, Tanh, Sigmoid, Identity, Softmax) has the semantics relied on (Softmax
#: normalises along one axis from 13 on), so the widest range of runtimes can load the
#: file (onnxruntime >= 1.6, onnxruntime-web, TensorRT, OpenVINO, ...).
ONNX_OPSET = 13
#: The IR version that goes with opset 13 (onnx's versioning table): a newer IR would
#: lock out runtimes that read opset 13 perfectly well.
ONNX_IR_VERSION = 7

#: The hidden activations as ONNX operators; a new `backprop.layers.ACTIVATIONS` entry
#: needs one here (or the export refuses it by name).
ONNX_ACTIVATIONS = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "identity": "Identity"}


class ExportError(ValueError):
    """A model cannot be exported (an activation ONNX has no operator for, a file that
    exists, the optional ``onnx`` package missing); the message names the problem."""


# ------------------------------------------------------------------------- PyTorch


def fold_preprocessor(model: Model) -> MLP:
    """A new network that takes raw input: the model's preprocessing folded into layer 1.

    Parameters
    ----------
    model : Model

    Returns
    -------
    net : MLP
        Same sizes, activation, loss and dtype; ``W1`` of shape (d, m1) is
        ``diag(k) W1`` and ``b1`` is ``b1 - (m / s) W1`` with k = 1 / (input_scale * s)
        (computed in float64, then cast), the other layers copied. Its forward on raw X
        equals ``model.forward(X)`` up to rounding.
    """
    net, pre = model.net, model.pre
    d = net.n_inputs
    folded = MLP(net.layer_sizes, net.activation, net.loss, dtype=net.dtype, seed=0)
    folded.params = {k: np.array(p, dtype=net.dtype, order="C") for k, p in net.params.items()}
    s_in = 1.0 if pre.input_scale is None else pre.input_scale
    s = np.ones(d) if pre.scale is None else np.broadcast_to(pre.scale, d)  # one for images
    m = np.zeros(d) if pre.mean is None else np.broadcast_to(pre.mean, d)
    k = 1.0 / (s_in * s)
    W1 = net.params["W1"].astype(np.float64)
    folded.params["W1"] = np.ascontiguousarray((W1 * k[:, None]).astype(net.dtype))
    folded.params["b1"] = (net.params["b1"].astype(np.float64) - (m / s) @ W1).astype(net.dtype)
    return folded


def to_torch_state_dict(model: Model) -> dict[str, np.ndarray]:
    """The ``nn.Sequential`` state dict of a network that takes raw input.

    Parameters
    ----------
    model : Model

    Returns
    -------
    state : dict of str to ndarray
        ``"0.weight"`` of shape (m1, d) with the preprocessing folded in
        (`fold_preprocessor`), ``"0.bias"``, ``"2.weight"``, ... (`backprop.io.to_state_dict`
        names). ``torch.nn.Sequential(Linear(d, m1), ReLU(), ..., Linear(m, c))`` with
        this state gives ``model.forward(X)`` for raw ``X`` of shape (n, d).
    """
    return to_state_dict(fold_preprocessor(model))


def _raw_input_model(model: Model, source: str) -> Model:
    """The folded network as a `Model` whose preprocessor only names the input (feature
    names, image shape, training range): a model file PyTorch and backprop both load."""
    pre = replace(model.pre, input_scale=None, mean=None, scale=None)
    config = {**model.config, "exported_from": source, "export": "torch"}
    return Model(fold_preprocessor(model), preprocessor=pre, classes=model.classes, config=config)


# ------------------------------------------------------------------------- ONNX


def _onnx() -> Any:
    """The optional ``onnx`` package, or an `ExportError` saying how to get it."""
    try:
        import onnx  # optional extra: imported when an ONNX export is asked for
    except ImportError:
        raise ExportError(
            "ONNX export needs the onnx package: pip install 'backprop-mlp[export]'"
        ) from None
    return onnx


class OnnxGraph:
    """Nodes and initializers of an ONNX graph, every name under one prefix.

    The same nodes go into `to_onnx`'s model and, through
    `backprop.estimators.register_skl2onnx`, into skl2onnx's container.

    Parameters
    ----------
    prefix : str
        Prepended to every name this graph creates (unique names inside a larger graph).
    """

    def __init__(self, prefix: str = "") -> None:
        self.onnx = _onnx()
        self.prefix = prefix
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def const(self, name: str, value: np.ndarray) -> str:
        """Add an initializer holding ``value``; returns its name."""
        full = self.prefix + name
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(value), full))
        return full

    def op(self, op_type: str, inputs: list[str], name: str, **attrs: Any) -> str:
        """Add a node with one output named ``prefix + name``; returns that name."""
        full = self.prefix + name
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [full], name=full, **attrs))
        return full


def _onnx_preprocess(g: OnnxGraph, pre: Preprocessor, x: str, dtype: np.dtype[Any]) -> str:
    """`Preprocessor.apply` as nodes: Div by input_scale, Sub mean, Div scale (in dtype)."""
    if pre.input_scale is not None:
        x = g.op("Div", [x, g.const("input_scale", np.asarray(pre.input_scale, dtype))], "raw")
    if pre.mean is not None and pre.scale is not None:
        x = g.op("Sub", [x, g.const("mean", pre.mean.astype(dtype))], "centred")
        x = g.op("Div", [x, g.const("scale", pre.scale.astype(dtype))], "standardised")
    return x


def _softmax_head(g: OnnxGraph, net: MLP, s: str) -> str:
    return g.op("Softmax", [s], "probabilities", axis=1)  # page 5's softmax, per row


def _sigmoid_head(g: OnnxGraph, net: MLP, s: str) -> str:
    if net.is_binary:  # [1 - p, p] as sigmoid([-s, s]): no cancellation (Model.predict_proba)
        s = g.op("Concat", [g.op("Neg", [s], "minus_scores"), s], "both_scores", axis=1)
    return g.op("Sigmoid", [s], "probabilities")


def _identity_head(g: OnnxGraph, net: MLP, s: str) -> str:
    return g.op("Identity", [s], "predictions")  # already in the target's units


def _exp_head(g: OnnxGraph, net: MLP, s: str) -> str:
    return g.op("Exp", [s], "predictions")  # the Poisson mean e^s of the log-means s


#: loss -> the output head: what ``predict --proba`` (or a regressor's ``predict``) gives.
_HEADS: dict[str, Callable[[OnnxGraph, MLP, str], str]] = {
    "softmax_cross_entropy": _softmax_head,
    "sigmoid_binary_cross_entropy": _sigmoid_head,
    "squared_error": _identity_head,
    "poisson": _exp_head,
}


def onnx_network(g: OnnxGraph, net: MLP, pre: Preprocessor | None, x: str) -> str:
    """Add raw input ``x`` -> preprocessing -> the network -> its head to ``g``.

    Parameters
    ----------
    g : OnnxGraph
    net : MLP
    pre : Preprocessor or None
    x : str
        Name of the input, of shape (n, d) in the network's dtype.

    Returns
    -------
    name : str
        The output, of shape (n, c): probabilities (c = 2 for the binary layout), or a
        regressor's values.
    """
    if net.activation not in ONNX_ACTIVATIONS:
        raise ExportError(f"activation {net.activation!r} has no ONNX operator here")
    if pre is not None:
        x = _onnx_preprocess(g, pre, x, net.dtype)
    for l in range(1, net.n_layers + 1):  # page 7: S = A W + 1_n b, A = f(S)
        W = g.const(f"W{l}", np.ascontiguousarray(net.params[f"W{l}"], dtype=net.dtype))
        b = g.const(f"b{l}", np.asarray(net.params[f"b{l}"], dtype=net.dtype))
        x = g.op("Add", [g.op("MatMul", [x, W], f"XW{l}"), b], f"S{l}")
        if l < net.n_layers:
            x = g.op(ONNX_ACTIVATIONS[net.activation], [x], f"A{l}")
    return _HEADS[net.loss](g, net, x)


def to_onnx(model: Model, *, source: str = "in memory") -> onnx.ModelProto:
    """The whole model, raw input to ``predict --proba``'s output, as a checked ONNX model.

    Parameters
    ----------
    model : Model
    source : str, default "in memory"
        Where the model came from (its file), recorded in the metadata.

    Returns
    -------
    onnx.ModelProto
        Opset `ONNX_OPSET`; one input ``"input"`` of shape (batch, d) in the network's
        dtype (batch is dynamic); one output, ``"probabilities"`` of shape (batch, c) for
        a classifier or ``"predictions"`` of shape (batch, k) for a regressor.
        ``metadata_props``: ``classes`` (JSON list), ``task``, ``backprop_version``,
        ``source_model``, ``feature_names`` (JSON list or null).

    Raises
    ------
    ExportError
        If ``onnx`` is not installed, or the activation has no ONNX operator.
    """
    onnx = _onnx()
    net = model.net
    g = OnnxGraph()
    out = onnx_network(g, net, model.pre, "input")
    elem = onnx.helper.np_dtype_to_tensor_dtype(net.dtype)
    graph = onnx.helper.make_graph(
        g.nodes,
        "backprop",
        [onnx.helper.make_tensor_value_info("input", elem, ["batch", net.n_inputs])],
        [onnx.helper.make_tensor_value_info(out, elem, ["batch", _n_out(model)])],
        initializer=g.initializers,
    )
    proto = onnx.helper.make_model(
        graph,
        opset_imports=[onnx.helper.make_opsetid("", ONNX_OPSET)],
        ir_version=ONNX_IR_VERSION,
        producer_name="backprop",
        producer_version=__version__,
        doc_string=f"backprop {__version__} model from {source}: raw input -> {out}",
    )
    task = "classification" if net.is_classifier or net.is_multilabel else "regression"
    classes = model.labels
    meta = {
        "classes": json.dumps(None if classes is None else classes.tolist()),
        "task": "multilabel" if net.is_multilabel and not net.is_binary else task,
        "backprop_version": __version__,
        "source_model": source,
        "feature_names": json.dumps(model.feature_names),
    }
    onnx.helper.set_model_props(proto, meta)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _n_out(model: Model) -> int:
    return 2 if model.is_binary else model.net.n_outputs


# ------------------------------------------------------------------------- files


def _write_onnx(model: Model, path: Path, source: str, overwrite: bool) -> Path:
    _refuse_existing(path, overwrite)
    return atomic_write_bytes(path, to_onnx(model, source=source).SerializeToString())


def _write_torch(model: Model, path: Path, source: str, overwrite: bool) -> Path:
    _refuse_existing(path, overwrite)
    return save(path, _raw_input_model(model, source))


def _refuse_existing(path: Path, overwrite: bool) -> None:
    if path.is_dir():
        raise ExportError(f"{path}: is a directory, not a file name")
    if not path.parent.is_dir():
        raise ExportError(f"{path}: directory {path.parent} does not exist")
    if path.exists() and not overwrite:
        raise ExportError(f"{path}: already exists; --force (overwrite=True) replaces it")


#: format -> (file suffix, writer(model, path, source, overwrite)).
EXPORTERS: dict[str, tuple[str, Callable[[Model, Path, str, bool], Path]]] = {
    "onnx": (".onnx", _write_onnx),
    "torch": (".torch.safetensors", _write_torch),
}


def export(
    model: Model | str | os.PathLike[str],
    to: str,
    out: str | os.PathLike[str] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write a model as an ONNX file or as a PyTorch state dict that takes raw input.

    Parameters
    ----------
    model : Model, or path of a model file
    to : {"onnx", "torch"}
        ``"onnx"``: `to_onnx`. ``"torch"``: a safetensors file whose tensors are
        `to_torch_state_dict` (and which backprop also loads, as a model without scaling).
    out : path, optional
        Default: the model file's name with ``.onnx`` or ``.torch.safetensors`` in place
        of ``.safetensors`` (required when ``model`` is a `Model`).
    overwrite : bool, default False
        Replace an existing ``out``; otherwise refuse.

    Returns
    -------
    path : Path
        The file written (atomically: never half-written).

    Raises
    ------
    ExportError
        Unknown format, existing file, no ``out`` for an in-memory model, missing ``onnx``.
    backprop.io.ModelFileError
        If ``model`` is a path to a bad model file.
    """
    if to not in EXPORTERS:
        raise ExportError(f"unknown export format {to!r}; choose one of {', '.join(EXPORTERS)}")
    suffix, write = EXPORTERS[to]
    if isinstance(model, Model):
        if out is None:
            raise ExportError("out is required when exporting a Model (not a file)")
        source = "in memory"
    else:
        src = Path(model)
        source = src.name  # the file's name, not the exporting machine's directories
        out = src.with_name(src.name.removesuffix(".safetensors") + suffix) if out is None else out
        model = load(src)
    return write(model, Path(out), source, overwrite)
