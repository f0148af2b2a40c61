"""The published MLP recipes on Fashion-MNIST, rerun here beside ``--recipe best`` (issue 15).

Run: ``.venv/bin/python benchmarks/published_mlps.py [NAME ...] [--record FILE]`` with
names among `CONTENDERS` (default: all). Each contender trains on the 60,000 training
images and reports its test accuracy on the 10,000 test images and its training time, in
this process, on every core (``torch.set_num_threads(os.cpu_count())``; scikit-learn uses
NumPy's BLAS threads):

- ``sklearn-100``: scikit-learn's ``MLPClassifier()`` defaults, one hidden layer of 100
  (Adam, lr 1e-3, batch 200, up to 200 epochs stopped by the training loss), pixels / 255;
- ``sklearn-1024-early``: ``MLPClassifier((1024,), early_stopping=True)``;
- ``torch-2048-dropout``: PyTorch 784-2048-10 ReLU, dropout 0.5 on the hidden layer,
  AdamW (lr 1e-3, weight decay 0.01), one-cycle schedule peaking at 3e-3, 40 epochs of
  batch 128, inputs standardised as backprop's (pixel mean, one scale).

``--record FILE`` merges each result (accuracy, fit seconds, settings, machine, load
before and after, date) into the JSON file under the contender's name; docs/training.md
quotes ``benchmarks/results/published-mlps.json`` written this way. Needs PyTorch (the
test extra), never used by the library.
"""

from __future__ import annotations

import argparse
import datetime
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from recipe import machine, write_record  # benchmarks/ is on sys.path when a script here runs

from backprop.data import Preprocessor, load_dataset


def _sklearn(**kw: Any) -> Callable[[Any], tuple[float, dict[str, Any]]]:
    def run(ds: Any) -> tuple[float, dict[str, Any]]:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        clf = MLPClassifier(random_state=0, **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(ds.X_train / 255.0, ds.y_train)
        accuracy = float(clf.score(ds.X_test / 255.0, ds.y_test))
        return accuracy, {"epochs_run": int(clf.n_iter_), **{k: str(v) for k, v in kw.items()}}

    return run


def torch_2048_dropout(ds: Any, epochs: int = 40, batch: int = 128) -> tuple[float, dict[str, Any]]:
    """784-2048-10, dropout 0.5, AdamW, one-cycle: the PyTorch reference of the issue."""
    import torch

    torch.manual_seed(0)
    pre = Preprocessor.fit(ds.X_train, input_scale=ds.input_scale, image_shape=ds.image_shape)
    X = torch.from_numpy(pre.transform(ds.X_train, dtype=np.float32, warn=False))
    Xt = torch.from_numpy(pre.transform(ds.X_test, dtype=np.float32, warn=False))
    y = torch.from_numpy(np.asarray(ds.y_train, np.int64))
    net = torch.nn.Sequential(
        torch.nn.Linear(X.shape[1], 2048),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.5),
        torch.nn.Linear(2048, 10),
    )
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.01)
    steps = -(-len(X) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=3e-3, epochs=epochs, steps_per_epoch=steps
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(X))
        for i in range(steps):
            idx = order[i * batch : (i + 1) * batch]
            opt.zero_grad(set_to_none=True)
            loss_fn(net(X[idx]), y[idx]).backward()
            opt.step()
            sched.step()
    net.eval()
    with torch.no_grad():
        predicted = net(Xt).argmax(1).numpy()
    accuracy = float(np.mean(predicted == np.asarray(ds.y_test)))
    return accuracy, {"epochs_run": epochs, "batch_size": batch, "torch": torch.__version__}


#: name -> function(dataset) -> (test accuracy, settings)
CONTENDERS: dict[str, Callable[[Any], tuple[float, dict[str, Any]]]] = {
    "sklearn-100": _sklearn(),
    "sklearn-1024-early": _sklearn(hidden_layer_sizes=(1024,), early_stopping=True),
    "torch-2048-dropout": torch_2048_dropout,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"among {', '.join(CONTENDERS)} (default: all)")
    parser.add_argument("--record", type=Path, help="merge the results into this JSON file")
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in CONTENDERS]
    if unknown:
        parser.error(f"unknown contender {unknown[0]!r}; choose among {', '.join(CONTENDERS)}")
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    ds = load_dataset("fashion-mnist")
    for name in args.names or list(CONTENDERS):
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        accuracy, settings = CONTENDERS[name](ds)
        seconds = time.perf_counter() - t0
        print(f"{name:20s} accuracy={accuracy:.4f} fit_seconds={seconds:.1f}", flush=True)
        if args.record is not None:
            entry = {
                "accuracy": accuracy,
                "fit_seconds": seconds,
                **settings,
                "command": f"benchmarks/published_mlps.py {name}",
                "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "machine": machine(),
                "load_average_before": list(load_before),
                "load_average_after": list(os.getloadavg()),
            }
            write_record(args.record, name, entry)


if __name__ == "__main__":
    main()
