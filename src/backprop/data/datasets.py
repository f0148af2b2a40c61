"""Datasets: a registry of named sets plus data files, assembled into a train/test `Dataset`.

A new dataset is one entry in `DATASETS` (a name and its loader).  A `Dataset` holds the
inputs exactly as the source gives them (digits pixels 0..16, uint8 images, CSV floats),
with the ``input_scale`` that says what full scale the raw values have: the model's
`backprop.data.preprocess.Preprocessor` divides it out, so a saved model takes the same
raw values whatever the container.

Sources
-------
* ``digits``: scikit-learn's bundled 8x8 digits (no download), pixels 0..16.
* ``diabetes``: scikit-learn's bundled regression set (raw, unscaled features).
  Both are read from scikit-learn's data files without importing scikit-learn.
* ``fashion-mnist``, ``mnist``: the four IDX files, looked up in ``data_dir``, then
  ``$BACKPROP_DATA/<name>``, then ``/usr/share/datasets/<name>``.
* a path: ``.csv``, ``.npy`` (memory-mapped), ``.npz`` (never unpickled) or a directory of
  IDX files.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backprop.data.formats import (
    IDX_FILES,
    DataError,
    find_idx_files,
    load_idx_pair,
    read_npy,
    read_npz,
    require_real,
)
from backprop.data.preprocess import LabelEncoder, check_finite, train_val_split
from backprop.data.rows import Rows, mapping_of
from backprop.data.tables import read_csv_columns, split_target

__all__ = [
    "DATASETS",
    "FASHION_MNIST_CLASS_NAMES",
    "NAMED_DATASETS",
    "Dataset",
    "load_dataset",
]

#: Human-readable names of the ten Fashion-MNIST labels 0..9 (Xiao et al., 2017).
FASHION_MNIST_CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

#: Last place searched for IDX datasets (Debian's ``dataset-fashion-mnist`` installs here).
SYSTEM_DATA_DIR = Path("/usr/share/datasets")

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


# --------------------------------------------------------------------------------------
# Validation, task inference, label encoding


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


def _idx_search_dirs(name: str, data_dir: str | os.PathLike[str] | None) -> list[Path]:
    dirs: list[Path] = []
    if data_dir is not None:
        dirs += [Path(data_dir), Path(data_dir) / name]
    env = os.environ.get("BACKPROP_DATA")
    if env:
        dirs.append(Path(env) / name)
    dirs.append(SYSTEM_DATA_DIR / name)
    return dirs


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


def _finish(
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


def _pixel_scale(X: np.ndarray) -> float | None:
    """255 for uint8 inputs (images), else unknown."""
    return UINT8_SCALE if X.dtype == np.uint8 else None


# --------------------------------------------------------------------------------------
# Loaders: named datasets


#: A loader: (name, data_dir, options for `_finish`) -> Dataset.
Loader = Callable[[str, "str | os.PathLike[str] | None", dict[str, Any]], Dataset]


#: Where scikit-learn keeps its bundled data files, below its package directory.
SKLEARN_DATA = Path("datasets", "data")

#: A bundled set as scikit-learn's loader gives it: (data, target, feature names).
Bundled = tuple[np.ndarray, np.ndarray, list[str]]


def sklearn_data_file(filename: str) -> Path | None:
    """scikit-learn's bundled data file ``filename``, found without importing scikit-learn
    (``sklearn.datasets`` imports pandas and scipy: most of a digits run's start-up);
    None when scikit-learn or the file is not there."""
    spec = importlib.util.find_spec("sklearn")  # a top-level package: nothing is imported
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / SKLEARN_DATA / filename
    return path if path.is_file() else None


def _read_gzip_table(filename: str, shape: tuple[int, ...], **options: Any) -> np.ndarray | None:
    """A gzip-compressed text table of scikit-learn's, parsed as its
    ``load_gzip_compressed_csv_data`` does (`numpy.loadtxt`, float64); None when the file
    is missing or not of ``shape`` (another scikit-learn version's layout)."""
    path = sklearn_data_file(filename)
    if path is None:
        return None
    with gzip.open(path, "rt", encoding="utf-8") as f:
        data = np.loadtxt(f, **options)
    return data if data.shape == shape else None


def _read_digits() -> Bundled | None:
    """``load_digits()``'s data (float64 pixels 0..16), target (int) and feature names."""
    data = _read_gzip_table("digits.csv.gz", (1797, 65), delimiter=",")
    if data is None:
        return None
    names = [f"pixel_{row}_{col}" for row in range(8) for col in range(8)]
    return data[:, :-1], data[:, -1].astype(int, copy=False), names


def _read_diabetes() -> Bundled | None:
    """``load_diabetes(scaled=False)``'s data (raw float64 features), target (float64)
    and feature names."""
    data = _read_gzip_table("diabetes_data_raw.csv.gz", (442, 10))
    target = _read_gzip_table("diabetes_target.csv.gz", (442,))
    if data is None or target is None:
        return None
    return data, target, ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]


def _sklearn_loader(
    read: Callable[[], Bundled | None],
    function: str,
    task: str,
    *,
    input_scale: float | None = None,
    image_shape: tuple[int, int] | None = None,
    mirror_symmetric: bool | None = None,
    **options: Any,
) -> Loader:
    """A loader for one of scikit-learn's bundled datasets (no download): ``read`` parses
    its files, else scikit-learn's ``function(**options)`` loads it."""

    def load(name: str, data_dir: str | os.PathLike[str] | None, kw: dict[str, Any]) -> Dataset:
        if kw["task"] is not None and kw["task"] != task:
            raise DataError(f"dataset {name!r} is a {task} set, not {kw['task']}")
        found = read()
        if found is None:
            # Files moved or changed (another scikit-learn version): its own loader, at
            # the cost of importing it.
            import sklearn.datasets

            bunch = getattr(sklearn.datasets, function)(**options)
            found = bunch.data, bunch.target, list(bunch.feature_names)
        data, target, feature_names = found
        return _finish(
            name,
            name,
            data,
            target,
            None,
            None,
            image_shape=image_shape,
            feature_names=feature_names,
            input_scale=input_scale,
            mirror_symmetric=mirror_symmetric,
            **kw,
        )

    return load


def _idx_loader(apt_package: str | None = None, *, mirror_symmetric: bool) -> Loader:
    """A loader for a four-file IDX dataset ((Fashion-)MNIST: labels 0..9)."""

    def load(name: str, data_dir: str | os.PathLike[str] | None, kw: dict[str, Any]) -> Dataset:
        if kw["task"] not in (None, "classification"):
            raise DataError(f"dataset {name!r} is a classification set, not {kw['task']}")
        dirs = _idx_search_dirs(name, data_dir)
        for d in dirs:
            ds = _load_idx_dir(
                d, name, require_test=True, max_label=9, mirror_symmetric=mirror_symmetric, **kw
            )
            if ds is not None:
                return ds
        notes = []
        for d in dirs:
            present = find_idx_files(d)
            if present:
                missing = sorted(set(IDX_FILES) - set(present))
                notes.append(f"{d} (has some files, missing {', '.join(missing)})")
            else:
                notes.append(f"{d} ({'no IDX files' if d.is_dir() else 'does not exist'})")
        files = ", ".join(f"{stem}.gz" for stem in IDX_FILES.values())
        apt = f"install it with `sudo apt-get install {apt_package}`, or " if apt_package else ""
        raise DataError(
            f"dataset {name!r} not found; looked in: {'; '.join(notes)}. To get it, "
            f"{apt}download the four IDX files ({files}) into one of those directories "
            f"(or into DIR/{name} and set BACKPROP_DATA=DIR, or pass data_dir / --data-dir DIR)"
        )

    return load


#: The named datasets: adding one is one entry here.
DATASETS: dict[str, Loader] = {
    "digits": _sklearn_loader(
        _read_digits,
        "load_digits",
        "classification",
        input_scale=16.0,
        image_shape=(8, 8),
        mirror_symmetric=False,
    ),
    "diabetes": _sklearn_loader(_read_diabetes, "load_diabetes", "regression", scaled=False),
    "fashion-mnist": _idx_loader(apt_package="dataset-fashion-mnist", mirror_symmetric=True),
    "mnist": _idx_loader(mirror_symmetric=False),
}

#: Names accepted by :func:`load_dataset` besides paths.
NAMED_DATASETS = tuple(DATASETS)


# --------------------------------------------------------------------------------------
# Loaders: files


def _load_idx_dir(
    directory: Path, name: str, *, require_test: bool, max_label: int | None = None, **kw: Any
) -> Dataset | None:
    """Load a directory of IDX files; None when the training pair is not there."""
    found = find_idx_files(directory)
    if "train_images" not in found or "train_labels" not in found:
        return None
    if require_test and ("test_images" not in found or "test_labels" not in found):
        return None
    images, labels = load_idx_pair(found["train_images"], found["train_labels"])
    X_test = y_test = None
    if "test_images" in found and "test_labels" in found:
        test_images, y_test = load_idx_pair(found["test_images"], found["test_labels"])
        if test_images.shape[1:] != images.shape[1:]:
            raise DataError(
                f"{directory}: training images are {images.shape[1:]}, test images "
                f"{test_images.shape[1:]}"
            )
        X_test = test_images.reshape(len(test_images), -1)
    if max_label is not None:
        # A known set's labels are exactly 0..max_label; anything else is a damaged file.
        for path, y in ((found["train_labels"], labels), (found.get("test_labels"), y_test)):
            # min too: an int8 label file (IDX type 0x09) can hold -1, an eleventh class.
            if y is not None and y.size and (y.min() < 0 or y.max() > max_label):
                bad = int(y.min()) if y.min() < 0 else int(y.max())
                raise DataError(
                    f"{path}: label {bad} out of range for {name} (classes 0..{max_label})"
                )
    X = images.reshape(len(images), -1)
    rows, cols = images.shape[1:]
    return _finish(
        name,
        str(directory),
        X,
        labels,
        X_test,
        y_test,
        image_shape=(int(rows), int(cols)),
        input_scale=_pixel_scale(X),
        **kw,
    )


def _load_dir(path: Path, **kw: Any) -> Dataset:
    ds = _load_idx_dir(path, path.name, require_test=False, **kw)
    if ds is None:
        raise DataError(
            f"{path}: directory holds no IDX training files (expected "
            f"{IDX_FILES['train_images']}[.gz] and {IDX_FILES['train_labels']}[.gz])"
        )
    return ds


def _load_csv(
    path: Path, target: str | None = None, drop: tuple[str, ...] = (), **kw: Any
) -> Dataset:
    table = read_csv_columns(path, kw["dtype"])
    if kw["every_row"] and table.header is not None:
        # Evaluated, not trained on: the columns the model was trained without may be
        # absent, and the inputs are matched by name afterwards.
        drop = tuple(c for c in drop if c in table.header)
    X, y, names, target = split_target(table, target, drop, skip_text=kw["every_row"])
    return _finish(
        path.name, str(path), X, y, None, None, feature_names=names, target=target,
        path=str(path.absolute()), drop=tuple(drop), **kw,
    )  # fmt: skip


def _load_npz(path: Path, **kw: Any) -> Dataset:
    npz = read_npz(path)
    keys = set(npz)
    if {"X_train", "y_train", "X_test", "y_test"} <= keys:
        arrays: list[np.ndarray | None] = [
            npz[k] for k in ("X_train", "y_train", "X_test", "y_test")
        ]
    elif {"X", "y"} <= keys:
        arrays = [npz["X"], npz["y"], None, None]
    else:
        raise DataError(
            f"{path}: .npz must hold arrays X and y, or X_train, y_train, X_test and "
            f"y_test; it holds {', '.join(sorted(keys)) or 'nothing'}"
        )
    image_shape = None
    for i in (0, 2):
        a = arrays[i]
        if a is not None and a.ndim == 3:  # images stored as (n, rows, cols)
            image_shape = (int(a.shape[1]), int(a.shape[2]))
            arrays[i] = a.reshape(len(a), -1)
    # Targets are small: read into memory (inputs stay memory-mapped when stored so).
    arrays[1::2] = [None if a is None else np.array(a) for a in arrays[1::2]]
    X_train, y_train, X_test, y_test = arrays
    assert X_train is not None and y_train is not None
    return _finish(
        path.name,
        str(path),
        X_train,
        y_train,
        X_test,
        y_test,
        image_shape=image_shape,
        input_scale=_pixel_scale(X_train),
        **kw,
    )


def _load_npy(path: Path, **kw: Any) -> Dataset:
    data = read_npy(path)
    if data.ndim == 3:  # images (n, rows, cols): their labels are in another array
        raise DataError(
            f"{path}: holds images of shape {data.shape} and no labels: save images and "
            "labels together, np.savez('data.npz', X=images, y=labels), and train on the .npz"
        )
    if data.ndim != 2 or data.shape[1] < 2:
        raise DataError(
            f"{path}: .npy must be a 2-D array whose last column is the target, "
            f"got shape {data.shape}"
        )
    # X stays a view of the memory map; the target column is small enough to copy, read
    # in one streaming pass (touching it through the map would touch every page).
    X = data[:, :-1]
    y = np.empty(len(data), data.dtype)
    for rows, chunk in Rows(data).chunks():
        y[rows] = chunk[:, -1]
    return _finish(
        path.name, str(path), X, y, None, None, input_scale=_pixel_scale(X), **kw,
    )  # fmt: skip


#: Data files by extension: adding a format is one entry here (and a reader in formats).
FILE_LOADERS: dict[str, Callable[..., Dataset]] = {
    ".csv": _load_csv,
    ".npz": _load_npz,
    ".npy": _load_npy,
}


def load_dataset(
    name_or_path: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    task: str | None = None,
    target: str | None = None,
    drop: Sequence[str] = (),
    test_fraction: float = 0.2,
    seed: int = 0,
    dtype: Any = np.float32,
    every_row: bool = False,
) -> Dataset:
    """Load a named dataset or a data file, split into training and test sets.

    Parameters
    ----------
    name_or_path : str
        A name in `DATASETS` (``"digits"``, ``"diabetes"``, ``"fashion-mnist"``,
        ``"mnist"``), or a path to a ``.csv``, ``.npy``, ``.npz`` file or a directory of
        IDX files.
    data_dir : str or PathLike, optional
        First place to look for IDX datasets (then ``$BACKPROP_DATA/<name>``, then
        ``/usr/share/datasets/<name>``).
    task : {"classification", "regression"}, optional
        Inferred when None: a 1-D integer-valued target with few distinct values is
        classification.
    target : str, optional
        Target column name, CSV only. Without it a CSV with a header needs one column
        named ``label``, ``target``, ``y`` or ``class`` (any case); one without a header
        has its target last.
    drop : sequence of str
        CSV columns to leave out (an id such as ``patient``; text columns are refused
        as inputs, naming the ``--drop`` that removes them).
    test_fraction : float
        Share of rows held out as the test set when the source has no test split
        (stratified for classification). ``0`` keeps every row for training (and a
        memory-mapped ``.npy`` stays memory-mapped).
    seed : int
        Seed of that split.
    dtype : float dtype
        dtype of float X (integer X, such as uint8 images, keeps its dtype) and of
        regression targets.
    every_row : bool, default False
        A file given for evaluation: every row is the test part (no split; one class is
        enough; text columns are left out of the inputs, which are matched by name).

    Returns
    -------
    Dataset
        With raw ``X_train`` (n_train, d), ``y_train`` (n_train,), ``input_scale`` etc.

    Raises
    ------
    DataError
        Unknown name, missing files (the message lists every place searched and how to get
        the data), or any malformed or unusable data.
    """
    kw: dict[str, Any] = {
        "task": task,
        "test_fraction": test_fraction,
        "seed": seed,
        "dtype": dtype,
        "every_row": every_row,
    }
    if not 0 <= test_fraction < 1:
        raise DataError(f"test_fraction must be in [0, 1), got {test_fraction}")
    try:
        float_dtype = np.dtype(dtype).kind == "f"
    except TypeError:
        float_dtype = False
    if not float_dtype:
        # Integer targets would wrap silently (diabetes' 346 is 90 in int8).
        raise DataError(f"dtype must be a float dtype such as float32, got {dtype!r}")
    path = Path(name_or_path)
    suffix = path.suffix.lower()
    for flag, value in (("target", target), ("drop", list(drop))):
        if value and suffix != ".csv":
            raise DataError(f"{flag}={value!r} only applies to CSV files, not {name_or_path!r}")
    if name_or_path in DATASETS:
        return DATASETS[name_or_path](name_or_path, data_dir, kw)
    if not path.exists():
        raise DataError(
            f"{name_or_path!r} is neither a known dataset ({', '.join(NAMED_DATASETS)}) "
            f"nor an existing file or directory"
        )
    if path.is_dir():
        return _load_dir(path, **kw)
    if suffix not in FILE_LOADERS:
        raise DataError(
            f"{path}: unsupported file type {suffix or '(no extension)'!r}; expected "
            f"{', '.join(FILE_LOADERS)} or a directory of IDX files"
        )
    if suffix == ".csv":
        kw.update(target=target, drop=tuple(drop))
    return FILE_LOADERS[suffix](path, **kw)
