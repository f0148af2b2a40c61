"""`Rows`: a data matrix read batch by batch, so that training data may exceed memory.

The notes' gradient (pages 5-7) needs only the rows of one batch at a time. A `Rows` is
rows ``index`` of a raw 2-D array ``base`` (in memory, or a read-only memory map of a
``.npy`` file or of an uncompressed ``.npz`` member), optionally passed through a
`backprop.data.Preprocessor` on the way out. It never copies the whole array: `take`
gathers one batch into a buffer the caller preallocated, `chunks` streams row chunks for
one pass (statistics, finiteness, hashing, prediction), and a train/validation split is
two index arrays over the same base. `Trainer.run_epoch` gathers every batch through it,
in memory or not: one path.

Resident memory: pages of a memory map that the process touches count in its resident
set (``RssFile`` in /proc/self/status) until the kernel drops them, and a touch maps a
whole page-cache folio around the row (measured: 1024 scattered rows of a 377 MB file
put 338 MB in RssFile). So a `Rows` over a memory-mapped file reads each row of a batch
with a positioned read (``os.preadv``) straight into the batch buffer: the pages stay in
the page cache, outside the process. Streaming passes over a contiguous base read
through the map chunk by chunk and drop its pages (``madvise(MADV_DONTNEED)``) after
each chunk. Measured with ``benchmarks/out_of_core.py`` (docs/scaling.md).
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np
from numpy.typing import DTypeLike

from backprop._memory import check_fits
from backprop.data.formats import DataError

__all__ = ["RELEASE_BYTES", "BatchTransform", "Rows", "as_rows", "mapping_of", "memmap_root"]

#: Bytes of a memory map a `Rows` may have touched before it drops the mapping's pages.
RELEASE_BYTES = 64 << 20

# The kernel maps up to this much around a faulting page of a file mapping (Linux's
# fault_around_bytes default): what one touched row may add to the resident set.
_FAULT_AROUND = 64 << 10

# Elements per chunk of a streaming pass: 2 M (16 MB per float64 temporary: the
# statistics pass holds three), small beside the 500 MB budget, big enough that the
# per-chunk work (a madvise, a Python step) is negligible.
CHUNK_ELEMENTS = 2_000_000


class BatchTransform(Protocol):
    """What a `Rows` needs of a `backprop.data.Preprocessor`: its `apply`.

    A protocol here, not the class, so that rows.py sits below preprocess.py (which
    builds on `Rows`) and the two do not import each other.
    """

    def apply(self, raw: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Transform the raw batch ``raw`` into ``out`` (may be ``raw``) and return it."""
        ...


def mapping_of(a: np.ndarray) -> mmap.mmap | None:
    """The memory map under ``a`` (a `numpy.memmap` or a view of one), or None."""
    b: Any = a
    while b is not None:
        if isinstance(b, mmap.mmap):
            return b
        b = getattr(b, "base", None)
    return None


def memmap_root(a: np.ndarray) -> np.memmap | None:
    """The `numpy.memmap` of a file under ``a`` (itself or a view of it), or None."""
    root: Any = a
    while not (isinstance(root, np.memmap) and isinstance(root.base, mmap.mmap)):
        root = getattr(root, "base", None)
        if root is None:
            return None
    return root if root.filename is not None else None


def row_chunks(n_rows: int, width: int) -> Iterator[slice]:
    """Row slices covering 0..n_rows with about `CHUNK_ELEMENTS` elements each."""
    step = max(1, CHUNK_ELEMENTS // max(1, width))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


class Rows:
    """Rows ``index`` of ``base``, gathered (and preprocessed) a batch at a time.

    Parameters
    ----------
    base : ndarray of shape (n_base, d)
        Raw inputs, any real dtype; may be a read-only memory map (never copied whole).
    index : ndarray of shape (n,) of int, optional
        The rows of ``base`` this holds, in this order. Default: all of them.
    pre : Preprocessor (any `BatchTransform`), optional
        Applied to every gathered batch (`Preprocessor.apply`): the values come out as
        ``Preprocessor.transform`` would give them, element for element.
    dtype : dtype, optional
        The dtype rows come out in. Default: the preprocessor's float32 with ``pre``,
        else ``base.dtype``.

    Attributes
    ----------
    shape : (int, int)
        ``(n, d)``.
    dtype : numpy.dtype
    """

    ndim = 2

    def __init__(
        self,
        base: np.ndarray,
        index: np.ndarray | None = None,
        *,
        pre: BatchTransform | None = None,
        dtype: DTypeLike | None = None,
    ) -> None:
        if base.ndim != 2:
            raise ValueError(f"Rows needs a 2-D array, got shape {base.shape}")
        self.base = base
        self.index = None if index is None else np.asarray(index, dtype=np.intp)
        self.pre = pre
        default = np.float32 if pre is not None else base.dtype
        self.dtype = np.dtype(default if dtype is None else dtype)
        n = len(base) if self.index is None else len(self.index)
        self.shape = (n, int(base.shape[1]))
        self._mapping = mapping_of(base)
        # Raw bytes of one row (what a touch maps, at least) and the running count.
        self._row_cost = max(int(base.strides[0]), _FAULT_AROUND)
        self._touched = 0
        self._scratch: np.ndarray | None = None
        self._file: tuple[int, int, int, str, tuple[int, int]] | None = None

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        where = "memory-mapped" if self._mapping is not None else "in memory"
        return f"Rows(shape={self.shape}, dtype={self.dtype}, {where})"

    @property
    def nbytes(self) -> int:
        """Bytes of the rows as they come out (what materialising them would take)."""
        return self.shape[0] * self.shape[1] * self.dtype.itemsize

    # ------------------------------------------------------------------ views

    def _with(self, index: np.ndarray | None, **changes: Any) -> Rows:
        kw: dict[str, Any] = {"pre": self.pre, "dtype": self.dtype, **changes}
        return Rows(self.base, index, **kw)

    def subset(self, idx: np.ndarray) -> Rows:
        """Rows ``idx`` of these (positions 0..n-1), as a `Rows` over the same base."""
        idx = np.asarray(idx, dtype=np.intp)
        return self._with(idx if self.index is None else self.index[idx])

    def preprocessed(self, pre: BatchTransform | None, dtype: DTypeLike) -> Rows:
        """The same rows, coming out through ``pre`` in ``dtype`` (the network's inputs)."""
        return self._with(self.index, pre=pre, dtype=dtype)

    def astype(self, dtype: DTypeLike) -> Rows:
        """The same rows, coming out in ``dtype`` (cast batch by batch, nothing copied)."""
        return self._with(self.index, dtype=dtype)

    def __getitem__(self, key: Any) -> Any:
        """A slice of rows gives a `Rows`; an index array (or an int) gives an ndarray."""
        if isinstance(key, slice):
            return self.subset(np.arange(self.shape[0])[key])
        if isinstance(key, int | np.integer):
            return self.take(np.array([key]))[0]
        if isinstance(key, tuple):
            return np.asarray(self)[key]
        return self.take(np.asarray(key))

    def __array__(self, dtype: DTypeLike | None = None, copy: bool | None = None) -> np.ndarray:
        """All rows in memory, after checking they fit (a one-line error if not)."""
        check_fits(self.nbytes, f"{self!r}: materialising every row", DataError)
        out = np.empty(self.shape, self.dtype)
        for rows, chunk in self.chunks():
            out[rows] = chunk
        return out if dtype is None else out.astype(dtype, copy=False)

    # ------------------------------------------------------------------ reading

    def _release_if_due(self, n_rows: int) -> None:
        """Count ``n_rows`` touched rows; past `RELEASE_BYTES`, drop the mapping's pages."""
        if self._mapping is None:
            return
        self._touched += n_rows * self._row_cost
        if self._touched >= RELEASE_BYTES:
            self.release()

    def release(self) -> None:
        """Drop this process's pages of the memory map (they stay in the page cache)."""
        self._touched = 0
        advice = getattr(mmap, "MADV_DONTNEED", None)
        if self._mapping is not None and advice is not None:  # not on Windows
            self._mapping.madvise(advice)

    def take(self, idx: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``idx`` (positions 0..n-1) into ``out``, preprocessed.

        Parameters
        ----------
        idx : ndarray of shape (b,) of int
        out : ndarray of shape (b, d) of ``dtype``, optional
            Preallocated (the trainer's batch buffer); a new array when None.

        Returns
        -------
        ndarray of shape (b, d)
            ``out``.
        """
        out = self._gather(idx if self.index is None else self.index[idx], out)
        self._release_if_due(len(out))
        return out

    def _gather(self, rows: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        """Rows ``rows`` of the base into ``out`` (or a new array), preprocessed."""
        b = len(rows)
        if out is None:
            out = np.empty((b, self.shape[1]), self.dtype)
        if self.pre is None and self.base.dtype == self.dtype:
            self._take(rows, out)
            return out
        raw = self._raw_buffer(b)
        self._take(rows, raw)
        if self.pre is None:
            out[...] = raw
        else:
            self.pre.apply(raw, out)
        return out

    def _take(self, rows: np.ndarray, out: np.ndarray) -> None:
        """``out[...] = base[rows]``, reading only those rows.

        From a memory-mapped file, by one positioned read per row (``os.preadv`` straight
        into ``out``) instead of through the mapping: touching a page of a file mapping
        maps a whole folio of the page cache around it into the process (measured: 1024
        scattered rows of a 377 MB file mapped 338 MB of RssFile, about 330 KiB per
        row), so a random batch order would drive the resident set towards the file's
        size. A read leaves the pages in the page cache, outside the process.
        """
        reader = self._reader()
        if reader is not None:
            fd, pos0, stride, name, identity = reader
            size = out.shape[1] * out.itemsize
            for j, r in enumerate(rows.tolist()):
                if os.preadv(fd, [out[j]], pos0 + r * stride) != size:
                    raise DataError(
                        f"{name}: row {r} could not be read whole: the file shrank while "
                        "in use; the run stops"
                    )
            # A file rewritten in place (same inode, the bytes we read) shows a new size
            # or modification time; one replaced by a rename keeps our descriptor's old
            # bytes and is consistent. Checked per batch: one fstat beside b reads.
            now = os.fstat(fd)
            if (now.st_size, now.st_mtime_ns) != identity:
                raise DataError(
                    f"{name}: the file changed while in use (size {identity[0]} -> "
                    f"{now.st_size} bytes, or modified); the run stops"
                )
        elif self.base.flags.c_contiguous:
            np.take(self.base, rows, axis=0, out=out)
        else:
            # np.take first makes a C-ordered copy of its whole input (a strided view of
            # an array would be copied whole per batch); fancy indexing gathers the rows.
            out[...] = self.base[rows]

    def _reader(self) -> tuple[int, int, int, str, tuple[int, int]] | None:
        """(file descriptor, file position of row 0, row stride, file name, (size, mtime)
        when opened) for positioned reads of a memory-mapped base whose rows are
        contiguous runs of bytes; None otherwise."""
        if self._file is not None or self._mapping is None:
            return self._file
        b = self.base
        root = memmap_root(b)
        if root is None or b.strides[1] != b.itemsize or b.strides[0] <= 0:
            return None
        assert root.filename is not None
        addr = b.__array_interface__["data"][0]
        pos0 = int(root.offset) + addr - root.__array_interface__["data"][0]
        fd = os.open(root.filename, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        st = os.fstat(fd)
        self._file = (fd, pos0, int(b.strides[0]), root.filename, (st.st_size, st.st_mtime_ns))
        return self._file

    def __del__(self) -> None:
        if getattr(self, "_file", None) is not None:
            os.close(self._file[0])  # type: ignore[index]

    def _raw_buffer(self, b: int) -> np.ndarray:
        """A reused (b, d) buffer of the base's dtype for the raw rows of a batch."""
        s = self._scratch
        if s is None or len(s) < b:
            s = self._scratch = np.empty((b, self.shape[1]), self.base.dtype)
        return s[:b]

    def chunks(self, width: int | None = None) -> Iterator[tuple[slice, np.ndarray]]:
        """One streaming pass: ``(rows, values)`` for consecutive row chunks, in order.

        Parameters
        ----------
        width : int, optional
            Size the chunks as if rows had this many elements (the caller's temporaries
            per row); default d.

        Yields
        ------
        rows : slice
            Positions 0..n-1 of the chunk.
        values : ndarray of shape (len(rows), d)
            The chunk as it comes out (preprocessed, ``dtype``); valid until the next one.
        """
        for rows in row_chunks(self.shape[0], width or self.shape[1]):
            if self.index is None and self.pre is None and self.base.dtype == self.dtype:
                yield rows, self.base[rows]
            else:
                where = np.arange(rows.start, rows.stop)
                yield rows, self._gather(where if self.index is None else self.index[where], None)
            # A pass touches every page once: drop them chunk by chunk (a chunk is at most
            # CHUNK_ELEMENTS values, tens of MB), not only past RELEASE_BYTES.
            self.release()
        self._scratch = None  # a chunk-sized buffer: not kept for the batches after it

    def map_chunks(self, f: Callable[[np.ndarray], np.ndarray], width: int) -> np.ndarray:
        """``f`` over the chunks, the results stacked: ``f(all rows)`` without them in memory.

        Parameters
        ----------
        f : callable
            ``f(values of shape (m, d)) -> ndarray of shape (m, k)`` (a forward pass); its
            result may be a buffer it reuses (it is copied at once).
        width : int
            k.

        Returns
        -------
        ndarray of shape (n, k)
        """
        out: np.ndarray | None = None
        for rows, chunk in self.chunks():
            part = f(chunk)
            if out is None:
                out = np.empty((self.shape[0], width), part.dtype)
            out[rows] = part
        return out if out is not None else np.empty((0, width), self.dtype)


def as_rows(X: Rows | np.ndarray) -> Rows:
    """``X`` as a `Rows` (a 2-D array is wrapped, nothing copied)."""
    return X if isinstance(X, Rows) else Rows(X)
