"""`Dataset`: a train/test pair of raw arrays, and `assemble`, which makes one from a
source's arrays: validated, the task inferred, a test part split off, labels encoded.

Every loader (`backprop.data.named`, `backprop.data.datasets`) ends in `assemble`, so a
dataset is checked the same way wherever it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from backprop.data.formats import DataError, require_real
from backprop.data.preprocess import LabelEncoder, check_finite, train_val_split
from backprop.data.rows import Rows, mapping_of

__all__ = ["TASKS", "UINT8_SCALE", "Dataset", "assemble", "pixel_scale"]

TASKS = ("classification", "regression")

#: Full scale of uint8 pixels: divided out by the model's preprocessor.
UINT8_SCALE = 255.0


@dataclass
class Dataset:
    """A train/test pair of raw arrays with what is needed to interpret them.

    Attributes
    ----------
    name : str
        Dataset name (``"digits"``) or the file/directory it came from.
    task : str
        ``"classification"`` or ``"regression"``.
    X_train : ndarray or Rows of shape (n_train, d)
        Raw inputs as the source gives them: integer arrays (uint8 images) keep their
        dtype, float inputs are in the requested float dtype. From a ``.npy`` file or an
        uncompressed ``.npz`` member, a `backprop.data.Rows` over the memory map (row
        indices of the file, read batch by batch: the data may exceed memory).
    y_train : ndarray of shape (n_train,) or (n_train, k)
        Classification: int64 class indices 0..c-1. Regression: float targets.
    X_test : ndarray or Rows of shape (n_test, d)
    y_test : ndarray of shape (n_test,) or (n_test, k)
    classes : ndarray of shape (c,) or None
        Original label value of each class index (classification), else None.
    image_shape : tuple of (int, int) or None
        ``(rows, cols)`` when each row of X is a flattened image, else None.
    feature_names : list of str or None
        Column names when the source had them.
    input_scale : float or None
        Full scale of the raw values when known (16 for digits, 255 for uint8 images),
        divided out by the model's `Preprocessor`; None otherwise.
    mirror_symmetric : bool or None
        Whether an image mirrored left to right is still an image of its class (clothes:
        yes; digits: no, a mirrored 3 is not a 3); None when unknown (files).
    target : str or None
        The CSV column that holds the labels/targets: its name, or without a header row
        its number (``"5"``, 1 for the first); None: not a CSV.
    path : str or None
        The data file's absolute path (None for a named dataset), so a model can find
        its data again from another directory.
    drop : tuple of str
        CSV columns left out of the inputs (``--drop``).
    """

    name: str
    task: str
    X_train: Any
    y_train: np.ndarray
    X_test: Any
    y_test: np.ndarray
    classes: np.ndarray | None = None
    image_shape: tuple[int, int] | None = None
    feature_names: list[str] | None = None
    input_scale: float | None = None
    mirror_symmetric: bool | None = None
    target: str | None = None
    path: str | None = None
    drop: tuple[str, ...] = ()

    def provenance(self) -> dict[str, Any]:
        """Where the data came from, as a model's config records it: ``dataset`` (the
        absolute path of a file, or the name), and for a CSV ``target`` and ``drop`` (when
        set), what ``backprop evaluate`` needs to load the same rows again."""
        found = {"dataset": self.path or self.name, "target": self.target, "drop": list(self.drop)}
        return {k: v for k, v in found.items() if v}

    @property
    def n_features(self) -> int:
        """Input width d."""
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        """Number of classes c (0 for a regression set)."""
        return 0 if self.classes is None else len(self.classes)

    @property
    def n_outputs(self) -> int:
        """Network output width: c for classification, k (1 for 1-D y) for regression."""
        if self.task == "classification":
            return self.n_classes
        return 1 if self.y_train.ndim == 1 else int(self.y_train.shape[1])


def _infer_task(y: np.ndarray) -> str:
    """Classification when y is 1-D and integer-valued with few distinct values."""
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        return "classification" if y.dtype.kind in "USb" else "regression"
    if np.issubdtype(y.dtype, np.floating) and not np.all(y == np.round(y)):
        return "regression"
    # "Few" distinct values: at most 100, and each seen twice on average. Diabetes
    # (integer targets, 214 distinct in 442 rows) is regression by this rule.
    n_unique = len(np.unique(y))
    return "classification" if n_unique <= 100 and 2 * n_unique <= len(y) else "regression"


def _require_two_classes(y: np.ndarray, source: str, what: str) -> None:
    """DataError unless ``y`` holds at least two distinct classes."""
    classes = np.unique(y)
    if len(classes) < 2:
        raise DataError(
            f"{source}: classification needs at least 2 classes, {what} hold only one "
            f"({classes[0].item()!r})"
        )


def _encode_labels(
    y_train: np.ndarray, y_test: np.ndarray, source: str, parts: tuple[str, str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map labels to 0..c-1; returns (y_train_idx, y_test_idx, classes). ``parts`` names
    the two parts in messages (("training", "test"), or "evaluation" for both)."""
    for part, y in zip(parts, (y_train, y_test), strict=True):
        if y.ndim != 1:
            raise DataError(
                f"{source}: classification needs 1-D labels, {part} labels have shape {y.shape}"
            )
        if y.dtype.kind == "f" and not np.all(y == np.round(y)):
            raise DataError(
                f"{source}: classification labels must be integers, found non-integer values "
                f"in the {part} labels; use task='regression' for a continuous target"
            )
    encoder = LabelEncoder().fit(np.concatenate([y_train, y_test]))
    if y_train.dtype.kind == "f":
        # Integer-valued floats (CSV) become integer labels.
        encoder = LabelEncoder(encoder.classes_.astype(np.int64))
        y_train, y_test = y_train.astype(np.int64), y_test.astype(np.int64)
    if parts[0] == "training":
        # Checked again after the split: a class with one row may have gone to the test part.
        _require_two_classes(y_train, source, "the training labels")
    return encoder.transform(y_train), encoder.transform(y_test), encoder.classes_


def assemble(
    name: str,
    source: str,
    X_train: Any,
    y_train: np.ndarray,
    X_test: Any,
    y_test: np.ndarray | None,
    *,
    task: str | None,
    test_fraction: float,
    seed: int,
    dtype: Any,
    image_shape: tuple[int, int] | None = None,
    feature_names: list[str] | None = None,
    input_scale: float | None = None,
    mirror_symmetric: bool | None = None,
    every_row: bool = False,
    **record: Any,
) -> Dataset:
    """Validate arrays, infer/check the task, split off a test set, encode labels.

    With ``every_row`` (a file given for evaluation) nothing is split off: every row is
    the test part (and the training part too: there is none). ``record`` holds the
    `Dataset` fields saying where the data came from (``target``, ``path``, ``drop``)."""
    if task is not None and task not in TASKS:
        raise DataError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    # A memory-mapped file is read through `Rows` from here on: every pass below streams
    # it, and the split is row indices, so no copy of the inputs is ever made.
    if mapping_of(X_train) is not None:
        X_train = Rows(X_train)
    if X_test is not None and mapping_of(X_test) is not None:
        X_test = Rows(X_test)
    words = ("evaluation", "evaluation") if every_row else ("training", "test")
    split = X_test is not None and y_test is not None  # the file's own split: name its parts
    parts = [(words[0] if split or every_row else "the", X_train, y_train)]
    if X_test is not None and y_test is not None:
        parts.append((words[1], X_test, y_test))
    for part, X, y in parts:
        if X.ndim != 2:
            raise DataError(f"{source}: {part} inputs must be 2-D (n, d), got shape {X.shape}")
        require_real(X, f"{source}: {part} inputs")
        if y.dtype.kind == "c":
            require_real(y, f"{source}: {part} targets")
        if y.ndim not in (1, 2):
            raise DataError(f"{source}: {part} targets must be 1-D or 2-D, got shape {y.shape}")
        if len(y) != len(X):
            raise DataError(
                f"{source}: {part} set has {len(X)} input rows but {len(y)} labels/targets"
            )
        if X.shape[1] == 0:
            raise DataError(f"{source}: {part} inputs have zero columns")
        check_finite(X, f"{part} inputs", source)
        check_finite(y, f"{part} targets", source)
    if len(X_train) == 0:
        raise DataError(f"{source}: zero rows of {words[0]} data")
    if X_test is not None and X_test.shape[1] != X_train.shape[1]:
        raise DataError(
            f"{source}: training inputs have {X_train.shape[1]} columns, test inputs "
            f"{X_test.shape[1]}"
        )
    if every_row and (X_test is None or y_test is None):
        X_test, y_test = X_train, y_train

    inferred = _infer_task(y_train)
    task = task or inferred
    if task == "regression" and not np.issubdtype(y_train.dtype, np.number):
        raise DataError(f"{source}: regression needs numeric targets, got dtype {y_train.dtype}")
    if task == "classification" and not every_row:
        _require_two_classes(y_train, source, "the labels")

    if X_test is None or y_test is None:
        X_train, X_test, y_train, y_test = train_val_split(
            X_train, y_train, test_fraction, seed=seed, stratify=task == "classification"
        )
    assert X_test is not None and y_test is not None  # for mypy: set just above
    classes = None
    if task == "classification":
        y_train, y_test, classes = _encode_labels(y_train, y_test, source, words)
    else:
        y_train = np.asarray(y_train, dtype=dtype)
        y_test = np.asarray(y_test, dtype=dtype)
    # Integer inputs (uint8 pixels) stay as they are: 4x less memory than float32, and the
    # model's preprocessor converts them.  Floats take the requested dtype; a memory map
    # that already has it is kept (streaming), and a `Rows` casts each batch it reads.
    if X_train.dtype.kind not in "iu" and X_train.dtype != np.dtype(dtype):
        X_train = X_train.astype(dtype)
    if X_test.dtype.kind not in "iu" and X_test.dtype != np.dtype(dtype):
        X_test = X_test.astype(dtype)
    return Dataset(
        name=name,
        task=task,
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        classes=classes,
        image_shape=image_shape,
        feature_names=feature_names,
        input_scale=input_scale,
        mirror_symmetric=mirror_symmetric,
        **record,
    )


def pixel_scale(X: np.ndarray) -> float | None:
    """255 for uint8 inputs (images), else unknown."""
    return UINT8_SCALE if X.dtype == np.uint8 else None
