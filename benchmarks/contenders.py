"""The benchmark's contenders: one timed epoch of each system, and the registry of them.

A contender of the training grid is one entry in `CONTENDERS`: a builder that, given the
data and one configuration, returns a callable running one epoch and returning its
seconds. PyTorch runs in a process of its own (`timing.TorchWorker`); the requests that
process answers are `torch_worker_main`'s. scikit-learn and PyTorch are imported only
inside the functions that use them, so the benchmark's process never loads PyTorch.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from timing import TorchWorker

from backprop import MLP
from backprop.config import TrainConfig, resolve_epochs
from backprop.data import load_dataset
from backprop.optim import make_optimizer
from backprop.run import prepare
from backprop.trainer import Trainer
from backprop.training import fit

D_IN, N_CLASSES = 784, 10
LR = {"sgd": 0.01, "adam": 1e-3}
OPTIMISERS = ("sgd", "adam")


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random Fashion-MNIST-shaped data: X (n, 784) float32 in [0, 1), y (n,) in 0..9."""
    rng = np.random.default_rng(seed)
    return rng.random((n, D_IN), dtype=np.float32), rng.integers(0, N_CLASSES, n)


def batch_slices(n: int, B: int) -> list[slice]:
    """The batches of an epoch, last partial one included (as `training.fit` does)."""
    return [slice(s, min(s + B, n)) for s in range(0, n, B)]


# ----------------------------------------------------------------------------- backprop
def engine_epoch(
    X: np.ndarray, y: np.ndarray, H: int, B: int, opt: str, fused: bool = True
) -> Callable[[], float]:
    """One epoch of the engine, `Trainer.run_epoch`: the step every front end drives.

    ``fused``: with the one-pass kernels (`backprop.kernels`), as `Trainer.fit` runs a
    Fashion-MNIST-sized network; False gives the NumPy reference path.
    """
    net = MLP([D_IN, H, N_CLASSES], seed=0)
    trainer = Trainer(net, make_optimizer(opt, net.params, lr=LR[opt]), batch_size=B, seed=0)
    net.fused = trainer.optimizer.fused = fused

    def run() -> float:
        t0 = time.perf_counter()
        trainer.run_epoch(X, y)
        return time.perf_counter() - t0

    return run


def fit_epoch(X: np.ndarray, y: np.ndarray, H: int, B: int, opt: str) -> Callable[[], float]:
    """One epoch of `backprop.training.fit` (validation off, constant learning rate)."""
    net = MLP([D_IN, H, N_CLASSES], seed=0)
    cfg = TrainConfig(
        hidden=(H,), epochs=1, batch_size=B, optimizer=opt, lr=LR[opt], schedule="constant"
    )

    def run() -> float:
        t0 = time.perf_counter()
        fit(net, X, y, config=cfg, progress=False)
        return time.perf_counter() - t0

    return run


def gemm_floor(X: np.ndarray, H: int, B: int) -> Callable[[], float]:
    """The five matrix products of an epoch's steps, same shapes and calls, nothing else.

    Forward X W1 and A W2; backward A^T delta2, delta2 W2^T and X^T delta1 (the engine
    never computes dJ/dX). The operands are fixed arrays, so this is the BLAS time alone.
    """
    rng = np.random.default_rng(1)
    W1 = rng.standard_normal((D_IN, H), dtype=np.float32) * 0.05
    W2 = rng.standard_normal((H, N_CLASSES), dtype=np.float32) * 0.05
    gW1, gW2 = np.empty_like(W1), np.empty_like(W2)
    Xb_full = np.ascontiguousarray(X[:B])
    Z1_full = np.abs(rng.standard_normal((B, H), dtype=np.float32))
    S_full = rng.standard_normal((B, N_CLASSES), dtype=np.float32)
    D1_full = np.empty((B, H), np.float32)
    sizes = [s.stop - s.start for s in batch_slices(len(X), B)]

    def run() -> float:
        t0 = time.perf_counter()
        for b in sizes:
            Xb, Z1, S, D1 = Xb_full[:b], Z1_full[:b], S_full[:b], D1_full[:b]
            np.matmul(Xb, W1, out=Z1)
            np.matmul(Z1, W2, out=S)
            np.matmul(Z1.T, S, out=gW2)
            np.matmul(S, W2.T, out=D1)
            np.matmul(Xb.T, D1, out=gW1)
        return time.perf_counter() - t0

    return run


# ----------------------------------------------------------------------------- PyTorch
def torch_model(H: int, d: int = D_IN, k: int = N_CLASSES) -> Any:
    """d-H-k (default 784-H-10) ReLU network in PyTorch, float32."""
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(d, H), torch.nn.ReLU(), torch.nn.Linear(H, k))


def torch_epoch(X: np.ndarray, y: np.ndarray, H: int, B: int, opt: str) -> Callable[[], float]:
    """One epoch of the usual PyTorch eager loop, batches gathered by tensor indexing."""
    import torch

    model = torch_model(H)
    cls = torch.optim.SGD if opt == "sgd" else torch.optim.Adam
    optim = cls(model.parameters(), lr=LR[opt])
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    gen = torch.Generator().manual_seed(0)
    n = len(X)

    def run() -> float:
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=gen)
        for s in batch_slices(n, B):
            idx = order[s]
            xb, yb = Xt[idx], yt[idx]
            optim.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optim.step()
        return time.perf_counter() - t0

    return run


def tta_torch(epochs: int | None, dataset: str = "fashion-mnist") -> list[tuple[float, float]]:
    """PyTorch with `train`'s recipe: same split, standardisation, optimiser, cosine schedule,
    batch size and epochs; returns (seconds, test accuracy) after each epoch."""
    import torch

    ds = load_dataset(dataset)
    cfg = TrainConfig() if epochs is None else TrainConfig(epochs=epochs)
    yte = np.asarray(ds.y_test)
    t0 = time.perf_counter()
    # The same split, preprocessing and schedule for PyTorch.
    prepared = prepare(ds, cfg)
    pre, y_tr = prepared.preprocessor, prepared.y_train
    X_tr = np.asarray(prepared.X_train)
    Xv = torch.from_numpy(np.asarray(prepared.X_val))
    Xtest = torch.from_numpy(pre.transform(ds.X_test, warn=False))
    classes = np.unique(ds.y_train)
    ytr = torch.from_numpy(np.searchsorted(classes, y_tr).astype(np.int64))
    Xtr = torch.from_numpy(X_tr.astype(np.float32))
    model_t = torch_model(cfg.hidden[0], Xtr.shape[1], len(classes))
    opt_cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[cfg.optimizer]
    opt_t = opt_cls(model_t.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = -(-len(Xtr) // cfg.batch_size)
    n_epochs = resolve_epochs(cfg, len(Xtr))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt_t, T_max=n_epochs * steps)
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(cfg.seed)
    paused, curve = 0.0, []
    for _ in range(n_epochs):
        order = torch.randperm(len(Xtr), generator=gen)
        for s in batch_slices(len(Xtr), cfg.batch_size):
            idx = order[s]
            opt_t.zero_grad(set_to_none=True)
            loss_fn(model_t(Xtr[idx]), ytr[idx]).backward()
            opt_t.step()
            sched.step()
        with torch.inference_mode():
            model_t(Xv)  # validation pass, as `fit` does after every epoch
            now = time.perf_counter()
            pred = classes[model_t(Xtest).argmax(dim=1).numpy()]
        curve.append((now - t0 - paused, float(np.mean(pred == yte))))
        paused += time.perf_counter() - now
    return curve


def torch_worker_main(threads: int) -> None:
    """The loop of `timing.TorchWorker`'s process: answers one JSON line per request."""
    import torch

    torch.set_num_threads(threads)
    runners: list[Callable[[], float]] = []

    def make_epoch(n: int, H: int, B: int, opt: str) -> int:
        X, y = make_data(n)
        torch_epoch(X[: 8 * B], y[: 8 * B], H, B, "sgd")()  # warm-up
        runners.append(torch_epoch(X, y, H, B, opt))
        return len(runners) - 1

    def make_predict(H: int, n: int) -> int:
        X, _ = make_data(n, seed=2)
        model, Xt = torch_model(H), torch.from_numpy(X)

        def run() -> float:
            t0 = time.perf_counter()
            with torch.inference_mode():
                model(Xt).argmax(dim=1).numpy()
            return time.perf_counter() - t0

        run()
        runners.append(run)
        return len(runners) - 1

    fns: dict[str, Callable[..., Any]] = {
        "make_epoch": make_epoch,
        "make_predict": make_predict,
        "run": lambda key: runners[key](),
        "info": lambda: {"torch": torch.__version__, "torch_threads": torch.get_num_threads()},
        "tta": tta_torch,
    }
    for line in sys.stdin:
        fn, args = json.loads(line)
        print(json.dumps(fns[fn](*args)), flush=True)


# ----------------------------------------------------------------------------- scikit-learn
def sklearn_model(H: int, B: int, opt: str, **kw: Any) -> Any:
    """scikit-learn's MLPClassifier with the same network, optimiser and batch size."""
    from sklearn.neural_network import MLPClassifier

    extra = {"momentum": 0.0, "nesterovs_momentum": False} if opt == "sgd" else {}
    return MLPClassifier(
        hidden_layer_sizes=(H,),
        activation="relu",
        solver=opt,
        alpha=0.0,
        batch_size=B,
        learning_rate_init=LR[opt],
        shuffle=True,
        random_state=0,
        tol=0.0,
        n_iter_no_change=10**9,
        **extra,
        **kw,
    )


def sklearn_epoch(X: np.ndarray, y: np.ndarray, H: int, B: int, opt: str) -> Callable[[], float]:
    """One epoch of scikit-learn: ``fit`` with ``max_iter=1`` (float32 X stays float32)."""
    from sklearn.exceptions import ConvergenceWarning

    def run() -> float:
        clf = sklearn_model(H, B, opt, max_iter=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t0 = time.perf_counter()
            clf.fit(X, y)
            return time.perf_counter() - t0

    return run


# ----------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Setup:
    """What a contender is built from: the epoch's data, width H, batch B, PyTorch's worker."""

    X: np.ndarray
    y: np.ndarray
    H: int
    B: int
    worker: TorchWorker


@dataclass(frozen=True)
class Contender:
    """How to build one contender of the training grid.

    ``build(setup, opt)`` returns a callable that runs one epoch and returns its seconds.
    ``per_optimiser``: one contender per optimiser, named ``{name}_{opt}`` (else ``name``,
    built with ``opt=None``); ``headline_only``: only in the headline configuration;
    ``slow``: runs in the first ``sk_rounds`` rounds only.
    """

    build: Callable[[Setup, Any], Callable[[], float]]
    per_optimiser: bool = True
    headline_only: bool = False
    slow: bool = False


#: The training grid's contenders, in the order they are built and first run. A new entry
#: is timed in every configuration and recorded in results.json (``times``, ``seconds``,
#: ``samples_per_s``); the ratios, table and chart name the contenders they compare.
CONTENDERS: dict[str, Contender] = {
    "gemm_floor": Contender(lambda s, _: gemm_floor(s.X, s.H, s.B), per_optimiser=False),
    "backprop": Contender(lambda s, opt: engine_epoch(s.X, s.y, s.H, s.B, opt)),
    "backprop_fit": Contender(
        lambda s, opt: fit_epoch(s.X, s.y, s.H, s.B, opt), headline_only=True
    ),
    "backprop_numpy": Contender(
        lambda s, opt: engine_epoch(s.X, s.y, s.H, s.B, opt, fused=False), headline_only=True
    ),
    "torch": Contender(lambda s, opt: s.worker.runner("make_epoch", len(s.X), s.H, s.B, opt)),
    "sklearn": Contender(lambda s, opt: sklearn_epoch(s.X, s.y, s.H, s.B, opt), slow=True),
}


def build_contenders(
    setup: Setup, headline: bool, slow_rounds: int
) -> tuple[dict[str, Callable[[], float]], dict[str, int]]:
    """The registry's contenders at one configuration, and the round caps of the slow ones."""
    c = {n: k.build(setup, None) for n, k in CONTENDERS.items() if not k.per_optimiser}
    limits = {}
    for opt in OPTIMISERS:
        for name, k in CONTENDERS.items():
            if k.slow:
                limits[f"{name}_{opt}"] = slow_rounds
            if k.per_optimiser and (headline or not k.headline_only):
                c[f"{name}_{opt}"] = k.build(setup, opt)
    return c, limits
