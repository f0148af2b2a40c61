"""The benchmark's sections: each measures one thing and returns its part of results.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from contenders import (
    COMPILED_PEERS,
    D_IN,
    N_CLASSES,
    OPTIMISERS,
    TTA_PEERS,
    Setup,
    batch_slices,
    build_contenders,
    engine_epoch,
    gemm_floor,
    make_data,
    sklearn_model,
)
from timing import Spinner, Worker, interleave, median, paired_ratio, timed

from backprop import MLP
from backprop.callbacks import Callback
from backprop.config import TrainConfig, resolve_epochs
from backprop.data import load_dataset
from backprop.run import prepare, train


def training_section(
    X: np.ndarray,
    y: np.ndarray,
    H: int,
    B: int,
    rounds: int,
    sk_rounds: int,
    with_fit: bool,
    workers: Mapping[str, Worker],
) -> dict[str, Any]:
    """Interleaved epochs of every contender at one (H, B); times, samples/s and ratios.

    A compiled peer's first epoch (its warm-up, compiling every batch shape) is recorded
    apart in ``first_epoch_seconds``; the timed rounds exclude it.
    """
    c, limits = build_contenders(Setup(X, y, H, B, workers), with_fit, sk_rounds)
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
        "first_epoch_seconds": {
            k: f.first_seconds for k, f in c.items() if getattr(f, "first_seconds", None)
        },
    }
    ratios: dict[str, float] = {}
    for opt in OPTIMISERS:
        bp = f"backprop_{opt}"
        ratios[f"{opt}_floor_fraction"] = paired_ratio(times, "gemm_floor", bp)
        ratios[f"{opt}_vs_torch"] = paired_ratio(times, f"torch_{opt}", bp)
        ratios[f"{opt}_vs_sklearn"] = paired_ratio(times, f"sklearn_{opt}", bp)
        peers = [p for p in COMPILED_PEERS if f"{p}_{opt}" in times]
        for p in peers:
            ratios[f"{opt}_vs_{p}"] = paired_ratio(times, f"{p}_{opt}", bp)
        if peers:  # the fastest peer has the smallest time over backprop's
            ratios[f"{opt}_vs_fastest_peer"] = min(
                ratios[f"{opt}_vs_{p}"] for p in ("torch", *peers)
            )
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


def inference_section(H: int, n: int, rounds: int, worker: Worker) -> dict[str, Any]:
    """Predict classes of n rows: backprop vs PyTorch (inference mode) vs scikit-learn."""
    from sklearn.exceptions import ConvergenceWarning

    X, y = make_data(n, seed=2)
    net = MLP([D_IN, H, N_CLASSES], seed=0)
    clf = sklearn_model(H, 128, "adam", max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X[:256], y[:256])
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


# A program of its own (a fresh process, so its peak RSS is training's alone); its imports
# of backprop's names follow the modules'.
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


class _Snapshots(Callback):
    """The weights after each epoch (a cheap copy), with the time spent copying left out."""

    def __init__(self) -> None:
        self.snaps: list[tuple[float, dict[str, np.ndarray]]] = []
        self.paused = 0.0  # time spent copying, not training

    def on_epoch_end(self, epoch: int, log: Any, state: Any) -> None:
        now = time.perf_counter()
        params = {k: p.copy() for k, p in state.net.params.items()}
        self.snaps.append((now - self.paused, params))
        self.paused += time.perf_counter() - now


def _backprop_curve(ds: Any, config: TrainConfig, kernels: str | None) -> list[tuple[float, float]]:
    """`train` on ``ds`` (``BACKPROP_KERNELS=kernels`` if given): (seconds, test accuracy)
    after each epoch, the snapshots scored after training."""
    saved = os.environ.get("BACKPROP_KERNELS")
    if kernels is not None:
        os.environ["BACKPROP_KERNELS"] = kernels
    try:
        snap = _Snapshots()
        t0 = time.perf_counter()
        model, _ = train(ds, config, callbacks=[snap], progress=False)
    finally:
        if saved is None:
            os.environ.pop("BACKPROP_KERNELS", None)
        else:
            os.environ["BACKPROP_KERNELS"] = saved
    Xte, yte = np.asarray(ds.X_test, np.float32), np.asarray(ds.y_test)
    curve = []
    for when, params in snap.snaps:
        model.net.params.update(params)
        acc = float(np.mean(model.predict(Xte) == yte))
        curve.append((when - t0, acc))
    return curve


def tta_section(epochs: int | None, target: float, workers: Mapping[str, Worker]) -> dict[str, Any]:
    """Time to `target` test accuracy on Fashion-MNIST: `backprop.run.train` with its
    defaults, PyTorch (and JAX, where it runs) with the same recipe, scikit-learn with the
    nearest one."""
    from sklearn.exceptions import ConvergenceWarning

    ds = load_dataset("fashion-mnist")
    cfg = TrainConfig() if epochs is None else TrainConfig(epochs=epochs)
    yte = np.asarray(ds.y_test)
    out: dict[str, Any] = {"target": target, "recipe": cfg.to_dict()}

    def summarise(curve: list[tuple[float, float]]) -> dict[str, Any]:
        hit = next((t for t, acc in curve if acc >= target), None)
        return {
            "seconds_to_target": hit,
            "total_seconds": curve[-1][0],
            "final_test_accuracy": curve[-1][1],
            "curve": curve,
        }

    out["backprop"] = summarise(_backprop_curve(ds, cfg, None))
    # The default before issue 12, in the same session: 12 epochs, NumPy elementwise passes.
    before = TrainConfig(epochs=12 if epochs is None else epochs)
    out["backprop_before"] = summarise(_backprop_curve(ds, before, "numpy"))

    for kind in TTA_PEERS:
        if kind in workers:
            out[kind] = summarise(workers[kind].call("tta", epochs))

    # scikit-learn: Adam at a constant rate (it has no cosine schedule), one epoch per fit.
    clf = sklearn_model(cfg.hidden[0], cfg.batch_size, "adam", max_iter=1, warm_start=True)
    t0 = time.perf_counter()
    pre = prepare(ds, cfg).preprocessor
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


def digits_recipe(epochs: int | None, worker: Worker) -> dict[str, float]:
    """Seconds to train the default recipe on digits: `backprop.run.train` (its BLAS
    threads chosen by `backprop.threads`), PyTorch with the same recipe (its own thread
    default), scikit-learn Adam for as many epochs (a BLAS-bound engine at BLAS's default)."""
    from sklearn.exceptions import ConvergenceWarning

    ds = load_dataset("digits")
    cfg = TrainConfig() if epochs is None else TrainConfig(epochs=epochs)
    t0 = time.perf_counter()
    train(ds, cfg, progress=False)
    out = {"backprop": time.perf_counter() - t0}
    out["torch"] = worker.call("tta", epochs, "digits")[-1][0]
    prepared = prepare(ds, cfg)
    Xs, y_tr = np.asarray(prepared.X_train), prepared.y_train
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
    epochs: int | None, n: int, H: int, B: int, rounds: int, worker: Worker
) -> dict[str, Any]:
    """The digits default recipe idle and with one core kept busy by another process, and
    the 784-H-10 step (all contenders, as in the training grid) with that core busy."""
    out: dict[str, Any] = {"digits_idle": digits_recipe(epochs, worker)}
    X, y = make_data(n, seed=4)
    with Spinner():
        out["load_average_busy_start"] = os.getloadavg()
        out["digits_busy"] = digits_recipe(epochs, worker)
        out["step_busy"] = training_section(X, y, H, B, rounds, 1, False, {"torch": worker})
        out["load_average_busy_end"] = os.getloadavg()
    out["digits_busy_over_idle"] = {
        k: out["digits_busy"][k] / out["digits_idle"][k] for k in out["digits_idle"]
    }
    return out


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
