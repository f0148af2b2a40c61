"""Datasets for training networks: named sets, IDX/CSV/NPY readers, split, standardisation.

The notes (pages 1-7) assume a training set of pairs (x, y) is simply given; this module is
where such sets come from.  Everything that can go wrong with a data file (wrong format,
truncated download, NaN values, a label column that does not exist, ...) raises
:class:`DataError` with a message naming the file and the problem, so the command line can
print one clear line instead of a traceback.

Sources
-------
* ``digits``: scikit-learn's bundled 8x8 digits (no download), pixels scaled to [0, 1].
* ``diabetes``: scikit-learn's bundled regression set (raw, unscaled features).
* ``fashion-mnist``, ``mnist``: the four IDX files, looked up in ``data_dir``, then
  ``$BACKPROP_DATA/<name>``, then ``/usr/share/datasets/<name>``.
* a path: ``.csv``, ``.npy`` (memory-mapped), ``.npz`` (never unpickled) or a directory of
  IDX files.

Arrays larger than memory can be streamed: a ``.npy`` file is memory-mapped, and
:class:`Standardizer` and :func:`iter_batches` only ever touch a chunk of rows at a time.
"""

from __future__ import annotations

import csv
import gzip
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import numpy as np

__all__ = [
    "FASHION_MNIST_CLASS_NAMES",
    "NAMED_DATASETS",
    "DataError",
    "Dataset",
    "Standardizer",
    "images_to_features",
    "iter_batches",
    "load_dataset",
    "load_idx_pair",
    "read_csv",
    "read_idx",
    "train_val_split",
]

#: Names accepted by :func:`load_dataset` besides paths.
NAMED_DATASETS = ("digits", "diabetes", "fashion-mnist", "mnist")

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

# IDX element types: the third header byte (big-endian on disk).
_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_IMAGES_MAGIC = 2051  # 0x00000803: uint8, 3 dimensions (n, rows, cols)
_IDX_LABELS_MAGIC = 2049  # 0x00000801: uint8, 1 dimension (n,)
_GZIP_MAGIC = b"\x1f\x8b"

# Rows per chunk when streaming over (possibly memory-mapped) arrays: about 8 M elements,
# i.e. 64 MB of float64 temporaries whatever the width.
_CHUNK_ELEMENTS = 8_000_000

# The four IDX files of (Fashion-)MNIST, by role; each may be raw or .gz, and the original
# MNIST site also used a dot before "idx".
_IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


class DataError(ValueError):
    """A data file or array is missing, malformed or unusable; the message says which and why."""


@dataclass
class Dataset:
    """A train/test pair of arrays with what is needed to interpret them.

    Attributes
    ----------
    name : str
        Dataset name (``"digits"``) or the file/directory it came from.
    task : str
        ``"classification"`` or ``"regression"``.
    X_train : ndarray of shape (n_train, d)
        Inputs, float32 by default; may be a read-only memory map for ``.npy`` files.
    y_train : ndarray of shape (n_train,) or (n_train, k)
        Classification: int64 class indices 0..c-1. Regression: float targets.
    X_test : ndarray of shape (n_test, d)
    y_test : ndarray of shape (n_test,) or (n_test, k)
    classes : ndarray of shape (c,) or None
        Original label value of each class index (classification), else None.
    image_shape : tuple of (int, int) or None
        ``(rows, cols)`` when each row of X is a flattened image, else None.
    feature_names : list of str or None
        Column names when the source had them.
    """

    name: str
    task: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: np.ndarray | None = None
    image_shape: tuple[int, int] | None = None
    feature_names: list[str] | None = None

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
# IDX


def _looks_like_html(head: bytes) -> bool:
    """Whether the first bytes of a file look like a web page (a failed download)."""
    start = head.lstrip()[:256].lower()
    return start.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")) or (
        b"<html" in head[:1024].lower()
    )


def _read_exactly(stream: IO[bytes], n: int, path: Path, what: str) -> bytes:
    """Read ``n`` bytes from ``stream`` or raise DataError saying the file is truncated."""
    data = stream.read(n)
    if len(data) != n:
        raise DataError(
            f"{path}: truncated IDX file: {what} needs {n} bytes, only {len(data)} present"
        )
    return data


def _read_idx_stream(stream: IO[bytes], path: Path, payload_available: int | None) -> np.ndarray:
    """Parse an IDX stream (already decompressed).

    ``payload_available`` is the number of bytes left after the header when known (raw
    files), so a header claiming more data than the file holds is refused before any
    allocation.  For gzip streams the payload is read in chunks, so memory only grows with
    data that is really there.
    """
    head = stream.read(4)
    if len(head) == 0:
        raise DataError(f"{path}: empty file, expected an IDX file")
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_DTYPES or head[3] == 0:
        hint = " (it looks like an HTML page: a failed download?)" if _looks_like_html(head) else ""
        raise DataError(
            f"{path}: not an IDX file: bad magic number 0x{head.hex()} "
            f"(expected 0x00000803 for images or 0x00000801 for labels){hint}"
        )
    dtype = _IDX_DTYPES[head[2]]
    ndim = head[3]
    dims_raw = _read_exactly(stream, 4 * ndim, path, f"the header of {ndim} dimensions")
    dims = tuple(int(v) for v in np.frombuffer(dims_raw, dtype=">u4"))
    n_bytes = int(np.prod(dims, dtype=object)) * dtype.itemsize
    if payload_available is not None and n_bytes != payload_available - 4 * ndim:
        have = payload_available - 4 * ndim
        problem = "truncated" if have < n_bytes else "has trailing bytes"
        raise DataError(
            f"{path}: IDX file {problem}: header says shape {dims} ({n_bytes} bytes of data), "
            f"file holds {have} bytes of data"
        )
    buf = bytearray()
    # Chunked read: a header claiming terabytes costs nothing until the bytes really arrive.
    while len(buf) < n_bytes:
        chunk = stream.read(min(n_bytes - len(buf), 1 << 24))
        if not chunk:
            raise DataError(
                f"{path}: truncated IDX file: header says shape {dims} ({n_bytes} bytes of "
                f"data), only {len(buf)} bytes present"
            )
        buf += chunk
    if stream.read(1):
        raise DataError(f"{path}: IDX file has trailing bytes after the {dims} array it declares")
    array = np.frombuffer(buf, dtype=dtype).reshape(dims)
    # Native byte order so downstream arithmetic is not slowed by byte swapping.
    return array if dtype.itemsize == 1 else array.astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into an array.

    Gzip is detected by its magic bytes ``1f 8b``, not by the extension.  The header
    (``0x00 0x00 type ndim`` then ``ndim`` big-endian uint32 sizes) is checked, and the
    payload must have exactly the size it declares.

    Parameters
    ----------
    path : str or PathLike
        An IDX file, e.g. ``train-images-idx3-ubyte.gz``.

    Returns
    -------
    ndarray
        Shape as declared by the header, e.g. (n, 28, 28) uint8 for images (magic 2051)
        or (n,) uint8 for labels (magic 2049); native byte order.

    Raises
    ------
    DataError
        Missing, empty, not gzip/IDX (e.g. an HTML page saved as ``.gz``), truncated, or
        with bytes after the declared data.
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            magic = raw.read(2)
            raw.seek(0)
            if magic == _GZIP_MAGIC:
                try:
                    with gzip.GzipFile(fileobj=raw) as gz:
                        return _read_idx_stream(cast(IO[bytes], gz), path, None)
                except (OSError, EOFError, zlib.error) as exc:
                    raise DataError(
                        f"{path}: corrupt or truncated gzip data ({exc}); download it again"
                    ) from exc
            size = os.fstat(raw.fileno()).st_size
            if path.suffix.lower() == ".gz" and size > 0:
                head = raw.read(1024)
                raw.seek(0)
                if _looks_like_html(head):
                    raise DataError(
                        f"{path}: not gzip data (no 1f 8b magic) although named .gz: it looks "
                        "like an HTML page (a failed download?); download the file again"
                    )
                if head[:2] != b"\x00\x00":
                    raise DataError(
                        f"{path}: not gzip data (no 1f 8b magic) although named .gz, and not "
                        f"an IDX file either (starts with 0x{head[:4].hex()})"
                    )
                # Otherwise: an uncompressed IDX file that kept its .gz name; read it as such.
            return _read_idx_stream(raw, path, size - 4 if size >= 4 else None)
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise DataError(f"{path}: is a directory, expected an IDX file") from exc
    except PermissionError as exc:
        raise DataError(f"{path}: permission denied") from exc


def load_idx_pair(
    images_path: str | os.PathLike[str], labels_path: str | os.PathLike[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Read matching IDX image and label files.

    Parameters
    ----------
    images_path, labels_path : str or PathLike
        IDX files with magic 2051 (images) and 2049 (labels), raw or gzip.

    Returns
    -------
    images : ndarray of shape (n, rows, cols), uint8
        As stored; see :func:`images_to_features` for network inputs.
    labels : ndarray of shape (n,)

    Raises
    ------
    DataError
        Either file is invalid, has the wrong number of dimensions, or the counts differ.
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3:
        raise DataError(
            f"{images_path}: expected an IDX image file (3 dimensions, magic "
            f"{_IDX_IMAGES_MAGIC}), got shape {images.shape}"
        )
    if labels.ndim != 1:
        raise DataError(
            f"{labels_path}: expected an IDX label file (1 dimension, magic "
            f"{_IDX_LABELS_MAGIC}), got shape {labels.shape}"
        )
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds "
            f"{len(labels)} labels; the files do not belong together"
        )
    return images, labels


def images_to_features(images: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
    """Flatten uint8 images into network inputs scaled to [0, 1].

    Parameters
    ----------
    images : ndarray of shape (n, rows, cols) or (n, d), uint8
    dtype : float dtype of the result

    Returns
    -------
    ndarray of shape (n, rows * cols)
        ``images / 255``.
    """
    out = np.asarray(images).reshape(len(images), -1).astype(dtype)
    out /= 255  # division, not multiplication by 1/255, so 255 maps exactly to 1.0
    return out


def _find_idx_files(directory: Path) -> dict[str, Path]:
    """The IDX files present in ``directory``, by role (train_images, ..., test_labels)."""
    found: dict[str, Path] = {}
    for role, stem in _IDX_FILES.items():
        dotted = stem.replace("-idx", ".idx")
        for name in (stem + ".gz", stem, dotted + ".gz", dotted):
            if (directory / name).is_file():
                found[role] = directory / name
                break
    return found


# --------------------------------------------------------------------------------------
# CSV


def _parse_float(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def read_csv(
    path: str | os.PathLike[str], target: str | None = None
) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Read a numeric CSV file into inputs and a target column.

    A first row with any non-numeric cell is taken as the header.  The target is the column
    named ``target`` (argument), else a column called ``target``, else the last column.

    Parameters
    ----------
    path : str or PathLike
    target : str, optional
        Name of the target column (needs a header row).

    Returns
    -------
    X : ndarray of shape (n, d), float64
    y : ndarray of shape (n,), float64
    feature_names : list of str or None
        Header names of the d input columns, None without a header.

    Raises
    ------
    DataError
        Missing file, no data rows, a non-numeric cell (row and column named), ragged rows,
        or a target column that does not exist (available columns listed).
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [(i, row) for i, row in enumerate(csv.reader(f), start=1) if row]
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such file") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV text file ({exc})") from exc
    if not rows:
        raise DataError(f"{path}: empty CSV file (zero rows)")
    header: list[str] | None = None
    if any(_parse_float(c) is None for c in rows[0][1]):
        header = [c.strip() for c in rows[0][1]]
        rows = rows[1:]
    if not rows:
        raise DataError(f"{path}: CSV file has a header but zero data rows")
    width = len(header) if header is not None else len(rows[0][1])
    if width < 2:
        raise DataError(f"{path}: CSV needs at least 2 columns (inputs and a target), has {width}")

    if target is not None and header is None:
        raise DataError(
            f"{path}: target column {target!r} requested but the file has no header row"
        )
    if header is not None and target is not None:
        if target not in header:
            raise DataError(
                f"{path}: no target column {target!r}; available columns: {', '.join(header)}"
            )
        t = header.index(target)
    elif header is not None and "target" in header:
        t = header.index("target")
    else:
        t = width - 1

    values = np.empty((len(rows), width), dtype=np.float64)
    for k, (line, row) in enumerate(rows):
        if len(row) != width:
            raise DataError(
                f"{path}: row {line} has {len(row)} columns, expected {width} (ragged rows)"
            )
        try:
            values[k] = row
        except ValueError:
            # Slow path only to name the offending cell.
            for j, cell in enumerate(row):
                if _parse_float(cell) is None:
                    col = repr(header[j]) if header is not None else str(j + 1)
                    raise DataError(
                        f"{path}: row {line}, column {col}: non-numeric value {cell!r}"
                    ) from None
            raise
    X = np.delete(values, t, axis=1)
    y = values[:, t].copy()
    names = [h for j, h in enumerate(header) if j != t] if header is not None else None
    return X, y, names


# --------------------------------------------------------------------------------------
# Validation, task inference, label encoding


def _row_chunks(n_rows: int, width: int) -> Iterator[slice]:
    """Row slices covering 0..n_rows with about ``_CHUNK_ELEMENTS`` elements each."""
    step = max(1, _CHUNK_ELEMENTS // max(1, width))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def _check_finite(a: np.ndarray, what: str, source: str) -> None:
    """Raise DataError if ``a`` has NaN/inf, naming the count and the first row/column."""
    if not np.issubdtype(a.dtype, np.floating):
        return
    if a.size == 0:
        return
    two_d = a.reshape(len(a), -1)
    count = 0
    first: tuple[int, int] | None = None
    for rows in _row_chunks(len(two_d), two_d.shape[1]):
        bad = ~np.isfinite(two_d[rows])
        n_bad = int(bad.sum())
        if n_bad and first is None:
            r, c = np.argwhere(bad)[0]
            first = (rows.start + int(r), int(c))
        count += n_bad
    if first is not None:
        where = f"row {first[0]}" + (f", column {first[1]}" if two_d.shape[1] > 1 else "")
        raise DataError(
            f"{source}: {what} has {count} NaN/inf value{'s' if count > 1 else ''} "
            f"(first at {where}, counting from 0)"
        )


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
    y_train: np.ndarray, y_test: np.ndarray, source: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map labels to 0..c-1; returns (y_train_idx, y_test_idx, classes)."""
    for part, y in (("training", y_train), ("test", y_test)):
        if y.ndim != 1:
            raise DataError(
                f"{source}: classification needs 1-D labels, {part} labels have shape {y.shape}"
            )
        if y.dtype.kind == "f" and not np.all(y == np.round(y)):
            raise DataError(
                f"{source}: classification labels must be integers, found non-integer values "
                f"in the {part} labels; use task='regression' for a continuous target"
            )
    classes = np.unique(np.concatenate([y_train, y_test]))
    if y_train.dtype.kind == "f":
        classes = classes.astype(np.int64)  # integer-valued floats (CSV) become integer labels
    # Checked again after the split: a class with one row may have gone to the test part.
    _require_two_classes(y_train, source, "the training labels")
    enc = lambda y: np.searchsorted(classes, y.astype(classes.dtype)).astype(np.int64)  # noqa: E731
    return enc(y_train), enc(y_test), classes


def _finish(
    name: str,
    source: str,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray | None,
    y_test: np.ndarray | None,
    *,
    task: str | None,
    test_fraction: float,
    seed: int,
    dtype: Any,
    image_shape: tuple[int, int] | None = None,
    feature_names: list[str] | None = None,
) -> Dataset:
    """Validate arrays, infer/check the task, split off a test set, encode labels."""
    if task is not None and task not in TASKS:
        raise DataError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    parts = [("training", X_train, y_train)]
    if X_test is not None and y_test is not None:
        parts.append(("test", X_test, y_test))
    for part, X, y in parts:
        if X.ndim != 2:
            raise DataError(f"{source}: {part} inputs must be 2-D (n, d), got shape {X.shape}")
        if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
            raise DataError(f"{source}: {part} inputs are not numeric (dtype {X.dtype})")
        if y.ndim not in (1, 2):
            raise DataError(f"{source}: {part} targets must be 1-D or 2-D, got shape {y.shape}")
        if len(y) != len(X):
            raise DataError(
                f"{source}: {part} set has {len(X)} input rows but {len(y)} labels/targets"
            )
        if X.shape[1] == 0:
            raise DataError(f"{source}: {part} inputs have zero columns")
        _check_finite(X, f"{part} inputs", source)
        _check_finite(y, f"{part} targets", source)
    if len(X_train) == 0:
        raise DataError(f"{source}: zero rows of training data")
    if X_test is not None and X_test.shape[1] != X_train.shape[1]:
        raise DataError(
            f"{source}: training inputs have {X_train.shape[1]} columns, test inputs "
            f"{X_test.shape[1]}"
        )

    inferred = _infer_task(y_train)
    task = task or inferred
    if task == "regression" and not np.issubdtype(y_train.dtype, np.number):
        raise DataError(f"{source}: regression needs numeric targets, got dtype {y_train.dtype}")
    if task == "classification":
        _require_two_classes(y_train, source, "the labels")

    if X_test is None or y_test is None:
        X_train, X_test, y_train, y_test = train_val_split(
            X_train, y_train, test_fraction, seed=seed, stratify=task == "classification"
        )
    assert X_test is not None and y_test is not None  # for mypy: set just above
    classes = None
    if task == "classification":
        y_train, y_test, classes = _encode_labels(y_train, y_test, source)
    else:
        y_train = np.asarray(y_train, dtype=dtype)
        y_test = np.asarray(y_test, dtype=dtype)
    # Keep a memory map when it already has the requested dtype (streaming); else convert.
    if X_train.dtype != np.dtype(dtype):
        X_train = X_train.astype(dtype)
    if X_test.dtype != np.dtype(dtype):
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
    )


# --------------------------------------------------------------------------------------
# Named datasets and files


def _idx_search_dirs(name: str, data_dir: str | os.PathLike[str] | None) -> list[Path]:
    dirs: list[Path] = []
    if data_dir is not None:
        dirs += [Path(data_dir), Path(data_dir) / name]
    env = os.environ.get("BACKPROP_DATA")
    if env:
        dirs.append(Path(env) / name)
    dirs.append(SYSTEM_DATA_DIR / name)
    return dirs


def _idx_how_to_get(name: str) -> str:
    files = ", ".join(f"{stem}.gz" for stem in _IDX_FILES.values())
    apt = (
        "install it with `sudo apt-get install dataset-fashion-mnist`, or "
        if name == "fashion-mnist"
        else ""
    )
    return (
        f"{apt}download the four IDX files ({files}) into one of those directories "
        f"(or into DIR/{name} and set BACKPROP_DATA=DIR, or pass data_dir / --data DIR)"
    )


def _load_idx_dir(directory: Path, name: str, *, require_test: bool, **kw: Any) -> Dataset | None:
    """Load a directory of IDX files; None when the training pair is not there."""
    found = _find_idx_files(directory)
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
        X_test = images_to_features(test_images, kw["dtype"])
    if name in ("mnist", "fashion-mnist"):
        # Both sets have exactly the labels 0..9; anything else is a damaged or wrong file.
        for path, y in ((found["train_labels"], labels), (found.get("test_labels"), y_test)):
            if y is not None and y.size and y.max() > 9:
                raise DataError(
                    f"{path}: label {int(y.max())} out of range for {name} (classes 0..9)"
                )
    rows, cols = images.shape[1:]
    return _finish(
        name,
        str(directory),
        images_to_features(images, kw["dtype"]),
        labels,
        X_test,
        y_test,
        image_shape=(int(rows), int(cols)),
        **kw,
    )


def _check_file_magic(path: Path, magics: tuple[bytes, ...], what: str) -> None:
    """Refuse a file that does not start with one of ``magics`` (np.load would otherwise
    report any unknown file as "pickled data", which misleads)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    if not head.startswith(magics):
        hint = " (it looks like an HTML page)" if _looks_like_html(head) else ""
        raise DataError(f"{path}: not a valid {what} file (starts with {head!r}){hint}")


def _load_npz(path: Path, **kw: Any) -> Dataset:
    _check_file_magic(path, (b"PK\x03\x04", b"PK\x05\x06"), ".npz (zip)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            if {"X_train", "y_train", "X_test", "y_test"} <= keys:
                arrays = [npz[k] for k in ("X_train", "y_train", "X_test", "y_test")]
            elif {"X", "y"} <= keys:
                arrays = [npz["X"], npz["y"], None, None]
            else:
                raise DataError(
                    f"{path}: .npz must hold arrays X and y, or X_train, y_train, X_test and "
                    f"y_test; it holds {', '.join(sorted(keys)) or 'nothing'}"
                )
    except DataError:
        raise
    except ValueError as exc:
        # NumPy refuses object arrays under allow_pickle=False: never unpickle a data file.
        raise DataError(f"{path}: refused to load: {exc}") from exc
    except Exception as exc:  # zipfile.BadZipFile, OSError, EOFError, ...: not a valid .npz
        raise DataError(f"{path}: not a valid .npz file ({type(exc).__name__}: {exc})") from exc
    image_shape = None
    for i in (0, 2):
        a = arrays[i]
        if a is not None and a.ndim == 3:  # images stored as (n, rows, cols)
            image_shape = (int(a.shape[1]), int(a.shape[2]))
            arrays[i] = a.reshape(len(a), -1)
    X_train, y_train, X_test, y_test = arrays
    assert X_train is not None and y_train is not None
    return _finish(
        path.name, str(path), X_train, y_train, X_test, y_test, image_shape=image_shape, **kw
    )


def _load_npy(path: Path, **kw: Any) -> Dataset:
    _check_file_magic(path, (b"\x93NUMPY",), ".npy")
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # ValueError (object dtype, bad header), OSError, EOFError
        raise DataError(f"{path}: not a loadable .npy array ({exc})") from exc
    if data.ndim != 2 or data.shape[1] < 2:
        raise DataError(
            f"{path}: .npy must be a 2-D array whose last column is the target, "
            f"got shape {data.shape}"
        )
    # X stays a view of the memory map; the target column is small enough to copy.
    return _finish(path.name, str(path), data[:, :-1], np.array(data[:, -1]), None, None, **kw)


def load_dataset(
    name_or_path: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    task: str | None = None,
    target: str | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    dtype: Any = np.float32,
) -> Dataset:
    """Load a named dataset or a data file, split into training and test sets.

    Parameters
    ----------
    name_or_path : str
        ``"digits"``, ``"diabetes"``, ``"fashion-mnist"``, ``"mnist"``, or a path to a
        ``.csv``, ``.npy``, ``.npz`` file or a directory of IDX files.
    data_dir : str or PathLike, optional
        First place to look for IDX datasets (then ``$BACKPROP_DATA/<name>``, then
        ``/usr/share/datasets/<name>``).
    task : {"classification", "regression"}, optional
        Inferred when None: a 1-D integer-valued target with few distinct values is
        classification.
    target : str, optional
        Target column name, CSV only.
    test_fraction : float
        Share of rows held out as the test set when the source has no test split
        (stratified for classification). ``0`` keeps every row for training (and a
        memory-mapped ``.npy`` stays memory-mapped).
    seed : int
        Seed of that split.
    dtype : float dtype
        dtype of X (and of regression targets).

    Returns
    -------
    Dataset
        With ``X_train`` (n_train, d), ``y_train`` (n_train,) etc.

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
    }
    if not 0 <= test_fraction < 1:
        raise DataError(f"test_fraction must be in [0, 1), got {test_fraction}")
    path = Path(name_or_path)
    if target is not None and path.suffix.lower() != ".csv":
        raise DataError(f"target={target!r} only applies to CSV files, not {name_or_path!r}")

    if name_or_path in ("digits", "diabetes"):
        from sklearn.datasets import load_diabetes, load_digits

        natural = "classification" if name_or_path == "digits" else "regression"
        if task is not None and task != natural:
            raise DataError(f"dataset {name_or_path!r} is a {natural} set, not {task}")
        if name_or_path == "digits":
            bunch = load_digits()
            X = bunch.data / 16.0  # pixel intensities 0..16 -> [0, 1]
            shape: tuple[int, int] | None = (8, 8)
        else:
            bunch = load_diabetes(scaled=False)
            X, shape = bunch.data, None
        feature_names = list(bunch.feature_names)
        return _finish(
            name_or_path,
            name_or_path,
            X,
            bunch.target,
            None,
            None,
            image_shape=shape,
            feature_names=feature_names,
            **kw,
        )

    if name_or_path in ("fashion-mnist", "mnist"):
        if task not in (None, "classification"):
            raise DataError(f"dataset {name_or_path!r} is a classification set, not {task}")
        dirs = _idx_search_dirs(name_or_path, data_dir)
        for d in dirs:
            ds = _load_idx_dir(d, name_or_path, require_test=True, **kw)
            if ds is not None:
                return ds
        notes = []
        for d in dirs:
            present = _find_idx_files(d)
            if present:
                missing = sorted(set(_IDX_FILES) - set(present))
                notes.append(f"{d} (has some files, missing {', '.join(missing)})")
            else:
                notes.append(f"{d} ({'no IDX files' if d.is_dir() else 'does not exist'})")
        raise DataError(
            f"dataset {name_or_path!r} not found; looked in: {'; '.join(notes)}. To get it, "
            f"{_idx_how_to_get(name_or_path)}"
        )

    if not path.exists():
        raise DataError(
            f"{name_or_path!r} is neither a known dataset ({', '.join(NAMED_DATASETS)}) "
            f"nor an existing file or directory"
        )
    if path.is_dir():
        ds = _load_idx_dir(path, path.name, require_test=False, **kw)
        if ds is None:
            raise DataError(
                f"{path}: directory holds no IDX training files (expected "
                f"{_IDX_FILES['train_images']}[.gz] and {_IDX_FILES['train_labels']}[.gz])"
            )
        return ds
    suffix = path.suffix.lower()
    if suffix == ".csv":
        X, y, names = read_csv(path, target)
        return _finish(path.name, str(path), X, y, None, None, feature_names=names, **kw)
    if suffix == ".npz":
        return _load_npz(path, **kw)
    if suffix == ".npy":
        return _load_npy(path, **kw)
    raise DataError(
        f"{path}: unsupported file type {suffix or '(no extension)'!r}; expected .csv, .npy, "
        f".npz or a directory of IDX files"
    )


# --------------------------------------------------------------------------------------
# Split, standardisation, batches


def train_val_split(
    X: np.ndarray, y: np.ndarray, val_fraction: float, *, seed: int = 0, stratify: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic (optionally stratified) split into training and validation parts.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    y : ndarray of shape (n,) or (n, k)
    val_fraction : float in [0, 1)
        Share of rows in the validation part: ``m = floor(val_fraction * n + 0.5)``. With
        ``stratify``, the m rows are shared among classes in proportion to their sizes
        (largest remainders), each class with 2+ rows giving at least 1 and at most
        ``n_c - 1`` rows so that it appears in both parts.
    seed : int
        Same seed, same split.
    stratify : bool
        Split each class (value of 1-D ``y``) separately.

    Returns
    -------
    X_tr : ndarray of shape (n - m, d)
    X_val : ndarray of shape (m, d)
    y_tr : ndarray of shape (n - m,) or (n - m, k)
    y_val : ndarray of shape (m,) or (m, k)
    """
    if not 0 <= val_fraction < 1:
        raise DataError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n = len(X)
    if len(y) != n:
        raise DataError(f"X has {n} rows but y has {len(y)}")
    if val_fraction == 0:
        return X, X[:0], y, y[:0]
    rng = np.random.default_rng(seed)
    n_val = int(np.floor(val_fraction * n + 0.5))  # round half up
    if stratify and y.ndim == 1:
        _, inverse = np.unique(y, return_inverse=True)
        sizes = np.bincount(inverse)
        # Largest-remainder apportionment: the class shares add up to n_val exactly
        # (rounding each class separately could lose or gain a row per class).
        quotas = val_fraction * sizes
        k = np.floor(quotas).astype(np.int64)
        extra = n_val - int(k.sum())
        k[np.argsort(-(quotas - k), kind="stable")[:extra]] += 1
        # Every class with 2+ rows in both parts, even if the total drifts a little.
        k = np.where(sizes >= 2, np.clip(k, 1, sizes - 1), 0)
        val_parts = []
        for c, k_c in enumerate(k):
            members = np.flatnonzero(inverse == c)
            rng.shuffle(members)
            val_parts.append(members[:k_c])
        val_idx = np.concatenate(val_parts) if val_parts else np.empty(0, dtype=np.intp)
    else:
        val_idx = rng.permutation(n)[:n_val]
    is_val = np.zeros(n, dtype=bool)
    is_val[val_idx] = True
    # Shuffle within each part so neither is ordered by class.
    tr_idx = rng.permutation(np.flatnonzero(~is_val))
    val_idx = rng.permutation(np.flatnonzero(is_val))
    return X[tr_idx], X[val_idx], y[tr_idx], y[val_idx]


class Standardizer:
    """Per-feature standardisation ``(X - mean_) / scale_``, fitted on training data only.

    Attributes
    ----------
    mean_ : ndarray of shape (d,)
    scale_ : ndarray of shape (d,)
        Population standard deviation, replaced by 1.0 where it is below 1e-8 (constant
        features such as always-black border pixels), so they map to 0 instead of inf.
    """

    mean_: np.ndarray
    scale_: np.ndarray

    def __init__(self) -> None:
        self.mean_ = np.empty(0)
        self.scale_ = np.empty(0)
        self._fitted = False

    @classmethod
    def from_arrays(cls, mean: np.ndarray, scale: np.ndarray) -> Standardizer:
        """Rebuild a fitted standardizer from stored ``mean_`` and ``scale_`` (both (d,))."""
        mean, scale = np.asarray(mean), np.asarray(scale)
        if mean.ndim != 1 or mean.shape != scale.shape:
            raise DataError(
                f"mean and scale must be 1-D of equal length: {mean.shape}, {scale.shape}"
            )
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise DataError("mean must be finite and scale finite and positive")
        st = cls()
        st.mean_, st.scale_, st._fitted = mean, scale, True
        return st

    def fit(self, X: np.ndarray) -> Standardizer:
        """Compute per-feature mean and standard deviation of X (n, d), chunk by chunk.

        Chunks are combined with Chan et al.'s parallel variance formula in float64, so a
        memory-mapped X is never copied whole and float32 data loses no precision.
        """
        if X.ndim != 2 or len(X) == 0:
            raise DataError(f"Standardizer.fit needs a non-empty 2-D array, got shape {X.shape}")
        d = X.shape[1]
        count = 0
        mean = np.zeros(d)
        m2 = np.zeros(d)  # sum of squared deviations from the mean
        for rows in _row_chunks(len(X), d):
            chunk = np.asarray(X[rows], dtype=np.float64)
            n_b = len(chunk)
            mean_b = chunk.mean(axis=0)
            m2_b = ((chunk - mean_b) ** 2).sum(axis=0)
            delta = mean_b - mean
            total = count + n_b
            mean += delta * (n_b / total)
            m2 += m2_b + delta**2 * (count * n_b / total)
            count = total
        std = np.sqrt(m2 / count)
        out = X.dtype if np.issubdtype(X.dtype, np.floating) else np.dtype(np.float64)
        self.mean_ = mean.astype(out)
        self.scale_ = np.where(std < 1e-8, 1.0, std).astype(out)
        self._fitted = True
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Return ``(X - mean_) / scale_`` of shape (n, d), in X's float dtype."""
        if not self._fitted:
            raise DataError("Standardizer is not fitted; call fit(X_train) first")
        if X.ndim != 2 or X.shape[1] != len(self.mean_):
            raise DataError(
                f"Standardizer was fitted on {len(self.mean_)} features, got shape {X.shape}"
            )
        dt = X.dtype if np.issubdtype(X.dtype, np.floating) else self.mean_.dtype
        mean, scale = self.mean_.astype(dt), self.scale_.astype(dt)
        out = np.empty(X.shape, dtype=dt)
        for rows in _row_chunks(len(X), X.shape[1]):
            np.subtract(X[rows], mean, out=out[rows], casting="unsafe")
            out[rows] /= scale
        return out

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        """``fit(X).transform(X)``."""
        return self.fit(X).transform(X)


def iter_batches(
    X: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    shuffle: bool,
    rng: np.random.Generator | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield mini-batches ``(Xb, yb)``; the last, partial batch is included.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        May be a memory map: each batch reads only its own rows.
    y : ndarray of shape (n,) or (n, k)
    batch_size : int >= 1
    shuffle : bool
        Draw a fresh permutation from ``rng`` (required then) for this pass.
    rng : numpy.random.Generator, optional

    Yields
    ------
    Xb : ndarray of shape (b, d)
    yb : ndarray of shape (b,) or (b, k)
        ``b = batch_size`` except possibly for the last batch.
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise DataError(f"batch_size must be a positive integer, got {batch_size}")
    n = len(X)
    if len(y) != n:
        raise DataError(f"X has {n} rows but y has {len(y)}")
    if shuffle and rng is None:
        raise DataError("shuffle=True needs rng (a numpy.random.Generator) for reproducibility")
    batch_size = int(batch_size)
    if not shuffle:
        for start in range(0, n, batch_size):
            yield (
                np.asarray(X[start : start + batch_size]),
                np.asarray(y[start : start + batch_size]),
            )
        return
    assert rng is not None
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        # Sorted indices read a memory map front to back; the order inside a batch does not
        # change a mean-over-the-batch gradient.
        idx = np.sort(order[start : start + batch_size])
        yield np.asarray(X[idx]), np.asarray(y[idx])
