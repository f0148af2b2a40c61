"""``backprop export MODEL --to onnx|torch``: a model file as an ONNX file or as a PyTorch
state dict that takes raw input (`backprop.exporter`), written atomically."""

from __future__ import annotations

import argparse

from backprop.cli.common import HelpFormatter
from backprop.exporter import EXPORTERS, export

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    """``backprop export``: write the export, then its path on stdout."""
    print(export(args.model, args.to, args.out, overwrite=args.force))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``export`` and its flags to the ``backprop`` parser's subcommands."""
    p = sub.add_parser(
        "export",
        help="a saved model as ONNX, or as a PyTorch state dict that takes raw input",
        description="Export a saved model with its input preprocessing inside, so the "
        "exported file runs on raw input as `backprop predict` does. --to onnx: the whole "
        "model, raw input to what `predict --proba` gives (a regressor's values in the "
        "target's units), class labels and the source in the metadata (needs the onnx "
        "package: pip install 'backprop-mlp[export]'). --to torch: a safetensors state dict for "
        "nn.Sequential(Linear, act, Linear, ...) whose first Linear has the preprocessing "
        "folded in. An existing FILE is kept unless --force.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", help="a .safetensors file written by train")
    p.add_argument("--to", required=True, choices=list(EXPORTERS), help="the format")
    p.add_argument(
        "--out",
        "-o",
        metavar="FILE",
        default=None,
        help="where to write (default: MODEL with .onnx or .torch.safetensors for .safetensors)",
    )
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    p.set_defaults(func=run)
