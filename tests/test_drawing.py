"""backprop.drawing: a run's plots drawn by worker processes are the plots drawn here."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backprop import drawing, plots
from backprop import run as runs
from backprop.callbacks import EpochLog, History
from backprop.drawing import WORKERS_ENV, Drawer, Plot
from backprop.threads import THREAD_ENV


@pytest.fixture(autouse=True)
def workers_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WORKERS_ENV, raising=False)  # the suite's conftest sets 0
    # A BLAS thread count fixed in the environment (an earlier test's in-process Dask
    # cluster sets them in this process) makes a run count BLAS's threads as its own.
    for name in THREAD_ENV:
        monkeypatch.delenv(name, raising=False)


def warm(drawer: Drawer, n: int) -> list[Any]:
    """Wait until ``drawer`` has launched ``n`` workers and they have warmed up; their
    processes."""
    for _ in range(600):
        if drawer.workers == n:
            break
        time.sleep(0.05)
    workers = drawer._stop_launching()
    assert len(workers) == n
    for w in workers:
        w.wait_ready()
    return [w.proc for w in workers]


def history(epochs: int = 6) -> History:
    h = History()
    for e in range(1, epochs + 1):
        h.append(EpochLog(e, 1.0 / e, 1.2 / e, 0.5 + e / 20, 0.01, 0.1))
    return h


def run_plots(names: tuple[str, ...] = ("zero", "one", "two")) -> list[Plot]:
    """One of each plot a run draws, on small synthetic data."""
    rng = np.random.default_rng(0)
    n, c = 60, len(names)
    y_true = rng.integers(0, c, n)
    y_pred = np.where(rng.random(n) < 0.7, y_true, (y_true + 1) % c)
    X = rng.integers(0, 256, (n, 36)).astype(np.float64)
    rows = np.flatnonzero(y_true != y_pred)[:25]
    return [
        Plot("loss.png", "plot_loss", (history(),), {"best_epoch": 4, "monitor": "val_loss"}),
        Plot("confusion.png", "plot_confusion", (y_true, y_pred, list(names))),
        Plot("weights.png", "plot_first_layer_weights", (rng.normal(size=(36, 10)), (6, 6))),
        Plot(
            "mistakes.png",
            "plot_mistakes",
            (X[rows], y_true, y_pred, list(names), (6, 6)),
            {"rows": rows},
        ),
    ]


def test_workers_draw_the_files_this_process_draws(tmp_path: Path) -> None:
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    todo = run_plots()
    local = Drawer().draw(todo, here)
    with Drawer(workers=2) as drawer:
        warm(drawer, 2)
        remote = drawer.draw(todo, there)
    assert [o.worker for o in local] == [None] * 4
    pids = {o.worker for o in remote}
    assert None not in pids and os.getpid() not in pids  # every plot drawn by a worker
    for a, b in zip(local, remote, strict=True):
        assert a.error is None and b.error is None, (a, b)
        assert a.path is not None and b.path is not None
        assert a.path.read_bytes() == b.path.read_bytes(), a.name
    # Nothing else is left in the directory: no scratch, no temporary file.
    assert sorted(p.name for p in there.iterdir()) == sorted(p.name for p in todo)


def test_a_failing_plot_is_an_outcome_and_the_others_are_drawn(tmp_path: Path) -> None:
    todo = run_plots()
    todo[0] = Plot("loss.png", "plot_loss", (History(),))  # an empty history cannot be drawn
    todo.append(Plot("x.png", "Figure"))  # not a plot function of backprop.plots
    with Drawer(workers=1) as drawer:
        warm(drawer, 1)
        outcomes = drawer.draw(todo, tmp_path)
    assert outcomes[0].path is None and outcomes[0].worker is not None
    assert outcomes[0].error == "history is empty: nothing to plot"
    assert outcomes[-1].error == "backprop.plots has no plot function 'Figure'"
    assert all(o.error is None and o.path is not None for o in outcomes[1:-1])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in todo[1:-1])


def test_a_plots_warnings_come_back_from_a_worker(tmp_path: Path) -> None:
    # A class name with a character the default font lacks: matplotlib warns while drawing.
    todo = [run_plots(("cat", "dog", "\u732b"))[1]]
    here = Drawer().draw(todo, tmp_path)[0]
    (tmp_path / "w").mkdir()
    with Drawer(workers=1) as drawer:
        warm(drawer, 1)
        there = drawer.draw(todo, tmp_path / "w")[0]
    assert there.worker is not None
    assert any("29483" in w and "missing" in w for w in here.warnings), here.warnings
    assert there.warnings == here.warnings


def test_a_dead_worker_leaves_its_plots_to_this_process(tmp_path: Path) -> None:
    drawer = Drawer(workers=1)
    assert drawer.requested == 1
    (proc,) = warm(drawer, 1)
    proc.kill()
    proc.wait()
    outcomes = drawer.draw(run_plots(), tmp_path)
    assert [o.worker for o in outcomes] == [None] * 4
    assert all(o.error is None and o.path is not None and o.path.stat().st_size for o in outcomes)


def test_a_worker_that_cannot_start_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for executable in (str(tmp_path / "no-python"), ""):  # missing; unknown (embedded)
        monkeypatch.setattr(sys, "executable", executable)
        out = tmp_path / ("missing" if executable else "unknown")
        out.mkdir()
        drawer = Drawer(workers=2)
        outcomes = drawer.draw(run_plots(), out)
        assert drawer.workers == 0
        assert [o.error for o in outcomes] == [None] * 4
        assert [o.worker for o in outcomes] == [None] * 4


def test_workers_are_asked_for_only_when_training_leaves_a_core(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cores = len(os.sched_getaffinity(0))
    launched: list[int] = []

    class Counting(Drawer):
        def __init__(self, workers: int = 0) -> None:
            launched.append(workers)
            super().__init__(0)

    monkeypatch.setattr(runs, "Drawer", Counting)
    monkeypatch.setattr(runs, "training_threads", lambda *a: cores)
    runs.plot_drawer([784, 512, 10], 128, None)
    monkeypatch.setattr(runs, "training_threads", lambda *a: cores - 1)
    runs.plot_drawer([64, 32, 10], 32, None)
    assert launched == [0, cores] if cores > 1 else [0, 0]


def test_mistakes_of_the_first_rows_draw_as_the_whole_test_set(tmp_path: Path) -> None:
    # report.py sends a worker only the images the plot shows (`rows`), not the test set.
    rng = np.random.default_rng(1)
    n = 300
    y_true = rng.integers(0, 4, n)
    y_pred = np.where(rng.random(n) < 0.8, y_true, (y_true + 1) % 4)
    X = rng.random((n, 25))
    rows = np.flatnonzero(y_true != y_pred)[:25]
    names = list("abcd")
    whole = plots.plot_mistakes(X, y_true, y_pred, names, (5, 5), tmp_path / "a.png")
    part = plots.plot_mistakes(
        X[rows], y_true, y_pred, names, (5, 5), tmp_path / "b.png", rows=rows
    )
    assert whole.read_bytes() == part.read_bytes()
    with pytest.raises(ValueError, match="do not match with 25 rows"):
        plots.plot_mistakes(X, y_true, y_pred, names, (5, 5), tmp_path / "c.png", rows=rows)


def test_the_worker_loop_replies_in_order(tmp_path: Path) -> None:
    # serve() in this process, over in-memory pipes: READY, then one reply per request.
    import io
    import pickle

    todo = run_plots()[:2]
    requests = io.BytesIO()
    for plot in todo:
        pickle.dump((plot, tmp_path / plot.name), requests)
    requests.seek(0)
    replies = io.BytesIO()
    drawing.serve(requests, replies)
    replies.seek(0)
    assert replies.read(len(drawing.READY)) == drawing.READY
    assert [pickle.load(replies) for _ in todo] == [(None, ()), (None, ())]
    assert (tmp_path / "loss.png").stat().st_size and (tmp_path / "confusion.png").stat().st_size


def test_the_environment_caps_the_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    assert drawing.allowed_workers({}) == drawing.MAX_WORKERS
    assert drawing.allowed_workers({WORKERS_ENV: "1"}) == 1
    assert drawing.allowed_workers({WORKERS_ENV: " 9 "}) == drawing.MAX_WORKERS
    for bad in ("-1", "two", "1.5", "\u00b2"):
        with pytest.raises(ValueError, match=f"{WORKERS_ENV} must be a non-negative integer"):
            drawing.allowed_workers({WORKERS_ENV: bad})
    monkeypatch.setenv(WORKERS_ENV, "0")
    assert Drawer(workers=2).requested == 0


def test_a_run_draws_its_plots_in_workers_as_it_would_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The whole path: train(out=) starts workers beside the training (digits trains on one
    # BLAS thread, so on two cores one is spare) and they draw what this process draws.
    from backprop import TrainConfig, train
    from backprop.data import load_dataset

    seen: list[list[drawing.Outcome]] = []
    real_draw = Drawer.draw

    def spy(self: Drawer, plots: list[Plot], out_dir: Path) -> list[drawing.Outcome]:
        seen.append(real_draw(self, plots, out_dir))
        return seen[-1]

    monkeypatch.setattr(Drawer, "draw", spy)
    ds = load_dataset("digits")
    config = TrainConfig(hidden=[16], epochs=2)
    train(ds, config, out=tmp_path / "workers", progress=False)
    monkeypatch.setenv(WORKERS_ENV, "0")
    train(ds, config, out=tmp_path / "here", progress=False)
    workers, here = seen
    assert [o.name for o in workers] == ["loss.png", "confusion.png", "weights.png", "mistakes.png"]
    assert [o.worker for o in here] == [None] * 4
    if len(os.sched_getaffinity(0)) > 1:
        assert None not in {o.worker for o in workers}
    for name in ("loss.png", "confusion.png", "weights.png", "mistakes.png"):
        a = (tmp_path / "workers" / name).read_bytes()
        assert a == (tmp_path / "here" / name).read_bytes(), name


def test_an_interrupt_while_workers_draw_leaves_nothing_behind(tmp_path: Path) -> None:
    # Ctrl-C while the workers draw: the interrupt reaches the run (the workers ignore
    # it), no file or scratch folder is left, and the workers end on their own.
    import _thread
    import signal
    import threading

    rng = np.random.default_rng(0)
    c = 30  # 900 cells of text: a plot that takes a while to draw
    slow = Plot(
        "confusion.png",
        "plot_confusion",
        (rng.integers(0, c, 5000),) * 2 + ([str(i) for i in range(c)],),
    )
    drawer = Drawer(workers=2)
    procs = warm(drawer, 2)
    for proc in procs:  # the terminal's Ctrl-C reaches the workers too: they stay
        os.kill(proc.pid, signal.SIGINT)
    time.sleep(0.2)
    assert [proc.poll() for proc in procs] == [None, None]
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        drawer.draw([slow] * 4, tmp_path)
        time.sleep(30)  # only if the drawing ended before the interrupt
    timer.cancel()
    assert list(tmp_path.iterdir()) == []
    for proc in procs:
        assert proc.wait(timeout=30) == 0


def test_a_worker_still_warming_up_is_not_waited_for(tmp_path: Path) -> None:
    # The run waits for its plots, not for a second worker that is not ready when the
    # first has drawn them all (a short run ends before its second worker warms up).
    import threading

    drawer = Drawer(workers=2)
    first, _ = warm(drawer, 2)
    never = threading.Event()
    drawer._workers[1].wait_ready = lambda: never.wait(60)  # type: ignore[method-assign]
    t0 = time.monotonic()
    outcomes = drawer.draw(run_plots(), tmp_path)
    waited = time.monotonic() - t0
    never.set()
    assert [o.worker for o in outcomes] == [first.pid] * 4
    assert waited < 30, waited  # not the 60 s the cold worker would have held it
