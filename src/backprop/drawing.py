"""A run's plots, drawn by worker processes that import matplotlib while the run trains.

Importing matplotlib and drawing a first figure (fonts, the mathtext parser) take longer
than a small run trains: on digits they were a third of ``backprop train``'s wall time
(issue 24). When training leaves a core free, `Drawer` launches workers as the run
begins; each imports `backprop.plots` and draws a small figure on that core while the run
trains. `Drawer.draw` then hands them the run's plots, which they draw concurrently.

A worker is a fresh interpreter (``python -c``) that talks over its stdin and stdout with
pickles, never a fork: forking a process whose BLAS threads run is unsafe, and
multiprocessing's spawn would import the user's ``__main__`` script again. Its BLAS is
held to one thread, so that it never spins against the training on another core. A
worker that cannot start or dies leaves its plots to this process, drawn here as without
workers: the files are the same either way. Each file is renamed into place
(`backprop._fileutil.atomic_path`); a plot that fails is reported, not raised.
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from backprop._fileutil import atomic_path
from backprop.checks import whole_number
from backprop.threads import THREAD_ENV

__all__ = [
    "MAX_WORKERS",
    "WORKERS_ENV",
    "Drawer",
    "Outcome",
    "Plot",
    "allowed_workers",
    "draw_plot",
]

#: Most worker processes a run starts: a run draws at most four plots.
MAX_WORKERS = 2

#: Environment variable capping a run's drawing workers; 0 draws in the run's process
#: (for many runs side by side, whose cores are all in use).
WORKERS_ENV = "BACKPROP_PLOT_WORKERS"


def allowed_workers(env: Mapping[str, str] | None = None) -> int:
    """How many drawing workers a run may start: `MAX_WORKERS`, or fewer if the user set
    `WORKERS_ENV`.

    Raises
    ------
    ValueError
        If `WORKERS_ENV` is set to anything but a non-negative integer.
    """
    value = (os.environ if env is None else env).get(WORKERS_ENV, "").strip()
    if not value:
        return MAX_WORKERS
    n = whole_number(value)
    if n is None:
        raise ValueError(f"{WORKERS_ENV} must be a non-negative integer, got {value!r}")
    return min(n, MAX_WORKERS)


@dataclass(frozen=True)
class Plot:
    """One result plot: ``backprop.plots.<function>(*args, path, **kwargs)`` writes it.

    Everything in it is pickled to a worker: pass the arrays the plot needs, not a
    dataset or a model.
    """

    name: str
    function: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What drawing a `Plot` gave: its file, or the one-line reason it was not written;
    the warnings drawing it raised; the process id of the worker that drew it (None:
    this process)."""

    name: str
    path: Path | None
    error: str | None = None
    warnings: tuple[str, ...] = ()
    worker: int | None = None


def draw_plot(plot: Plot, path: Path) -> tuple[str, ...]:
    """Draw ``plot`` into ``path`` in this process; returns the warnings it raised.

    Raises what the plot function raises; ValueError if ``plot.function`` is not one of
    `backprop.plots`' public functions.
    """
    from backprop import plots  # here: matplotlib only in a process that draws

    if plot.function not in plots.__all__:
        raise ValueError(f"backprop.plots has no plot function {plot.function!r}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        getattr(plots, plot.function)(*plot.args, path, **plot.kwargs)
    return tuple(" ".join(str(w.message).split()) for w in caught)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _warm_up() -> None:
    """Import matplotlib and draw what a run's first plot would otherwise pay for: fonts,
    text, a log axis (its mathtext tick labels), an image."""
    import io

    # here: paying these imports beside the training, not in the run, is the worker's use
    from backprop import plots

    fig = plots.Figure(figsize=(2, 2))
    ax = fig.add_subplot()
    ax.plot([1, 2], [1, 100], marker="*", label="warm")
    ax.set_yscale("log")
    ax.imshow([[0.0, 1.0]], extent=(1, 2, 1, 2))
    ax.set_title("warm")
    ax.legend()
    fig.savefig(io.BytesIO(), format="png", dpi=plots.DPI)


#: What a worker writes once it has warmed up, before its first reply.
READY = b"R"


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    """A worker's loop: warm up and write `READY`, then draw each ``(plot, path)`` read
    from ``inp`` and write ``(error, warnings)`` to ``out``, until ``inp`` ends."""
    _warm_up()
    out.write(READY)
    out.flush()
    while True:
        try:
            plot, path = pickle.load(inp)
        except EOFError:
            return
        try:
            reply: tuple[str | None, tuple[str, ...]] = (None, draw_plot(plot, path))
        except Exception as exc:
            reply = (_one_line(exc), ())
        pickle.dump(reply, out)
        out.flush()


def _worker_main() -> None:
    # The run owns Ctrl-C: it ends its workers by closing their stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the replies
    serve(inp, out)


# The worker imports the same backprop as this process (first on its path).
_WORKER_CODE = "import sys; sys.path.insert(0, {root!r}); from backprop import drawing; "
_WORKER_CODE += "drawing._worker_main()"


class _Worker:
    """One worker process and its pipes."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, **{name: "1" for name in THREAD_ENV}}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER_CODE.format(root=root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # a failing worker's plots are drawn here, and fail here
            env=env,
        )
        self._ready = False
        self._ready_lock = threading.Lock()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self) -> None:
        """Block until the worker has warmed up; EOFError if it ended instead. Safe from
        two threads at once (the launcher and a drawing thread): one reads `READY`."""
        assert self.proc.stdout is not None
        with self._ready_lock:
            if not self._ready:
                if self.proc.stdout.read(len(READY)) != READY:
                    raise EOFError("the drawing worker ended before it was ready")
                self._ready = True

    def call(self, plot: Plot, path: Path) -> tuple[str | None, tuple[str, ...]]:
        """Draw one plot; raises OSError or EOFError if the worker is gone."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.wait_ready()
        pickle.dump((plot, path), self.proc.stdin)
        self.proc.stdin.flush()
        error, caught = pickle.load(self.proc.stdout)
        return error, tuple(caught)

    def close(self) -> None:
        """Close its stdin, which ends it; reaped in the background (it takes a while)."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        threading.Thread(target=self._reap, daemon=True).start()

    def _reap(self) -> None:
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# A plot's error (None: drawn), its warnings, and the worker's pid (None: drawn here).
_Reply = tuple[str | None, tuple[str, ...], int | None]


class Drawer:
    """Draws a run's plots: in warmed-up workers where there are any, else here.

    ``Drawer()`` draws everything in this process. ``Drawer(workers=n)`` launches up to n
    (at most `allowed_workers`) worker processes, one at a time: the next once the one before
    has warmed up, so that they share one spare core while the run trains, not the
    training's. A worker that cannot be launched is left out: drawing never depends on
    them. Use it as a context manager, or call `close`, so that the workers end.
    """

    def __init__(self, workers: int = 0) -> None:
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        n = max(0, min(int(workers), allowed_workers()))
        self.requested = n  # workers asked for; `workers` says how many were launched
        self._launching = n > 0
        self._launcher: threading.Thread | None = None
        if n:
            self._launcher = threading.Thread(target=self._launch, args=(n,), daemon=True)
            self._launcher.start()

    def _launch(self, n: int) -> None:
        for _ in range(n):
            with self._lock:
                if not self._launching:
                    return
                try:
                    worker = _Worker()
                except (OSError, ValueError, TypeError):  # no usable sys.executable
                    return
                self._workers.append(worker)
            try:
                worker.wait_ready()
            except (OSError, EOFError):
                return

    def _stop_launching(self) -> list[_Worker]:
        """Launch no more workers; the ones launched so far (a cold one joins the
        drawing once it has warmed up)."""
        with self._lock:
            self._launching = False
            return list(self._workers)

    @property
    def workers(self) -> int:
        """How many worker processes have been launched (0: all is drawn here)."""
        with self._lock:
            return len(self._workers)

    def draw(self, plots: Sequence[Plot], out_dir: Path) -> list[Outcome]:
        """Draw ``plots`` into ``out_dir`` (named by their ``name``), in parallel when
        there are workers; returns one `Outcome` per plot, in order.

        Each file appears whole or not at all. The workers are spent afterwards: a
        drawer draws one run's plots.
        """
        out_dir = Path(out_dir)
        scratch = Path(tempfile.mkdtemp(prefix=".plots-", dir=out_dir))
        try:
            replies = self._draw_all(plots, scratch)
            outcomes = []
            for plot, (error, caught, pid) in zip(plots, replies, strict=True):
                drawn = scratch / plot.name
                if error is None:
                    try:
                        with atomic_path(out_dir / plot.name) as tmp:
                            os.replace(drawn, tmp)
                    except OSError as exc:
                        error = _one_line(exc)
                path = None if error is not None else out_dir / plot.name
                outcomes.append(Outcome(plot.name, path, error, caught, pid))
            return outcomes
        finally:
            self.close()
            shutil.rmtree(scratch, ignore_errors=True)

    def _draw_all(self, plots: Sequence[Plot], scratch: Path) -> list[_Reply]:
        replies: list[_Reply | None] = [None] * len(plots)
        todo = iter(range(len(plots)))  # shared: each worker takes the next plot when free
        workers = self._stop_launching()
        changed = threading.Condition()
        live = len(workers)  # threads that may still answer a plot

        def work(worker: _Worker) -> None:
            nonlocal live
            try:
                worker.wait_ready()
                while True:
                    with changed:
                        i = next(todo, None)
                    if i is None:
                        return
                    reply = (*worker.call(plots[i], scratch / plots[i].name), worker.pid)
                    with changed:
                        replies[i] = reply
                        changed.notify_all()
            except (OSError, EOFError, ValueError, pickle.PickleError):
                # The worker died (what it did not draw is drawn here), or the run was
                # interrupted and closed its pipe (ValueError: write to closed file).
                return
            finally:
                with changed:
                    live -= 1
                    changed.notify_all()

        for w in workers:
            threading.Thread(target=work, args=(w,), daemon=True).start()
        # Until every plot is answered, or no worker is left to answer: a worker still
        # warming up when the others have drawn everything is not waited for.
        with changed:
            changed.wait_for(lambda: live == 0 or all(r is not None for r in replies))
        for i, plot in enumerate(plots):
            if replies[i] is None:
                try:
                    replies[i] = (None, draw_plot(plot, scratch / plot.name), None)
                except Exception as exc:
                    replies[i] = (_one_line(exc), (), None)
        return [r for r in replies if r is not None]

    def close(self) -> None:
        """End the workers (idempotent)."""
        self._stop_launching()
        with self._lock:
            workers, self._workers = self._workers, []
        for w in workers:
            w.close()

    def __enter__(self) -> Drawer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
