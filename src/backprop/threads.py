"""How many BLAS threads a training run uses: chosen from the size of its matrix products.

Every step of the notes' algorithm is five matrix products (the forward pass Z = X W + b,
the backward pass's deltas and gradients, pages 3-6) plus elementwise passes. OpenBLAS
runs each product on all cores by default, and its threads spin-wait between products. On
a small network those products last a fraction of a millisecond, so splitting them does
not pay for the hand-over, and when another process holds a core the spinning thread
waits for it at every product: training collapses (issue 12: digits trained 3x slower
with one core kept busy, and 10x slower under heavier load, than with one thread).

The rule (`choose_threads`): give each BLAS thread at least `WORK_PER_THREAD`
floating-point operations of the step's largest product, ``2 * batch * d_in * d_out``
for the widest layer. One thread below twice that, more only as the product grows, never
more than BLAS already has (a limit the caller set, e.g. with ``threadpoolctl``, stays).
The constant comes from timing a training step with 1 and 2 threads over layer sizes and
batches (``benchmarks/threads.py``; docs/benchmarks.md, "Threads").

Who wins: an explicit ``threads=`` (`backprop.trainer.Trainer.fit`) first; then a thread
count the user set in the environment (`THREAD_ENV`, read by BLAS when it loads: joblib
sets them in the worker processes of ``GridSearchCV(n_jobs=...)``), which is left as it
is; then the rule.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import pairwise
from typing import Any

__all__ = [
    "THREAD_ENV",
    "WORK_PER_THREAD",
    "choose_threads",
    "largest_product_flops",
    "limit",
    "training_threads",
]

#: Floating-point operations of the largest product of a step that one BLAS thread should
#: get at least (about half a millisecond of one core's GEMM work).
WORK_PER_THREAD = 50e6

#: Environment variables through which a user (or joblib) fixes the BLAS thread count.
THREAD_ENV = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "GOTO_NUM_THREADS",
)


class ThreadsError(ValueError):
    """A thread count that is not a positive integer."""


def largest_product_flops(layer_sizes: Sequence[int], batch_size: int) -> float:
    """Floating-point operations of the largest matrix product of one training step.

    A layer's products (Z = A W, A^T delta, delta W^T) each take ``2 * b * d_in * d_out``
    operations; the widest layer's is the largest.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[d, n_1, ..., k]``: inputs, hidden widths, outputs.
    batch_size : int
        Examples per step (already clipped to the data size).

    Returns
    -------
    float
    """
    sizes = [int(s) for s in layer_sizes]
    return 2.0 * int(batch_size) * max(a * b for a, b in pairwise(sizes))


def _check_threads(threads: Any) -> int:
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ThreadsError(f"threads must be a positive integer, got {threads!r}")
    return int(threads)


def choose_threads(
    layer_sizes: Sequence[int],
    batch_size: int,
    *,
    threads: int | None = None,
    env: Mapping[str, str] | None = None,
    available: int,
) -> int | None:
    """The BLAS thread count for a training run, or None to leave BLAS as it is.

    Parameters
    ----------
    layer_sizes : sequence of int
    batch_size : int
        Examples per step (clipped to the data size).
    threads : int, optional
        Explicit choice (>= 1): returned as it is.
    env : mapping, optional
        The environment (default ``os.environ``); a non-empty `THREAD_ENV` variable means
        the user chose, and the answer is None.
    available : int
        Threads BLAS has now (its limit); the rule never asks for more.

    Returns
    -------
    int or None
        ``max(1, min(available, floor(largest product / WORK_PER_THREAD)))`` by the rule.

    Raises
    ------
    ThreadsError
        If ``threads`` is not a positive integer.
    """
    if threads is not None:
        return _check_threads(threads)
    env = os.environ if env is None else env
    if any(env.get(name, "").strip() for name in THREAD_ENV):
        return None
    share = int(largest_product_flops(layer_sizes, batch_size) // WORK_PER_THREAD)
    return max(1, min(int(available), share))


class _BlasLimit:
    """Process-wide BLAS thread limit, shared by concurrent runs.

    BLAS thread counts are global to the process, so two runs in Python threads (joblib's
    threading backend) must not each save and restore them: the one that finishes first
    would restore the count under the other, and the last would "restore" the first one's
    limit for good. Here the first run in saves the count, the last one out restores it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: list[int] = []
        self._libs: list[Any] | None = None

    def libs(self) -> list[Any]:
        # Built once: finding the loaded libraries takes about a millisecond, and NumPy's
        # BLAS is loaded by then (setting a count then costs microseconds).
        if self._libs is None:
            from threadpoolctl import ThreadpoolController

            self._libs = list(ThreadpoolController().select(user_api="blas").lib_controllers)
        return self._libs

    def current(self) -> int:
        """The smallest thread count among the loaded BLAS libraries (1 if none)."""
        return min((lib.num_threads for lib in self.libs()), default=1)

    @contextmanager
    def hold(self, n: int | None) -> Iterator[None]:
        if n is None:
            yield
            return
        with self._lock:
            libs = self.libs()
            if self._depth == 0:
                self._saved = [lib.num_threads for lib in libs]
            self._depth += 1
            for lib in libs:
                lib.set_num_threads(n)
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    for lib, saved in zip(libs, self._saved, strict=True):
                        lib.set_num_threads(saved)


_BLAS = _BlasLimit()


@contextmanager
def limit(
    layer_sizes: Sequence[int], batch_size: int, threads: int | None = None
) -> Iterator[int | None]:
    """Run the block with the BLAS thread count `choose_threads` picks; restore it after.

    Parameters
    ----------
    layer_sizes : sequence of int
    batch_size : int
        Examples per step (clipped to the data size).
    threads : int, optional
        Explicit thread count; wins over the environment and the rule.

    Yields
    ------
    int or None
        The thread count in force, or None when the environment fixed it.
    """
    n = choose_threads(layer_sizes, batch_size, threads=threads, available=_BLAS.current())
    with _BLAS.hold(n):
        yield n


def training_threads(
    layer_sizes: Sequence[int], batch_size: int, threads: int | None = None
) -> int:
    """The BLAS threads a run of these sizes trains with: what `limit` holds, or BLAS's
    own count where the environment fixed it.

    Parameters
    ----------
    layer_sizes : sequence of int
    batch_size : int
        Examples per step (clipped to the data size).
    threads : int, optional
        Explicit thread count.

    Returns
    -------
    int
    """
    available = _BLAS.current()
    n = choose_threads(layer_sizes, batch_size, threads=threads, available=available)
    return available if n is None else n
