"""``backprop explore``: start the local web app that shows the backward pass live
(`backprop.explore`, docs/explore.md)."""

from __future__ import annotations

import argparse

from backprop.cli.argtypes import port
from backprop.cli.common import HelpFormatter

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    """``backprop explore``: serve the app until Ctrl-C."""
    # Imported here: saves every other command loading the web app and http.server.
    from backprop.explore import serve

    serve(args.port, open_browser=not args.no_browser, data=args.data, model=args.model)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``explore`` and its flags to the ``backprop`` parser's subcommands."""
    p = sub.add_parser(
        "explore",
        help="see the backward pass live in the browser",
        description="Start a local web app (127.0.0.1 only, a random token in its URL) that "
        "trains a network step by step and shows every matrix of the notes for the current "
        "batch, the chain rule of any weight with a finite-difference check, the loss curves "
        "and the decision boundary. Ctrl-C stops it. See docs/explore.md.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--port", type=port, default=0, help="port on 127.0.0.1 (0: a free one)")
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
    p.set_defaults(func=run)
