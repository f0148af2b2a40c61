"""``backprop train`` after parsing: one run trained into its directory and published.

`train_into` runs the training with a checkpoint in the run directory and publishes the
results there (`backprop.rundir` keeps the directory's rules); the rest describes the run
for ``run.json`` and checks a resume against it. `backprop.cli.train` holds the flags and
decides between a fresh run and a resumed one.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from backprop import __version__, report, rundir
from backprop import run as runs
from backprop.checkpoint import CheckpointError, read_checkpoint_meta
from backprop.cli.common import EXIT_INTERRUPTED, CLIError
from backprop.config import MirrorWarning, TrainConfig, mirror_warning
from backprop.data import NAMED_DATASETS, Dataset
from backprop.data.formats import printable
from backprop.data.rows import Rows, as_rows, memmap_root
from backprop.distributed import MPIUnavailableError, world
from backprop.trainer import TrainingDiverged

# runs.train and report.summary_lines are called through their modules: tests replace
# them there.

__all__ = [
    "check_resume_data",
    "check_resume_files",
    "check_resume_flags",
    "checkpoint_epoch",
    "data_spec",
    "dataset_summary",
    "file_change",
    "kept",
    "mapped_files",
    "mapped_files_entry",
    "new_run_record",
    "train_into",
    "world_or_error",
]


def world_or_error() -> Any:
    """This process's `backprop.distributed` communicator (one process outside mpiexec)."""
    try:
        return world()
    except MPIUnavailableError as exc:
        raise CLIError(str(exc)) from None


def train_into(
    out: Path, ds: Dataset, config: TrainConfig, args: argparse.Namespace, *, resume: bool
) -> int:
    """Train with a checkpoint in ``out`` and publish the results there when finished.

    Interrupted (KeyboardInterrupt: Ctrl-C or SIGTERM) once a checkpoint exists: keep it
    and ``run.json``, print the resume command, exit 130. Publishing the results and
    deleting the checkpoint happen with interrupts held (`rundir.interrupts_deferred`), so
    an interrupt finds either an unfinished run that ``--resume`` finishes or a finished
    one, and says which. Any other failure after the first checkpoint (a full disk, data
    changed under the run) keeps the checkpoint and ``run.json`` and says how to resume;
    a fresh run that fails before it, or diverges, removes what it wrote; a resumed run's
    checkpoint is never deleted by a failure.
    """
    ck_path = out / rundir.CHECKPOINT_FILE
    if not world_or_error().is_root:  # another rank's share: rank 0 prints and writes
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MirrorWarning)
            runs.train(
                ds,
                config,
                progress=False,
                checkpoint=ck_path,
                resume=resume,
                threads=getattr(args, "threads", None),
            )
        return 0
    # Said before the minutes of training, not after them (and so not again below).
    if (mirrored := mirror_warning(ds, config)) is not None:
        print(printable(f"backprop train: warning: {mirrored}"), file=sys.stderr)
    try:
        with warnings.catch_warnings(record=True) as skipped:
            warnings.simplefilter("always", report.ResultWarning)
            warnings.simplefilter("ignore", MirrorWarning)
            # The library trains and publishes the results (`backprop.run.publish_results`:
            # staged, then renamed into out with interrupts held, metrics.json last).
            runs.train(
                ds,
                config,
                progress=False if args.quiet else None,
                checkpoint=ck_path,
                resume=resume,
                out=out,
                threads=getattr(args, "threads", None),
            )
        for w in skipped:  # after training, in `backprop.cli.app.main`'s one-line form
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        lines = report.summary_lines(out)
        # --quiet hides the progress and the scores, never where the results went.
        print("\n".join(lines[-1:] if args.quiet else lines))
    except KeyboardInterrupt:
        if (out / rundir.METRICS_FILE).exists():  # published: the run is finished
            print(
                f"backprop train: interrupted after the run finished; its results are "
                f"complete in {out}/",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
        epoch = checkpoint_epoch(ck_path)
        if epoch is None:  # interrupted in the first epoch: nothing worth keeping
            if not resume:
                rundir.remove_run_files(out)
            raise
        print(f"backprop train: interrupted; {kept(out, epoch, args)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BaseException as exc:
        if (out / rundir.METRICS_FILE).exists():
            raise
        epoch = checkpoint_epoch(ck_path)
        # A failure after a checkpoint (a full disk, data changed under the run) keeps it:
        # the user resumes once the cause is fixed. A divergence would diverge again from
        # it, a checkpoint that failed to restore cannot be resumed, and the first epoch
        # leaves nothing worth keeping: a fresh run is undone (a resumed one keeps its own).
        if epoch is None or isinstance(exc, TrainingDiverged | CheckpointError):
            if not resume:
                rundir.remove_run_files(out)
        else:
            print(f"backprop train: failed; {kept(out, epoch, args)}", file=sys.stderr)
        raise
    return 0


def kept(out: Path, epoch: int, args: argparse.Namespace) -> str:
    """What an unfinished run left in ``out`` and the command that resumes it."""
    return (
        f"the checkpoint after epoch {epoch} is in {out}/; "
        f"resume with: {args.invoked_as} train --resume {shlex.quote(str(out))}"
    )
    return 0


def checkpoint_epoch(path: Path) -> int | None:
    """The epoch a checkpoint file was saved after; None if there is no readable one."""
    try:
        epoch = read_checkpoint_meta(path).get("epoch")
    except CheckpointError:
        return None
    return epoch if isinstance(epoch, int) else None


def data_spec(text: str | None) -> str | None:
    """--data/--data-dir as recorded: a dataset name as is, a path made absolute (so that
    --resume works from any working directory)."""
    if text is None or text in NAMED_DATASETS:
        return text
    return str(Path(text).absolute())


def dataset_summary(ds: Dataset) -> dict[str, Any]:
    """What identifies the data of a run: sizes, and a hash of every array's bytes."""
    h = hashlib.blake2b(digest_size=16)
    for A in (ds.X_train, ds.y_train, ds.X_test, ds.y_test):
        h.update(f"{A.dtype.str}{A.shape}".encode())
        if A.ndim != 2:
            h.update(np.ascontiguousarray(A).data)
            continue
        # Chunk by chunk: the same bytes in the same order, without a copy of a
        # memory-mapped file (`Rows`) in memory.
        for _, chunk in as_rows(A).chunks():
            h.update(np.ascontiguousarray(chunk).data)
    return {
        "name": ds.name,
        "task": ds.task,
        "n_train": len(ds.X_train),
        "n_test": len(ds.X_test),
        "n_features": ds.n_features,
        "n_classes": ds.n_classes,
        "blake2b": h.hexdigest(),
        "files": mapped_files(ds),
    }


def mapped_files(ds: Dataset) -> dict[str, dict[str, Any]]:
    """The files a run reads while it trains (memory-mapped ``.npy``/``.npz``): path ->
    size, modification time and, for ``.npy``, the header (dtype, order, shape)."""
    files: dict[str, dict[str, Any]] = {}
    for A in (ds.X_train, ds.y_train, ds.X_test, ds.y_test):
        root = memmap_root(A.base if isinstance(A, Rows) else A)
        if root is None or str(root.filename) in files:
            continue
        path = str(root.filename)
        files[path] = mapped_files_entry(path, root.offset if path.endswith(".npy") else 0)
    return files


def mapped_files_entry(path: str, header_bytes: int) -> dict[str, Any]:
    """One file of `mapped_files`: its size, modification time and first ``header_bytes``
    bytes (a ``.npy`` header) as text."""
    st = os.stat(path)
    entry: dict[str, Any] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if header_bytes:
        with open(path, "rb") as f:
            entry["header"] = f.read(header_bytes).decode("latin-1")
    return entry


def new_run_record(args: argparse.Namespace, config: TrainConfig, ds: Dataset) -> dict[str, Any]:
    """``run.json`` for a fresh run from its flags (`rundir.run_record`)."""
    data = data_spec(args.data)
    assert data is not None  # --data has a default
    record = rundir.run_record(
        data=data,
        data_dir=data_spec(args.data_dir),
        task=args.task,
        target=args.target,
        config=config.to_dict(),
        dataset=dataset_summary(ds),
        backprop_version=__version__,
    )
    return {**record, "drop": list(args.drop)}  # issue 28: --drop, replayed by --resume


def check_resume_data(ds: Dataset, record: dict[str, Any], where: str) -> None:
    """Refuse to resume on data other than the run started with (``run.json``'s hash)."""
    now, was = dataset_summary(ds), record["dataset"]
    # The contents decide (the hash); the files' sizes, times and headers say which file
    # changed. A file only touched (same bytes) resumes; a record without "files" (an
    # older run.json) is compared on the rest.
    if any(now[k] != was.get(k) for k in now if k != "files"):
        diff = [
            f"{k} {was.get(k)!r} -> {now[k]!r}"
            for k in now
            if k != "files" and now[k] != was.get(k)
        ]
        old_files = was.get("files") if isinstance(was.get("files"), dict) else {}
        diff += [
            file_change(p, old_files[p], v, ("size", "mtime_ns", "header"))
            for p, v in now["files"].items()
            if isinstance(old_files.get(p), dict) and old_files[p] != v
        ]
        raise CLIError(f"{where}: the data changed since the run started ({', '.join(diff)})")


def check_resume_files(record: dict[str, Any], where: str) -> None:
    """Refuse to resume when a file the run read has another size or ``.npy`` header
    than ``run.json`` records (before loading it: a file cut short may not load at all).
    A new modification time alone is left to the contents' hash (`check_resume_data`)."""
    files = record["dataset"].get("files")
    for path, was in files.items() if isinstance(files, dict) else ():
        if not isinstance(was, dict):
            continue
        try:
            now = mapped_files_entry(path, len(was.get("header", "")))
        except OSError as exc:
            raise CLIError(
                f"{where}: the data changed since the run started ({path}: {exc.strerror})"
            ) from None
        if any(k in was and now.get(k) != was[k] for k in ("size", "header")):
            change = file_change(path, was, now, ("size", "header"))
            raise CLIError(f"{where}: the data changed since the run started ({change})")


def file_change(path: str, was: dict[str, Any], now: dict[str, Any], keys: Sequence[str]) -> str:
    """``path: size 1000 -> 500`` for the ``keys`` of a `mapped_files` entry that differ."""
    diff = [f"{k} {was[k]!r} -> {now.get(k)!r}" for k in keys if k in was and now.get(k) != was[k]]
    return f"{path}: {', '.join(diff)}"


def check_resume_flags(
    given: dict[str, Any], record: dict[str, Any], config: TrainConfig, where: str
) -> None:
    """Rule: with --resume, a data or training flag may only repeat the recorded value.

    ``given`` holds the flags typed (`backprop.cli.train.given_train_flags`).
    """
    recorded = {
        **config.to_dict(),
        **{k: record[k] for k in ("data", "data_dir", "task", "target")},
        "drop": record.get("drop", []),
    }
    conflicts = []
    for name, value in sorted(given.items()):
        if name in ("data", "data_dir"):
            value = data_spec(value)
        elif name == "hidden":
            value = list(value)
        elif name == "patience" and value == 0:
            value = None
        if value != recorded.get(name):
            flag = "--" + name.replace("_", "-")
            was = recorded.get(name)
            if was is None:  # the flag's own spelling of "not set"
                was = {"epochs": "auto", "patience": 0}.get(name, "not given")
            conflicts.append(f"{flag} {value} (recorded: {was})")
    if conflicts:
        raise CLIError(
            f"{where}: {'; '.join(conflicts)} conflicts with the recorded run; leave the "
            "flag out to resume, or start a new run with another --out"
        )
