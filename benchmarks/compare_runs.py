"""Are two run directories the same run, bit for bit, apart from wall-clock seconds?

    python benchmarks/compare_runs.py DIR_A DIR_B

Compares what ``backprop train`` wrote into each: every tensor of ``model.safetensors``
(values and dtypes) and its metadata, ``metrics.json`` without its seconds, and
``history.csv`` without its ``seconds`` column. Prints one line per file and exits 0 when
all are identical, 1 otherwise. Used to check that a refactor changed nothing (issue 23:
a digits run at two commits, the same flags and seed).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import safetensors
import safetensors.numpy

SECONDS = ("train_seconds", "run_seconds")


def model_file(run: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The tensors (as bytes and dtype) and the metadata of ``run/model.safetensors``."""
    path = run / "model.safetensors"
    tensors = safetensors.numpy.load_file(str(path))
    with safetensors.safe_open(str(path), framework="numpy") as f:
        meta = f.metadata() or {}
    return {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in tensors.items()}, meta


def metrics(run: Path) -> dict[str, Any]:
    """``metrics.json`` without the wall-clock seconds."""
    m = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    return {k: v for k, v in m.items() if k not in SECONDS}


def history(run: Path) -> list[dict[str, str]]:
    """``history.csv``'s rows without the ``seconds`` column."""
    with open(run / "history.csv", newline="", encoding="utf-8") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


CHECKS = {"model.safetensors": model_file, "metrics.json": metrics, "history.csv": history}


def compare(a: Path, b: Path) -> dict[str, bool]:
    """File name -> whether the two runs' files are identical (as above)."""
    return {name: read(a) == read(b) for name, read in CHECKS.items()}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    same = compare(Path(argv[0]), Path(argv[1]))
    for name, ok in same.items():
        print(f"{name}: {'identical' if ok else 'DIFFERENT'}")
    return 0 if all(same.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
