"""``backprop gradcheck``: the finite-difference table for the notes' forms and the engine
(`backprop.gradcheck`); exit status 1 if any check is not as expected."""

from __future__ import annotations

import argparse
import sys

from backprop.cli.argtypes import positive_float
from backprop.cli.common import EXIT_FAILED, HelpFormatter
from backprop.gradcheck import format_table, gradcheck_table

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    """``backprop gradcheck``: print the table and say whether every check passed."""
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


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``gradcheck`` and its flags to the ``backprop`` parser's subcommands."""
    p = sub.add_parser(
        "gradcheck",
        help="compare every gradient with centred finite differences",
        description="Compare the analytic gradients of the notes' six forms and of the MLP "
        "engine (depths 1-4, every activation, both losses) with centred finite differences "
        "in float64. Also shows the notes' as-written dJ/ds (page 3) failing. Exits 1 if any "
        "check is not as expected.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random problems")
    p.add_argument(
        "--threshold", type=positive_float, default=1e-7, help="largest relative error that passes"
    )
    p.add_argument("--notes-only", action="store_true", help="skip the engine checks")
    p.set_defaults(func=run)
