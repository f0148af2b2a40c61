"""File formats: one validated reader per format (IDX, NPY/NPZ; CSV in `tables`), no pickle.

The notes (pages 1-7) take a training set of pairs (x, y) as given; this module reads them
from disk.  Each reader returns the values as the file holds them (uint8 pixels stay
uint8): scaling and standardisation belong to `backprop.data.preprocess.Preprocessor`,
which the model file records.  Every problem with a file (wrong format, truncated
download, a non-numeric cell, an object array) raises :class:`DataError` naming the file
and the problem, so the command line can print one clear line instead of a traceback.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any, cast

import numpy as np

from backprop._memory import check_fits

__all__ = [
    "IDX_FILES",
    "DataError",
    "MissingColumnError",
    "find_idx_files",
    "load_idx_pair",
    "printable",
    "read_idx",
    "read_npy",
    "read_npz",
    "require_real",
]

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

#: The four IDX files of (Fashion-)MNIST, by role; each may be raw or .gz, and the original
#: MNIST site also used a dot before "idx".
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


class DataError(ValueError):
    """A data file or array is missing, malformed or unusable; the message says which and why."""


class MissingColumnError(DataError):
    """A column named by the caller (``--target``) is not in the file."""


def printable(text: str) -> str:
    """``text`` with each non-printable character escaped (``\\x1b``, ``\\n``).

    Strings read from files (class labels, column names, config values) reach terminals
    and figures: an escape sequence in them must be shown, never obeyed (a window title
    changed, the screen cleared). Printable characters, accents included, stay as they are.
    """
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )


#: dtype kinds the network takes as numbers: bool, signed and unsigned integers, floats.
#: Complex is not one of them: casting it to float drops the imaginary part silently.
REAL_KINDS = "biuf"


def require_real(a: np.ndarray, what: str) -> None:
    """Raise DataError unless ``a`` holds real numbers (bool, integer or float).

    The one check of "numeric" shared by training (`load_dataset`) and prediction
    (`Preprocessor.transform`), so neither accepts what the other refuses.

    Parameters
    ----------
    a : ndarray
    what : str
        Named in the message, e.g. ``"data.npz: training inputs"``.

    Raises
    ------
    DataError
        Complex values (the imaginary part would be lost) or a non-numeric dtype.
    """
    if a.dtype.kind == "c":
        raise DataError(
            f"{what}: complex values (dtype {a.dtype}); give real numbers (casting would "
            "drop the imaginary part)"
        )
    if a.dtype.kind not in REAL_KINDS:
        raise DataError(f"{what}: not numeric (dtype {a.dtype})")


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
    n_items = int(np.prod(dims, dtype=object))
    n_bytes = n_items * dtype.itemsize
    if payload_available is not None and n_bytes != payload_available - 4 * ndim:
        have = payload_available - 4 * ndim
        problem = "truncated" if have < n_bytes else "has trailing bytes"
        raise DataError(
            f"{path}: IDX file {problem}: header says shape {dims} ({n_bytes} bytes of data), "
            f"file holds {have} bytes of data"
        )
    # A gzip stream may really hold what its header declares (1.5 MB of zeros expand to
    # gigabytes): refuse before reading a size that, with the float32 copy training makes
    # of it (at least), cannot fit.
    check_fits(
        n_bytes + n_items * max(dtype.itemsize, 4),
        f"{path}: the IDX data of shape {dims}",
        DataError,
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
        As stored (the model's `Preprocessor` scales them).
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


def find_idx_files(directory: Path) -> dict[str, Path]:
    """The IDX files present in ``directory``, by role (train_images, ..., test_labels)."""
    found: dict[str, Path] = {}
    for role, stem in IDX_FILES.items():
        dotted = stem.replace("-idx", ".idx")
        for name in (stem + ".gz", stem, dotted + ".gz", dotted):
            if (directory / name).is_file():
                found[role] = directory / name
                break
    return found


# --------------------------------------------------------------------------------------
# NPY / NPZ


def _check_file_magic(path: Path, magics: tuple[bytes, ...], what: str) -> None:
    """Refuse a file that does not start with one of ``magics`` (np.load would otherwise
    report any unknown file as "pickled data", which misleads)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such file") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    if not head.startswith(magics):
        hint = " (it looks like an HTML page)" if _looks_like_html(head) else ""
        raise DataError(f"{path}: not a valid {what} file (starts with {head!r}){hint}")


def _check_numeric(path: Path, name: str, a: np.ndarray) -> None:
    if a.dtype.kind not in "US":  # text is allowed: string class labels
        require_real(a, f"{path}: array {name}")


def read_npy(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a ``.npy`` array, memory-mapped (a file larger than memory is streamed).

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    ndarray
        Read-only memory map with the file's shape and dtype (any integer or float).

    Raises
    ------
    DataError
        Not a ``.npy`` file, an object array (never unpickled), or a non-numeric dtype.
    """
    path = Path(path)
    _check_file_magic(path, (b"\x93NUMPY",), ".npy")
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # ValueError (object dtype, bad header), OSError, EOFError
        raise DataError(f"{path}: not a loadable .npy array ({exc})") from exc
    _check_numeric(path, "in the file", data)
    return data


def _npz_member(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """One ``.npz`` member: memory-mapped when stored uncompressed, else read into memory.

    An uncompressed member is a plain ``.npy`` file at a known offset of the zip (after
    its local header), so it is mapped like a ``.npy`` file: nothing is read until rows
    are. A compressed member (``np.savez_compressed``) cannot be mapped; it is read into
    memory once its header's size is checked against the memory available.
    """
    name = info.filename.removesuffix(".npy")
    with zf.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
        header_len = member.tell()
    if dtype.hasobject:
        # NumPy refuses object arrays under allow_pickle=False: never unpickle a data file.
        raise DataError(f"{path}: refused to load array {name}: it holds Python objects")
    n_bytes = math.prod(shape) * dtype.itemsize
    if info.compress_type == zipfile.ZIP_STORED and not fortran and n_bytes:
        with open(path, "rb") as f:
            f.seek(info.header_offset)
            local = f.read(30)  # the local header; its name and extra lengths may differ
        n_name, n_extra = struct.unpack("<HH", local[26:30])
        offset = info.header_offset + 30 + n_name + n_extra + header_len
        return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=tuple(shape))
    check_fits(n_bytes, f"{path}: the compressed array {name} of shape {shape}", DataError)
    with zf.open(info) as member:
        return cast(np.ndarray, np.lib.format.read_array(member, allow_pickle=False))


def read_npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read every array of a ``.npz`` file (never unpickling).

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    dict of str to ndarray
        The arrays by name: uncompressed members (``np.savez``) as read-only memory maps
        (a member larger than memory is read row by row), compressed ones
        (``np.savez_compressed``) read into memory.

    Raises
    ------
    DataError
        Not a zip file, an object array, a non-numeric dtype, or a compressed member
        larger than the memory available.
    """
    path = Path(path)
    _check_file_magic(path, (b"PK\x03\x04", b"PK\x05\x06"), ".npz (zip)")
    arrays: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                arrays[info.filename.removesuffix(".npy")] = _npz_member(path, zf, info)
    except DataError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError (a bad header), OSError, ...
        raise DataError(f"{path}: not a valid .npz file ({type(exc).__name__}: {exc})") from exc
    for name, a in arrays.items():
        _check_numeric(path, name, a)
    return arrays
