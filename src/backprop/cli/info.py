"""``backprop info MODEL``: what a model file holds (architecture, labels, the input it
expects, training config, format version), as text or JSON. The file is fully validated
first (`backprop.io.load`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from backprop.cli.common import HelpFormatter
from backprop.config import AUTO_EPOCHS, AUTO_MIN_STEPS
from backprop.data.formats import printable
from backprop.io import Model, load, read_metadata

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    """``backprop info``: print what the model file holds."""
    model = load(args.model)  # validates the whole file first
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
    config = model.config
    if "dataset" in config:  # where the model was trained (a file's absolute path)
        target = config.get("target")
        drop = config.get("drop") or []
        show(
            f"data:            {config['dataset']}"
            + ("" if target is None else f", target column {target!r}")
            + (f", dropped {', '.join(map(str, drop))}" if drop else "")
        )
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


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``info`` and its flags to the ``backprop`` parser's subcommands."""
    p = sub.add_parser(
        "info",
        help="what a model file holds",
        description="Show a model file's architecture, parameter count, activation, loss, "
        "class labels, what input it expects (image shape or feature names, raw range, "
        "input scale, standardisation), training config and file format version (the file "
        "is fully validated first).",
        formatter_class=HelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", help="a .safetensors file written by train")
    p.add_argument("--json", action="store_true", help="print the information as JSON")
    p.set_defaults(func=run)
