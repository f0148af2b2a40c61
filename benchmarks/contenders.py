"""The benchmark's contenders: one timed epoch of each system, and the registry of them.

A contender of the training grid is one entry in `CONTENDERS`: a builder that, given the
data and one configuration, returns a callable running one epoch and returning its
seconds. Each peer (PyTorch eager, ``torch.compile``, JAX ``jit``: the `PEERS` registry)
runs in a process of its own (`timing.Worker`); the requests that process answers are
`worker_main`'s. scikit-learn and PyTorch are imported only
inside the functions that use them, so the benchmark's process never loads PyTorch.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from timing import PeerUnavailable, Worker

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


def torch_epoch(
    X: np.ndarray, y: np.ndarray, H: int, B: int, opt: str, compiled: bool = False
) -> Callable[[], float]:
    """One epoch of the usual PyTorch loop, batches gathered by tensor indexing.

    ``compiled``: the forward pass with its loss (hence, through AOTAutograd, the backward
    pass) and the optimiser step each through ``torch.compile`` in its default mode, as
    PyTorch's tutorials compile a training step; else eager.
    """
    import torch

    model = torch_model(H)
    cls = torch.optim.SGD if opt == "sgd" else torch.optim.Adam
    optim = cls(model.parameters(), lr=LR[opt])
    loss_fn = torch.nn.CrossEntropyLoss()

    def loss_of(xb: Any, yb: Any) -> Any:
        return loss_fn(model(xb), yb)

    forward, update = (
        (torch.compile(loss_of), torch.compile(optim.step)) if compiled else (loss_of, optim.step)
    )
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
            forward(xb, yb).backward()
            update()
        return time.perf_counter() - t0

    return run


@dataclass
class Recipe:
    """`train`'s recipe made ready for a peer: the same split and standardisation
    (`backprop.run.prepare`), class indices, the epochs and steps of its schedule."""

    cfg: TrainConfig
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    X_test: np.ndarray
    classes: np.ndarray
    y_test: np.ndarray
    epochs: int
    steps: int


def tta_recipe(epochs: int | None, dataset: str) -> tuple[float, Recipe]:
    """The data and schedule of a time-to-accuracy run, and the ``time.perf_counter()``
    its clock starts from: after loading the data, before preparing it (as `train` counts)."""
    ds = load_dataset(dataset)
    cfg = TrainConfig() if epochs is None else TrainConfig(epochs=epochs)
    t0 = time.perf_counter()
    prepared = prepare(ds, cfg)
    classes = np.unique(ds.y_train)
    X_tr = np.asarray(prepared.X_train).astype(np.float32)
    return t0, Recipe(
        cfg,
        X_tr,
        np.searchsorted(classes, prepared.y_train).astype(np.int64),
        np.asarray(prepared.X_val),
        prepared.preprocessor.transform(ds.X_test, warn=False),
        classes,
        np.asarray(ds.y_test),
        resolve_epochs(cfg, len(X_tr)),
        -(-len(X_tr) // cfg.batch_size),
    )


def tta_torch(
    epochs: int | None, dataset: str = "fashion-mnist", compiled: bool = False
) -> list[tuple[float, float]]:
    """PyTorch with `train`'s recipe: same split, standardisation, optimiser, cosine schedule,
    batch size and epochs; returns (seconds, test accuracy) after each epoch.

    ``compiled``: the forward pass with its loss (hence, through AOTAutograd, the backward
    pass) and a function running the optimiser step each through ``torch.compile`` in its
    default mode, compilation counted in the time as a user waits for it. The rate is a
    tensor that the scheduler updates in place (PyTorch's recipe for a compiled step under a
    scheduler): a Python float would be a constant of the graph, recompiled every step. The
    step graph compiles once; the forward once more for the epoch's last, smaller batch
    (then with a dynamic batch size). Evaluation runs eager.
    """
    import torch

    t0, r = tta_recipe(epochs, dataset)
    cfg = r.cfg
    Xv, Xtest = torch.from_numpy(r.X_val), torch.from_numpy(r.X_test)
    ytr, Xtr = torch.from_numpy(r.y_train), torch.from_numpy(r.X_train)
    model_t = torch_model(cfg.hidden[0], Xtr.shape[1], len(r.classes))
    opt_cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[cfg.optimizer]
    lr = torch.tensor(cfg.lr) if compiled else cfg.lr
    opt_t = opt_cls(model_t.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt_t, T_max=r.epochs * r.steps)
    loss_fn = torch.nn.CrossEntropyLoss()

    def loss_of(xb: Any, yb: Any) -> Any:
        return loss_fn(model_t(xb), yb)

    def update() -> None:
        opt_t.step()

    forward, step = (loss_of, update)
    if compiled:
        forward, step = torch.compile(loss_of), torch.compile(update)
    gen = torch.Generator().manual_seed(cfg.seed)
    paused, curve = 0.0, []
    for _ in range(r.epochs):
        order = torch.randperm(len(Xtr), generator=gen)
        for s in batch_slices(len(Xtr), cfg.batch_size):
            idx = order[s]
            opt_t.zero_grad(set_to_none=True)
            forward(Xtr[idx], ytr[idx]).backward()
            step()
            sched.step()
        with torch.inference_mode():
            model_t(Xv)  # validation pass, as `fit` does after every epoch
            now = time.perf_counter()
            pred = r.classes[model_t(Xtest).argmax(dim=1).numpy()]
        curve.append((now - t0 - paused, float(np.mean(pred == r.y_test))))
        paused += time.perf_counter() - now
    return curve


def tta_torch_compile(
    epochs: int | None, dataset: str = "fashion-mnist"
) -> list[tuple[float, float]]:
    """`tta_torch` through ``torch.compile`` (default mode), compilation counted."""
    return tta_torch(epochs, dataset, compiled=True)


# ----------------------------------------------------------------------------- JAX
def jax_step(d: int, H: int, k: int, tx: Any) -> tuple[Any, Any, Callable[..., Any]]:
    """A d-H-k ReLU network in JAX (PyTorch's ``nn.Linear`` initialisation), its optax
    state, and the jitted step ``(params, state, X, y, idx) -> (params, state)``: the
    batch gathered, loss, ``jax.grad`` and the update in one function, parameters and state
    donated so that XLA may update them in place as the others do."""
    import jax
    import jax.numpy as jnp
    import optax

    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    params = {
        "W1": jax.random.uniform(k1, (d, H), jnp.float32, -1, 1) / np.sqrt(d),
        "b1": jnp.zeros(H, jnp.float32),
        "W2": jax.random.uniform(k2, (H, k), jnp.float32, -1, 1) / np.sqrt(H),
        "b2": jnp.zeros(k, jnp.float32),
    }

    def loss(p: Any, xb: Any, yb: Any) -> Any:
        return optax.softmax_cross_entropy_with_integer_labels(jax_scores(p, xb), yb).mean()

    def step(p: Any, st: Any, Xj: Any, yj: Any, idx: Any) -> Any:
        grads = jax.grad(loss)(p, Xj[idx], yj[idx])
        updates, st = tx.update(grads, st, p)
        return optax.apply_updates(p, updates), st

    return params, tx.init(params), jax.jit(step, donate_argnums=(0, 1))


def jax_scores(p: Any, X: Any) -> Any:
    """The network's scores S = ReLU(X W1 + b1) W2 + b2 (page 7)."""
    import jax

    return jax.nn.relu(X @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]


def jax_epoch(X: np.ndarray, y: np.ndarray, H: int, B: int, opt: str) -> Callable[[], float]:
    """One epoch of the same step in JAX ``jit`` (`jax_step`), optax SGD or Adam."""
    import jax
    import jax.numpy as jnp
    import optax

    tx = optax.sgd(LR[opt]) if opt == "sgd" else optax.adam(LR[opt])
    params, state, jstep = jax_step(D_IN, H, N_CLASSES, tx)
    Xj, yj = jnp.asarray(X), jnp.asarray(y.astype(np.int32))
    rng = np.random.default_rng(0)
    n = len(X)
    box = [params, state]

    def run() -> float:
        t0 = time.perf_counter()
        order = rng.permutation(n).astype(np.int32)
        p, st = box
        for s in batch_slices(n, B):
            p, st = jstep(p, st, Xj, yj, order[s])
        jax.block_until_ready(p)
        box[:] = [p, st]
        return time.perf_counter() - t0

    return run


def tta_jax(epochs: int | None, dataset: str = "fashion-mnist") -> list[tuple[float, float]]:
    """JAX ``jit`` with `train`'s recipe, as `tta_torch`: optax's AdamW (or Adam with L2,
    as ``torch.optim.Adam``'s weight decay) on a cosine schedule to 0, as PyTorch's
    ``CosineAnnealingLR``; its compilation counts in its time, as a user waits for it."""
    import jax
    import jax.numpy as jnp
    import optax

    t0, r = tta_recipe(epochs, dataset)
    cfg = r.cfg
    lr = optax.cosine_decay_schedule(cfg.lr, r.epochs * r.steps)
    tx = {
        "adamw": lambda: optax.adamw(lr, weight_decay=cfg.weight_decay),
        "adam": lambda: optax.chain(optax.add_decayed_weights(cfg.weight_decay), optax.adam(lr)),
    }[cfg.optimizer]()
    params, state, jstep = jax_step(r.X_train.shape[1], cfg.hidden[0], len(r.classes), tx)
    scores = jax.jit(jax_scores)
    Xj, yj = jnp.asarray(r.X_train), jnp.asarray(r.y_train.astype(np.int32))
    Xv, Xtest = jnp.asarray(r.X_val), jnp.asarray(r.X_test)
    rng = np.random.default_rng(cfg.seed)
    paused, curve = 0.0, []
    for _ in range(r.epochs):
        order = rng.permutation(len(r.X_train)).astype(np.int32)
        for s in batch_slices(len(order), cfg.batch_size):
            params, state = jstep(params, state, Xj, yj, order[s])
        jax.block_until_ready(scores(params, Xv))  # validation pass, as `fit` does
        now = time.perf_counter()
        pred = r.classes[np.asarray(scores(params, Xtest).argmax(axis=1))]
        curve.append((now - t0 - paused, float(np.mean(pred == r.y_test))))
        paused += time.perf_counter() - now
    return curve


# ----------------------------------------------------------------------------- workers
@dataclass(frozen=True)
class Peer:
    """A peer as its worker process runs it: the epoch builder (`torch_epoch`'s signature),
    what it reports about itself, its time-to-accuracy run if it has one, and whether
    it compiles (then its first epoch, compilation included, is timed apart)."""

    epoch: Callable[[np.ndarray, np.ndarray, int, int, str], Callable[[], float]]
    info: Callable[[], dict[str, Any]]
    tta: Callable[..., Any] | None = None
    compiled: bool = False


def _torch_setup(threads: int, compiled: bool) -> Peer:
    import torch

    torch.set_num_threads(threads)
    # torch.compile's CPU backend writes C++ and compiles it: without a compiler it fails.
    if compiled and shutil.which(os.environ.get("CXX", "g++")) is None:
        raise PeerUnavailable("torch.compile needs a C++ compiler (g++ or $CXX): none found")

    def epoch(X: np.ndarray, y: np.ndarray, H: int, B: int, opt: str) -> Callable[[], float]:
        return torch_epoch(X, y, H, B, opt, compiled=compiled)

    def info() -> dict[str, Any]:
        return {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}

    return Peer(epoch, info, tta_torch_compile if compiled else tta_torch, compiled)


def _jax_setup(threads: int) -> Peer:
    if threads == 1:  # XLA reads its flags when it starts: before the first import
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "")
            + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        )
    try:
        import jax
        import optax
    except ImportError as exc:
        raise PeerUnavailable(f"not installed ({exc}); `pip install -e .[bench]`") from exc
    jax.config.update("jax_platforms", "cpu")

    def info() -> dict[str, Any]:
        return {"jax": jax.__version__, "optax": optax.__version__}

    return Peer(jax_epoch, info, tta_jax, compiled=True)


#: The peers, each run in a `timing.Worker` process of its own: kind -> setup(threads),
#: which returns its epoch builder (`torch_epoch`'s signature), ``info`` and optionally
#: ``tta``, or raises `PeerUnavailable` saying why it cannot run here.
PEERS: dict[str, Callable[[int], dict[str, Callable[..., Any]]]] = {
    "torch": lambda threads: _torch_setup(threads, compiled=False),
    "torch_compile": lambda threads: _torch_setup(threads, compiled=True),
    "jax": _jax_setup,
}


#: The peers with a time-to-accuracy run (`Peer.tta`), in the order the report lists them.
TTA_PEERS = ("torch", "torch_compile", "jax")


def worker_main(kind: str, threads: int) -> None:
    """The loop of a `timing.Worker`'s process: answers one JSON line per request.

    A peer that cannot run (its setup raised) answers ``{"unavailable": reason}`` in one
    line to every request, and the benchmark goes on without it.
    """
    try:
        peer: Peer | None = PEERS[kind](threads)
        reason = ""
    except Exception as exc:  # an ImportError, no compiler, ...: say why, in one line
        peer, reason = None, " ".join(str(exc).split()) or type(exc).__name__
    runners: list[Callable[[], float]] = []

    def make_epoch(n: int, H: int, B: int, opt: str) -> list[Any]:
        """[key, seconds of the first epoch (a compiled peer's, compilation included)]."""
        assert peer is not None
        X, y = make_data(n)
        run = peer.epoch(X, y, H, B, opt)
        # Compiled code belongs to this model and step, so the warm-up is their own first
        # epoch (every batch shape compiled); eager PyTorch warms up on a throwaway model.
        first = run() if peer.compiled else None
        if not peer.compiled:
            peer.epoch(X[: 8 * B], y[: 8 * B], H, B, "sgd")()
        runners.append(run)
        return [len(runners) - 1, first]

    def make_predict(H: int, n: int) -> list[Any]:
        import torch

        X, _ = make_data(n, seed=2)
        model, Xt = torch_model(H), torch.from_numpy(X)

        def run() -> float:
            t0 = time.perf_counter()
            with torch.inference_mode():
                model(Xt).argmax(dim=1).numpy()
            return time.perf_counter() - t0

        run()
        runners.append(run)
        return [len(runners) - 1, None]

    fns: dict[str, Callable[..., Any]] = {
        "make_epoch": make_epoch,
        "make_predict": make_predict,
        "run": lambda key: runners[key](),
    }
    if peer is not None:
        fns["info"] = peer.info
        if peer.tta is not None:
            fns["tta"] = peer.tta
    for line in sys.stdin:
        fn, args = json.loads(line)
        if peer is None:
            answer: Any = {"unavailable": reason}
        else:
            answer = fns[fn](*args)
        print(json.dumps(answer), flush=True)


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
def start_workers(
    threads: int, kinds: Sequence[str] = tuple(PEERS)
) -> tuple[dict[str, Worker], dict[str, str]]:
    """A worker process per peer of ``kinds`` (`PEERS` keys; PyTorch eager always), and
    why each peer that cannot run here cannot (said in one line; the benchmark goes on
    without it). PyTorch eager must run."""
    workers, unavailable = {}, {}
    for kind in dict.fromkeys(["torch", *kinds]):
        worker = Worker(kind, threads)
        try:
            worker.call("info")
        except PeerUnavailable as exc:
            if kind == "torch":
                raise
            print(f"bench: leaving out {exc}", flush=True)
            unavailable[kind] = str(exc)
            worker.close()
            continue
        workers[kind] = worker
    return workers, unavailable


@dataclass(frozen=True)
class Setup:
    """What a contender is built from: the epoch's data, width H, batch B, and the peers'
    worker processes that started (`start_workers`), by `PEERS` kind."""

    X: np.ndarray
    y: np.ndarray
    H: int
    B: int
    workers: Mapping[str, Worker]


@dataclass(frozen=True)
class Contender:
    """How to build one contender of the training grid.

    ``build(setup, opt)`` returns a callable that runs one epoch and returns its seconds.
    ``per_optimiser``: one contender per optimiser, named ``{name}_{opt}`` (else ``name``,
    built with ``opt=None``); ``headline_only``: only in the headline configuration;
    ``slow``: runs in the first ``sk_rounds`` rounds only; ``peer``: the `PEERS` kind whose
    worker it needs (left out where that peer could not start).
    """

    build: Callable[[Setup, Any], Callable[[], float]]
    per_optimiser: bool = True
    headline_only: bool = False
    slow: bool = False
    peer: str | None = None


def peer_contender(kind: str, **kw: Any) -> Contender:
    """A peer's epoch, built and run in its worker process."""
    return Contender(
        lambda s, opt: s.workers[kind].runner("make_epoch", len(s.X), s.H, s.B, opt),
        peer=kind,
        **kw,
    )


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
    "torch": peer_contender("torch"),
    # Compiling costs seconds per configuration: the headline configuration only.
    "torch_compile": peer_contender("torch_compile", headline_only=True),
    "jax": peer_contender("jax", headline_only=True),
    "sklearn": Contender(lambda s, opt: sklearn_epoch(s.X, s.y, s.H, s.B, opt), slow=True),
}


#: The peers timed beside PyTorch eager, by contender name (the targets compare the step
#: with the fastest of them and eager).
COMPILED_PEERS = tuple(n for n, k in CONTENDERS.items() if k.peer not in (None, "torch"))


def build_contenders(
    setup: Setup, headline: bool, slow_rounds: int
) -> tuple[dict[str, Callable[[], float]], dict[str, int]]:
    """The registry's contenders at one configuration, and the round caps of the slow ones."""
    here = {n: k for n, k in CONTENDERS.items() if k.peer is None or k.peer in setup.workers}
    c = {n: k.build(setup, None) for n, k in here.items() if not k.per_optimiser}
    limits = {}
    for opt in OPTIMISERS:
        for name, k in here.items():
            if k.slow:
                limits[f"{name}_{opt}"] = slow_rounds
            if k.per_optimiser and (headline or not k.headline_only):
                c[f"{name}_{opt}"] = k.build(setup, opt)
    return c, limits
