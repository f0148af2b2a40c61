"""Data-parallel training over MPI: who this process is among K, and the sums across them.

Synchronous data parallelism (Horovod's design) splits each global batch of the notes'
algorithm across K processes ("ranks"). The gradients the notes derive are sums over the
batch's examples divided by the batch size (page 6: dJ/dW(l) = A(l-1)^T delta(l) and
dJ/db(l) = 1_n^T delta(l), with delta's 1/n from page 5's dJ/dS), so each rank computes
the sum over its own rows, one ``Allreduce`` adds the K partial sums, and the division
by the global batch size happens once. Every rank then holds the same gradient and takes
the same optimiser step: the weights stay identical without ever being sent.

`world` is the process's view: a `Communicator` with ``rank``, ``size`` and the in-place
sums the trainer needs. Outside ``mpiexec`` (or with one rank) it is `LOCAL`, whose sums
are no-ops, and nothing of MPI is imported. Under ``mpiexec -n K`` with K > 1 it wraps
mpi4py's ``COMM_WORLD``; if mpi4py is missing, `MPIUnavailableError` says how to install
it (``pip install 'backprop-mlp[mpi]'``).

A rank that dies must not leave the others waiting forever in a collective: a killed
rank is cleaned up by ``mpiexec`` itself (MPICH's Hydra ends the job), a rank that
raises or fails calls ``MPI_Abort`` (`Communicator.run`, an exception hook), and a
watchdog thread aborts the job when one collective (or the final ``MPI_Finalize``) has
waited longer than ``BACKPROP_MPI_TIMEOUT`` seconds (default `DEFAULT_TIMEOUT`), naming
what it waited for.
"""

from __future__ import annotations

import atexit
import io
import os
import sys
import threading
import time
from collections.abc import Callable
from functools import cache
from typing import Any, TextIO

import numpy as np

from backprop.checks import whole_number

__all__ = [
    "DEFAULT_TIMEOUT",
    "LOCAL",
    "Communicator",
    "MPIUnavailableError",
    "launched_size",
    "shard",
    "world",
]

#: Seconds a rank waits in one collective before it aborts the job (a rank is dead or hung).
#: Long enough for rank 0 to write the results while the others wait to finish.
DEFAULT_TIMEOUT = 300.0

#: Environment variables through which an MPI launcher tells a process the job's size:
#: MPICH's Hydra and Intel MPI (PMI), Open MPI, Slurm's srun with PMI-2.
_SIZE_ENV = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")
#: Processes of the job on this node (for the BLAS threads per rank).
_LOCAL_SIZE_ENV = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE")


class MPIUnavailableError(RuntimeError):
    """Launched by ``mpiexec`` with several ranks, but mpi4py cannot be imported."""


def launched_size(env: dict[str, str] | None = None) -> int:
    """The number of ranks an MPI launcher started this job with (1 when not launched).

    Parameters
    ----------
    env : mapping, optional
        Default ``os.environ``.

    Returns
    -------
    int
    """
    env = dict(os.environ) if env is None else env
    for name in _SIZE_ENV:
        value = whole_number(env.get(name, ""))
        if value is not None and value >= 1:
            return value
    return 1


def shard(n: int, rank: int, size: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of ``n`` that rank ``rank`` of ``size`` takes (contiguous, balanced).

    The first ``n % size`` ranks take one row more; a rank may take none when ``n < size``.

    Parameters
    ----------
    n, rank, size : int

    Returns
    -------
    (lo, hi) : tuple of int
    """
    q, r = divmod(int(n), int(size))
    lo = rank * q + min(rank, r)
    return lo, lo + q + (rank < r)


def _timeout() -> float:
    raw = os.environ.get("BACKPROP_MPI_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise ValueError(f"BACKPROP_MPI_TIMEOUT must be a number of seconds > 0, got {raw!r}")
    return value


class Communicator:
    """The job as this process sees it: one process alone (`LOCAL`), or rank r of K.

    Attributes
    ----------
    rank : int
        0 .. size-1; rank 0 alone prints and writes files.
    size : int
        Number of processes training together.
    local_size : int
        Processes of the job on this machine (they share its cores).
    """

    rank: int = 0
    size: int = 1
    local_size: int = 1

    @property
    def is_root(self) -> bool:
        """True on rank 0, the one that prints progress and writes checkpoints and results."""
        return self.rank == 0

    def allreduce(self, buf: np.ndarray, what: str) -> None:
        """Replace ``buf`` (contiguous) by its elementwise sum over all ranks, in place.

        ``what`` names the sum in the message if a rank never joins it.
        """

    def allgather_rows(self, local: np.ndarray, n: int, what: str) -> np.ndarray:
        """Stack every rank's ``local`` rows (rank order, `shard`'s split of ``n``)."""
        return local

    def any(self, flag: bool, what: str) -> bool:
        """True on every rank if ``flag`` is true on any rank."""
        return bool(flag)

    def run(self, func: Callable[[], int]) -> int:
        """Run a command's body; in a multi-rank job a failure on any rank ends the job.

        Returns ``func()``'s exit status. With several ranks, an exception or a non-zero
        status marks this rank as failed: at exit it aborts the job (after a short grace on
        ranks other than 0, so that an error every rank hits is reported once, by rank 0).
        """
        return func()


class _Local(Communicator):
    """One process: sums over one rank are the values themselves."""

    def __repr__(self) -> str:
        return "LOCAL"


#: The single-process communicator (no MPI).
LOCAL: Communicator = _Local()


class _MPI(Communicator):
    """``MPI.COMM_WORLD`` with a watchdog and abort-on-failure (see the module docstring)."""

    #: Seconds a failed non-root rank waits before aborting, so that rank 0's message and
    #: abort (for an error every rank hits) come first and the job prints it once.
    GRACE = 2.0

    def __init__(self, mpi: Any, timeout: float) -> None:
        self._MPI = mpi
        self.comm = mpi.COMM_WORLD
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        local = next(
            (n for k in _LOCAL_SIZE_ENV if (n := whole_number(os.environ.get(k, ""))) is not None),
            None,
        )
        self.local_size = local if local is not None else self.size
        self.timeout = timeout
        self._waiting: tuple[str, float] | None = None
        self._failed = 0
        self._stderr: TextIO | None = None
        self._lock = threading.Lock()
        threading.Thread(target=self._watch, name="backprop-mpi-watchdog", daemon=True).start()
        hook = sys.excepthook

        def excepthook(*exc: Any) -> None:  # an uncaught error: the others must not wait
            if not self.is_root:  # an error every rank hits is printed once, by rank 0
                time.sleep(self.GRACE)
            self._restore_stderr()
            hook(*exc)
            self._abort(1)

        sys.excepthook = excepthook
        # Registered after mpi4py's import, so it runs before MPI_Finalize.
        atexit.register(self._at_exit)

    def __repr__(self) -> str:
        return f"MPI(rank={self.rank}, size={self.size})"

    # -------------------------------------------------------------- collectives
    def _collective(self, what: str, call: Callable[[], Any]) -> Any:
        self._waiting = (what, time.monotonic())
        try:
            return call()
        finally:
            self._waiting = None

    def allreduce(self, buf: np.ndarray, what: str) -> None:
        self._collective(what, lambda: self.comm.Allreduce(self._MPI.IN_PLACE, buf))

    def allgather_rows(self, local: np.ndarray, n: int, what: str) -> np.ndarray:
        per_row = int(np.prod(local.shape[1:], dtype=np.int64))
        bounds = [shard(n, r, self.size) for r in range(self.size)]
        counts = [(hi - lo) * per_row for lo, hi in bounds]
        displs = [lo * per_row for lo, _ in bounds]
        out = np.empty((n, *local.shape[1:]), local.dtype)
        send = np.ascontiguousarray(local)
        self._collective(what, lambda: self.comm.Allgatherv(send, [out, (counts, displs)]))
        return out

    def any(self, flag: bool, what: str) -> bool:
        buf = np.array([1.0 if flag else 0.0])
        self.allreduce(buf, what)
        return bool(buf[0] > 0)

    # -------------------------------------------------------------- failure
    def run(self, func: Callable[[], int]) -> int:
        if not self.is_root and self._stderr is None:
            # Held back: printed only if this rank fails alone (see GRACE).
            self._stderr, sys.stderr = sys.stderr, io.StringIO()
        try:
            rc = func()
        except BaseException as exc:
            self._failed = 130 if isinstance(exc, KeyboardInterrupt) else 1
            raise
        if rc:
            self._failed = rc
        return rc

    def _watch(self) -> None:
        step = min(1.0, self.timeout / 4)
        while True:
            time.sleep(step)
            waiting = self._waiting
            if waiting is not None and time.monotonic() - waiting[1] > self.timeout:
                self._restore_stderr()
                print(
                    f"backprop: rank {self.rank} of {self.size}: waited more than "
                    f"{self.timeout:g} s for the other ranks in {waiting[0]}; a rank died or "
                    "hangs, aborting the job (BACKPROP_MPI_TIMEOUT sets the limit)",
                    file=sys.stderr,
                    flush=True,
                )
                self._abort(1)

    def _restore_stderr(self) -> None:
        with self._lock:
            if self._stderr is not None:
                held, sys.stderr, self._stderr = sys.stderr, self._stderr, None
                if isinstance(held, io.StringIO):
                    sys.stderr.write(held.getvalue())
                sys.stderr.flush()

    def _abort(self, code: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        time.sleep(0.2)  # mpiexec forwards what was just printed before it ends the job
        try:
            self.comm.Abort(code)
        finally:  # Abort does not return; if MPI is already gone, leave anyway
            os._exit(code)

    def _at_exit(self) -> None:
        if self._failed:
            if not self.is_root and self._failed != 130:
                # Rank 0 aborts the job itself on an error every rank hits; this rank's
                # message matters only if the error is its own.
                time.sleep(self.GRACE)
            self._restore_stderr()
            if self._failed != 130 or self.is_root:
                self._abort(self._failed)
            # Interrupted (Ctrl-C reaches every rank): rank 0 reports it and aborts.
        self._restore_stderr()
        self._waiting = ("the end of the job (MPI_Finalize)", time.monotonic())


@cache
def world() -> Communicator:
    """This process's `Communicator`: `LOCAL`, or its rank in the ``mpiexec`` job.

    MPI is initialised (mpi4py imported) only when an MPI launcher started this process
    as one of several ranks.

    Raises
    ------
    MPIUnavailableError
        Launched with several ranks, but mpi4py is not installed.
    ValueError
        ``BACKPROP_MPI_TIMEOUT`` is not a positive number.
    """
    size = launched_size()
    if size <= 1:
        return LOCAL
    timeout = _timeout()
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise MPIUnavailableError(
            f"launched by mpiexec as one of {size} ranks, but mpi4py cannot be imported "
            f"({exc}); install it with: pip install 'backprop-mlp[mpi]'"
        ) from None
    return _MPI(MPI, timeout)
