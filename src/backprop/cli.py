"""The ``backprop`` command line.

Subcommands:

- ``backprop gradcheck``: the finite-difference table for the notes' forms and the engine.

Every user mistake ends in one line on stderr naming the problem and a non-zero exit
status, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from backprop import __version__

__all__ = ["build_parser", "main"]

EXIT_USAGE = 2  # what argparse itself uses for a bad flag


class CLIError(Exception):
    """A user's mistake: printed as one line, exit status 2."""


def _cmd_gradcheck(args: argparse.Namespace) -> int:
    from backprop.gradcheck import format_table, gradcheck_table

    rows = gradcheck_table(seed=args.seed, engine=not args.notes_only)
    print(format_table(rows, args.threshold))
    bad = [r for r in rows if not r.ok(args.threshold)]
    if bad:
        print(
            f"{len(bad)} check(s) not as expected (threshold {args.threshold:g})", file=sys.stderr
        )
        return 1
    print(f"all {len(rows)} checks as expected (threshold {args.threshold:g})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``backprop`` command."""
    parser = argparse.ArgumentParser(
        prog="backprop",
        description="Backpropagation lecture notes as code: check, train, evaluate, predict.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "gradcheck",
        help="compare every gradient with centred finite differences",
        description="Compare the analytic gradients of the notes' six forms and of the MLP "
        "engine (depths 1-4, every activation, both losses) with centred finite differences "
        "in float64. Also shows the notes' as-written dJ/ds (page 3) failing. Exits 1 if any "
        "check is not as expected.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random problems")
    p.add_argument(
        "--threshold", type=float, default=1e-7, help="largest relative error that passes"
    )
    p.add_argument("--notes-only", action="store_true", help="skip the engine checks")
    p.set_defaults(func=_cmd_gradcheck)
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
        0 on success, 1 when a check or a run fails, 2 for a usage or input error.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (CLIError, ValueError, OSError) as exc:
        # A user's mistake (bad path, bad file, bad value): one line, no traceback.
        print(f"backprop {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"backprop {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
