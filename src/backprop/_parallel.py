"""Elementwise work on two cores: split a large in-place update into two halves.

NumPy's BLAS runs the matrix products of a training step on every core, but each ufunc
call (``M *= beta1``, ``np.sqrt(V, out=tmp)``, ...) runs on one core, and the optimiser's
update of a large weight matrix is many such passes. NumPy releases the GIL inside
ufunc loops, so a second Python thread can run the same passes on the other half of the
arrays meanwhile. Elementwise results do not depend on how the elements are split
(+, -, *, /, sqrt are correctly rounded), so the split version is bit-identical to the
serial one.

`run_split` does that with one persistent worker thread and one hand-off per call. How
many threads it uses is a module setting, `set_elementwise_threads`: 1 (the default, no
worker thread at all), 2, or ``None`` = auto (two when NumPy's BLAS itself runs on two
or more threads and the machine has two or more cores, else one).

Why the default is 1: on the 2-core benchmark machine (docs/benchmarks.md) the split
made the Adam update alone up to 1.5x faster when the second core was idle, but inside a
training step it was slower (Adam: 1,367 us beyond the GEMM floor per step against
1,006 us on one thread), because after each matrix product OpenBLAS's own threads keep
the second core busy spin-waiting for the next one, and the worker has to wait for it.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_THREADS",
    "MIN_SPLIT_SIZE",
    "elementwise_threads",
    "run_split",
    "set_elementwise_threads",
]

DEFAULT_THREADS = 1  # see the module docstring for the measurement behind it

# Below this many elements one hand-off to the worker (~10-30 us) costs more than half
# the passes it saves (measured: a pass over 400,000 float32 values takes 20-150 us).
MIN_SPLIT_SIZE = 100_000

_setting: int | None = DEFAULT_THREADS  # None = auto, resolved once on first use
_resolved: int | None = None
_worker: _Worker | None = None
_lock = threading.Lock()


def _blas_threads() -> int:
    """NumPy's BLAS thread count as threadpoolctl reports it (1 if unknown)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - scikit-learn depends on threadpoolctl
        return 1
    counts = [
        int(info.get("num_threads", 1))
        for info in threadpool_info()
        if info.get("user_api") == "blas" and "numpy" in str(info.get("filepath", ""))
    ]
    return max(counts, default=1)


def set_elementwise_threads(n: int | None) -> None:
    """Set how many threads split large elementwise updates: 1, 2, or None for auto.

    Parameters
    ----------
    n : {1, 2} or None
        1 (the default, `DEFAULT_THREADS`) runs everything on the calling thread; 2
        hands half of each large update to one worker thread; None (auto) picks 2 when
        NumPy's BLAS uses 2 or more threads and ``os.cpu_count() >= 2``, else 1.

    Raises
    ------
    ValueError
        For any other value.
    """
    global _setting, _resolved
    if n is not None and (isinstance(n, bool) or n not in (1, 2)):
        raise ValueError(f"elementwise threads must be 1, 2 or None (auto), got {n!r}")
    with _lock:
        _setting = n
        _resolved = None


def elementwise_threads() -> int:
    """The number of threads (1 or 2) that `run_split` uses now."""
    global _resolved
    if _resolved is None:
        with _lock:
            if _setting is not None:
                _resolved = _setting
            else:
                two = (os.cpu_count() or 1) >= 2 and _blas_threads() >= 2
                _resolved = 2 if two else 1
    return _resolved


class _Worker:
    """One daemon thread that runs the functions handed to it, one at a time."""

    def __init__(self) -> None:
        self._tasks: queue.SimpleQueue[tuple[Callable[..., None], tuple[Any, ...]]] = (
            queue.SimpleQueue()
        )
        self._done: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()
        threading.Thread(target=self._loop, name="backprop-elementwise", daemon=True).start()

    def _loop(self) -> None:
        while True:
            fn, args = self._tasks.get()
            try:
                fn(*args)
            except BaseException as exc:  # handed back to the caller, re-raised there
                self._done.put(exc)
            else:
                self._done.put(None)

    def submit(self, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        self._tasks.put((fn, args))

    def wait(self) -> None:
        exc = self._done.get()
        if exc is not None:
            raise exc


def _get_worker() -> _Worker:
    global _worker
    if _worker is None:
        with _lock:
            if _worker is None:
                _worker = _Worker()
    return _worker


def run_split(kernel: Callable[..., None], arrays: Sequence[np.ndarray], *scalars: Any) -> None:
    """Run ``kernel(*arrays, *scalars)``, on two halves in parallel when worth it.

    Parameters
    ----------
    kernel : callable
        An in-place elementwise function of the arrays (and scalars): each output
        element depends only on the input elements at the same index.
    arrays : sequence of ndarray
        Arrays of one shape, all C-contiguous. When there are two threads (see
        `elementwise_threads`) and they have at least `MIN_SPLIT_SIZE` elements,
        the kernel runs on their first halves (flattened) here and on their second
        halves in the worker thread; otherwise once, on the whole arrays.
    *scalars
        Extra arguments passed to both calls unchanged.
    """
    size = arrays[0].size
    if size < MIN_SPLIT_SIZE or elementwise_threads() < 2:
        kernel(*arrays, *scalars)
        return
    if not all(a.flags.c_contiguous and a.size == size for a in arrays):
        kernel(*arrays, *scalars)
        return
    half = size // 2
    flat = [a.reshape(-1) for a in arrays]
    worker = _get_worker()
    worker.submit(kernel, (*[f[half:] for f in flat], *scalars))
    try:
        kernel(*[f[:half] for f in flat], *scalars)
    finally:
        worker.wait()
