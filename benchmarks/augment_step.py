"""Cost of on-the-fly augmentation: a training step with and without it (issue 15).

Times, on Fashion-MNIST training batches (preprocessed as `backprop.train` does), for the
default network (784-1024-10, float32, batch 128, AdamW, one BLAS thread; ``--hidden`` and
``--batch`` change it):
1. the training step alone (``MLP.loss_and_grads`` + the optimiser update),
2. the augmentation of the batch alone, for each ``--augment`` spec given, and
3. for each spec, ``Trainer.run_epoch`` over 4096 images without augmentation, with it
   in the main thread (``augment_thread=False``) and with it in the worker thread (the
   default), per step,
in interleaved rounds (so drift on a shared machine hits all of them alike), and prints
the median per-step times, the added share of the step and the load average.
``--record FILE`` also writes them, with the machine, the load and the date, as JSON.

"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from recipe import machine  # benchmarks/ is on sys.path when a script here runs

from backprop import MLP
from backprop._fileutil import atomic_path
from backprop.augment import Augmenter
from backprop.data import Preprocessor, load_dataset
from backprop.optim import make_optimizer
from backprop.threads import limit as limit_threads
from backprop.trainer import Trainer

SPECS = (
    "flip=0.5,shift=1",  # the best recipe's (backprop.recipes)
    "shift=2",
    "shift=2,rotate=10,scale=0.1",
    "shift=2,rotate=10,scale=0.1,elastic=2,sigma=4",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="rounds (default 15)")
    parser.add_argument("--steps", type=int, default=10, help="steps per round (default 10)")
    parser.add_argument("--batch", type=int, default=128, help="batch size (default 128)")
    parser.add_argument("--spec", nargs="+", default=list(SPECS), help="augment specs")
    parser.add_argument("--hidden", type=int, nargs="+", default=[1024], help="hidden sizes")
    parser.add_argument("--record", type=Path, help="also write the medians to this JSON file")
    args = parser.parse_args()

    ds = load_dataset("fashion-mnist")
    pre = Preprocessor.fit(ds.X_train, input_scale=ds.input_scale, image_shape=ds.image_shape)
    X = pre.transform(ds.X_train[:4096], dtype=np.float32, warn=False)
    y = ds.y_train[:4096]
    blank = pre.transform(np.zeros((1, ds.n_features)), dtype=np.float32, warn=False)[0]
    augs = {s: Augmenter(s, ds.image_shape, blank) for s in args.spec}
    net = MLP([ds.n_features, *args.hidden, ds.n_outputs], seed=0)
    opt = make_optimizer("adamw", net.params, lr=1e-4, weight_decay=0.01)
    grads = {k: np.empty_like(p) for k, p in net.params.items()}
    rng = np.random.default_rng(0)
    b = args.batch
    Xb = np.empty((b, X.shape[1]), np.float32)
    times: dict[str, list[float]] = {"step": [], **{s: [] for s in augs}}
    epochs = {"plain": Trainer(net, opt, batch_size=b, seed=0)}
    for s, aug in augs.items():
        for thread in (False, True):
            epochs[f"{s} {'worker' if thread else 'main'}"] = Trainer(
                net, opt, batch_size=b, seed=0, augment=aug, augment_thread=thread
            )
    epoch_times: dict[str, list[float]] = {name: [] for name in epochs}
    n_steps = -(-len(X) // b)
    load0 = os.getloadavg()
    with limit_threads(net.layer_sizes, b, threads=1):
        for _ in range(args.rounds):
            idx = rng.integers(0, len(X), b)
            for name in times:
                t0 = time.perf_counter()
                for _step in range(args.steps):
                    np.take(X, idx, axis=0, out=Xb)
                    if name == "step":
                        net.loss_and_grads(Xb, y[idx], grads=grads, check=False)
                        opt.step(grads)
                    else:
                        augs[name](Xb, rng)
                times[name].append((time.perf_counter() - t0) / args.steps)
            for name, trainer in epochs.items():
                t0 = time.perf_counter()
                trainer.run_epoch(X, y)
                epoch_times[name].append((time.perf_counter() - t0) / n_steps)
    load1 = os.getloadavg()
    step = float(np.median(times["step"]))
    print(
        f"cores {os.cpu_count()}, load average (1 min) {load0[0]:.2f} before, {load1[0]:.2f} after"
    )
    sizes = "-".join(map(str, net.layer_sizes))
    print(f"training step ({sizes}, batch {b}, 1 BLAS thread): {step * 1e3:.1f} ms")
    warp = {s: float(np.median(times[s])) for s in augs}
    for s, t in warp.items():
        print(f"augment {s}: {t * 1e3:.1f} ms = +{100 * t / step:.0f}% of the step")
    per_step = {name: float(np.median(t)) for name, t in epoch_times.items()}
    plain = per_step["plain"]
    print(f"Trainer.run_epoch per step, no augmentation: {plain * 1e3:.1f} ms")
    for name, t in per_step.items():
        if name != "plain":
            print(f"  augment {name} thread: {t * 1e3:.1f} ms = +{100 * (t / plain - 1):.0f}%")
    if args.record is not None:
        record = {
            "network": sizes,
            "batch": b,
            "step_ms": step * 1e3,
            "warp_ms": {s: t * 1e3 for s, t in warp.items()},
            "epoch_step_ms": {name: t * 1e3 for name, t in per_step.items()},
            "added": {name: t / plain - 1 for name, t in per_step.items() if name != "plain"},
            "rounds": args.rounds,
            "machine": machine(),
            "load_average_before": list(load0),
            "load_average_after": list(load1),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "command": "benchmarks/augment_step.py " + " ".join(sys.argv[1:]),
        }
        args.record.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(args.record) as tmp:
            tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
