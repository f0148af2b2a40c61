"""The named datasets: a registry, `DATASETS`, of a name and its loader each.

* ``digits``: scikit-learn's bundled 8x8 digits (no download), pixels 0..16.
* ``diabetes``: scikit-learn's bundled regression set (raw, unscaled features).
  Both are read from scikit-learn's data files without importing scikit-learn.
* ``fashion-mnist``, ``mnist``: the four IDX files, looked up in ``data_dir``, then
  ``$BACKPROP_DATA/<name>``, then ``/usr/share/datasets/<name>``.

A new dataset is one entry in `DATASETS`.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from backprop.data.dataset import Dataset, assemble, pixel_scale
from backprop.data.formats import IDX_FILES, DataError, find_idx_files, load_idx_pair

__all__ = [
    "DATASETS",
    "FASHION_MNIST_CLASS_NAMES",
    "NAMED_DATASETS",
    "SYSTEM_DATA_DIR",
    "Loader",
    "load_idx_dir",
    "sklearn_data_file",
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


def _idx_search_dirs(name: str, data_dir: str | os.PathLike[str] | None) -> list[Path]:
    dirs: list[Path] = []
    if data_dir is not None:
        dirs += [Path(data_dir), Path(data_dir) / name]
    env = os.environ.get("BACKPROP_DATA")
    if env:
        dirs.append(Path(env) / name)
    dirs.append(SYSTEM_DATA_DIR / name)
    return dirs


#: A loader: (name, data_dir, options for `assemble`) -> Dataset.
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
        return assemble(
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
            ds = load_idx_dir(
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

#: Names accepted by `backprop.data.load_dataset` besides paths.
NAMED_DATASETS = tuple(DATASETS)


def load_idx_dir(
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
    return assemble(
        name,
        str(directory),
        X,
        labels,
        X_test,
        y_test,
        image_shape=(int(rows), int(cols)),
        input_scale=pixel_scale(X),
        **kw,
    )
