"""What every ``backprop`` subcommand shares: exit statuses, the user-error exception,
the help format, the data flags and the one-line rendering of an error message."""

from __future__ import annotations

import argparse

from backprop.data import NAMED_DATASETS
from backprop.data.formats import printable

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "CLIError",
    "HelpFormatter",
    "add_data_flags",
    "one_line",
]

EXIT_USAGE = 2  # what argparse itself uses for a bad flag
EXIT_FAILED = 1  # a run that failed on its own (divergence, a failing check)
EXIT_INTERRUPTED = 130  # the shell's convention for SIGINT (128 + 2)


class CLIError(Exception):
    """A user's mistake: printed as one line, exit status 2."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" after each flag's help, except where there is nothing to show
    (switches, and defaults of None whose help text says what happens instead)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (a user reads it in a terminal), with any
    control character from a file's text escaped, never sent to the terminal."""
    text = printable(" ".join(str(exc).split()))
    return text or type(exc).__name__


def add_data_flags(p: argparse.ArgumentParser, *, default_data: str | None) -> None:
    """``--data``, ``--data-dir``, ``--task``, ``--target``, ``--drop``: the dataset, as
    ``train`` and ``evaluate`` load it (``load_dataset``'s arguments)."""
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
    p.add_argument(
        "--target",
        metavar="COL",
        default=None,
        help="target column of a CSV file (default: the one column named label, target, y "
        "or class); a CSV without a header: the column's number, 1 for the first "
        "(default: its last column)",
    )
    p.add_argument(
        "--drop",
        metavar="COL",
        action="append",
        default=[],
        help="leave this CSV column out of the inputs (repeatable; text columns such as an "
        "id must be dropped)",
    )
