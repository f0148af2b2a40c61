"""Where the fused step's time goes, part by part (issue 24, item 4).

    python benchmarks/step_parts.py [--hidden 512] [--batch 128] [--optimizer sgd] [--rounds 7]

The 784-H-10 float32 step of `Trainer.step` with the fused kernels, taken apart: each part
is the same call on arrays of the same shapes (fresh ones, not the network's), repeated
``--calls`` times per round; rounds interleave the parts so that load hits all alike.
Printed: median microseconds per call of each part, and its share of one whole
`Trainer.step` timed in the same rounds; "the rest" is the step minus its parts (Python,
dict look-ups, the divergence check), and "epoch per step" an epoch of `Trainer.run_epoch`
over its steps (the step plus the batch gather and the loop). Parts:

- gather: ``np.take(X, idx, axis=0, out=)`` of one batch (outside `Trainer.step`);
- products: the five matrix products (X W1, A W2, A^T delta2, delta2 W2^T, X^T delta1);
- bias + ReLU + mask: the fused kernel ``bias_relu_mask`` (Z += b, A = ReLU(Z), F = Z > 0);
- loss delta: the fused softmax cross-entropy (J and delta = (P - Y) / n);
- bias gradients: ``1_n^T delta`` for both layers;
- mask product: delta1 = (delta2 W2^T) * F;
- optimiser: ``optimizer.step(grads)`` (fused), on copies of the parameters.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from contenders import D_IN, LR, N_CLASSES, batch_slices, make_data
from timing import interleave, median

from backprop import MLP, kernels
from backprop.losses import FUSED_LOSSES
from backprop.optim import make_optimizer
from backprop.trainer import Trainer


def repeated(f: Callable[[], object], calls: int) -> Callable[[], float]:
    """A timed runner: ``calls`` calls of ``f``, returning seconds per call."""

    def run() -> float:
        t0 = time.perf_counter()
        for _ in range(calls):
            f()
        return (time.perf_counter() - t0) / calls

    return run


def parts(H: int, B: int, opt: str, n: int) -> tuple[dict[str, Callable[[], object]], int]:
    """The parts of one step (name -> one call), the whole step, and an epoch's steps."""
    X, y = make_data(n)
    net = MLP([D_IN, H, N_CLASSES], seed=0)
    trainer = Trainer(net, make_optimizer(opt, net.params, lr=LR[opt]), batch_size=B, seed=0)
    net.fused = trainer.optimizer.fused = True
    kern = kernels.get()
    loss = FUSED_LOSSES["softmax_cross_entropy"]
    rng = np.random.default_rng(0)
    idx = rng.permutation(n)[:B]
    Xb = np.take(X, idx, axis=0)
    yb = y[idx]
    P = net.params
    Z1, A1, F1 = (np.empty((B, H), np.float32) for _ in range(3))
    S, D1 = np.empty((B, N_CLASSES), np.float32), np.empty((B, H), np.float32)
    np.matmul(Xb, P["W1"], out=Z1)
    kern.bias_relu_mask(Z1, P["b1"], A1, F1)
    np.matmul(A1, P["W2"], out=S)
    grads = {k: np.zeros_like(p) for k, p in P.items()}
    ones = np.ones((1, B), np.float32)
    # The optimiser part updates copies with zero gradients: the same arithmetic, and the
    # network the whole step trains is not moved by thousands of repeated updates.
    copies = {k: p.copy() for k, p in P.items()}
    optimiser = make_optimizer(opt, copies, lr=LR[opt])
    optimiser.fused = True
    zeros = {k: np.zeros_like(p) for k, p in P.items()}
    S0 = S.copy()

    def products() -> None:
        np.matmul(Xb, P["W1"], out=Z1)
        np.matmul(A1, P["W2"], out=S)
        np.matmul(A1.T, S, out=grads["W2"])
        np.matmul(S, P["W2"].T, out=D1)
        np.matmul(Xb.T, D1, out=grads["W1"])

    def loss_delta() -> None:
        S[...] = S0  # the kernel overwrites the scores with delta
        loss(S, yb, out=S)

    def bias_grads() -> None:
        np.matmul(ones, S, out=grads["b2"].reshape(1, -1))
        np.matmul(ones, D1, out=grads["b1"].reshape(1, -1))

    steps = len(batch_slices(n, B))
    return {
        "gather": lambda: np.take(X, idx, axis=0, out=Xb),
        "products": products,
        "bias + ReLU + mask": lambda: kern.bias_relu_mask(Z1, P["b1"], A1, F1),
        "loss delta": loss_delta,
        "bias gradients": bias_grads,
        "mask product": lambda: np.multiply(D1, F1, out=D1),
        "optimiser": lambda: optimiser.step(zeros),
        "Trainer.step": lambda: trainer.step(Xb, yb),
        "epoch per step": lambda: trainer.run_epoch(X, y),
    }, steps


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--optimizer", default="sgd", choices=sorted(LR))
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--calls", type=int, default=200, help="calls of a part per round")
    p.add_argument("--samples", type=int, default=12800, help="rows of the timed epoch")
    args = p.parse_args(argv)
    todo, steps = parts(args.hidden, args.batch, args.optimizer, args.samples)
    runners = {
        k: repeated(f, 1) if k == "epoch per step" else repeated(f, args.calls)
        for k, f in todo.items()
    }
    for run in runners.values():  # warm-up: kernels compiled, buffers, BLAS threads
        run()
    times = interleave(runners, args.rounds)
    us = {k: 1e6 * median(v) for k, v in times.items()}
    us["epoch per step"] /= steps
    step = us["Trainer.step"]
    inside = [k for k in us if k not in ("gather", "Trainer.step", "epoch per step")]
    us["the rest (step - parts)"] = step - sum(us[k] for k in inside)
    print(f"load average {os.getloadavg()[0]:.2f} (1 min)")
    print(f"784-{args.hidden}-10 float32, batch {args.batch}, {args.optimizer}, fused kernels;")
    print(f"{args.rounds} rounds, medians")
    print(f"{'part':<26}{'us/call':>10}{'/ step':>9}")
    for k, v in us.items():
        print(f"{k:<26}{v:10.1f}{v / step:9.3f}")


if __name__ == "__main__":
    main()
