"""`load_dataset`: a named dataset (`backprop.data.named`) or a data file, as a `Dataset`.

A `Dataset` holds the inputs exactly as the source gives them (digits pixels 0..16, uint8
images, CSV floats), with the ``input_scale`` that says what full scale the raw values
have: the model's `backprop.data.preprocess.Preprocessor` divides it out, so a saved model
takes the same raw values whatever the container.

Files: ``.csv``, ``.npy`` (memory-mapped), ``.npz`` (never unpickled) or a directory of
IDX files; a new format is one entry in `FILE_LOADERS` (and a reader in
`backprop.data.formats`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from backprop.data.dataset import Dataset, assemble, pixel_scale
from backprop.data.formats import IDX_FILES, DataError, read_npy, read_npz
from backprop.data.named import DATASETS, FASHION_MNIST_CLASS_NAMES, NAMED_DATASETS, load_idx_dir
from backprop.data.rows import Rows
from backprop.data.tables import read_csv_columns, split_target

__all__ = [
    "DATASETS",
    "FASHION_MNIST_CLASS_NAMES",
    "FILE_LOADERS",
    "NAMED_DATASETS",
    "Dataset",
    "load_dataset",
]


def _load_dir(path: Path, **kw: Any) -> Dataset:
    ds = load_idx_dir(path, path.name, require_test=False, **kw)
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
    return assemble(
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
    return assemble(
        path.name,
        str(path),
        X_train,
        y_train,
        X_test,
        y_test,
        image_shape=image_shape,
        input_scale=pixel_scale(X_train),
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
    return assemble(
        path.name, str(path), X, y, None, None, input_scale=pixel_scale(X), **kw,
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
