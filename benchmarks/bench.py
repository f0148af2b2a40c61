"""The performance benchmark of issue 5: backprop vs PyTorch CPU eager vs scikit-learn.

Run with ``make bench`` (about 10 minutes on 2 cores) or ``python benchmarks/bench.py
--quick`` (seconds, tiny sizes: a smoke test, not a measurement). In one process and at
one thread count it measures

- training throughput over an epoch of a 784-H-10 ReLU network (H in 512, 1024; batch
  32, 128, 512; SGD and Adam) of the backprop engine step (`MLP.loss_and_grads` into
  preallocated gradients + `optimizer.step`, batches gathered as a training loop does),
  of `backprop.training.fit`, of PyTorch eager and of scikit-learn's `MLPClassifier`;
- the GEMM floor: the same five matrix products per step in the same shapes, alone;
- inference throughput (10,000 rows);
- peak RSS of training on Fashion-MNIST-sized data, in a fresh subprocess;
- width scaling 128..4096 against the GEMM floor, and linearity in the number of samples;
- time-to-accuracy on Fashion-MNIST (0.90 test accuracy) for the default recipe;
- the busy-machine case: the digits default recipe idle and with one core kept busy by
  another process, and the 784-512-10 step under that load (issue 12).

The header gives the load average at the start and end, with a warning when the machine
was busy (`busy_warning`).

Contenders of one configuration run interleaved, round after round, so that a noisy
machine slows all of them alike; the report gives medians over rounds and, for ratios,
the median of the per-round ratios. Results go to a printed table, ``results.json`` and
``results.png`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

_BAD_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_REEXEC_FLAG = "BACKPROP_BENCH_UNSET"


def _reexec_without_bad_env() -> None:
    """Restart this process without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE (they slow NumPy).

    OpenBLAS reads them when it is loaded, so unsetting them after ``import numpy`` would
    be too late: the process re-executes itself with a cleaned environment instead.
    """
    bad = [k for k in _BAD_ENV if k in os.environ]
    if not bad or os.environ.get(_REEXEC_FLAG) is not None:
        return
    env = {k: v for k, v in os.environ.items() if k not in bad}
    env[_REEXEC_FLAG] = ",".join(f"{k}={os.environ[k]}" for k in bad)
    print(f"bench: unsetting {', '.join(bad)} for this process (re-executing)", flush=True)
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


if __name__ == "__main__":
    _reexec_without_bad_env()

import numpy as np  # noqa: E402  (after the re-exec above, so OpenBLAS sees the clean env)

# This folder's helpers, also when the tests load this file by path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_model  # noqa: E402

D_IN, N_CLASSES = 784, 10
LR = {"sgd": 0.01, "adam": 1e-3}


# ----------------------------------------------------------------------------- helpers
def median(xs: list[float]) -> float:
    """Median of a non-empty list."""
    return float(np.median(np.asarray(xs, dtype=np.float64)))


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random Fashion-MNIST-shaped data: X (n, 784) float32 in [0, 1), y (n,) in 0..9."""
    rng = np.random.default_rng(seed)
    return rng.random((n, D_IN), dtype=np.float32), rng.integers(0, N_CLASSES, n)


def interleave(
    contenders: dict[str, Callable[[], float]], rounds: int, limits: dict[str, int] | None = None
) -> dict[str, list[float]]:
    """Run each contender once per round, rotating the order; return their times.

    ``limits[name]`` caps the rounds of a slow contender (it runs in the first ones).
    """
    names = list(contenders)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        for k in names[r % len(names) :] + names[: r % len(names)]:
            if limits is None or r < limits.get(k, rounds):
                times[k].append(contenders[k]())
    return times


def paired_ratio(times: dict[str, list[float]], num: str, den: str) -> float:
    """Median over rounds of times[num][r] / times[den][r] (rounds both ran)."""
    m = min(len(times[num]), len(times[den]))
    return median([times[num][r] / times[den][r] for r in range(m)])


# ----------------------------------------------------------------------------- contenders
def batch_slices(n: int, B: int) -> list[slice]:
    """The batches of an epoch, last partial one included (as `training.fit` does)."""
    return [slice(s, min(s + B, n)) for s in range(0, n, B)]


def engine_epoch(
    X: np.ndarray, y: np.ndarray, H: int, B: int, opt: str, fused: bool = True
) -> Callable[[], float]:
    """One epoch of the engine, `Trainer.run_epoch`: the step every front end drives.

    ``fused``: with the one-pass kernels (`backprop.kernels`), as `Trainer.fit` runs a
    Fashion-MNIST-sized network; False gives the NumPy reference path.
    """
    from backprop import MLP
    from backprop.optim import make_optimizer
    from backprop.trainer import Trainer

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
    from backprop import MLP
    from backprop.config import TrainConfig
    from backprop.training import fit

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


class TorchWorker:
    """PyTorch in a process of its own, driven line by line over a pipe.

    PyTorch's OpenMP threads and NumPy's OpenBLAS threads both spin-wait after parallel
    work; in one process on 2 cores each then slows the other several-fold (measured:
    PyTorch 10x, NumPy 5x), so PyTorch gets its own process and the two take turns.
    """

    def __init__(self, threads: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--torch-worker", str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def call(self, fn: str, *args: Any) -> Any:
        """Run ``fn(*args)`` in the worker and return its JSON answer."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps([fn, args]) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the PyTorch worker died while running {fn}{args}")
        return json.loads(line)

    def runner(self, fn: str, *args: Any) -> Callable[[], float]:
        """Build a timed runner in the worker; return a callable that runs it once."""
        key = self.call(fn, *args)
        return lambda: float(self.call("run", key))

    def close(self) -> None:
        """Stop the worker."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _torch_worker(threads: int) -> None:
    """The loop of `TorchWorker`'s process: answers one JSON line per request."""
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


# ----------------------------------------------------------------------------- sections
def training_section(
    X: np.ndarray,
    y: np.ndarray,
    H: int,
    B: int,
    rounds: int,
    sk_rounds: int,
    with_fit: bool,
    worker: TorchWorker,
) -> dict[str, Any]:
    """Interleaved epochs of every contender at one (H, B); times, samples/s and ratios."""
    c: dict[str, Callable[[], float]] = {"gemm_floor": gemm_floor(X, H, B)}
    for opt in ("sgd", "adam"):
        c[f"backprop_{opt}"] = engine_epoch(X, y, H, B, opt)
        if with_fit:
            c[f"backprop_fit_{opt}"] = fit_epoch(X, y, H, B, opt)
            c[f"backprop_numpy_{opt}"] = engine_epoch(X, y, H, B, opt, fused=False)
        c[f"torch_{opt}"] = worker.runner("make_epoch", len(X), H, B, opt)
        c[f"sklearn_{opt}"] = sklearn_epoch(X, y, H, B, opt)
    limits = {"sklearn_sgd": sk_rounds, "sklearn_adam": sk_rounds}
    # Warm-up (buffers, BLAS threads, torch kernels) on throwaway contenders of the same
    # kind, so that every timed round sees the same state.
    engine_epoch(X[: 8 * B], y[: 8 * B], H, B, "sgd")()
    c["backprop_sgd"]()
    c["torch_sgd"]()
    times = interleave(c, rounds, limits)
    n = len(X)
    out: dict[str, Any] = {
        "H": H,
        "batch": B,
        "samples": n,
        "rounds": {k: len(v) for k, v in times.items()},
        "seconds": {k: median(v) for k, v in times.items()},
        "samples_per_s": {k: n / median(v) for k, v in times.items()},
        "times": times,
    }
    ratios: dict[str, float] = {}
    for opt in ("sgd", "adam"):
        bp = f"backprop_{opt}"
        ratios[f"{opt}_floor_fraction"] = paired_ratio(times, "gemm_floor", bp)
        ratios[f"{opt}_vs_torch"] = paired_ratio(times, f"torch_{opt}", bp)
        ratios[f"{opt}_vs_sklearn"] = paired_ratio(times, f"sklearn_{opt}", bp)
        # A peer's time over the floor's: the largest speed-up over that peer that any
        # implementation limited by the same matrix products could show.
        ratios[f"{opt}_torch_ceiling"] = paired_ratio(times, f"torch_{opt}", "gemm_floor")
        ratios[f"{opt}_sklearn_ceiling"] = paired_ratio(times, f"sklearn_{opt}", "gemm_floor")
        if with_fit:
            ratios[f"{opt}_fit_floor_fraction"] = paired_ratio(
                times, "gemm_floor", f"backprop_fit_{opt}"
            )
            ratios[f"{opt}_fit_vs_torch"] = paired_ratio(
                times, f"torch_{opt}", f"backprop_fit_{opt}"
            )
            ratios[f"{opt}_fused_over_numpy"] = paired_ratio(times, f"backprop_numpy_{opt}", bp)
            ratios[f"{opt}_numpy_floor_fraction"] = paired_ratio(
                times, "gemm_floor", f"backprop_numpy_{opt}"
            )
    if with_fit:
        # What the step spends beyond its matrix products, per step (median of rounds):
        # the elementwise work, gather and Python.
        steps = len(batch_slices(n, B))
        out["non_gemm_us_per_step"] = {
            k: 1e6
            * median([t - f for t, f in zip(times[k], times["gemm_floor"], strict=True)])
            / steps
            for k in ("backprop_sgd", "backprop_adam", "backprop_numpy_sgd", "backprop_numpy_adam")
        }
    ratios["adam_over_sgd_time"] = paired_ratio(times, "backprop_adam", "backprop_sgd")
    out["ratios"] = ratios
    return out


def inference_section(H: int, n: int, rounds: int, worker: TorchWorker) -> dict[str, Any]:
    """Predict classes of n rows: backprop vs PyTorch (inference mode) vs scikit-learn."""
    from sklearn.exceptions import ConvergenceWarning

    from backprop import MLP

    X, y = make_data(n, seed=2)
    net = MLP([D_IN, H, N_CLASSES], seed=0)
    clf = sklearn_model(H, 128, "adam", max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X[:256], y[:256])

    def timed(f: Callable[[], Any]) -> Callable[[], float]:
        def run() -> float:
            t0 = time.perf_counter()
            f()
            return time.perf_counter() - t0

        return run

    c = {
        "backprop": timed(lambda: net.predict(X)),
        "torch": worker.runner("make_predict", H, n),
        "sklearn": timed(lambda: clf.predict(X)),
    }
    for f in c.values():
        f()
    times = interleave(c, rounds)
    return {
        "H": H,
        "rows": n,
        "seconds": {k: median(v) for k, v in times.items()},
        "rows_per_s": {k: n / median(v) for k, v in times.items()},
        "ratios": {
            "vs_torch": paired_ratio(times, "torch", "backprop"),
            "vs_sklearn": paired_ratio(times, "sklearn", "backprop"),
        },
    }


_RSS_CHILD = textwrap.dedent(
    """
    import sys, time, numpy as np
    from backprop import MLP
    from backprop.config import TrainConfig
    from backprop.training import fit
    n, H, B, use_fit = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "fit"
    def hwm():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    base = hwm()
    rng = np.random.default_rng(0)
    # Filled in chunks, so no float64 temporary inflates the peak before training starts.
    X = np.empty((n, 784), np.float32)
    for s in range(0, n, 4096):
        X[s:s + 4096] = rng.random((min(4096, n - s), 784), dtype=np.float32)
    y = rng.integers(0, 10, n)
    data_hwm = hwm()
    net = MLP([784, H, 10], seed=0)
    if use_fit:
        fit(net, X, y, config=TrainConfig(hidden=(H,), epochs=1, batch_size=B), progress=False)
    else:
        from backprop.optim import Adam
        from backprop.trainer import Trainer
        Trainer(net, Adam(net.params), batch_size=B).run_epoch(X, y)
    print(base, data_hwm, hwm(), X.nbytes)
    """
)


def memory_section(n: int, H: int, B: int) -> dict[str, Any]:
    """Peak RSS (VmHWM) of a fresh process that trains one epoch on n x 784 float32."""
    out: dict[str, Any] = {"rows": n, "H": H, "batch": B}
    for kind in ("engine", "fit"):
        res = subprocess.run(
            [sys.executable, "-c", _RSS_CHILD, str(n), str(H), str(B), kind],
            capture_output=True,
            text=True,
            check=True,
        )
        base, data_hwm, peak, nbytes = (int(v) for v in res.stdout.split())
        out[kind] = {
            "import_rss_mb": base / 2**20,
            "after_data_mb": data_hwm / 2**20,
            "peak_rss_mb": peak / 2**20,
            "data_mb": nbytes / 2**20,
            "limit_mb": 1.5 * nbytes / 2**20 + 100,
            "peak_over_data": peak / nbytes,
        }
    return out


def scaling_section(
    widths: list[int], n: int, B: int, rounds: int, n_lin: tuple[int, int]
) -> dict[str, Any]:
    """Epoch time of the engine step (SGD) and of the GEMM floor for each width, and the
    time per sample at two data sizes (linearity in n)."""
    X, y = make_data(max(n, *n_lin), seed=3)
    rows = []
    for H in widths:
        Xs, ys = X[:n], y[:n]
        c = {"floor": gemm_floor(Xs, H, B), "backprop": engine_epoch(Xs, ys, H, B, "sgd")}
        c["floor"]()
        c["backprop"]()
        times = interleave(c, rounds)
        rows.append(
            {
                "H": H,
                "floor_us_per_sample": median(times["floor"]) / n * 1e6,
                "backprop_us_per_sample": median(times["backprop"]) / n * 1e6,
                "floor_fraction": paired_ratio(times, "floor", "backprop"),
            }
        )
    small, big = n_lin
    c = {
        "small": engine_epoch(X[:small], y[:small], 512, B, "sgd"),
        "big": engine_epoch(X[:big], y[:big], 512, B, "sgd"),
    }
    c["small"]()
    c["big"]()
    times = interleave(c, rounds)
    per_sample_ratio = paired_ratio(times, "big", "small") * small / big
    return {
        "batch": B,
        "samples": n,
        "widths": rows,
        "linearity": {
            "n_small": small,
            "n_big": big,
            "per_sample_time_big_over_small": per_sample_ratio,
        },
    }


def _tta_split(ds: Any, cfg: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """`train`'s split of the training part, and the `Preprocessor` it fits on it."""
    from backprop.data import Preprocessor, train_val_split

    X_tr, X_val, y_tr, _ = train_val_split(
        ds.X_train, ds.y_train, cfg.val_fraction, seed=cfg.seed, stratify=True
    )
    pre = Preprocessor.fit(
        X_tr, input_scale=ds.input_scale, image_shape=ds.image_shape, standardize=cfg.standardize
    )
    return pre, X_tr, X_val, y_tr


def tta_torch(epochs: int | None, dataset: str = "fashion-mnist") -> list[tuple[float, float]]:
    """PyTorch with `train`'s recipe: same split, standardisation, optimiser, cosine schedule,
    batch size and epochs; returns (seconds, test accuracy) after each epoch."""
    import torch

    from backprop.config import TrainConfig, resolve_epochs
    from backprop.data import load_dataset

    ds = load_dataset(dataset)
    cfg = TrainConfig() if epochs is None else TrainConfig(epochs=epochs)
    yte = np.asarray(ds.y_test)
    t0 = time.perf_counter()
    # The same split, preprocessing and schedule for PyTorch.
    pre, X_tr, X_val, y_tr = _tta_split(ds, cfg)
    X_tr = pre.transform(X_tr, warn=False)
    Xv = torch.from_numpy(pre.transform(X_val, warn=False))
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


def tta_section(epochs: int | None, target: float, worker: TorchWorker) -> dict[str, Any]:
    """Time to `target` test accuracy on Fashion-MNIST: `backprop.training.train` with its
    defaults, PyTorch with the same recipe, scikit-learn with the nearest one."""
    from sklearn.exceptions import ConvergenceWarning

    from backprop.callbacks import Callback
    from backprop.config import TrainConfig, resolve_epochs
    from backprop.data import load_dataset
    from backprop.run import train

    ds = load_dataset("fashion-mnist")
    cfg = TrainConfig() if epochs is None else TrainConfig(epochs=epochs)
    Xte, yte = np.asarray(ds.X_test, np.float32), np.asarray(ds.y_test)
    out: dict[str, Any] = {"target": target, "recipe": cfg.to_dict()}

    def summarise(curve: list[tuple[float, float]]) -> dict[str, Any]:
        hit = next((t for t, acc in curve if acc >= target), None)
        return {
            "seconds_to_target": hit,
            "total_seconds": curve[-1][0],
            "final_test_accuracy": curve[-1][1],
            "curve": curve,
        }

    # backprop: snapshot the weights after each epoch (cheap), evaluate them afterwards.
    class Snap(Callback):
        def __init__(self) -> None:
            self.snaps: list[tuple[float, dict[str, np.ndarray]]] = []
            self.paused = 0.0  # time spent copying, not training

        def on_epoch_end(self, epoch: int, log: Any, state: Any) -> None:
            now = time.perf_counter()
            params = {k: p.copy() for k, p in state.net.params.items()}
            self.snaps.append((now - self.paused, params))
            self.paused += time.perf_counter() - now

    def backprop_curve(config: Any, kernels: str | None) -> list[tuple[float, float]]:
        saved = os.environ.get("BACKPROP_KERNELS")
        if kernels is not None:
            os.environ["BACKPROP_KERNELS"] = kernels
        try:
            snap = Snap()
            t0 = time.perf_counter()
            model, _ = train(ds, config, callbacks=[snap], progress=False)
        finally:
            if saved is None:
                os.environ.pop("BACKPROP_KERNELS", None)
            else:
                os.environ["BACKPROP_KERNELS"] = saved
        curve = []
        for when, params in snap.snaps:
            model.net.params.update(params)
            acc = float(np.mean(model.predict(Xte) == yte))
            curve.append((when - t0, acc))
        return curve

    out["backprop"] = summarise(backprop_curve(cfg, None))
    # The default before issue 12, in the same session: 12 epochs, NumPy elementwise passes.
    out["backprop_before"] = summarise(
        backprop_curve(TrainConfig(epochs=12 if epochs is None else epochs), "numpy")
    )

    out["torch"] = summarise(worker.call("tta", epochs))

    # scikit-learn: Adam at a constant rate (it has no cosine schedule), one epoch per fit.
    clf = sklearn_model(cfg.hidden[0], cfg.batch_size, "adam", max_iter=1, warm_start=True)
    t0 = time.perf_counter()
    pre = _tta_split(ds, cfg)[0]
    Xs = pre.transform(ds.X_train, warn=False)
    Xs_test = pre.transform(ds.X_test, warn=False)
    paused, curve = 0.0, []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(resolve_epochs(cfg, round(len(Xs) * (1 - cfg.val_fraction)))):
            clf.fit(Xs, ds.y_train)
            now = time.perf_counter()
            acc = float(np.mean(clf.predict(Xs_test) == yte))
            curve.append((now - t0 - paused, acc))
            paused += time.perf_counter() - now
    out["sklearn"] = summarise(curve)
    return out


# ----------------------------------------------------------------------------- busy machine
#: 1-minute load average above which the machine counts as busy: at the start, before the
#: benchmark runs; at the end, on top of the benchmark's own threads.
BUSY_LOAD = 0.5


def busy_warning(start: float, end: float | None, threads: int) -> str | None:
    """A warning when other work shared the machine, else None.

    ``start``/``end`` are 1-minute load averages; at the end the benchmark's own
    ``threads`` still count in the average, so only load beyond them is other work.
    """
    causes = []
    if start > BUSY_LOAD:
        causes.append(f"load average {start:.2f} at the start")
    if end is not None and end > threads + BUSY_LOAD:
        causes.append(f"{end:.2f} at the end with {threads} benchmark thread(s)")
    if not causes:
        return None
    return (
        "WARNING: the machine was busy (" + "; ".join(causes) + "): absolute figures are "
        "below an idle machine's and ratios move; record tables only from an idle machine"
    )


class Spinner:
    """Another process keeping one core busy (``while True: pass``), as a context manager."""

    def __enter__(self) -> Spinner:
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.3)  # let it start spinning
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)


def digits_recipe(epochs: int | None, worker: TorchWorker) -> dict[str, float]:
    """Seconds to train the default recipe on digits: `backprop.training.train` (its BLAS
    threads chosen by `backprop.threads`), PyTorch with the same recipe (its own thread
    default), scikit-learn Adam for as many epochs (a BLAS-bound engine at BLAS's default)."""
    from sklearn.exceptions import ConvergenceWarning

    from backprop.config import TrainConfig, resolve_epochs
    from backprop.data import load_dataset
    from backprop.run import train

    ds = load_dataset("digits")
    cfg = TrainConfig() if epochs is None else TrainConfig(epochs=epochs)
    t0 = time.perf_counter()
    train(ds, cfg, progress=False)
    out = {"backprop": time.perf_counter() - t0}
    out["torch"] = worker.call("tta", epochs, "digits")[-1][0]
    pre, X_tr, _, y_tr = _tta_split(ds, cfg)
    Xs = pre.transform(X_tr, warn=False)
    clf = sklearn_model(
        cfg.hidden[0], cfg.batch_size, "adam", max_iter=resolve_epochs(cfg, len(Xs))
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        clf.fit(Xs, y_tr)
        out["sklearn"] = time.perf_counter() - t0
    return out


def busy_section(
    epochs: int | None, n: int, H: int, B: int, rounds: int, worker: TorchWorker
) -> dict[str, Any]:
    """The digits default recipe idle and with one core kept busy by another process, and
    the 784-H-10 step (all contenders, as in the training grid) with that core busy."""
    out: dict[str, Any] = {"digits_idle": digits_recipe(epochs, worker)}
    X, y = make_data(n, seed=4)
    with Spinner():
        out["load_average_busy_start"] = os.getloadavg()
        out["digits_busy"] = digits_recipe(epochs, worker)
        out["step_busy"] = training_section(X, y, H, B, rounds, 1, False, worker)
        out["load_average_busy_end"] = os.getloadavg()
    out["digits_busy_over_idle"] = {
        k: out["digits_busy"][k] / out["digits_idle"][k] for k in out["digits_idle"]
    }
    return out


# ----------------------------------------------------------------------------- reporting
def machine_info(threads: int, worker: TorchWorker) -> dict[str, Any]:
    """CPU model, cores, library versions, BLAS (threadpoolctl) and thread counts."""
    import sklearn
    import threadpoolctl

    cpu = cpu_model()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": threads,
        **worker.call("info"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "blas": threadpoolctl.threadpool_info(),
        "unset_env": os.environ.get(_REEXEC_FLAG, ""),
        "load_average_start": os.getloadavg(),
    }


_COMPILE_PROBE = """
import json, time
t0 = time.perf_counter()
import numba  # noqa: F401
t1 = time.perf_counter()
import numpy as np
from backprop import MLP
from backprop.optim import AdamW
net = MLP([784, 64, 10], seed=0)
opt = AdamW(net.params)
net.fused = opt.fused = True
X = np.zeros((8, 784), np.float32)
t2 = time.perf_counter()
_, g = net.loss_and_grads(X, np.zeros(8, np.int64))
opt.step(g)
print(json.dumps({"import_numba": t1 - t0, "first_step": time.perf_counter() - t2}))
"""


def compile_section() -> dict[str, float]:
    """numba's start-up for the fused kernels: a first float32 step in a fresh process,
    compiled cold (an empty cache directory), then loaded from that cache; numba's import."""
    import tempfile

    with tempfile.TemporaryDirectory() as cache:
        env = os.environ | {"NUMBA_CACHE_DIR": cache}
        runs = []
        for _ in range(2):
            out = subprocess.run(
                [sys.executable, "-c", _COMPILE_PROBE], env=env, capture_output=True, text=True
            )
            if out.returncode != 0:
                raise RuntimeError(f"compile probe failed: {out.stderr.strip()[-500:]}")
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {
        "import_numba": runs[1]["import_numba"],
        "cold": runs[0]["first_step"],
        "cached": runs[1]["first_step"],
    }


def fmt_table(results: dict[str, Any]) -> str:
    """The printed summary: training grid, targets, inference, memory, scaling, TTA."""
    lines = []
    m = results["machine"]
    lines.append(
        f"machine: {m['cpu']}, {m['cores']} cores, threads={m['threads']}; numpy {m['numpy']}, "
        f"torch {m['torch']}, scikit-learn {m['sklearn']}; load average at start "
        f"{' '.join(f'{x:.2f}' for x in m['load_average_start'])}"
        + (
            f", at end {' '.join(f'{x:.2f}' for x in m['load_average_end'])}"
            if "load_average_end" in m
            else ""
        )
    )
    warn = busy_warning(
        m["load_average_start"][0],
        m["load_average_end"][0] if "load_average_end" in m else None,
        m["threads"],
    )
    if warn:
        lines.append(warn)
    lines.append("")
    lines.append("training throughput (samples/s, median over rounds); ratios = paired medians")
    hdr = (
        f"{'H':>5} {'batch':>5} {'opt':>4} | {'floor':>8} {'backprop':>9} {'fit':>9} "
        f"{'torch':>8} {'sklearn':>8} | {'of floor':>8} {'x torch':>7} {'x sklearn':>9}"
    )
    lines += [hdr, "-" * len(hdr)]
    for r in results["training"]:
        sps = r["samples_per_s"]
        for opt in ("sgd", "adam"):
            q = r["ratios"]
            fit = sps.get(f"backprop_fit_{opt}")
            lines.append(
                f"{r['H']:>5} {r['batch']:>5} {opt:>4} | {sps['gemm_floor']:>8.0f} "
                f"{sps[f'backprop_{opt}']:>9.0f} {'' if fit is None else f'{fit:.0f}':>9} "
                f"{sps[f'torch_{opt}']:>8.0f} {sps[f'sklearn_{opt}']:>8.0f} | "
                f"{q[f'{opt}_floor_fraction']:>8.3f} {q[f'{opt}_vs_torch']:>7.2f} "
                f"{q[f'{opt}_vs_sklearn']:>9.2f}"
            )
    lines.append("")
    head = next(r for r in results["training"] if r["headline"])
    lines.append(f"targets (784-{head['H']}-10, batch {head['batch']}, SGD and Adam):")
    for t in results["targets"]:
        ok = "PASS" if t["met"] else "MISS"
        lines.append(f"  [{ok}] {t['name']}: {t['value']:.3f} (target {t['op']} {t['target']})")
    inf = results.get("inference")
    if inf:
        rps = inf["rows_per_s"]
        lines.append("")
        lines.append(
            f"inference ({inf['rows']} rows, H={inf['H']}): backprop {rps['backprop']:.0f} rows/s, "
            f"torch {rps['torch']:.0f}, sklearn {rps['sklearn']:.0f}; backprop is "
            f"{inf['ratios']['vs_torch']:.2f}x torch, {inf['ratios']['vs_sklearn']:.2f}x sklearn"
        )
    mem = results.get("memory")
    if mem:
        lines.append("")
        for kind in ("engine", "fit"):
            e = mem[kind]
            lines.append(
                f"peak RSS ({kind}, {mem['rows']} x 784 float32 = {e['data_mb']:.0f} MB): "
                f"{e['peak_rss_mb']:.0f} MB (limit 1.5 x data + 100 = {e['limit_mb']:.0f} MB; "
                f"python+numpy alone {e['import_rss_mb']:.0f} MB)"
            )
    sc = results.get("scaling")
    if sc:
        lines.append("")
        lines.append(f"width scaling (batch {sc['batch']}, SGD): us per sample, floor fraction")
        for w in sc["widths"]:
            lines.append(
                f"  H={w['H']:>5}: floor {w['floor_us_per_sample']:8.2f}  backprop "
                f"{w['backprop_us_per_sample']:8.2f}  fraction {w['floor_fraction']:.3f}"
            )
        li = sc["linearity"]
        lines.append(
            f"  linearity: time per sample at n={li['n_big']} / at n={li['n_small']} = "
            f"{li['per_sample_time_big_over_small']:.3f}"
        )
    ng = head.get("non_gemm_us_per_step")
    if ng:
        lines.append("")
        lines.append(
            "time beyond the GEMM floor per step (us; elementwise, gather, Python), "
            "fused kernels and the NumPy reference path:"
        )
        q = head["ratios"]
        for opt in ("sgd", "adam"):
            lines.append(
                f"  {opt:>4}: fused {ng[f'backprop_{opt}']:7.1f} (floor fraction "
                f"{q[f'{opt}_floor_fraction']:.3f}); numpy {ng[f'backprop_numpy_{opt}']:7.1f} "
                f"(floor fraction {q[f'{opt}_numpy_floor_fraction']:.3f}); fused is "
                f"{q[f'{opt}_fused_over_numpy']:.2f}x numpy"
            )
    comp = results.get("compile")
    if comp:
        lines.append("")
        lines.append(
            "fused kernels, start-up in a fresh process (s): import numba "
            f"{comp['import_numba']:.2f}; first step compiled cold {comp['cold']:.2f}, "
            f"from numba's cache {comp['cached']:.2f}"
        )
    busy = results.get("busy")
    if busy:
        lines.append("")
        la = busy["load_average_busy_start"][0], busy["load_average_busy_end"][0]
        lines.append(
            f"busy machine: one core kept busy by another process (load average {la[0]:.2f} "
            f"-> {la[1]:.2f}); one run each"
        )
        lines.append(
            f"  {'digits default recipe (s)':<28} {'idle':>8} {'busy':>8} {'busy/idle':>9}"
        )
        for k in ("backprop", "torch", "sklearn"):
            i, b = busy["digits_idle"][k], busy["digits_busy"][k]
            lines.append(f"  {k:<28} {i:>8.2f} {b:>8.2f} {b / i:>9.2f}")
        st = busy["step_busy"]
        sps = st["samples_per_s"]
        lines.append(
            f"  784-{st['H']}-10 batch {st['batch']} step, busy (samples/s): floor "
            f"{sps['gemm_floor']:.0f}; "
            + "; ".join(
                f"{opt} backprop {sps[f'backprop_{opt}']:.0f}, torch {sps[f'torch_{opt}']:.0f}, "
                f"sklearn {sps[f'sklearn_{opt}']:.0f}"
                for opt in ("sgd", "adam")
            )
        )
    tta = results.get("time_to_accuracy")
    if tta:
        lines.append("")
        lines.append(f"time to {tta['target']:.2f} test accuracy on fashion-mnist (seconds):")
        for k in ("backprop", "backprop_before", "torch", "sklearn"):
            if k not in tta:
                continue
            e = tta[k]
            hit = e["seconds_to_target"]
            lines.append(
                f"  {k:>15}: {'not reached' if hit is None else f'{hit:.1f}'}; "
                f"final accuracy {e['final_test_accuracy']:.4f} after {e['total_seconds']:.1f} s"
            )
    return "\n".join(lines)


def targets(
    headline: dict[str, Any],
    memory: dict[str, Any] | None,
    busy: dict[str, Any] | None = None,
    tta: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The issue's targets: the headline configuration, the busy case, time to accuracy."""
    q = headline["ratios"]
    # Against PyTorch the target is relative to what the machine allows (issue 12): 0.95 of
    # the ceiling, PyTorch's time over the GEMM floor's (the floor's lead over PyTorch
    # differs by CPU).
    ts = [
        ("SGD step speed / GEMM floor speed", q["sgd_floor_fraction"], ">=", 0.95),
        ("Adam step time / SGD step time", q["adam_over_sgd_time"], "<=", 1.10),
        (
            "SGD throughput vs PyTorch eager",
            q["sgd_vs_torch"],
            ">=",
            round(0.95 * q["sgd_torch_ceiling"], 3),
        ),
        ("  ceiling: PyTorch SGD time / GEMM floor", q["sgd_torch_ceiling"], ">=", 0.0),
        (
            "Adam throughput vs PyTorch eager",
            q["adam_vs_torch"],
            ">=",
            round(0.95 * q["adam_torch_ceiling"], 3),
        ),
        ("  ceiling: PyTorch Adam time / GEMM floor", q["adam_torch_ceiling"], ">=", 0.0),
        ("Adam throughput vs sklearn adam", q["adam_vs_sklearn"], ">=", 2.5),
        ("  ceiling: sklearn adam time / GEMM floor", q["adam_sklearn_ceiling"], ">=", 2.5),
        ("SGD throughput vs sklearn sgd", q["sgd_vs_sklearn"], ">=", 1.7),
    ]
    if memory:
        e = memory["fit"]
        ts.append(
            ("peak RSS of fit / (1.5 x data + 100 MB)", e["peak_rss_mb"] / e["limit_mb"], "<=", 1.0)
        )
    if busy:
        d = busy["digits_busy"]
        ts.append(
            (
                "digits, one core busy: time / idle time",
                busy["digits_busy_over_idle"]["backprop"],
                "<=",
                1.5,
            )
        )
        ts.append(
            (
                "digits, one core busy: PyTorch time / backprop time",
                d["torch"] / d["backprop"],
                ">=",
                1.0,
            )
        )
    if tta and "backprop_before" in tta:
        now, before = (
            tta["backprop"]["seconds_to_target"],
            tta["backprop_before"]["seconds_to_target"],
        )
        if now is not None and before is not None:
            ts.append(
                (
                    "fashion-mnist time to 0.90 / the default's before issue 12",
                    now / before,
                    "<=",
                    0.75,
                )
            )
    return [
        {
            "name": name,
            "value": value,
            "op": op,
            "target": target,
            "met": value >= target if op == ">=" else value <= target,
        }
        for name, value, op, target in ts
    ]


def chart(results: dict[str, Any], path: Path) -> None:
    """PNG: throughput per configuration, floor fraction, and width scaling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 5))
    ax = axes[0]
    rows = results["training"]
    labels = [f"{r['H']}/{r['batch']}/{opt}" for r in rows for opt in ("sgd", "adam")]
    xs = np.arange(len(labels))
    w = 0.27
    for i, (k, color) in enumerate(
        (("backprop", "tab:blue"), ("torch", "tab:orange"), ("sklearn", "tab:green"))
    ):
        vals = [r["samples_per_s"][f"{k}_{opt}"] for r in rows for opt in ("sgd", "adam")]
        ax.bar(xs + (i - 1) * w, vals, w, label=k, color=color)
    floor = [r["samples_per_s"]["gemm_floor"] for r in rows for _ in ("sgd", "adam")]
    ax.plot(xs, floor, "k_", markersize=14, label="GEMM floor")
    ax.set_xticks(xs, labels, rotation=60, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("training samples / s")
    ax.set_title("training throughput (H / batch / optimiser)")
    ax.legend(fontsize=8)

    ax = axes[1]
    for opt, color in (("sgd", "tab:blue"), ("adam", "tab:red")):
        ax.plot(
            xs[::2] if opt == "sgd" else xs[1::2],
            [r["ratios"][f"{opt}_floor_fraction"] for r in rows],
            "o",
            color=color,
            label=f"backprop {opt}",
        )
    ax.axhline(0.95, color="k", ls="--", lw=1, label="target 0.95")
    ax.set_xticks(xs, labels, rotation=60, fontsize=7)
    ax.set_ylabel("GEMM floor time / step time")
    ax.set_title("fraction of the GEMM floor speed")
    ax.legend(fontsize=8)

    ax = axes[2]
    sc = results.get("scaling")
    if sc:
        Hs = [w_["H"] for w_ in sc["widths"]]
        ax.loglog(
            Hs, [w_["floor_us_per_sample"] for w_ in sc["widths"]], "k--o", label="GEMM floor"
        )
        ax.loglog(
            Hs, [w_["backprop_us_per_sample"] for w_ in sc["widths"]], "b-o", label="backprop SGD"
        )
        ax.set_xticks(Hs, [str(h) for h in Hs])  # plain labels, no crowded minor ticks
        ax.tick_params(axis="x", which="minor", labelbottom=False)
        ax.set_xlabel("hidden width H")
        ax.set_ylabel("microseconds per training sample")
        ax.set_title(f"width scaling (batch {sc['batch']})")
        ax.legend(fontsize=8)
    fig.suptitle(
        f"{results['machine']['cpu']}, {results['machine']['threads']} threads", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the results dict it also writes to ``--out``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test in seconds")
    p.add_argument("--repeats", type=int, default=3, help="rounds for the headline config")
    p.add_argument("--grid-repeats", type=int, default=2, help="rounds for the other configs")
    p.add_argument("--grid-samples", type=int, default=10000, help="rows per epoch off-headline")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", type=Path, default=None, help="default benchmarks/results/<time>")
    p.add_argument("--skip-tta", action="store_true", help="skip time-to-accuracy")
    p.add_argument("--tta-epochs", type=int, default=None, help="override the recipe's epochs")
    p.add_argument("--skip-busy", action="store_true", help="skip the busy-machine case")
    args = p.parse_args(argv)

    import threadpoolctl

    threadpoolctl.threadpool_limits(args.threads)
    worker = TorchWorker(args.threads)

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = args.out or Path(__file__).parent / "results" / stamp
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    results: dict[str, Any] = {
        "machine": machine_info(args.threads, worker),
        "args": vars(args) | {"out": str(out_dir)},
    }
    if results["machine"]["unset_env"]:
        print(f"bench: ran with {results['machine']['unset_env']} removed from the environment")
    warn = busy_warning(results["machine"]["load_average_start"][0], None, args.threads)
    if warn:
        print(f"bench: {warn}", flush=True)

    if args.quick:
        n_head, n_grid, rounds, grid_rounds, sk_rounds = 1024, 512, 2, 1, 1
        grid = [(64, 128)]
        head = (64, 128)
        widths, n_scale, n_lin = [32, 64], 512, (256, 512)
        n_inf, n_mem = 1000, 2000
    else:
        n_head, n_grid = 60000, args.grid_samples
        rounds, grid_rounds = args.repeats, args.grid_repeats
        sk_rounds = max(1, (args.repeats + 1) // 2)
        grid = [(H, B) for H in (512, 1024) for B in (32, 128, 512)]
        head = (512, 128)
        widths, n_scale, n_lin = [128, 256, 512, 1024, 2048, 4096], 6400, (15000, 60000)
        n_inf, n_mem = 10000, 60000

    X, y = make_data(n_head)
    results["training"] = []
    for H, B in grid:
        is_head = (H, B) == head
        print(f"training H={H} batch={B} ...", flush=True)
        n = n_head if is_head else n_grid
        r = training_section(
            X[:n],
            y[:n],
            H,
            B,
            rounds if is_head else grid_rounds,
            sk_rounds if is_head else 1,
            with_fit=is_head,
            worker=worker,
        )
        r["headline"] = is_head
        results["training"].append(r)
    del X, y
    save = out_dir / "results.json"
    save.write_text(json.dumps(results, indent=1, default=float))  # partial, in case
    headline = next(r for r in results["training"] if r["headline"])

    print("fused kernels' start-up ...", flush=True)
    results["compile"] = compile_section()
    print("inference ...", flush=True)
    results["inference"] = inference_section(head[0], n_inf, rounds, worker)
    print("memory ...", flush=True)
    results["memory"] = memory_section(n_mem, head[0], head[1])
    save.write_text(json.dumps(results, indent=1, default=float))
    print("width scaling ...", flush=True)
    results["scaling"] = scaling_section(widths, n_scale, head[1], max(2, grid_rounds), n_lin)
    save.write_text(json.dumps(results, indent=1, default=float))
    if not args.skip_busy:
        print("busy machine (one core kept busy) ...", flush=True)
        results["busy"] = busy_section(
            2 if args.quick else None,
            n_grid,
            *head,
            1 if args.quick else grid_rounds,
            worker,
        )
        save.write_text(json.dumps(results, indent=1, default=float))
    if not args.skip_tta and not args.quick:
        print("time to accuracy ...", flush=True)
        results["time_to_accuracy"] = tta_section(args.tta_epochs, 0.90, worker)
    worker.close()
    results["targets"] = targets(
        headline, results["memory"], results.get("busy"), results.get("time_to_accuracy")
    )
    results["machine"]["load_average_end"] = os.getloadavg()
    results["wall_seconds"] = time.perf_counter() - t_start

    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=float))
    chart(results, out_dir / "results.png")
    table = fmt_table(results)
    (out_dir / "table.txt").write_text(table + "\n")
    print()
    print(table)
    print(
        f"\nwrote {out_dir}/results.json, results.png, table.txt in {results['wall_seconds']:.0f} s"
    )
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == ["--torch-worker"]:
        _torch_worker(int(sys.argv[2]))
    else:
        main()
