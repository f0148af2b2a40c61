"""Model files: `Model` (network + preprocessing + labels) and `save`/`load` in safetensors.

A model file is a safetensors file (never pickle: loading one cannot run code). Its
tensors are named and shaped as PyTorch's ``nn.Sequential(Linear, act, Linear, act, ...,
Linear)`` state dict: ``"0.weight"`` of shape (out, in) is W1 transposed (the notes store
W as (fan_in, fan_out), page 7; PyTorch's ``Linear`` stores (fan_out, fan_in)),
``"0.bias"`` is b1, ``"2.weight"``/``"2.bias"`` the next layer, and so on (the odd
indices are the parameter-free activations). A PyTorch user can therefore do::

    net = torch.nn.Sequential(nn.Linear(d, m), nn.ReLU(), nn.Linear(m, c))
    net.load_state_dict(safetensors.torch.load_file("model.safetensors"))

with ``strict=True`` (for ``activation="identity"`` use ``nn.Identity()`` as the
placeholder so that the indices still line up). Everything else -- format version,
layer sizes, activation, loss, dtype, class labels, the input preprocessor (raw-input
scale, mean and scale, feature names, image shape, training range), training config,
library version -- is one JSON document under the key ``"backprop"`` of the safetensors
``__metadata__``. The input mean and scale live there
(as float64 JSON numbers, which round-trip exactly) rather than as tensors, because extra
tensors would break ``load_state_dict(strict=True)``.

Saving is atomic (temporary file in the same directory, fsync, ``os.replace``). Loading
trusts nothing: it reads and checks the header itself before safetensors allocates
anything, and turns every problem into a `ModelFileError` that names the file.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.numpy
from numpy.typing import ArrayLike

from backprop._fileutil import atomic_write_bytes
from backprop._version import __version__
from backprop.checks import is_int
from backprop.data.preprocess import Preprocessor
from backprop.data.rows import Rows
from backprop.layers import ACTIVATIONS
from backprop.losses import LOSSES, PREDICTIONS, sigmoid
from backprop.network import MLP

__all__ = [
    "FORMAT_VERSION",
    "Model",
    "ModelFileError",
    "ModelOutputError",
    "load",
    "read_metadata",
    "save",
    "to_state_dict",
]

# 2: the input pipeline is one "preprocessor" object (raw-input scale, global or
# per-feature standardisation, training range); 1 had x_mean/x_scale/feature_names/
# image_shape at the top level and is still read (`_v1_preprocessor`).
FORMAT_VERSION = 2
METADATA_KEY = "backprop"

# A header is a few kB of JSON; a length field beyond this is corruption or an attack,
# refused before reading it (safetensors itself accepts up to 100 MB).
_MAX_HEADER_BYTES = 100_000_000
_ST_DTYPES = {"float32": "F32", "float64": "F64"}  # numpy name -> safetensors name
_PathLike = str | os.PathLike[str]


class ModelFileError(ValueError):
    """A model file is missing, malformed, inconsistent, or cannot be written.

    The message names the file and the problem.
    """


# ------------------------------------------------------------------------- Model


@dataclass
class Model:
    """What gets saved and deployed: the network plus what turns raw inputs into its
    inputs and its outputs into labels.

    Parameters
    ----------
    net : MLP
        The trained network.
    preprocessor : backprop.data.Preprocessor, optional
        What training did to the raw inputs (the /16 of digits, the /255 of uint8 images,
        the standardisation, column names, image shape), applied by `transform` to every
        raw input. None: inputs are used as given.
    classes : array-like of shape (c,), optional
        Original class labels (ints, floats, bools or strings): output i means
        ``classes[i]``. None for a regressor, or for a classifier whose labels are
        ``0 .. c-1``.
    config : dict, default {}
        Training configuration (JSON-serialisable), free-form.

    Raises
    ------
    ValueError
        If any part is inconsistent with the network (names the part).
    """

    net: MLP
    preprocessor: Preprocessor | None = field(default=None, kw_only=True)
    classes: np.ndarray | None = field(default=None, kw_only=True)
    config: dict[str, Any] = field(default_factory=dict, kw_only=True)

    def __post_init__(self) -> None:
        if not isinstance(self.net, MLP):
            raise ValueError(f"net must be a backprop.MLP, got {type(self.net).__name__}")
        d, c = self.net.n_inputs, self.net.n_outputs
        if self.classes is not None:
            if not (self.net.is_classifier or self.net.is_multilabel):
                raise ValueError(f"classes given for a regressor (loss={self.net.loss!r})")
            self.classes = _as_classes(self.classes)
            if len(self.classes) != (2 if self.is_binary else c):
                raise ValueError(
                    f"{len(self.classes)} class labels for a network with {c} outputs"
                    + (" (a binary one-output network needs 2)" if self.is_binary else "")
                )
        if self.preprocessor is None:
            self.preprocessor = Preprocessor(n_features=d)
        if not isinstance(self.preprocessor, Preprocessor):
            raise ValueError(
                f"preprocessor must be a backprop.data.Preprocessor, got "
                f"{type(self.preprocessor).__name__}"
            )
        if self.preprocessor.n_features != d:
            raise ValueError(
                f"the preprocessor takes {self.preprocessor.n_features} features but the net "
                f"has {d} inputs"
            )
        if not isinstance(self.config, dict):
            raise ValueError(f"config must be a dict, got {type(self.config).__name__}")

    @property
    def is_classifier(self) -> bool:
        """True when the model predicts one class per example: a softmax network, or
        scikit-learn's binary layout (one sigmoid output)."""
        return self.net.is_classifier or self.is_binary

    @property
    def is_binary(self) -> bool:
        """True for scikit-learn's binary layout: one sigmoid output, the probability of
        ``classes[1]`` (two labels; ``0, 1`` when ``classes`` is None)."""
        return self.net.is_binary

    @property
    def labels(self) -> np.ndarray | None:
        """What a classifier's (or multilabel model's) outputs stand for: ``classes``, or
        ``0 .. n-1`` when none were given (n = 2 for the binary layout, else the outputs);
        None for a regressor."""
        if not (self.net.is_classifier or self.net.is_multilabel):
            return None
        n = 2 if self.is_binary else self.net.n_outputs
        return np.arange(n) if self.classes is None else np.asarray(self.classes)

    def class_indices(self, outputs: np.ndarray) -> np.ndarray:
        """The class each row of a classifier's outputs predicts, as an index into `labels`.

        Parameters
        ----------
        outputs : ndarray of shape (n, c)
            ``forward(X)``: scores, one column per class, or one column for the binary
            layout (the score of ``labels[1]``: index 1 where it is positive).

        Returns
        -------
        indices : ndarray of int64, shape (n,)

        Raises
        ------
        ValueError
            For a regressor or a multilabel model (several labels per row, no one class).
        """
        if not self.is_classifier:
            raise ValueError("class_indices: the model is not a classifier of one class per row")
        if self.is_binary:  # sigmoid(s) > 0.5 exactly where s > 0
            return (outputs[:, 0] > 0).astype(np.int64)
        return outputs.argmax(axis=1)

    @property
    def pre(self) -> Preprocessor:
        """The preprocessor (never None after construction)."""
        assert self.preprocessor is not None
        return self.preprocessor

    @property
    def n_features(self) -> int:
        """Input width d."""
        return self.net.n_inputs

    @property
    def feature_names(self) -> list[str] | None:
        """Input column names seen in training, or None."""
        names = self.pre.feature_names
        return None if names is None else list(names)

    @property
    def image_shape(self) -> tuple[int, int] | None:
        """``(rows, cols)`` when the inputs are flattened images, else None."""
        return self.pre.image_shape

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Raw inputs -> the network's inputs, through the recorded preprocessor.

        Parameters
        ----------
        X : array-like of shape (n, d)
            Raw inputs as training saw them (any integer or float dtype: uint8 images,
            digits pixels 0..16, CSV values); (n, h, w) is accepted for an image model.

        Returns
        -------
        X : ndarray of shape (n, d)
            A new array in the network's dtype (see `Preprocessor.transform`; warns when
            the input lies far outside the training range).

        Raises
        ------
        ValueError
            If X has the wrong width (the message names both widths), is not 2-D, is
            empty, or holds NaN/inf; a table whose columns do not match the model's
            names (`Preprocessor.select_columns`, the rule ``backprop predict`` applies
            to a CSV header).
        """
        return self.pre.transform(_by_name(X, self.pre), dtype=self.net.dtype)

    def forward(self, X: ArrayLike) -> np.ndarray:
        """Network outputs (class scores, or regression values) for raw inputs.

        Parameters
        ----------
        X : array-like of shape (n, d), or `backprop.data.Rows`
            A `Rows` (a memory-mapped file) is read chunk by chunk: only the outputs are
            held for all rows.

        Returns
        -------
        scores : ndarray of shape (n, c)
        """
        if isinstance(X, Rows):
            return X.map_chunks(self.forward, self.net.n_outputs)
        Xs = self.transform(X)
        with np.errstate(over="ignore", invalid="ignore"):  # checked just below
            return _finite_outputs(self.net.forward(Xs, check=False))

    decision_function = forward

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities, column i for ``classes[i]``.

        Parameters
        ----------
        X : array-like of shape (n, d)

        Returns
        -------
        p : ndarray of shape (n, c)
            For a binary one-output model, ``[1 - p, p]`` of shape (n, 2).
        """
        if self.is_binary:  # [1 - p, p], with 1 - sigmoid(s) as sigmoid(-s) (no cancellation)
            s = self.forward(X)
            return sigmoid(np.hstack([-s, s]))
        Xs = self.transform(X)
        with np.errstate(over="ignore", invalid="ignore"):  # checked just below
            return _finite_outputs(self.net.predict_proba(Xs))

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Original class labels for a classifier, values for a regressor.

        Parameters
        ----------
        X : array-like of shape (n, d)

        Returns
        -------
        y : ndarray of shape (n,) or (n, c)
            ``classes[argmax]`` (class indices when ``classes`` is None) for a classifier;
            a binary one-output model gives ``classes[s > 0]``, a multilabel one the 0/1
            indicator matrix; for a regressor its loss's prediction from the outputs (the
            outputs, or the Poisson mean e^s: `backprop.losses.PREDICTIONS`), of shape (n,)
            with one output, (n, c) otherwise.
        """
        out = self.forward(X)  # checked finite: argmax of NaN would be a silent class 0
        if self.net.is_multilabel:
            # sigmoid(s) > 0.5 exactly where s > 0: the label (binary: classes[1]) is on.
            on = (out > 0).astype(np.int64)
            if not self.is_binary:
                return on
            return on[:, 0] if self.classes is None else self.classes[on[:, 0]]
        if not self.net.is_classifier:
            with np.errstate(over="ignore"):  # e^s can overflow where s is finite: checked
                out = _finite_outputs(PREDICTIONS[self.net.loss](out, out=out))
            return out[:, 0] if out.shape[1] == 1 else out
        pred = self.class_indices(out)
        return pred if self.classes is None else self.classes[pred]


def _by_name(X: Any, pre: Preprocessor) -> Any:
    """A table with named columns (a pandas or polars DataFrame: anything with
    ``columns``) as the model's input columns in the model's order, matched by name
    exactly as a CSV header is; anything else as it is. pandas is never imported."""
    columns = getattr(X, "columns", None)
    if columns is None or isinstance(X, np.ndarray):
        return X
    header = [str(c) for c in columns]
    order = pre.column_order(header, "DataFrame")
    if order is None:
        return X
    # Column by column: a text column left out never turns the rest into objects.
    return np.column_stack([np.asarray(X[columns[j]]) for j in order])


class ModelOutputError(ValueError):
    """A model gives NaN or infinite outputs: its weights are broken (or overflow on
    inputs far outside the training range)."""


def _finite_outputs(out: np.ndarray) -> np.ndarray:
    """``out`` unchanged if every value is finite; a `ModelOutputError` otherwise."""
    bad = ~np.isfinite(out).all(axis=1)
    if bad.any():
        raise ModelOutputError(
            f"the model's outputs are NaN or infinite for {int(bad.sum())} of {len(out)} "
            f"input rows (first: row {int(bad.argmax())}); the model is broken (its weights "
            "overflow), or these inputs lie far outside its training range"
        )
    return out


def _as_classes(classes: ArrayLike) -> np.ndarray:
    """Class labels as a 1-D array of ints, floats, bools or strings, all distinct."""
    try:
        arr = np.asarray(classes)
    except (TypeError, ValueError) as exc:  # ragged nesting and the like
        raise ValueError(f"classes must be a flat list of labels: {exc}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"classes must be a non-empty 1-D list of labels, got shape {arr.shape}")
    if arr.dtype.kind == "O":  # e.g. labels from pandas: accept all-str or all-int
        items = arr.tolist()
        if all(isinstance(v, str) for v in items):
            arr = np.asarray(items, dtype=str)
        elif all(is_int(v) for v in items):
            try:
                arr = np.asarray(items, dtype=np.int64)
            except OverflowError:  # a label like 10**30: no int64 holds it
                raise ValueError("integer class labels must fit in 64 bits") from None
        else:
            raise ValueError("classes must all be strings or all be integers")
    if arr.dtype.kind not in "biufU":
        raise ValueError(f"classes must be numbers or strings, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError("classes contain NaN or infinity")
    if len(np.unique(arr)) != len(arr):
        raise ValueError("classes contain duplicate labels")
    return arr


# ------------------------------------------------------------------------- tensors


def _tensor_names(n_layers: int) -> list[tuple[str, str]]:
    """(weight name, bias name) of each layer, in nn.Sequential numbering (0, 2, 4, ...)."""
    return [(f"{2 * i}.weight", f"{2 * i}.bias") for i in range(n_layers)]


def to_state_dict(model: Model | MLP) -> dict[str, np.ndarray]:
    """The network's parameters as a PyTorch ``nn.Sequential`` state dict of NumPy arrays.

    Parameters
    ----------
    model : Model or MLP

    Returns
    -------
    state : dict of str to ndarray
        ``"0.weight"`` of shape (m1, d) = W1.T (a C-contiguous copy), ``"0.bias"`` of
        shape (m1,), ``"2.weight"``, ``"2.bias"``, ..., in the network's dtype.
    """
    net = model.net if isinstance(model, Model) else model
    state: dict[str, np.ndarray] = {}
    for l, (w_name, b_name) in enumerate(_tensor_names(net.n_layers), start=1):
        state[w_name] = np.ascontiguousarray(net.params[f"W{l}"].T, dtype=net.dtype)
        state[b_name] = np.ascontiguousarray(net.params[f"b{l}"], dtype=net.dtype)
    return state


def _json_default(obj: object) -> object:
    """Let numpy scalars and arrays in a config be written as JSON numbers and lists."""
    if isinstance(obj, np.generic | np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def _metadata_json(model: Model) -> str:

    net = model.net
    doc = {
        "format_version": FORMAT_VERSION,
        "layer_sizes": list(net.layer_sizes),
        "activation": net.activation,
        "loss": net.loss,
        "dtype": net.dtype.name,
        "classes": None if model.classes is None else model.classes.tolist(),
        # float64 -> Python float -> repr: every value round-trips exactly.
        "preprocessor": model.pre.to_dict(),
        "config": model.config,
        "backprop_version": __version__,
    }
    try:
        return json.dumps(doc, default=_json_default, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"model config cannot be saved as JSON: {exc}") from None
    except RecursionError:  # a config nested thousands deep
        raise ValueError("model config cannot be saved as JSON: nested too deeply") from None


# ------------------------------------------------------------------------- save


def save(path: _PathLike, model: Model | MLP, *, overwrite: bool = True) -> Path:
    """Write a model file atomically.

    The bytes go to a temporary file in the same directory, which is flushed to disk and
    then renamed over ``path``: a crash or error at any point leaves either the old file
    or the complete new one, never a mix, and no temporary file behind.

    Parameters
    ----------
    path : str or path-like
        Destination, conventionally ``*.safetensors``.
    model : Model or MLP
        A bare MLP is saved as ``Model(net)`` (no labels, no standardisation).
    overwrite : bool, default True
        If False, refuse to replace an existing file.

    Returns
    -------
    path : Path

    Raises
    ------
    ModelFileError
        If the directory does not exist, ``path`` is a directory, or the file exists and
        ``overwrite`` is False.
    ValueError
        If the config is not JSON-serialisable.
    OSError
        If writing fails (disk full, permissions); the old file is left untouched.
    """
    if isinstance(model, MLP):
        model = Model(model)
    if not isinstance(model, Model):
        raise ValueError(f"can only save a backprop Model or MLP, got {type(model).__name__}")
    path = Path(path)
    if not path.parent.is_dir():
        raise ModelFileError(f"{path}: cannot save, directory {path.parent} does not exist")
    if path.is_dir():
        raise ModelFileError(f"{path}: cannot save, it is a directory")
    if not overwrite and path.exists():
        raise ModelFileError(f"{path}: already exists (pass overwrite=True to replace it)")
    # Serialise first, so a bad config or tensor fails before anything touches the disk.
    data = safetensors.numpy.save(
        to_state_dict(model),
        metadata={"format": "pt", METADATA_KEY: _metadata_json(model)},
    )
    # Even KeyboardInterrupt or SIGKILL mid-write leaves the old file and no temporary one
    # (a killed process's temporary file is a hidden ".<name>.*.tmp", never loaded).
    return atomic_write_bytes(path, data)


# ------------------------------------------------------------------------- load

# Format 1 stored no raw-input scale: these datasets' inputs were divided by it in data
# loading, before the stored mean and scale applied.
_V1_INPUT_SCALES = {"digits": 16.0, "fashion-mnist": 255.0, "mnist": 255.0}


def _v1_preprocessor(meta: Mapping[str, Any], d: int, config: Any) -> Preprocessor:
    """The `Preprocessor` equivalent to a format-1 model's x_mean/x_scale fields."""
    dataset = config.get("dataset") if isinstance(config, dict) else None
    mean, scale = meta.get("x_mean"), meta.get("x_scale")
    for name, value in (("x_mean", mean), ("x_scale", scale)):
        if value is not None and (not isinstance(value, list) or len(value) != d):
            raise ValueError(f"{name} must have shape ({d},) for {d} inputs")
    return Preprocessor(
        n_features=d,
        input_scale=_V1_INPUT_SCALES.get(dataset) if isinstance(dataset, str) else None,
        mean=mean,
        scale=scale,
        feature_names=meta.get("feature_names"),
        image_shape=meta.get("image_shape"),
    )


def _read_header(path: Path) -> tuple[dict[str, Any], int]:
    """Read and parse the safetensors header ourselves, trusting none of its numbers.

    Returns the header dict and the length of the data section after it.
    """

    def bad(problem: str) -> ModelFileError:
        return ModelFileError(f"{path}: not a valid backprop model file: {problem}")

    if not path.exists():
        raise ModelFileError(f"{path}: model file does not exist")
    if not path.is_file():
        raise ModelFileError(f"{path}: not a model file (it is a directory or special file)")
    size = path.stat().st_size
    if size < 8:
        raise bad(f"only {size} bytes, too short for a safetensors file")
    with path.open("rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > _MAX_HEADER_BYTES:
            raise bad(
                f"safetensors header claims {n:,} bytes (limit {_MAX_HEADER_BYTES:,}); "
                "the file is corrupt or not a safetensors file"
            )
        if n > size - 8:
            raise bad(
                f"safetensors header claims {n:,} bytes but only {size - 8:,} follow: "
                "the header points past the end of the file (truncated or not safetensors)"
            )
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise bad("the safetensors header is not valid JSON") from None
    if not isinstance(header, dict):
        raise bad("the safetensors header is not a JSON object")
    return header, size - 8 - n


def read_metadata(path: _PathLike) -> dict[str, Any]:
    """The JSON metadata of a model file, read from its header without loading tensors.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    meta : dict
        ``format_version``, ``layer_sizes``, ``activation``, ``loss``, ``dtype``,
        ``classes``, ``preprocessor`` (format 1: ``x_mean``, ``x_scale``,
        ``feature_names``, ``image_shape``), ``config``, ``backprop_version``: the
        document `save` wrote. Only the header is checked; use `load` to validate the
        whole file.

    Raises
    ------
    ModelFileError
        If the file is missing, not safetensors, has no backprop metadata, or was written
        by a newer format version.
    """
    path = Path(path)
    header, _ = _read_header(path)
    return _parse_metadata(path, header)


def _parse_metadata(path: Path, header: Mapping[str, Any]) -> dict[str, Any]:
    st_meta = header.get("__metadata__")
    if not isinstance(st_meta, dict) or METADATA_KEY not in st_meta:
        raise ModelFileError(
            f"{path}: not a backprop model file: a safetensors file without backprop "
            f"metadata (no {METADATA_KEY!r} entry in __metadata__); was it saved by "
            "backprop.save?"
        )
    text = st_meta[METADATA_KEY]
    try:
        meta = json.loads(text) if isinstance(text, str) else None
    except (ValueError, RecursionError):
        meta = None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path}: the backprop metadata is not a valid JSON object")
    version: Any = meta.get("format_version")
    if not is_int(version) or version < 1:
        raise ModelFileError(f"{path}: missing or invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: written in model format version {version}, but this backprop reads "
            f"only up to version {FORMAT_VERSION}: upgrade backprop to load it"
        )
    return meta


def _check_structure(path: Path, meta: dict[str, Any]) -> tuple[list[int], str, str, str]:
    """Check the metadata fields that fix the network's shape and arithmetic."""
    sizes = meta.get("layer_sizes")
    if (
        not isinstance(sizes, list)
        or len(sizes) < 2
        or not all(is_int(s) and s >= 1 for s in sizes)
    ):
        raise ModelFileError(
            f"{path}: layer_sizes must be a list of >= 2 positive ints, got {sizes!r}"
        )
    activation, loss, dtype = meta.get("activation"), meta.get("loss"), meta.get("dtype")
    for key, value, known in (
        ("activation", activation, ACTIVATIONS),
        ("loss", loss, LOSSES),
        ("dtype", dtype, _ST_DTYPES),
    ):
        if not isinstance(value, str) or value not in known:
            raise ModelFileError(
                f"{path}: unknown {key} {value!r} (this backprop knows {', '.join(known)})"
            )
    return sizes, activation, loss, dtype  # type: ignore[return-value]


def _check_tensor_entries(
    path: Path, header: Mapping[str, Any], sizes: list[int], dtype: str, data_len: int
) -> None:
    """Names, dtypes, shapes and byte ranges of the tensors, all before any is read."""
    expected: dict[str, tuple[int, ...]] = {}
    for l, (w_name, b_name) in enumerate(_tensor_names(len(sizes) - 1)):
        expected[w_name] = (sizes[l + 1], sizes[l])  # PyTorch's Linear: (out, in)
        expected[b_name] = (sizes[l + 1],)
    present = [k for k in header if k != "__metadata__"]
    missing = sorted(set(expected) - set(present))
    extra = sorted(set(present) - set(expected))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing tensor(s) {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected tensor(s) {', '.join(map(repr, extra))}")
        raise ModelFileError(
            f"{path}: tensors do not match layer_sizes {sizes}: {'; '.join(parts)}"
        )
    itemsize = np.dtype(dtype).itemsize
    for name, shape in expected.items():
        entry = header[name]
        if not isinstance(entry, dict):
            raise ModelFileError(f"{path}: tensor {name} has a malformed header entry")
        if entry.get("dtype") != _ST_DTYPES[dtype]:
            raise ModelFileError(
                f"{path}: tensor {name} has dtype {entry.get('dtype')!r}, expected "
                f"{_ST_DTYPES[dtype]} ({dtype})"
            )
        got = entry.get("shape")
        if not isinstance(got, list) or tuple(got) != shape:
            raise ModelFileError(
                f"{path}: tensor {name} has shape {got}, expected {list(shape)} "
                f"from layer_sizes {sizes}"
            )
        offsets = entry.get("data_offsets")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(is_int(o) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_len
            or offsets[1] - offsets[0] != math.prod(shape) * itemsize
        ):
            raise ModelFileError(
                f"{path}: tensor {name} has byte range {offsets!r} that does not fit its "
                f"shape or the file's {data_len} data bytes (truncated or corrupt)"
            )


def load(path: _PathLike) -> Model:
    """Read and validate a model file written by `save`.

    Every part is checked before it is used: the header length (against the file size),
    the header JSON, the metadata, the exact set of tensor names, each tensor's dtype,
    shape and byte range, then the values (finite) and the labels and standardisation
    (consistent with the network).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    model : Model
        With ``net.params`` equal, bit for bit, to the saved ones.

    Raises
    ------
    ModelFileError
        On any problem; the message names the file and the problem.
    """
    path = Path(path)
    header, data_len = _read_header(path)
    meta = _parse_metadata(path, header)
    sizes, activation, loss, dtype = _check_structure(path, meta)
    _check_tensor_entries(path, header, sizes, dtype, data_len)
    try:
        # The header was already checked; safetensors re-parses and checks it too.
        with safetensors.safe_open(path, framework="np") as f:
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as exc:  # any failure of the third-party parser means a bad file
        raise ModelFileError(f"{path}: safetensors could not read the file: {exc}") from None
    for name, t in tensors.items():
        if not np.all(np.isfinite(t)):
            raise ModelFileError(f"{path}: tensor {name} contains NaN or infinite values")
    try:
        net = MLP(sizes, activation=activation, loss=loss, dtype=dtype, seed=0)
        for l, (w_name, b_name) in enumerate(_tensor_names(net.n_layers), start=1):
            # Fresh C-ordered copies: writable, owning their memory (training can resume).
            net.params[f"W{l}"] = np.array(tensors[w_name].T, dtype=net.dtype, order="C")
            net.params[f"b{l}"] = np.array(tensors[b_name], dtype=net.dtype, order="C")
        config = meta.get("config")
        config = {} if config is None else config
        _check_config(config)
        if meta["format_version"] == 1:
            pre = _v1_preprocessor(meta, net.n_inputs, config)
        else:
            doc = meta.get("preprocessor")
            _check_numbers(doc)
            pre = Preprocessor.from_dict(doc)
        _check_usable_in(pre, net.dtype)
        return Model(net, preprocessor=pre, classes=meta.get("classes"), config=config)
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # TypeError/OverflowError: a field of the wrong type or an absurd number (a
        # 401-digit mean), which the checks above turn into one line naming the file.
        raise ModelFileError(f"{path}: inconsistent model file: {exc}") from None


def _is_count(v: object) -> bool:
    return is_int(v) and 0 <= v < 2**63  # type: ignore[operator]


# Config fields the library reads back from a model file (`backprop evaluate` reproduces
# the training split with them, an estimator its parameters and fitted attributes): each
# must have the type it is used as.
_CONFIG_FIELDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "seed": ("a non-negative integer", _is_count),
    "dataset": ("a string", lambda v: isinstance(v, str)),
    "target": ("a string or null", lambda v: v is None or isinstance(v, str)),
    "drop": (
        "a list of strings",
        lambda v: isinstance(v, list) and all(isinstance(c, str) for c in v),
    ),
    "params": ("a JSON object", lambda v: v is None or isinstance(v, dict)),
    # An estimator's training record: what is in it, `backprop.estimators` checks.
    "fitted": ("a JSON object", lambda v: v is None or isinstance(v, dict)),
}


def _check_config(config: object) -> None:
    if not isinstance(config, dict):
        raise ValueError(f"config must be a JSON object, got {type(config).__name__}")
    for key, (kind, ok) in _CONFIG_FIELDS.items():
        if key in config and not ok(config[key]):
            got = repr(config[key])
            got = got if len(got) <= 60 else got[:57] + "..."
            raise ValueError(f"config {key} must be {kind}, got {got}")


def _check_numbers(pre: object) -> None:
    """The preprocessor's numbers are JSON numbers that a float64 holds (a 401-digit
    integer is valid JSON but overflows a float)."""
    if not isinstance(pre, dict):
        return  # Preprocessor.from_dict names the problem
    for name in ("input_scale", "mean", "scale", "raw_min", "raw_max"):
        value = pre.get(name)
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**1023:
                raise ValueError(f"preprocessor {name} does not fit in float64")


def _check_usable_in(pre: Preprocessor, dtype: np.dtype[Any]) -> None:
    """The preprocessor's numbers as the network will use them: in its dtype.

    A scale of 1e-320 is positive in float64 (the JSON) but 0 in float32, and dividing by
    it gives infinities: refused here, not discovered as NaN in every prediction.
    """
    big = float(np.finfo(dtype).max)
    values = {
        "input_scale": pre.input_scale,
        "mean": pre.mean,
        "scale": pre.scale,
        "raw_min": pre.raw_min,
        "raw_max": pre.raw_max,
    }
    for name, value in values.items():
        if value is None:
            continue
        v = np.abs(np.asarray(value, dtype=np.float64))
        if not np.all(v <= big):
            raise ValueError(f"preprocessor {name} does not fit in {dtype.name}")
        if name in ("input_scale", "scale") and not np.all(v >= 1 / big):
            raise ValueError(
                f"preprocessor {name} is too small for {dtype.name} (dividing by it overflows)"
            )
