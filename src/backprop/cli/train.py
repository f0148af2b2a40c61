"""``backprop train``: its flags (one per `TrainConfig` field), a fresh run and
``--resume``.

A fresh run claims ``--out`` (`backprop.rundir.claim_out_dir`), loads the data, records
``run.json`` and trains (`backprop.cli.train_run.train_into`); ``--resume DIR`` rebuilds
the run from ``run.json`` and the checkpoint, refusing any flag that contradicts them.
Under ``mpiexec`` rank 0 alone claims the directory and writes there; every rank trains.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from backprop import rundir
from backprop.checkpoint import CheckpointError, load_checkpoint
from backprop.cli.argtypes import (
    RECIPE_LIST,
    fraction,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
    recipe_name,
)
from backprop.cli.common import CLIError, HelpFormatter, add_data_flags, one_line
from backprop.cli.train_run import (
    check_resume_data,
    check_resume_files,
    check_resume_flags,
    new_run_record,
    train_into,
    world_or_error,
)
from backprop.config import (
    AUTO_EPOCHS,
    AUTO_MIN_STEPS,
    DTYPES,
    KEEP,
    TrainConfig,
    check_network_fits,
)
from backprop.data import load_dataset
from backprop.layers import ACTIVATIONS
from backprop.optim import OPTIMIZERS
from backprop.recipes import describe_recipes
from backprop.report import RESULT_FILES
from backprop.schedules import SCHEDULES

__all__ = ["add_parser", "given_train_flags", "run", "train_config"]


def _config_defaults() -> dict[str, Any]:
    """TrainConfig's defaults: the one source of truth for the flags' defaults."""
    return {f.name: getattr(TrainConfig(), f.name) for f in dataclasses.fields(TrainConfig)}


def _train_flags() -> list[tuple[str, dict[str, Any], str]]:
    """(flag, argparse keyword arguments, help) of each TrainConfig field's flag."""

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


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` and its flags to the ``backprop`` parser's subcommands."""
    p = sub.add_parser(
        "train",
        help="train a network and save the model, metrics, history and plots",
        description="Train a multi-layer perceptron by backpropagation on a named dataset "
        "or a data file, then evaluate it on the test split and write model.safetensors, "
        "metrics.json, history.csv and plots (loss.png; confusion.png for classification; "
        "weights.png and mistakes.png for image data) into the --out directory. The "
        "defaults are a tested recipe.",
        # Measured, not assumed (docs/scaling.md): on one machine the ranks share its cores
        # and each step adds an Allreduce, so one process with all the threads wins there.
        epilog="Data-parallel: `mpiexec -n K backprop train ...` trains on K processes "
        "(docs/scaling.md). It pays across machines; on one 2-core machine two ranks of one "
        "thread were slower than one process with two threads, so use --threads instead.\n\n"
        "Plots: where training leaves a core free, worker processes import matplotlib and "
        "draw the plots beside it (docs/cli.md); BACKPROP_PLOT_WORKERS=0 draws them in this "
        "process instead, for runs side by side.",
        formatter_class=HelpFormatter,
    )
    add_data_flags(p, default_data="digits")
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
    p.set_defaults(func=run)


def given_train_flags(argv: Sequence[str]) -> dict[str, Any]:
    """The ``train`` flags the user actually typed, parsed (argparse fills in defaults,
    so the parsed namespace alone cannot tell ``--seed 0`` from no ``--seed``).

    ``argv`` is the whole command line (``main``'s), already accepted by its parser.
    """
    parser = argparse.ArgumentParser(prog="backprop")
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    for action in sub.choices["train"]._actions:
        action.default = argparse.SUPPRESS
    given = vars(parser.parse_args(argv))
    for key in ("command", "func", "resume", "out", "force", "quiet", "argv"):
        given.pop(key, None)
    return given


def train_config(args: argparse.Namespace) -> TrainConfig:
    """A validated TrainConfig from the parsed flags."""
    defaults = _config_defaults()
    values = {name: getattr(args, name) for name in defaults if hasattr(args, name)}
    if "hidden" in values:
        values["hidden"] = tuple(values["hidden"])
    if values.get("patience") == 0:
        values["patience"] = None
    recipe = values.pop("recipe", None)
    if recipe is not None:
        # Only the flags typed win over the recipe: argparse fills in every default.
        given = given_train_flags(args.argv)
        return TrainConfig.from_recipe(recipe, **{k: v for k, v in values.items() if k in given})
    config = TrainConfig(**values)
    config.validate()
    return config


def run(args: argparse.Namespace) -> int:
    """``backprop train``: list the recipes, or train a fresh run, or resume one."""
    if args.recipe == RECIPE_LIST:
        print("\n".join(describe_recipes()))
        return 0
    comm = world_or_error()
    with rundir.sigterm_as_interrupt():
        # Under `mpiexec -n K` a failure on any rank ends the whole job (docs/scaling.md).
        if args.resume is not None:
            return comm.run(lambda: _resume_train(args))
        return comm.run(lambda: _fresh_train(args))


def _fresh_train(args: argparse.Namespace) -> int:
    config = train_config(args)
    # --out is claimed (created and locked) before anything else, and holds the
    # checkpoint while training runs; the directories made for it are removed again if
    # the run fails or is interrupted before its first checkpoint.
    root = world_or_error().is_root
    # Under mpiexec rank 0 alone claims --out and writes there; the other ranks train.
    claim = (
        rundir.claim_out_dir(args.out, args.force) if root else contextlib.nullcontext(Path("."))
    )
    with claim as out:
        ds = load_dataset(
            args.data,
            data_dir=args.data_dir,
            task=args.task,
            target=args.target,
            drop=args.drop,
            seed=config.seed,
            dtype=np.dtype(config.dtype),
        )
        hidden = " ".join(map(str, config.hidden))
        check_network_fits(
            config, ds.n_features, ds.n_outputs, len(ds.X_train),
            what=f"--hidden {hidden}: the network", error=CLIError,
        )  # fmt: skip
        if root:
            # An earlier run's files (--force) go now, so --out never mixes two runs.
            rundir.start_run(out, new_run_record(args, config, ds), RESULT_FILES)
        return train_into(out, ds, config, args, resume=False)


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
    with rundir.locked(out, where) if world_or_error().is_root else contextlib.nullcontext():
        return _resume_locked(args, out, where)


def _resume_locked(args: argparse.Namespace, out: Path, where: str) -> int:
    record = rundir.check_resumable(out, where)
    ck_path = out / rundir.CHECKPOINT_FILE
    ck = load_checkpoint(ck_path)  # CheckpointError names the file and the problem
    try:
        ck_config = ck.config
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{ck_path}: not a usable checkpoint: {one_line(exc)}") from None
    run_file = out / rundir.RUN_FILE
    try:
        config = TrainConfig.from_dict(record["config"])
        config.validate()
    except (TypeError, ValueError, OverflowError) as exc:
        raise CLIError(f"{run_file}: bad training config: {one_line(exc)}") from None
    if ck_config != config:
        raise CLIError(
            f"{where}: {rundir.CHECKPOINT_FILE} and {rundir.RUN_FILE} are from different runs "
            "(their training configs differ)"
        )
    check_resume_flags(given_train_flags(args.argv), record, config, where)
    check_resume_files(record, where)  # a file cut short may not even load
    ds = load_dataset(
        record["data"],
        data_dir=record["data_dir"],
        task=record["task"],
        target=record["target"],
        drop=record.get("drop", []),
        seed=config.seed,
        dtype=np.dtype(config.dtype),
    )
    check_resume_data(ds, record, where)
    # A process killed mid-save leaves a hidden temporary file: never read, cleared here.
    rundir.remove_partial_saves(ck_path)
    return train_into(out, ds, config, args, resume=True)
