"""The measurement behind `backprop.threads.WORK_PER_THREAD`: a step at 1 and 2 BLAS threads.

For each (layer sizes, batch) it times epochs of `Trainer.run_epoch` (AdamW, float32) with
OpenBLAS limited to 1 thread and to 2, interleaved round after round, and prints the
median milliseconds per step, the largest product's MFLOP and the 2-thread/1-thread time
ratio: the rule should give one thread where the ratio is above 1. ``--busy`` runs the
whole table again with one core kept busy by another process. Run:

    .venv/bin/python benchmarks/threads.py [--rounds 5] [--busy]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np
from threadpoolctl import ThreadpoolController

from backprop import MLP
from backprop.optim import make_optimizer
from backprop.threads import choose_threads, largest_product_flops
from backprop.trainer import Trainer

CASES = [
    ([64, 100, 10], 200),  # digits, scikit-learn's defaults
    ([64, 1024, 10], 128),  # digits, backprop's default recipe
    ([784, 128, 10], 128),
    ([784, 512, 10], 32),
    ([784, 256, 10], 128),
    ([784, 512, 10], 128),  # the benchmark's headline
    ([784, 1024, 10], 128),  # Fashion-MNIST, the default recipe
    ([784, 512, 10], 512),
]


def step_ms(sizes: list[int], batch: int, rounds: int, steps: int = 60) -> dict[int, float]:
    """Median milliseconds per step at 1 and at 2 BLAS threads."""
    ctl = ThreadpoolController()
    rng = np.random.default_rng(0)
    X = rng.random((batch * steps, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], batch * steps)
    net = MLP(sizes, seed=0)
    trainer = Trainer(net, make_optimizer("adamw", net.params, lr=1e-3), batch_size=batch)
    trainer.run_epoch(X[: 5 * batch], y[: 5 * batch])  # warm-up
    times: dict[int, list[float]] = {1: [], 2: []}
    for r in range(rounds):
        for t in (1, 2) if r % 2 == 0 else (2, 1):
            with ctl.limit(limits=t, user_api="blas"):
                t0 = time.perf_counter()
                trainer.run_epoch(X, y)
                times[t].append((time.perf_counter() - t0) / steps * 1e3)
    return {t: float(np.median(v)) for t, v in times.items()}


def table(rounds: int) -> None:
    """Print one line per case."""
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for sizes, batch in CASES:
        ms = step_ms(sizes, batch, rounds)
        rule = choose_threads(sizes, batch, env={}, available=2)
        print(
            f"{'-'.join(map(str, sizes)):>14} batch {batch:>4}: "
            f"{largest_product_flops(sizes, batch) / 1e6:7.1f} MFLOP  "
            f"1 thread {ms[1]:7.3f} ms  2 threads {ms[2]:7.3f} ms  "
            f"2/1 {ms[2] / ms[1]:5.2f}  rule {rule}",
            flush=True,
        )


def main() -> None:
    """Parse the flags and print the table (idle, then busy if asked)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--busy", action="store_true", help="also with one core kept busy")
    args = p.parse_args()
    print("as the machine is:")
    table(args.rounds)
    if args.busy:
        spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            print("with one core kept busy by another process:")
            table(args.rounds)
        finally:
            spin.kill()
            spin.wait()


if __name__ == "__main__":
    main()
