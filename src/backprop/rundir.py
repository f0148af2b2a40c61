"""Run directories: where a training run keeps its checkpoint and publishes its results.

The rules, for the CLI's ``train --out DIR`` and for any caller of the Python API (see
docs/cli.md, "The results directory: never half written"):

- a directory with ``metrics.json`` holds a finished run; one with
  ``checkpoint.safetensors`` and no ``metrics.json`` an interrupted one, which
  ``run.json`` (`run_record`) describes well enough to resume it;
- a run claims its directory before any work (`claim_out_dir`): created if missing,
  refused if not empty (unless forced), and locked (`lock_dir`) while the run lasts, so two
  runs never share one directory;
- results are built in a staging directory beside it (`staging_dir`) and moved in one
  atomic rename at a time, ``metrics.json`` last (`publish`, `finish_run`), with Ctrl-C
  and SIGTERM held meanwhile (`interrupts_deferred`); SIGTERM otherwise acts like Ctrl-C
  (`sigterm_as_interrupt`), so a stopped job keeps its last checkpoint.

Every function takes plain arguments (paths, strings, dicts). A directory that cannot be
used raises `RunDirError`, a ValueError whose message names the directory or file.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from backprop._fileutil import atomic_write_bytes, fsync_dir, temp_name

if sys.platform != "win32":
    import fcntl

__all__ = [
    "CHECKPOINT_FILE",
    "METRICS_FILE",
    "RUN_FILE",
    "RUN_FORMAT",
    "RUN_VERSION",
    "RunDirError",
    "check_resumable",
    "claim_out_dir",
    "finish_run",
    "interrupts_deferred",
    "lock_dir",
    "locked",
    "new_stamped_dir",
    "publish",
    "read_run_record",
    "remove_partial_saves",
    "remove_run_files",
    "run_record",
    "sigterm_as_interrupt",
    "staging_dir",
    "start_run",
]

#: Its presence marks a finished run: published last (`publish`).
METRICS_FILE = "metrics.json"
#: What an unfinished run keeps in its directory (and a finished one deletes).
CHECKPOINT_FILE = "checkpoint.safetensors"
RUN_FILE = "run.json"
RUN_FORMAT = "backprop-run"
RUN_VERSION = 1


class RunDirError(ValueError):
    """A run directory that cannot be used: taken, not empty, or not resumable."""


# --------------------------------------------------------------------- claiming


def lock_dir(path: Path, where: str) -> int:
    """Create ``path`` if needed and hold an exclusive lock on it; returns the descriptor.

    The lock (``flock`` on the directory itself, so no lock file is ever left behind) is
    released when the descriptor is closed or the process ends, even by SIGKILL, so a
    killed run never blocks the next one. A directory removed by its previous holder
    between our ``open`` and our lock is not the path any more: opened again.

    Raises
    ------
    RunDirError
        If another process holds the lock; the message starts with ``where``.
    """
    while True:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDONLY)
        try:
            if sys.platform != "win32":  # Windows has no flock: there only mkdir is exclusive
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except BlockingIOError:
            os.close(fd)
            raise RunDirError(
                f"{where}: another backprop train is running in this directory; wait for it "
                "to finish or choose another directory"
            ) from None
        except FileNotFoundError:
            same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            return fd
        os.close(fd)


@contextlib.contextmanager
def locked(path: Path, where: str) -> Iterator[None]:
    """Hold ``path``'s lock (`lock_dir`) while the block runs (a resumed run)."""
    fd = lock_dir(path, where)
    try:
        yield
    finally:
        os.close(fd)


def new_stamped_dir(runs: Path = Path("runs")) -> tuple[Path, list[Path]]:
    """Create ``runs/<YYYYmmdd-HHMMSS>`` (``-2``, ``-3``... when taken) exclusively.

    ``mkdir`` fails if the name exists, so two runs started in the same second get two
    directories. Returns the directory and the directories created, deepest first.
    """
    created = [] if runs.exists() else [runs.absolute()]
    runs.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in itertools.count(1):
        path = runs / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path, [path.absolute(), *created]
    raise AssertionError("unreachable")  # pragma: no cover


@contextlib.contextmanager
def claim_out_dir(out: str | Path | None, force: bool) -> Iterator[Path]:
    """Claim the results directory for a run, before any work is done.

    Rule: ``out`` may be missing (created) or an empty directory; a non-empty directory
    is refused unless ``force``, with which the caller replaces its run's files
    (`start_run`) and leaves any other file alone. With ``out=None``, a new
    ``runs/<stamp>`` is created. The directory stays locked (`lock_dir`) while the block
    runs and the emptiness check is made under the lock, so two runs racing for one
    directory never both pass it: the second is refused in one line. If the block fails,
    the directories this claim created are removed again when empty (still under the lock,
    so never one that another run has just claimed).

    Raises
    ------
    RunDirError
        If ``out`` is a file, is locked by another run, or is not empty without ``force``.
    """
    if out is None:
        path, created = new_stamped_dir()
    else:
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise RunDirError(f"--out {path}: exists and is not a directory")
        created = [p for p in (path.absolute(), *path.absolute().parents) if not p.exists()]
    fd = lock_dir(path, f"--out {path}")
    try:
        if not force and any(path.iterdir()):
            raise RunDirError(
                f"--out {path}: directory exists and is not empty; choose a new --out or "
                "pass --force to replace the results in it"
            )
        yield path
    except BaseException:
        for directory in created:  # deepest first; only if still empty
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    finally:
        os.close(fd)


def start_run(out: Path, record: dict[str, Any], result_files: Iterable[str]) -> None:
    """Clear an earlier run's files from ``out`` and write this run's ``run.json``.

    ``result_files`` names every file a finished run may hold (``report.RESULT_FILES``):
    they go now, with any checkpoint and run record, so ``out`` never mixes two runs. On
    failure nothing of this run is left (`remove_run_files`).
    """
    try:
        for name in (*result_files, CHECKPOINT_FILE, RUN_FILE):
            (out / name).unlink(missing_ok=True)
        atomic_write_bytes(out / RUN_FILE, (json.dumps(record, indent=2) + "\n").encode())
    except BaseException:
        remove_run_files(out)
        raise


def remove_partial_saves(path: Path) -> None:
    """Delete the temporary files a process killed while saving ``path`` left beside it."""
    for stray in path.parent.glob(temp_name(path)):
        stray.unlink(missing_ok=True)


def remove_run_files(out: Path) -> None:
    """Undo a fresh run: its checkpoint, run record and their temporary files (the
    directories created for it go with the claim, `claim_out_dir`)."""
    for name in (CHECKPOINT_FILE, RUN_FILE):
        (out / name).unlink(missing_ok=True)
        remove_partial_saves(out / name)


# ------------------------------------------------------------------- publishing


@contextlib.contextmanager
def staging_dir(out: Path) -> Iterator[Path]:
    """A temporary directory beside ``out`` for the results, removed when the block ends.

    The block moves the finished files into ``out`` with `finish_run`; if it fails or is
    interrupted first, the temporary directory and whatever it holds are deleted and
    ``out`` is untouched: no half-written results.
    """
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def publish(tmp: Path, out: Path, result_files: Iterable[str]) -> None:
    """Move the finished results from ``tmp`` into ``out``, each move an atomic rename.

    Files of an earlier run (named in ``result_files``) that this run does not write are
    removed first, so ``out`` never mixes two runs.
    """
    written = {p.name for p in tmp.iterdir()}
    for name in result_files:
        if name not in written:
            (out / name).unlink(missing_ok=True)
    # metrics.json last: its presence is what marks a finished run, so a process killed
    # half way through these renames never looks finished.
    for name in sorted(written, key=lambda n: (n == METRICS_FILE, n)):
        os.replace(tmp / name, out / name)
    fsync_dir(out)


def finish_run(tmp: Path, out: Path, result_files: Iterable[str]) -> None:
    """`publish` the results, then delete the checkpoint and ``run.json``, done with.

    Call it inside `interrupts_deferred`, so an interrupt finds either an unfinished run
    that can be resumed or a finished one, never something between.
    """
    publish(tmp, out, result_files)  # metrics.json last: from here the run is finished
    (out / CHECKPOINT_FILE).unlink(missing_ok=True)
    (out / RUN_FILE).unlink(missing_ok=True)


# ---------------------------------------------------------------------- signals


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block has finished, then raise KeyboardInterrupt.

    For the few renames that turn a checkpointed run into a finished one: cut in the
    middle, the directory would hold neither a finished run nor a resumable one that the
    message could describe truthfully. In another thread the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: object) -> None:
        caught.append(signum)

    old = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
    if caught:
        raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt in the main thread while the block runs.

    So ``kill PID`` (or a job scheduler's stop) ends a training run exactly like Ctrl-C:
    after the last finished epoch's checkpoint. The previous handler is restored
    afterwards; in another thread (where Python cannot set handlers) the block runs
    unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        # None: a handler installed outside Python, which cannot be put back; the default.
        signal.signal(signal.SIGTERM, signal.SIG_DFL if old is None else old)


# -------------------------------------------------------------------- resuming


def run_record(
    *,
    data: str,
    data_dir: str | None,
    task: str | None,
    target: str | None,
    config: dict[str, Any],
    dataset: dict[str, Any],
    backprop_version: str,
) -> dict[str, Any]:
    """The contents of ``run.json``: everything a resume needs that the checkpoint lacks.

    ``data`` and ``data_dir`` as given to ``load_dataset`` (a file's path absolute, so the
    run resumes from any working directory), ``config`` as ``TrainConfig.to_dict()``,
    ``dataset`` what identifies the data (sizes and a hash) to detect a changed file.
    """
    return {
        "format": RUN_FORMAT,
        "version": RUN_VERSION,
        "backprop_version": backprop_version,
        "data": data,
        "data_dir": data_dir,
        "task": task,
        "target": target,
        "config": config,
        "dataset": dataset,
    }


def read_run_record(path: Path) -> dict[str, Any]:
    """``run.json``, checked; every problem is a RunDirError naming the file."""
    if not path.is_file():
        raise RunDirError(f"{path}: missing; without it the run's data is unknown, cannot resume")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(record, dict) or record.get("format") != RUN_FORMAT:
        raise RunDirError(f"{path}: not a backprop run record")
    if record.get("version") != RUN_VERSION:
        raise RunDirError(f"{path}: run record version {record.get('version')!r} is not supported")
    bad = [k for k, ok in _RUN_FIELDS.items() if k not in record or not ok(record[k])]
    if bad:
        raise RunDirError(f"{path}: incomplete run record (missing or bad: {', '.join(bad)})")
    return record


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _is_str_or_none(value: object) -> bool:
    return value is None or isinstance(value, str)


# Each field of run.json and what it must be for a resume to use it.
_RUN_FIELDS: dict[str, Callable[[Any], bool]] = {
    "data": _is_str,
    "data_dir": _is_str_or_none,
    "task": lambda v: v in (None, "classification", "regression"),
    "target": _is_str_or_none,
    "config": lambda v: isinstance(v, dict),
    "dataset": lambda v: isinstance(v, dict),
}


def check_resumable(out: Path, where: str) -> dict[str, Any]:
    """Check that ``out`` holds an interrupted run; returns its checked ``run.json``.

    Hold the directory's lock (`locked`) around this and the resumed run. Messages start
    with ``where``.

    Raises
    ------
    RunDirError
        If ``out`` holds a finished run, no checkpoint, or no usable run record.
    """
    if (out / METRICS_FILE).exists():
        raise RunDirError(f"{where}: holds a finished run ({METRICS_FILE}); nothing to resume")
    if not (out / CHECKPOINT_FILE).is_file():
        raise RunDirError(
            f"{where}: no {CHECKPOINT_FILE} there, nothing to resume (a run leaves one when "
            "it is interrupted after its first epoch)"
        )
    return read_run_record(out / RUN_FILE)
