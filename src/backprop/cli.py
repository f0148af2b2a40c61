"""The ``backprop`` command line.

Subcommands:

- ``backprop train``: train a network on a dataset; write the model, metrics, history
  and plots into one results directory.
- ``backprop evaluate MODEL --data ...``: a saved model's accuracy/loss or RMSE on a
  dataset's test split.
- ``backprop predict MODEL INPUT``: predictions for a CSV, NPY or IDX file.
- ``backprop info MODEL``: what a model file holds.
- ``backprop gradcheck``: the finite-difference table for the notes' forms and the engine.

Every user mistake (bad flag value, missing or malformed file, wrong input width) ends in
one line ``backprop <command>: error: ...`` on stderr and exit status 2, never a
traceback; a diverged training run ends in one line naming the learning rate and exit
status 1; Ctrl-C or SIGTERM in exit status 130. Nothing half-written is left behind: files
are written to a temporary name and renamed into place, and ``train`` builds its results in
a temporary directory whose files only move into ``--out`` once everything is written.

``train`` also keeps a checkpoint (``checkpoint.safetensors``) and a record of what it was
asked to do (``run.json``) in ``--out`` while it runs, both replaced atomically after every
epoch. Interrupted (Ctrl-C, SIGTERM, or even SIGKILL) after its first epoch, a run leaves
just those two files, and ``backprop train --resume DIR`` finishes it bit for bit as if it
had never stopped; a finished run deletes them. The rule, documented in docs/cli.md: a
directory with ``metrics.json`` holds a finished run; one with ``checkpoint.safetensors``
and no ``metrics.json`` an interrupted one.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import itertools
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from backprop import __version__, report
from backprop._fileutil import atomic_path, atomic_write_bytes, fsync_dir, temp_name
from backprop.checks import OptionError, check_choice, check_fraction, check_int, check_real
from backprop.data.formats import printable

if sys.platform != "win32":
    import fcntl
if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    from backprop.data import Dataset
    from backprop.io import Model

__all__ = [
    "build_parser",
    "fraction",
    "main",
    "nonnegative_float",
    "nonnegative_int",
    "positive_float",
    "positive_int",
]

EXIT_USAGE = 2  # what argparse itself uses for a bad flag
EXIT_FAILED = 1  # a run that failed on its own (divergence, a failing check)
EXIT_INTERRUPTED = 130  # the shell's convention for SIGINT (128 + 2)

# Every file `train` may write (`backprop.report` writes them); with --force, those of an
# earlier run that this run does not write (e.g. confusion.png after switching to
# regression) are removed so that a results directory never mixes two runs.
RESULT_FILES = report.RESULT_FILES
# What an unfinished run keeps in --out (and a finished one deletes): see _cmd_train.
CHECKPOINT_FILE = "checkpoint.safetensors"
RUN_FILE = "run.json"
RUN_FORMAT = "backprop-run"
RUN_VERSION = 1


class CLIError(Exception):
    """A user's mistake: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse's parser, but a usage error is one line: ``backprop train: error: --lr:
    must be a finite number > 0, got '-1'``, without the usage block argparse prints first
    (13 lines for ``train``, in which the error is easy to miss)."""

    def error(self, message: str) -> NoReturn:
        message = message.removeprefix("argument ")
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" after each flag's help, except where there is nothing to show
    (switches, and defaults of None whose help text says what happens instead)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


# ----------------------------------------------------------------------- flag types
# argparse calls these on the flag's text: they parse it and hand the number to the
# library's own check (`backprop.checks`), so a flag and the option it sets obey the same
# rule. An ArgumentTypeError becomes argparse's usage error ("argument --lr: must be a
# finite number > 0, got '-1'") and exit status 2.


def _number(text: str, kind: type[int] | type[float], check: Callable[[str, Any], Any]) -> Any:
    """Parse ``text`` as ``kind`` and return ``check(name, value)``'s result.

    Raises
    ------
    argparse.ArgumentTypeError
        If the text is not a number of that kind or the check refuses it; the message says
        what is allowed and shows the text as typed.
    """
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be {'an integer' if kind is int else 'a number'}, got {text!r}"
        ) from None
    try:
        return check("value", value)
    except OptionError as exc:
        raise argparse.ArgumentTypeError(f"must be {exc.requirement}, got {text!r}") from None


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return int(_number(text, int, partial(check_int, low=1)))


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return int(_number(text, int, partial(check_int, low=0)))


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    return float(_number(text, float, partial(check_real, low=0, low_open=True)))


def nonnegative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    return float(_number(text, float, partial(check_real, low=0)))


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1) (a share held out, a momentum)."""
    return float(_number(text, float, check_fraction))


#: ``train --recipe list`` (or ``--recipe`` alone) prints the recipes instead of training.
RECIPE_LIST = "list"


def recipe_name(text: str) -> str:
    """argparse type: a recipe of `backprop.recipes.RECIPES`, or ``list``."""
    from backprop.recipes import RECIPES

    try:
        return check_choice("recipe", text, [*RECIPES, RECIPE_LIST])
    except OptionError as exc:
        raise argparse.ArgumentTypeError(f"must be {exc.requirement}, got {text!r}") from None


# -------------------------------------------------------------------- atomic files


@contextlib.contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path next to ``path`` that is renamed onto it if the block succeeds.

    On any failure (including Ctrl-C) the temporary file is removed and ``path`` is left
    as it was: never a half-written file under the final name.
    """
    if path.is_dir():
        raise CLIError(f"{path}: is a directory, not a file name")
    if not path.parent.is_dir():
        raise CLIError(f"{path}: directory {path.parent} does not exist")
    with atomic_path(path) as tmp:
        yield tmp


def _write_text(path: Path, text: str) -> None:
    with _atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _lock_dir(path: Path, where: str) -> int:
    """Create ``path`` if needed and hold an exclusive lock on it; returns the descriptor.

    The lock (``flock`` on the directory itself, so no lock file is ever left behind) is
    released when the descriptor is closed or the process ends, even by SIGKILL, so a
    killed run never blocks the next one. A directory removed by its previous holder
    between our ``open`` and our lock is not the path any more: opened again.

    Raises
    ------
    CLIError
        If another process holds the lock (another ``backprop train`` in that directory).
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
            raise CLIError(
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


def _new_stamped_dir() -> tuple[Path, list[Path]]:
    """Create ``runs/<YYYYmmdd-HHMMSS>`` (``-2``, ``-3``... when taken) exclusively.

    ``mkdir`` fails if the name exists, so two runs started in the same second get two
    directories. Returns the directory and the directories created, deepest first.
    """
    runs = Path("runs")
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
def _claim_out_dir(out: str | None, force: bool) -> Iterator[Path]:
    """Claim the results directory for this run, before any work is done.

    Rule: ``--out`` may be missing (created) or an empty directory; a non-empty directory
    is refused unless ``--force``, which replaces the files ``train`` writes there and
    leaves any other file alone. Without ``--out``, a new ``runs/<stamp>`` is created.
    The directory stays locked (`_lock_dir`) while the block runs and the emptiness
    check is made under the lock, so two runs racing for one directory never both pass
    it: the second is refused in one line. If the block fails, the directories this
    claim created are removed again when empty (still under the lock, so never one that
    another run has just claimed).
    """
    if out is None:
        path, created = _new_stamped_dir()
    else:
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise CLIError(f"--out {path}: exists and is not a directory")
        created = [p for p in (path.absolute(), *path.absolute().parents) if not p.exists()]
    fd = _lock_dir(path, f"--out {path}")
    try:
        if not force and any(path.iterdir()):
            raise CLIError(
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


@contextlib.contextmanager
def _locked(path: Path, where: str) -> Iterator[None]:
    """Hold ``path``'s lock (`_lock_dir`) while the block runs (``train --resume``)."""
    fd = _lock_dir(path, where)
    try:
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _staging_dir(out: Path) -> Iterator[Path]:
    """A temporary directory beside ``out`` for the results, removed when the block ends.

    The block moves the finished files into ``out`` with `_publish`; if it fails or is
    interrupted first, the temporary directory and whatever it holds are deleted and
    ``out`` is untouched: no half-written results.
    """
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _publish(tmp: Path, out: Path) -> None:
    """Move the finished results from ``tmp`` into ``out``, each move an atomic rename.

    Files of an earlier run (``--force``) that this run does not write are removed first,
    so ``out`` never mixes two runs.
    """
    written = {p.name for p in tmp.iterdir()}
    for name in RESULT_FILES:
        if name not in written:
            (out / name).unlink(missing_ok=True)
    # metrics.json last: its presence is what marks a finished run (see _cmd_train), so a
    # process killed half way through these renames never looks finished.
    for name in sorted(written, key=lambda n: (n == "metrics.json", n)):
        os.replace(tmp / name, out / name)
    fsync_dir(out)


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
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


# -------------------------------------------------------------------------- train


def _config_defaults() -> dict[str, Any]:
    """TrainConfig's defaults: the one source of truth for the flags' defaults."""
    import dataclasses

    from backprop.config import TrainConfig

    return {f.name: getattr(TrainConfig(), f.name) for f in dataclasses.fields(TrainConfig)}


def _train_flags() -> list[tuple[str, dict[str, Any], str]]:
    """(flag, argparse keyword arguments, help) of each TrainConfig field's flag."""
    from backprop.config import AUTO_EPOCHS, AUTO_MIN_STEPS, DTYPES, KEEP
    from backprop.layers import ACTIVATIONS
    from backprop.optim import OPTIMIZERS, SCHEDULES

    def num(kind: Callable[[str], Any], metavar: str) -> dict[str, Any]:
        return {"type": kind, "metavar": metavar}

    hidden = {"type": positive_int, "nargs": "+", "metavar": "WIDTH"}
    return [
        ("--hidden", hidden, "hidden layer widths, e.g. --hidden 256 128 for two layers"),
        ("--activation", {"choices": sorted(ACTIVATIONS)}, "activation of the hidden layers"),
        (
            "--epochs",
            num(positive_int, "N"),
            f"passes over the training data, at most (default: auto: {AUTO_EPOCHS}, or more on "
            f"a small dataset so that training makes at least {AUTO_MIN_STEPS} updates)",
        ),
        ("--batch-size", num(positive_int, "B"), "examples per update"),
        ("--optimizer", {"choices": OPTIMIZERS}, "update rule"),
        ("--lr", num(positive_float, "LR"), "learning rate (the peak of the schedule)"),
        ("--momentum", num(fraction, "M"), "momentum of the momentum and nesterov optimizers"),
        ("--weight-decay", num(nonnegative_float, "WD"), "L2 weight decay (decoupled for adamw)"),
        ("--schedule", {"choices": SCHEDULES}, "learning-rate schedule over the whole run"),
        (
            "--val-fraction",
            num(fraction, "F"),
            "share of the training data held out for validation (0: none)",
        ),
        (
            "--patience",
            num(nonnegative_int, "P"),
            "early stopping: stop after P epochs without a lower validation loss and keep the "
            "best weights (0: train every epoch)",
        ),
        ("--seed", num(nonnegative_int, "S"), "seed of the test split, weights and shuffling"),
        ("--dtype", {"choices": DTYPES}, "floating-point type of parameters and arithmetic"),
        (
            "--keep",
            {"choices": KEEP},
            "weights the model ends with: those of the best epoch (lowest validation loss) "
            "or of the last one",
        ),
        ("--dropout", num(fraction, "P"), "drop probability of each hidden unit in training"),
        ("--input-dropout", num(fraction, "P"), "drop probability of each input in training"),
        (
            "--max-norm",
            num(positive_float, "C"),
            "after each step, rescale each hidden unit's incoming weights to norm <= C "
            "(default: none)",
        ),
        (
            "--label-smoothing",
            num(fraction, "E"),
            "train the cross-entropy against (1 - E) onehot(y) + E / classes",
        ),
        (
            "--augment",
            {"metavar": "SPEC"},
            "image data: warp each training batch afresh, e.g. "
            "shift=2,rotate=10,scale=0.1,elastic=2,sigma=4 (pixels, degrees, fraction; "
            "default: none)",
        ),
    ]


def _add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a network and save the model, metrics, history and plots",
        description="Train a multi-layer perceptron by backpropagation on a named dataset "
        "or a data file, then evaluate it on the test split and write model.safetensors, "
        "metrics.json, history.csv and plots (loss.png; confusion.png for classification; "
        "weights.png and mistakes.png for image data) into the --out directory. The "
        "defaults are a tested recipe.",
        formatter_class=_HelpFormatter,
    )
    _add_data_flags(p, default_data="digits")
    defaults = _config_defaults()
    for flag, kwargs, help_text in _train_flags():
        name = flag[2:].replace("-", "_")
        default = defaults[name]
        if name == "hidden":
            default = list(default)
        elif name == "patience" and default is None:
            default = 0  # the flag's spelling of "no early stopping"
        p.add_argument(flag, dest=name, default=default, help=help_text, **kwargs)
    p.add_argument(
        "--recipe",
        nargs="?",
        const=RECIPE_LIST,
        type=recipe_name,
        metavar="NAME",
        help="start from a named recipe (e.g. best); the flags given with it override its "
        "values; --recipe alone (or --recipe list) lists the recipes with what each reaches "
        "(default: none: TrainConfig's defaults)",
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        default=None,
        help="BLAS threads for training (default: OPENBLAS_NUM_THREADS or OMP_NUM_THREADS if "
        "set, else chosen from the network and batch sizes so that small products do not "
        "spin-wait on a busy machine)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="results directory; must be new or empty unless --force (default: "
        "runs/<YYYYmmdd-HHMMSS>)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty --out, replacing the result files of an earlier run",
    )
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar and no scores; only the line saying where the results are",
    )
    p.add_argument(
        "--resume",
        metavar="DIR",
        default=None,
        help="finish the interrupted run in DIR from its checkpoint, with the data and "
        "training flags it recorded (giving one of them with another value is an error)",
    )
    p.set_defaults(func=_cmd_train)


def _add_data_flags(p: argparse.ArgumentParser, *, default_data: str | None) -> None:
    from backprop.data import NAMED_DATASETS

    p.add_argument(
        "--data",
        metavar="NAME|PATH",
        default=default_data,
        required=default_data is None,
        help=f"a named dataset ({', '.join(NAMED_DATASETS)}) or a .csv, .npy, .npz file or "
        "a directory of IDX files",
    )
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        default=None,
        help="where to look first for IDX datasets (then $BACKPROP_DATA/<name>, then "
        "/usr/share/datasets/<name>)",
    )
    p.add_argument(
        "--task",
        choices=("classification", "regression"),
        default=None,
        help="what to learn (default: inferred from the target)",
    )
    p.add_argument("--target", metavar="COL", default=None, help="target column of a CSV file")


def _train_config(args: argparse.Namespace) -> Any:
    """A validated TrainConfig from the parsed flags."""
    from backprop.config import TrainConfig

    defaults = _config_defaults()
    values = {name: getattr(args, name) for name in defaults if hasattr(args, name)}
    if "hidden" in values:
        values["hidden"] = tuple(values["hidden"])
    if values.get("patience") == 0:
        values["patience"] = None
    recipe = values.pop("recipe", None)
    if recipe is not None:
        # Only the flags typed win over the recipe: argparse fills in every default.
        given = _given_train_flags(args.argv)
        return TrainConfig.from_recipe(recipe, **{k: v for k, v in values.items() if k in given})
    config = TrainConfig(**values)
    config.validate()
    return config


def _cmd_train(args: argparse.Namespace) -> int:
    if args.recipe == RECIPE_LIST:
        from backprop.recipes import describe_recipes

        print("\n".join(describe_recipes()))
        return 0
    comm = _world()
    with _sigterm_as_interrupt():
        # Under `mpiexec -n K` a failure on any rank ends the whole job (docs/scaling.md).
        if args.resume is not None:
            return comm.run(lambda: _resume_train(args))
        return comm.run(lambda: _fresh_train(args))


def _world() -> Any:
    """This process's `backprop.distributed` communicator (one process outside mpiexec)."""
    from backprop.distributed import MPIUnavailableError, world

    try:
        return world()
    except MPIUnavailableError as exc:
        raise CLIError(str(exc)) from None


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt in the main thread while the block runs.

    So ``kill PID`` (or a job scheduler's stop) ends a training run exactly like Ctrl-C:
    after the last finished epoch's checkpoint, with the resume command printed. The
    previous handler is restored afterwards; in another thread (where Python cannot set
    handlers) the block runs unchanged.
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


def _fresh_train(args: argparse.Namespace) -> int:
    from backprop.data import load_dataset

    config = _train_config(args)
    # --out is claimed (created and locked) before anything else, and holds the
    # checkpoint while training runs; the directories made for it are removed again if
    # the run fails or is interrupted before its first checkpoint.
    root = _world().is_root
    # Under mpiexec rank 0 alone claims --out and writes there; the other ranks train.
    claim = _claim_out_dir(args.out, args.force) if root else contextlib.nullcontext(Path("."))
    with claim as out:
        ds = load_dataset(
            args.data,
            data_dir=args.data_dir,
            task=args.task,
            target=args.target,
            seed=config.seed,
            dtype=np.dtype(config.dtype),
        )
        from backprop.config import check_network_fits

        hidden = " ".join(map(str, config.hidden))
        check_network_fits(
            config, ds.n_features, ds.n_outputs, len(ds.X_train),
            what=f"--hidden {hidden}: the network", error=CLIError,
        )  # fmt: skip
        if not root:
            return _train_into(out, ds, config, args, resume=False)
        record = _run_record(args, config, ds)
        try:
            # An earlier run's files (--force) go now, so --out never mixes two runs.
            for name in (*RESULT_FILES, CHECKPOINT_FILE, RUN_FILE):
                (out / name).unlink(missing_ok=True)
            atomic_write_bytes(out / RUN_FILE, (json.dumps(record, indent=2) + "\n").encode())
        except BaseException:
            _remove_run_files(out)
            raise
        return _train_into(out, ds, config, args, resume=False)


def _resume_train(args: argparse.Namespace) -> int:
    """``train --resume DIR``: rebuild the run from ``run.json`` and continue it."""
    out = Path(args.resume)
    where = f"--resume {out}"
    if args.out is not None and Path(args.out).absolute() != out.absolute():
        raise CLIError(f"{where}: --out cannot be combined with --resume (results go into {out})")
    if args.force:
        raise CLIError(f"{where}: --force cannot be combined with --resume")
    if not out.is_dir():
        raise CLIError(f"{where}: no such directory")
    # A second --resume of the same run is refused; under mpiexec rank 0 holds the lock.
    with _locked(out, where) if _world().is_root else contextlib.nullcontext():
        return _resume_locked(args, out, where)


def _resume_locked(args: argparse.Namespace, out: Path, where: str) -> int:
    from backprop.checkpoint import CheckpointError, load_checkpoint
    from backprop.config import TrainConfig
    from backprop.data import load_dataset

    if (out / "metrics.json").exists():
        raise CLIError(f"{where}: holds a finished run (metrics.json); nothing to resume")
    ck_path = out / CHECKPOINT_FILE
    if not ck_path.is_file():
        raise CLIError(
            f"{where}: no {CHECKPOINT_FILE} there, nothing to resume (a run leaves one when "
            "it is interrupted after its first epoch)"
        )
    record = _read_run_record(out / RUN_FILE)
    ck = load_checkpoint(ck_path)  # CheckpointError names the file and the problem
    try:
        ck_config = ck.config
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{ck_path}: not a usable checkpoint: {_one_line(exc)}") from None
    try:
        config = TrainConfig.from_dict(record["config"])
        config.validate()
    except (TypeError, ValueError, OverflowError) as exc:
        raise CLIError(f"{out / RUN_FILE}: bad training config: {_one_line(exc)}") from None
    if ck_config != config:
        raise CLIError(
            f"{where}: {CHECKPOINT_FILE} and {RUN_FILE} are from different runs (their "
            "training configs differ)"
        )
    _check_resume_flags(args, record, config, where)
    ds = load_dataset(
        record["data"],
        data_dir=record["data_dir"],
        task=record["task"],
        target=record["target"],
        seed=config.seed,
        dtype=np.dtype(config.dtype),
    )
    now = _dataset_summary(ds)
    if now != record["dataset"]:
        diff = ", ".join(
            f"{k} {record['dataset'].get(k)!r} -> {now[k]!r}"
            for k in now
            if now[k] != record["dataset"].get(k)
        )
        raise CLIError(f"{where}: the data changed since the run started ({diff})")
    # A process killed mid-save leaves a hidden temporary file: never read, cleared here.
    for stray in out.glob(temp_name(ck_path)):
        stray.unlink(missing_ok=True)
    return _train_into(out, ds, config, args, resume=True)


def _train_into(
    out: Path, ds: Dataset, config: Any, args: argparse.Namespace, *, resume: bool
) -> int:
    """Train with a checkpoint in ``out`` and publish the results there when finished.

    Interrupted (KeyboardInterrupt: Ctrl-C or SIGTERM) once a checkpoint exists: keep it
    and ``run.json``, print the resume command, exit 130. Publishing the results and
    deleting the checkpoint happen with interrupts held (`_interrupts_deferred`), so an
    interrupt finds either an unfinished run that ``--resume`` finishes or a finished one,
    and says which. Any other failure of a fresh run removes what it wrote; a resumed
    run's checkpoint is never deleted by a failure.
    """
    from backprop import config as configs
    from backprop import run

    ck_path = out / CHECKPOINT_FILE
    if not _world().is_root:  # another rank's share of the run: rank 0 prints and writes
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", configs.MirrorWarning)
            run.train(
                ds,
                config,
                progress=False,
                checkpoint=ck_path,
                resume=resume,
                threads=getattr(args, "threads", None),
            )
        return 0
    # Said before the minutes of training, not after them (and so not again below).
    if (mirrored := configs.mirror_warning(ds, config)) is not None:
        print(printable(f"backprop train: warning: {mirrored}"), file=sys.stderr)
    finished = False
    try:
        with _staging_dir(out) as tmp:
            with warnings.catch_warnings(record=True) as skipped:
                warnings.simplefilter("always", report.ResultWarning)
                warnings.simplefilter("ignore", configs.MirrorWarning)
                # The library writes the results (the same files as train(..., out=DIR)).
                run.train(
                    ds,
                    config,
                    progress=False if args.quiet else None,
                    checkpoint=ck_path,
                    resume=resume,
                    out=tmp,
                    threads=getattr(args, "threads", None),
                )
            with _interrupts_deferred():
                _publish(tmp, out)  # metrics.json last: from here the run is finished
                # The checkpoint is done with.
                ck_path.unlink(missing_ok=True)
                (out / RUN_FILE).unlink(missing_ok=True)
                finished = True
        for w in skipped:
            if issubclass(w.category, report.ResultWarning):  # a plot failed; results stand
                print(f"backprop train: warning: {w.message}", file=sys.stderr)
            else:
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        lines = report.summary_lines(out)
        # --quiet hides the progress and the scores, never where the results went.
        print("\n".join(lines[-1:] if args.quiet else lines))
    except KeyboardInterrupt:
        if finished:
            print(
                f"backprop train: interrupted after the run finished; its results are "
                f"complete in {out}/",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
        epoch = _checkpoint_epoch(ck_path)
        if epoch is None:  # interrupted in the first epoch: nothing worth keeping
            if not resume:
                _remove_run_files(out)
            raise
        print(
            f"backprop train: interrupted; the checkpoint after epoch {epoch} is in {out}/; "
            f"resume with: {args.invoked_as} train --resume {shlex.quote(str(out))}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except BaseException:
        if not resume and not finished:
            _remove_run_files(out)
        raise
    return 0


def _remove_run_files(out: Path) -> None:
    """Undo a fresh run: its checkpoint, run record and their temporary files (the
    directories created for it go with the claim, `_claim_out_dir`)."""
    for name in (CHECKPOINT_FILE, RUN_FILE):
        (out / name).unlink(missing_ok=True)
        for stray in out.glob(temp_name(out / name)):
            stray.unlink(missing_ok=True)


def _checkpoint_epoch(path: Path) -> int | None:
    """The epoch a checkpoint file was saved after; None if there is no readable one."""
    import safetensors

    try:
        with safetensors.safe_open(str(path), framework="numpy") as f:
            meta = json.loads((f.metadata() or {})["backprop_checkpoint"])
        return int(meta["epoch"])
    except Exception:
        return None


def _data_spec(text: str | None) -> str | None:
    """--data/--data-dir as recorded: a dataset name as is, a path made absolute (so that
    --resume works from any working directory)."""
    from backprop.data import NAMED_DATASETS

    if text is None or text in NAMED_DATASETS:
        return text
    return str(Path(text).absolute())


def _dataset_summary(ds: Dataset) -> dict[str, Any]:
    """What identifies the data of a run: sizes, and a hash of every array's bytes."""
    h = hashlib.blake2b(digest_size=16)
    from backprop.data.rows import as_rows

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
    }


def _run_record(args: argparse.Namespace, config: Any, ds: Dataset) -> dict[str, Any]:
    """The contents of run.json: everything --resume needs that the checkpoint lacks."""
    return {
        "format": RUN_FORMAT,
        "version": RUN_VERSION,
        "backprop_version": __version__,
        "data": _data_spec(args.data),
        "data_dir": _data_spec(args.data_dir),
        "task": args.task,
        "target": args.target,
        "config": config.to_dict(),
        "dataset": _dataset_summary(ds),
    }


def _read_run_record(path: Path) -> dict[str, Any]:
    """run.json, checked; every problem is a CLIError naming the file."""
    if not path.is_file():
        raise CLIError(f"{path}: missing; without it the run's data is unknown, cannot resume")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CLIError(f"{path}: not valid JSON ({_one_line(exc)})") from None
    if not isinstance(record, dict) or record.get("format") != RUN_FORMAT:
        raise CLIError(f"{path}: not a backprop run record")
    if record.get("version") != RUN_VERSION:
        raise CLIError(f"{path}: run record version {record.get('version')!r} is not supported")
    bad = [k for k, ok in _RUN_FIELDS.items() if k not in record or not ok(record[k])]
    if bad:
        raise CLIError(f"{path}: incomplete run record (missing or bad: {', '.join(bad)})")
    return record


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _is_str_or_none(value: object) -> bool:
    return value is None or isinstance(value, str)


# Each field of run.json and what it must be for --resume to use it.
_RUN_FIELDS: dict[str, Callable[[Any], bool]] = {
    "data": _is_str,
    "data_dir": _is_str_or_none,
    "task": lambda v: v in (None, "classification", "regression"),
    "target": _is_str_or_none,
    "config": lambda v: isinstance(v, dict),
    "dataset": lambda v: isinstance(v, dict),
}


def _given_train_flags(argv: Sequence[str]) -> dict[str, Any]:
    """The ``train`` flags the user actually typed, parsed (argparse fills in defaults,
    so the parsed namespace alone cannot tell ``--seed 0`` from no ``--seed``)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for action in sub.choices["train"]._actions:
        action.default = argparse.SUPPRESS
    given = vars(parser.parse_args(argv))
    for key in ("command", "func", "resume", "out", "force", "quiet", "argv"):
        given.pop(key, None)
    return given


def _check_resume_flags(
    args: argparse.Namespace, record: dict[str, Any], config: Any, where: str
) -> None:
    """Rule: with --resume, a data or training flag may only repeat the recorded value."""
    given = _given_train_flags(args.argv)
    recorded = {
        **config.to_dict(),
        **{k: record[k] for k in ("data", "data_dir", "task", "target")},
    }
    conflicts = []
    for name, value in sorted(given.items()):
        if name in ("data", "data_dir"):
            value = _data_spec(value)
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


# -------------------------------------------------------------------------- labels


def _evaluate_on_test(model: Model, ds: Dataset) -> dict[str, float]:
    """`evaluate` on the test split; a regressor's baseline predicts the training mean."""
    from backprop.report import evaluate

    baseline = None if model.is_classifier else np.mean(ds.y_train, 0, dtype=np.float64)
    return evaluate(model, ds.X_test, _model_targets(model, ds, ds.y_test), baseline_mean=baseline)


def _model_targets(
    model: Model, ds: Dataset, y: np.ndarray | None, *, X: np.ndarray | None = None
) -> np.ndarray:
    """Targets in the model's own encoding (class indices of ``model.classes``).

    With ``y`` (dataset class indices of ``ds.classes``): those labels re-encoded for the
    model. With ``X`` instead: the model's predictions as dataset class indices.
    """
    from backprop.data import LabelEncoder

    if not model.is_classifier:
        if y is None:
            assert X is not None
            return model.predict(X)
        return y
    assert ds.classes is not None
    n_classes = 2 if model.is_binary else model.net.n_outputs
    model_classes = np.arange(n_classes) if model.classes is None else np.asarray(model.classes)
    if y is None:
        assert X is not None
        pred_labels = model.predict(X)  # the model's labels (its classes, or indices)
        return LabelEncoder(ds.classes).transform(
            pred_labels, what="predicted labels", among="the dataset's classes"
        )
    return LabelEncoder(model_classes).transform(
        np.asarray(ds.classes)[y], what="test labels", among="the model's classes"
    )


# ------------------------------------------------------------------------ evaluate


def _load_model(path: str) -> Model:
    from backprop.io import load

    return load(path)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import dataclasses

    from backprop.data import load_dataset

    model = _load_model(args.model)
    task = "classification" if model.is_classifier else "regression"
    recorded = model.config.get("dataset") if isinstance(model.config, dict) else None
    data = args.data if args.data is not None else recorded
    if data is None:
        raise CLIError(f"{args.model} does not record its dataset: give --data NAME|PATH")
    if args.task is not None and args.task != task:
        raise CLIError(f"--task {args.task}: the model is a {task} model")
    seed = args.seed
    if seed is None:  # reproduce the training run's test split
        seed = int(model.config.get("seed", 0)) if isinstance(model.config, dict) else 0
    ds = load_dataset(
        data,
        data_dir=args.data_dir,
        task=task,
        target=args.target,
        seed=seed,
        dtype=model.net.dtype,
    )
    if ds.feature_names is not None:  # a CSV header: columns matched by name
        pick = model.pre.select_columns
        ds = dataclasses.replace(
            ds,
            X_train=pick(ds.X_train, ds.feature_names, ds.name),
            X_test=pick(ds.X_test, ds.feature_names, ds.name),
        )
    if ds.n_features != model.n_features:
        raise CLIError(
            f"model expects {model.n_features} features per row, dataset {ds.name!r} has "
            f"{ds.n_features}"
        )
    result = _evaluate_on_test(model, ds)
    doc = {"model": args.model, "data": ds.name, "task": task, "n_test": len(ds.X_test)}
    doc.update({k: float(v) for k, v in result.items()})
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(report.score_line(ds.name, task, len(ds.X_test), result))
    return 0


def _add_evaluate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="a saved model's accuracy and loss (or RMSE) on a dataset's test split",
        description="Evaluate a saved model on the test split of a dataset: accuracy and "
        "cross-entropy for a classifier, RMSE and squared-error loss for a regressor. "
        "Labels are matched through the model's class labels.",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", help="a .safetensors file written by train")
    _add_data_flags(p, default_data=None)
    for action in p._actions:  # --data defaults to the dataset the model records
        if action.dest == "data":
            action.required = False
            action.help = f"{action.help} (default: the dataset the model was trained on)"
    p.add_argument(
        "--seed",
        type=nonnegative_int,
        default=None,
        help="seed of the test split for files without one (default: the model's training "
        "seed, so the split is the one train held out)",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=_cmd_evaluate)


# ------------------------------------------------------------------------- predict


def _read_inputs(path: Path, model: Model) -> np.ndarray:
    """Raw inputs for ``model`` from a CSV, NPY or IDX file, as the file holds them.

    Scaling is the model's business (its preprocessor), so the same images give the same
    answers whatever the container. CSV columns are matched by name
    (`Preprocessor.select_columns`).
    """
    from backprop.data import read_csv_table, read_idx, read_npy

    if not path.exists():
        raise CLIError(f"{path}: no such file")
    if path.is_dir():
        raise CLIError(f"{path}: is a directory, expected a .csv, .npy or IDX file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        values, header = read_csv_table(path, model.net.dtype)
        return model.pre.select_columns(values, header, str(path))
    A = read_npy(path) if suffix == ".npy" else read_idx(path)
    if A.ndim == 1:  # one feature per row, or one example
        A = A.reshape(-1, 1) if model.n_features == 1 else A.reshape(1, -1)
    return A


def _cmd_predict(args: argparse.Namespace) -> int:
    model = _load_model(args.model)
    if args.proba and not model.is_classifier:
        raise CLIError("--proba needs a classifier; this model is a regressor")
    out = Path(args.output) if args.output is not None else None
    if out is not None and out.suffix.lower() not in (".csv", ".npy"):
        raise CLIError(f"--output {out}: unsupported extension; use .csv or .npy")
    if out is not None and not out.parent.is_dir():
        raise CLIError(f"--output {out}: directory {out.parent} does not exist")
    X = _read_inputs(Path(args.input), model)
    try:  # the model's preprocessor checks the width and warns on an unexpected range
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            values = model.predict_proba(X) if args.proba else model.predict(X)
    except ValueError as exc:
        raise CLIError(f"{args.input}: {exc}") from None
    for w in caught:  # one line each, without Python's source-line echo
        print(printable(f"backprop predict: warning: {args.input}: {w.message}"), file=sys.stderr)
    if args.proba:
        classes = np.arange(values.shape[1]) if model.classes is None else model.classes
        header = [f"p_{c}" for c in classes]
    else:
        header = (
            ["prediction"]
            if values.ndim == 1
            else [f"prediction_{j}" for j in range(values.shape[1])]
        )
    if out is not None and out.suffix.lower() == ".npy":
        buf = io.BytesIO()
        np.save(buf, values, allow_pickle=False)
        with _atomic_path(out) as tmp:
            tmp.write_bytes(buf.getvalue())
        return 0
    text = _csv_text(header, values)
    if out is None:
        sys.stdout.write(text)
    else:
        _write_text(out, text)
    return 0


def _csv_text(header: list[str], values: np.ndarray) -> str:
    """A CSV document: a header row, then one row per example (floats round-trip)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    rows = values.reshape(len(values), -1)
    for row in rows.tolist():
        writer.writerow([repr(v) if isinstance(v, float) else v for v in row])
    return buf.getvalue()


def _add_predict_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="predictions of a saved model for a CSV, NPY or IDX file",
        description="Predict with a saved model. INPUT holds raw values as training saw "
        "them (digits pixels 0..16, uint8 images 0..255: the model scales them itself): a "
        ".npy array of any integer or float dtype, shape (n, d) or (n, h, w) for images; an "
        "IDX image file; or a numeric CSV file. CSV columns are matched by name: with a "
        "header holding the model's feature names those columns are used in the model's "
        "order; otherwise columns named label, target, y, id, index, 'Unnamed: 0' or with "
        "an empty name are dropped and the rest must be exactly the model's inputs; a "
        "headerless CSV must have exactly that many columns. Anything else is refused. The "
        "output has a header row and one row per input row: the predicted label (or "
        "value), or with --proba one probability per class.",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", help="a .safetensors file written by train")
    p.add_argument("input", metavar="INPUT", help="a .csv, .npy or IDX (.gz or raw) file")
    p.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        default=None,
        help="write here instead of stdout; .csv or .npy chooses the format (written atomically)",
    )
    p.add_argument("--proba", action="store_true", help="class probabilities instead of labels")
    p.set_defaults(func=_cmd_predict)


# ---------------------------------------------------------------------------- info


def _cmd_info(args: argparse.Namespace) -> int:
    from backprop.io import read_metadata

    model = _load_model(args.model)  # validates the whole file first
    meta = read_metadata(args.model)
    net = model.net
    doc = {
        "file": args.model,
        "format_version": meta.get("format_version"),
        "backprop_version": meta.get("backprop_version"),
        "layer_sizes": list(net.layer_sizes),
        "n_params": int(net.n_params),
        "activation": net.activation,
        "loss": net.loss,
        "dtype": net.dtype.name,
        "classes": None if model.classes is None else model.classes.tolist(),
        "input": _expected_input(model),
        "config": model.config,
    }
    if args.json:
        print(json.dumps(doc, indent=2))  # JSON escapes control characters itself
        return 0

    def show(line: str) -> None:  # labels, names and config values come from the file
        print(printable(line))

    arch = " -> ".join(map(str, net.layer_sizes))
    show(f"file:            {args.model}")
    show(
        f"format version:  {doc['format_version']} (written by backprop {doc['backprop_version']})"
    )
    show(f"architecture:    {arch} ({net.n_layers} weight layers)")
    show(f"parameters:      {net.n_params:,}")
    show(f"activation:      {net.activation}")
    show(f"loss:            {net.loss}")
    show(f"dtype:           {net.dtype.name}")
    if model.classes is not None or net.is_classifier:
        classes = doc["classes"] if doc["classes"] is not None else list(range(net.n_outputs))
        show(f"classes:         {', '.join(map(str, classes))}")
    expects = doc["input"]
    show("input:")
    if expects["image_shape"] is not None:
        h, w = expects["image_shape"]
        show(f"  image shape:   {h}x{w} ({model.n_features} pixels; (n, {h}, {w}) accepted)")
    elif expects["feature_names"] is not None:
        names = expects["feature_names"]
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        show(f"  features:      {len(names)}, matched by name in a CSV: {shown}")
    else:
        show(f"  features:      {model.n_features} (no names: CSV columns by position)")
    show(f"  raw range:     {expects['raw_range'] or 'not recorded'}")
    scale = expects["input_scale"]
    show(f"  input scale:   {'none' if scale is None else f'divided by {scale:g}'}")
    show(f"  standardized:  {expects['standardization']}")
    if model.config:
        show("training config:")
        for key, value in model.config.items():
            show(f"  {key}: {_flag_spelling(key, value)}")
    return 0


def _flag_spelling(key: str, value: Any) -> Any:
    """A recorded config value as --help spells it (None is "auto" epochs, patience 0)."""
    from backprop.config import AUTO_EPOCHS, AUTO_MIN_STEPS

    if value is None and key == "epochs":
        return (
            f"auto ({AUTO_EPOCHS}, or more on a small dataset: at least {AUTO_MIN_STEPS} updates)"
        )
    if value is None and key == "patience":
        return "0 (no early stopping)"
    if value is None and key in _OFF_WHEN_NONE:
        return f"none ({_OFF_WHEN_NONE[key]})"
    return value


# Options whose unset value (None) means "off"; --help says "(default: none)".
_OFF_WHEN_NONE = {
    "max_norm": "no max-norm constraint",
    "augment": "no augmentation",
    "recipe": "no recipe",
}


def _expected_input(model: Model) -> dict[str, Any]:
    """What the model expects as raw input (shown by ``info``), from its preprocessor."""
    pre = model.pre
    return {
        "n_features": model.n_features,
        "image_shape": None if pre.image_shape is None else list(pre.image_shape),
        "feature_names": model.feature_names,
        "raw_range": pre.expected_range(),
        "input_scale": pre.input_scale,
        "standardization": pre.standardization,
    }


def _add_info_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="what a model file holds",
        description="Show a model file's architecture, parameter count, activation, loss, "
        "class labels, what input it expects (image shape or feature names, raw range, "
        "input scale, standardisation), training config and file format version (the file "
        "is fully validated first).",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", help="a .safetensors file written by train")
    p.add_argument("--json", action="store_true", help="print the information as JSON")
    p.set_defaults(func=_cmd_info)


# ----------------------------------------------------------------------- gradcheck


def _cmd_gradcheck(args: argparse.Namespace) -> int:
    from backprop.gradcheck import format_table, gradcheck_table

    rows = gradcheck_table(seed=args.seed, engine=not args.notes_only)
    print(format_table(rows, args.threshold))
    bad = [r for r in rows if not r.ok(args.threshold)]
    if bad:
        print(
            f"{len(bad)} check(s) not as expected (threshold {args.threshold:g})", file=sys.stderr
        )
        return EXIT_FAILED
    print(f"all {len(rows)} checks as expected (threshold {args.threshold:g})")
    return 0


def _add_gradcheck_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gradcheck",
        help="compare every gradient with centred finite differences",
        description="Compare the analytic gradients of the notes' six forms and of the MLP "
        "engine (depths 1-4, every activation, both losses) with centred finite differences "
        "in float64. Also shows the notes' as-written dJ/ds (page 3) failing. Exits 1 if any "
        "check is not as expected.",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random problems")
    p.add_argument(
        "--threshold", type=positive_float, default=1e-7, help="largest relative error that passes"
    )
    p.add_argument("--notes-only", action="store_true", help="skip the engine checks")
    p.set_defaults(func=_cmd_gradcheck)


# ----------------------------------------------------------------------------- explore


def _cmd_explore(args: argparse.Namespace) -> int:
    from backprop.explore import serve

    serve(args.port, open_browser=not args.no_browser, data=args.data, model=args.model)
    return 0


def _add_explore_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explore",
        help="see the backward pass live in the browser",
        description="Start a local web app (127.0.0.1 only, a random token in its URL) that "
        "trains a network step by step and shows every matrix of the notes for the current "
        "batch, the chain rule of any weight with a finite-difference check, the loss curves "
        "and the decision boundary. Ctrl-C stops it. See docs/explore.md.",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    p.add_argument("--no-browser", action="store_true", help="only print the URL")
    p.add_argument(
        "--data",
        default=None,
        help="first data: moons, spiral, digits, ... or your data file (CSV, .npy, .npz, IDX "
        'directory), which the page offers as data "file"',
    )
    p.add_argument(
        "--model",
        default=None,
        metavar="FILE",
        help="start from a saved model (backprop.load): its weights, layers and activation, "
        "its preprocessing applied to the data; a file exported by the page brings its "
        "settings and data too. The page offers it as init 'model' (never its path)",
    )
    p.set_defaults(func=_cmd_explore)


# ---------------------------------------------------------------------------- main

# The registry of subcommands, in the order ``--help`` lists them: a new command is a
# ``_cmd_x`` function, its ``_add_x_parser`` (which sets ``func=_cmd_x``) and one entry here.
COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    _add_train_parser,
    _add_evaluate_parser,
    _add_predict_parser,
    _add_info_parser,
    _add_gradcheck_parser,
    _add_explore_parser,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``backprop`` command."""
    parser = _Parser(
        prog="backprop",
        description="Backpropagation lecture notes as code: check, train, evaluate, predict.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_parser in COMMANDS:
        add_parser(sub)
    return parser


def _one_line(exc: BaseException) -> str:
    """The exception's message on one line (a user reads it in a terminal), with any
    control character from a file's text escaped, never sent to the terminal."""
    text = printable(" ".join(str(exc).split()))
    return text or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``backprop`` command; returns the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        0 on success, 1 when a check or a training run fails (divergence), 2 for a usage
        or input error, 130 when interrupted with Ctrl-C (or, for ``train``, SIGTERM).
    """
    invoked_as = _invoked_as() if argv is None else "backprop"
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:  # a new user's first try: the help, not an error
        parser.print_help()
        return EXIT_USAGE
    try:
        args, unknown = parser.parse_known_args(argv)
    except SystemExit as exc:  # --help, --version, or a one-line usage error (_Parser)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    if unknown:
        print(_unknown_flags(parser, args.command, unknown), file=sys.stderr)
        return EXIT_USAGE
    args.argv = argv  # train --resume tells typed flags from defaults with it
    args.invoked_as = invoked_as  # the resume command is printed as the user ran it
    func: Callable[[argparse.Namespace], int] = args.func
    prefix = f"backprop {args.command}: error:"
    try:
        return func(args)
    except KeyboardInterrupt:
        print(f"backprop {args.command}: interrupted; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        diverged = _training_diverged()
        if diverged is not None and isinstance(exc, diverged):
            print(f"{prefix} {_diverged_line(exc, args)}", file=sys.stderr)
            return EXIT_FAILED
        if isinstance(exc, CLIError | ValueError):
            # A user's mistake (bad file, bad value, wrong width): one line, no traceback.
            print(f"{prefix} {_one_line(exc)}", file=sys.stderr)
            return EXIT_USAGE
        if isinstance(exc, OSError):
            where = f"{exc.filename}: " if exc.filename else ""
            print(f"{prefix} {where}{exc.strerror or _one_line(exc)}", file=sys.stderr)
            return EXIT_USAGE
        raise  # a bug: the traceback is what a maintainer needs


def _invoked_as() -> str:
    """The command as the user typed it (``.venv/bin/backprop``, ``python -m backprop``)."""
    program = sys.argv[0] if sys.argv and sys.argv[0] else "backprop"
    if Path(program).name == "__main__.py":
        return f"{shlex.quote(sys.executable)} -m backprop"
    return shlex.quote(program)


def _unknown_flags(parser: argparse.ArgumentParser, command: str, unknown: list[str]) -> str:
    """One line for flags the command does not have, naming the closest one it has."""
    import difflib

    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[
        command
    ]
    flags = [s for a in sub._actions for s in a.option_strings if s.startswith("--")]
    typed = next((u.split("=", 1)[0] for u in unknown if u.startswith("-")), unknown[0])
    close = difflib.get_close_matches(typed, flags, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else f"see backprop {command} --help"
    return f"backprop {command}: error: unrecognized argument {typed}; {hint}"


def _diverged_line(exc: Exception, args: argparse.Namespace) -> str:
    """The divergence in the user's terms: the --lr typed, the scheduled rate when it
    happened, and a --lr to try (a tenth of the one given)."""
    given = getattr(args, "lr", None)
    epoch, at = getattr(exc, "epoch", None), getattr(exc, "lr", None)
    if given is None or epoch is None or at is None:
        return _one_line(exc)
    return (
        f"training diverged in epoch {epoch} (the loss became NaN or infinite) with --lr "
        f"{given:g}, the schedule being at {at:g} then; try --lr {given / 10:g}"
    )


def _training_diverged() -> type[Exception] | None:
    try:
        from backprop.trainer import TrainingDiverged
    except ImportError:  # pragma: no cover - only while training.py is being written
        return None
    return TrainingDiverged


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
