"""How the benchmark times: interleaved rounds, paired medians, PyTorch in its own process,
the machine it ran on and how busy that machine was."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _machine import cpu_model

#: The script whose ``--worker KIND THREADS`` runs `contenders.worker_main`.
BENCH_SCRIPT = Path(__file__).resolve().with_name("bench.py")

#: 1-minute load average above which the machine counts as busy: at the start, before the
#: benchmark runs; at the end, on top of the benchmark's own threads.
BUSY_LOAD = 0.5


def median(xs: list[float]) -> float:
    """Median of a non-empty list."""
    return float(np.median(np.asarray(xs, dtype=np.float64)))


def interleave(
    contenders: dict[str, Callable[[], float]], rounds: int, limits: dict[str, int] | None = None
) -> dict[str, list[float]]:
    """Run each contender once per round, rotating the order; return their times.

    ``limits[name]`` caps the rounds of a slow contender (it runs in the first ones).
    """
    names = list(contenders)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        for k in names[r % len(names) :] + names[: r % len(names)]:
            if limits is None or r < limits.get(k, rounds):
                times[k].append(contenders[k]())
    return times


def paired_ratio(times: dict[str, list[float]], num: str, den: str) -> float:
    """Median over rounds of times[num][r] / times[den][r] (rounds both ran)."""
    m = min(len(times[num]), len(times[den]))
    return median([times[num][r] / times[den][r] for r in range(m)])


def timed(f: Callable[[], Any]) -> Callable[[], float]:
    """A callable that runs ``f`` once and returns its seconds."""

    def run() -> float:
        t0 = time.perf_counter()
        f()
        return time.perf_counter() - t0

    return run


class PeerUnavailable(RuntimeError):
    """A peer cannot run here (not installed, no C compiler, ...); the message says why."""


@dataclass
class Runner:
    """A timed runner built in a `Worker`: calling it runs it once and returns its seconds.

    ``first_seconds``: for a compiled peer, its first epoch (the warm-up, which compiles
    the step for every batch shape), excluded from the timed runs; its excess over them is
    the compile time.
    """

    worker: Worker
    key: int
    first_seconds: float | None = None

    def __call__(self) -> float:
        return float(self.worker.call("run", self.key))


class Worker:
    """A peer (PyTorch eager, ``torch.compile``, JAX) in a process of its own, driven line
    by line over a pipe.

    PyTorch's OpenMP threads and NumPy's OpenBLAS threads both spin-wait after parallel
    work; in one process on few cores each then slows the other several-fold, so every
    peer gets its own process and they take turns. ``kind`` is a key of
    `contenders.PEERS`; a peer that cannot start answers every request with the reason,
    raised here as `PeerUnavailable`.
    """

    def __init__(self, kind: str, threads: int) -> None:
        self.kind = kind
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH_SCRIPT), "--worker", kind, str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def call(self, fn: str, *args: Any) -> Any:
        """Run ``fn(*args)`` in the worker and return its JSON answer."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps([fn, args]) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.kind} worker died while running {fn}{args}")
        answer = json.loads(line)
        if isinstance(answer, dict) and "unavailable" in answer:
            raise PeerUnavailable(f"{self.kind}: {answer['unavailable']}")
        return answer

    def runner(self, fn: str, *args: Any) -> Runner:
        """Build a timed runner in the worker (``fn`` answers ``[key, first_seconds]``)."""
        key, first_seconds = self.call(fn, *args)
        return Runner(self, key, first_seconds)

    def close(self) -> None:
        """Stop the worker."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def machine_info(threads: int, worker: Worker, unset_env: str) -> dict[str, Any]:
    """CPU model, cores, library versions, BLAS (threadpoolctl), thread counts, load average.

    ``unset_env``: the variables the benchmark removed from its environment (``K=V,...``).
    """
    import sklearn
    import threadpoolctl

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": threads,
        **worker.call("info"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "blas": threadpoolctl.threadpool_info(),
        "unset_env": unset_env,
        "load_average_start": os.getloadavg(),
    }


def busy_warning(start: float, end: float | None, threads: int) -> str | None:
    """A warning when other work shared the machine, else None.

    ``start``/``end`` are 1-minute load averages; at the end the benchmark's own
    ``threads`` still count in the average, so only load beyond them is other work.
    """
    causes = []
    if start > BUSY_LOAD:
        causes.append(f"load average {start:.2f} at the start")
    if end is not None and end > threads + BUSY_LOAD:
        causes.append(f"{end:.2f} at the end with {threads} benchmark thread(s)")
    if not causes:
        return None
    return (
        "WARNING: the machine was busy (" + "; ".join(causes) + "): absolute figures are "
        "below an idle machine's and ratios move; record tables only from an idle machine"
    )


class Spinner:
    """Another process keeping one core busy (``while True: pass``), as a context manager."""

    def __enter__(self) -> Spinner:
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.3)  # let it start spinning
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)
