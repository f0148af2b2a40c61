"""Cost of one optimiser step: SGD vs momentum vs Adam (issue 12: Adam <= 1.10x SGD).

Times, for a 784-512-10 float32 network at batch 128,
1. the parameter update alone (``opt.step(grads)``) for each optimiser, and
2. the whole training step: ``MLP.loss_and_grads`` (the five GEMMs) plus the update,

each with the NumPy reference path and with the fused kernels (`backprop.kernels`). Each
variant is timed in interleaved rounds (so drift on a noisy machine hits all of them) and
the median per-step time is printed, with ratios to SGD on the same path and fused over
NumPy. BLAS threads: ``--threads`` (default 1, so the figures do not depend on whether
the other core is free).

Run: ``.venv/bin/python benchmarks/optim_step.py [--repeats N] [--threads T]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from backprop import MLP
from backprop.optim import make_optimizer

NAMES = ("sgd", "momentum", "nesterov", "adam", "adamw")
KINDS = ("numpy", "fused")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="rounds (default 30)")
    parser.add_argument("--steps", type=int, default=50, help="steps per round (default 50)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    args = parser.parse_args()

    import threadpoolctl

    threadpoolctl.threadpool_limits(args.threads)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((128, 784)).astype(np.float32)
    y = rng.integers(0, 10, 128)
    variants = [(name, kind) for name in NAMES for kind in KINDS]
    nets = {v: MLP([784, 512, 10], seed=0) for v in variants}
    opts = {
        v: make_optimizer(v[0], net.params, lr=1e-3, weight_decay=0.0) for v, net in nets.items()
    }
    for (_, kind), net in nets.items():
        net.fused = opts[_, kind].fused = kind == "fused"
    grads = {v: {k: np.zeros_like(p) for k, p in net.params.items()} for v, net in nets.items()}
    for v, net in nets.items():
        net.loss_and_grads(X, y, grads=grads[v], check=False)
        grads[v] = {k: g * 1e-3 for k, g in grads[v].items()}  # small, so nothing blows up

    def update(v: tuple[str, str]) -> None:
        opts[v].step(grads[v])

    def train_step(v: tuple[str, str]) -> None:
        nets[v].loss_and_grads(X, y, grads=grads[v], check=False)
        opts[v].step(grads[v])

    for label, fn in (("update only", update), ("training step", train_step)):
        times: dict[tuple[str, str], list[float]] = {v: [] for v in variants}
        for v in variants:  # warm-up (and the kernels' compilation)
            fn(v)
        for _ in range(args.repeats):
            for v in variants:
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    fn(v)
                times[v].append((time.perf_counter() - t0) / args.steps)
        med = {v: float(np.median(t)) for v, t in times.items()}
        print(
            f"{label} (784-512-10 float32, batch 128, {args.threads} BLAS thread(s)), "
            f"median of {args.repeats} rounds:"
        )
        for name in NAMES:
            cells = [
                f"{kind} {med[name, kind] * 1e6:8.1f} us "
                f"{med[name, kind] / med['sgd', kind]:5.2f}x sgd"
                for kind in KINDS
            ]
            speedup = med[name, "numpy"] / med[name, "fused"]
            print(f"  {name:9s} " + "   ".join(cells) + f"   fused {speedup:4.2f}x faster")


if __name__ == "__main__":
    main()
