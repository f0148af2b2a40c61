"""Share of a long run on a small table spent checkpointing (issue 28).

Trains scikit-learn's iris, written as a CSV with string labels, with
`backprop.run.train` and ``TrainConfig(epochs=3000)`` (``--epochs`` changes it), in one
process and in interleaved rounds (so drift on a shared machine hits all of them alike):
1. without a checkpoint,
2. with one saved after every epoch (``min_interval`` 0: what ``Checkpoint`` did before),
3. with one at the default ``CHECKPOINT_INTERVAL``,
and prints the median wall time of each, the share of the run spent checkpointing
(``1 - plain / with``), the load average before and after, and the date.
"""

from __future__ import annotations

import argparse
import datetime
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.datasets import load_iris

from backprop import checkpoint
from backprop.config import TrainConfig
from backprop.data import load_dataset
from backprop.run import train


def iris_csv(path: Path) -> Path:
    """Iris with a header and the species as strings, as a user exports it."""
    iris = load_iris(as_frame=True)
    frame = iris.frame.assign(species=np.asarray(iris.target_names)[iris.target])
    frame.drop(columns="target").to_csv(path, index=False)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3000, help="epochs (default 3000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        ds = load_dataset(str(iris_csv(Path(tmp) / "iris.csv")), target="species")
        config = TrainConfig(epochs=args.epochs)
        ck = Path(tmp) / "checkpoint.safetensors"

        def run(path: Path | None, interval: float) -> Callable[[], float]:
            def timed() -> float:
                ck.unlink(missing_ok=True)
                # The interval of the `Checkpoint` that `fit` makes: set here, as a test does.
                checkpoint.CHECKPOINT_INTERVAL = interval
                t = time.perf_counter()
                train(ds, config, progress=False, checkpoint=path)
                return time.perf_counter() - t

            return timed

        default = checkpoint.CHECKPOINT_INTERVAL
        modes = {
            "no checkpoint": run(None, default),
            "every epoch": run(ck, 0.0),
            "default": run(ck, default),
        }
        times: dict[str, list[float]] = {k: [] for k in modes}
        for r in range(args.rounds):
            names = list(modes)
            for name in names[r % len(names) :] + names[: r % len(names)]:
                times[name].append(modes[name]())
        checkpoint.CHECKPOINT_INTERVAL = default
    median = {k: float(np.median(v)) for k, v in times.items()}
    plain = median["no checkpoint"]
    print(f"iris CSV, {args.epochs} epochs, median of {args.rounds} rounds in one process")
    for name, seconds in median.items():
        share = "" if name == "no checkpoint" else f"  checkpointing {1 - plain / seconds:.1%}"
        label = f"{name} ({default:g} s)" if name == "default" else name
        print(f"  {label:<24} {seconds:7.2f} s{share}")
    after = os.getloadavg()
    print(
        f"load average {load_before[0]:.2f} before, {after[0]:.2f} after, "
        f"{os.cpu_count()} cores; {datetime.datetime.now().isoformat(timespec='seconds')}"
    )


if __name__ == "__main__":
    main()
