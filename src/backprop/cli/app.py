"""The ``backprop`` command's parser, its registry of subcommands (`COMMANDS`) and `main`,
which turns every outcome into an exit status and every user error into one line."""

from __future__ import annotations

import argparse
import difflib
import os
import shlex
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from backprop import __version__
from backprop.cli import evaluate, explore, export, gradcheck, info, predict, train
from backprop.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CLIError,
    HelpFormatter,
    one_line,
)
from backprop.data.formats import printable
from backprop.trainer import TrainingDiverged

__all__ = ["COMMANDS", "build_parser", "main"]

#: The status of a command whose reader went away (``| head``): a shell's for a process
#: ended by SIGPIPE (128 + 13), which Python ignores for the BrokenPipeError instead.
EXIT_BROKEN_PIPE = 141

# The registry of subcommands, in the order ``--help`` lists them: a new command is a
# module with ``run(args) -> int`` and ``add_parser(sub)`` (which sets ``func=run``), and
# one entry here.
COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    train.add_parser,
    evaluate.add_parser,
    predict.add_parser,
    export.add_parser,
    info.add_parser,
    gradcheck.add_parser,
    explore.add_parser,
)


class _Parser(argparse.ArgumentParser):
    """argparse's parser, but a usage error is one line: ``backprop train: error: --lr:
    must be a finite number > 0, got '-1'``, without the usage block argparse prints first
    (13 lines for ``train``, in which the error is easy to miss)."""

    def error(self, message: str) -> NoReturn:
        message = message.removeprefix("argument ")
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``backprop`` command."""
    parser = _Parser(
        prog="backprop",
        description="Backpropagation lecture notes as code: check, train, evaluate, predict.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_parser in COMMANDS:
        add_parser(sub)
    return parser


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
        or input error, 130 when interrupted with Ctrl-C (or, for ``train``, SIGTERM),
        141 when the reader of the output went away (``| head``).
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
        with warnings.catch_warnings():  # the hook is the command's alone
            warnings.showwarning = _warning_printer(args.command)
            status = func(args)
            sys.stdout.flush()  # a reader gone fails here, not in the interpreter's exit
            return status
    except BrokenPipeError:
        # Ended quietly like other Unix tools; the `signal` docs' recipe: stdout to
        # devnull, so that the flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print(f"backprop {args.command}: interrupted; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if isinstance(exc, TrainingDiverged):
            print(f"{prefix} {_diverged_line(exc, args)}", file=sys.stderr)
            return EXIT_FAILED
        if isinstance(exc, CLIError | ValueError):
            # A user's mistake (bad file, bad value, wrong width, an unusable run
            # directory: rundir.RunDirError): one line, no traceback.
            print(f"{prefix} {one_line(exc)}", file=sys.stderr)
            return EXIT_USAGE
        if isinstance(exc, OSError):
            where = f"{exc.filename}: " if exc.filename else ""
            print(f"{prefix} {where}{exc.strerror or one_line(exc)}", file=sys.stderr)
            return EXIT_USAGE
        raise  # a bug: the traceback is what a maintainer needs


def _warning_printer(command: str) -> Callable[..., None]:
    """A `warnings.showwarning` printing ``backprop COMMAND: warning: MESSAGE`` on stderr,
    each message once, without Python's ``file:line: UserWarning`` and source line (the
    user ran a command, not a script)."""
    shown: set[str] = set()

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        text = printable(" ".join(str(message).split()))
        if text not in shown:  # evaluating the test split and plotting it warn alike
            shown.add(text)
            print(f"backprop {command}: warning: {text}", file=sys.stderr)

    return show


def _invoked_as() -> str:
    """The command as the user typed it (``.venv/bin/backprop``, ``python -m backprop.cli``)."""
    program = sys.argv[0] if sys.argv and sys.argv[0] else "backprop"
    if Path(program).name == "__main__.py":
        module = "backprop.cli" if Path(program).parent.name == "cli" else "backprop"
        return f"{shlex.quote(sys.executable)} -m {module}"
    return shlex.quote(program)


def _unknown_flags(parser: argparse.ArgumentParser, command: str, unknown: list[str]) -> str:
    """One line for flags the command does not have, naming the closest one it has."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[
        command
    ]
    flags = [s for a in sub._actions for s in a.option_strings if s.startswith("--")]
    typed = next((u.split("=", 1)[0] for u in unknown if u.startswith("-")), unknown[0])
    close = difflib.get_close_matches(typed, flags, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else f"see backprop {command} --help"
    return f"backprop {command}: error: unrecognized argument {typed}; {hint}"


def _diverged_line(exc: TrainingDiverged, args: argparse.Namespace) -> str:
    """The divergence in the user's terms: the --lr typed, the scheduled rate when it
    happened, and a --lr to try (a tenth of the one given)."""
    given = getattr(args, "lr", None)
    return one_line(exc) if given is None else exc.describe("--lr", peak=given)
