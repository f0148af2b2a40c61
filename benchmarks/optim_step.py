"""Cost of one optimiser step: SGD vs momentum vs Adam (issue 5: Adam <= 1.10x SGD).

Times, for a 784-512-10 float32 network at batch 128,
1. the parameter update alone (``opt.step(grads)``) for each optimiser, and
2. the whole training step: ``MLP.loss_and_grads`` (the five GEMMs) plus the update.

Each variant is timed in interleaved rounds (so drift on a noisy machine hits all of them)
and the median per-step time is printed, with ratios to SGD.

Run: ``.venv/bin/python benchmarks/optim_step.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from backprop import MLP
from backprop.optim import make_optimizer

NAMES = ("sgd", "momentum", "nesterov", "adam", "adamw")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="rounds (default 30)")
    parser.add_argument("--steps", type=int, default=50, help="steps per round (default 50)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    X = rng.standard_normal((128, 784)).astype(np.float32)
    y = rng.integers(0, 10, 128)
    nets = {name: MLP([784, 512, 10], seed=0) for name in NAMES}
    opts = {
        name: make_optimizer(name, net.params, lr=1e-3, weight_decay=0.0)
        for name, net in nets.items()
    }
    grads = {
        name: {k: np.zeros_like(p) for k, p in net.params.items()} for name, net in nets.items()
    }
    for name, net in nets.items():
        net.loss_and_grads(X, y, grads=grads[name], check=False)
        grads[name] = {k: g * 1e-3 for k, g in grads[name].items()}  # small, so nothing blows up

    def update(name: str) -> None:
        opts[name].step(grads[name])

    def train_step(name: str) -> None:
        nets[name].loss_and_grads(X, y, grads=grads[name], check=False)
        opts[name].step(grads[name])

    for label, fn in (("update only", update), ("training step", train_step)):
        times: dict[str, list[float]] = {name: [] for name in NAMES}
        for name in NAMES:  # warm-up
            fn(name)
        for _ in range(args.repeats):
            for name in NAMES:
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    fn(name)
                times[name].append((time.perf_counter() - t0) / args.steps)
        base = float(np.median(times["sgd"]))
        print(f"{label} (784-512-10 float32, batch 128), median of {args.repeats} rounds:")
        for name in NAMES:
            med = float(np.median(times[name]))
            print(f"  {name:9s} {med * 1e6:8.1f} us   {med / base:5.2f}x sgd")


if __name__ == "__main__":
    main()
