"""The explorer's state: a validated `ExploreConfig`, its data, and a `Session` that trains.

Every size the browser can send is bounded here (`LIMITS`), through `backprop.checks`,
so a bad or oversize setting is refused with a one-line message naming it. Training is
`backprop.trainer.Trainer.step` on consecutive batches of a seeded permutation, exactly
what `Trainer.run_epoch` does, one step at a time so that the page can watch.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import threading
import time
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from backprop.checks import check_choice, check_int, check_ints, check_real
from backprop.data import Dataset, Preprocessor, load_dataset
from backprop.explore.toys import TOYS
from backprop.io import Model
from backprop.layers import ACTIVATIONS
from backprop.network import MLP
from backprop.optim import OPTIMIZERS, make_optimizer
from backprop.trainer import Trainer

__all__ = [
    "IMAGE_SETS",
    "INITS",
    "LIMITS",
    "MAX_DROP",
    "MAX_PARAMS",
    "USER_FILE",
    "ExploreConfig",
    "Session",
]

#: Image sets of `backprop.data`, used through a seeded subset sized for the page.
IMAGE_SETS = ("digits", "fashion-mnist")

#: The ``data`` name of the file given to ``backprop explore --data FILE``: the browser
#: chooses it by this name and never sees its path.
USER_FILE = "file"

#: Where the weights start: seeded afresh, or from ``backprop explore --model FILE``.
INITS = ("new", "model")

#: The bounds on every size the browser sends (inclusive).
LIMITS: dict[str, tuple[int, int]] = {
    "n": (20, 2000),  # examples, training and test together
    "depth": (0, 6),  # hidden layers
    "width": (1, 1024),
    "batch": (1, 512),
    "steps": (1, 1000),  # steps per request
}
MAX_PARAMS = 2_000_000  # weights and biases in all
MAX_DROP = 0.9  # the largest drop probability (keep >= 0.1: M / keep stays readable)

MAX_HISTORY = 1000  # points per curve; beyond, every other one is dropped


@dataclass(frozen=True)
class ExploreConfig:
    """One state of the explorer, as the URL carries it."""

    data: str = "moons"
    n: int = 400
    noise: float = 0.15
    test: float = 0.3
    # The notes' network (pages 1-7): one hidden layer of m units. m = 8 keeps every unit
    # on the graph and every matrix readable, and still fits moons in 200 steps.
    hidden: tuple[int, ...] = (8,)
    activation: str = "relu"
    optimizer: str = "adam"
    lr: float = 0.03
    batch: int = 32
    wd: float = 0.0
    seed: int = 0
    dropout: float = 0.0  # drop probability of each hidden unit while training
    input_dropout: float = 0.0  # of each input
    init: str = "new"  # "new": seeded initial weights; "model": the --model file's weights

    @classmethod
    def from_dict(
        cls, values: dict[str, Any], *, user_file: bool = False, start_model: bool = False
    ) -> ExploreConfig:
        """A validated config from JSON values; missing keys keep their defaults.

        ``user_file``: the server holds a data file, so ``data`` may be `USER_FILE`;
        ``start_model``: it holds a model file, so ``init`` may be "model".

        Raises
        ------
        backprop.checks.OptionError
            An unknown key, a bad value or an oversize setting (one line naming it).
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}; known: {', '.join(sorted(known))}")
        c = {**asdict(cls()), **values}
        hidden = c["hidden"]
        if hidden in ([], ()):
            hidden = ()
        else:
            hidden = check_ints("hidden", hidden, low=LIMITS["width"][0])
        hi = LIMITS["depth"][1]
        if len(hidden) > hi:
            raise ValueError(f"hidden must have at most {hi} layers, got {len(hidden)}")
        for w in hidden:
            check_int("hidden width", w, high=LIMITS["width"][1])
        return cls(
            data=check_choice(
                "data", c["data"], (*TOYS, *IMAGE_SETS, *((USER_FILE,) if user_file else ()))
            ),
            n=check_int("n", c["n"], low=LIMITS["n"][0], high=LIMITS["n"][1]),
            noise=check_real("noise", c["noise"], low=0.0, high=1.0),
            test=check_real("test", c["test"], low=0.1, high=0.9),
            hidden=tuple(hidden),
            activation=check_choice("activation", c["activation"], ACTIVATIONS),
            optimizer=check_choice("optimizer", c["optimizer"], OPTIMIZERS),
            lr=check_real("lr", c["lr"], low=0.0, high=10.0, low_open=True),
            batch=check_int("batch", c["batch"], low=LIMITS["batch"][0], high=LIMITS["batch"][1]),
            wd=check_real("wd", c["wd"], low=0.0, high=1.0),
            seed=check_int("seed", c["seed"], low=0, high=2**31 - 1),
            dropout=check_real("dropout", c["dropout"], low=0.0, high=MAX_DROP),
            input_dropout=check_real("input_dropout", c["input_dropout"], low=0.0, high=MAX_DROP),
            init=check_choice("init", c["init"], INITS if start_model else INITS[:1]),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON values (``hidden`` as a list)."""
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d


@functools.lru_cache(maxsize=2)
def _load_image_set(name: str) -> Any:
    return load_dataset(name, dtype=np.float64)


# lru_cache alone lets concurrent first calls each load the set: the page's resets (or a
# client's) would load it once per request, each copy in memory at once.
_image_set_lock = threading.Lock()


def _image_set(name: str) -> Any:
    """A named image set, loaded once per process (Fashion-MNIST takes a while)."""
    with _image_set_lock:
        return _load_image_set(name)


@dataclass
class _Data:
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task: str
    n_out: int
    pre: Preprocessor
    classes: np.ndarray | None = None
    image_shape: tuple[int, int] | None = None


def _build_data(
    cfg: ExploreConfig, user_data: Dataset | None, pre: Preprocessor | None = None
) -> _Data:
    """The config's data: a toy set drawn with its seed, or a seeded subset of a dataset.

    ``pre``: a saved model's preprocessor, applied to the raw inputs instead of one fitted
    here (toy sets are otherwise used as drawn).
    """
    rng = np.random.default_rng(cfg.seed)
    n_test = max(1, round(cfg.n * cfg.test))
    if cfg.data in TOYS:
        toy = TOYS[cfg.data]
        X, y = toy.make(cfg.n, cfg.noise, rng)
        order = rng.permutation(cfg.n)
        te, tr = order[:n_test], order[n_test:]
        if pre is None:
            pre = Preprocessor(n_features=2)
        else:
            X = _transform(pre, X, cfg.data)
        return _Data(
            X[tr], y[tr], X[te], y[te], toy.task, max(toy.n_classes, 1), pre,
        )  # fmt: skip
    if cfg.data == USER_FILE and user_data is None:
        raise ValueError("data 'file' needs a file given to `backprop explore --data FILE`")
    ds = user_data if cfg.data == USER_FILE else _image_set(cfg.data)
    assert ds is not None
    tr = rng.choice(len(ds.X_train), min(cfg.n - n_test, len(ds.X_train)), replace=False)
    te = rng.choice(len(ds.X_test), min(n_test, len(ds.X_test)), replace=False)
    if pre is None:
        pre = Preprocessor.fit(
            ds.X_train[tr],
            input_scale=ds.input_scale,
            image_shape=ds.image_shape,
            feature_names=ds.feature_names,
        )
    X_train = _transform(pre, ds.X_train[tr], cfg.data)
    X_test = _transform(pre, ds.X_test[te], cfg.data)
    return _Data(
        X_train, ds.y_train[tr], X_test, ds.y_test[te], ds.task, ds.n_outputs, pre,
        ds.classes, ds.image_shape,
    )  # fmt: skip


def _transform(pre: Preprocessor, X: np.ndarray, data: str) -> np.ndarray:
    if X.shape[1] != pre.n_features:
        raise ValueError(
            f"the model takes {pre.n_features} inputs but data {data!r} has {X.shape[1]} "
            "features; choose the data it was trained on"
        )
    return pre.transform(X, np.float64, warn=False)


def _start_net(model: Model, d: _Data) -> MLP:
    """A float64 copy of a saved model's network, checked against the data's task."""
    src = model.net
    task = "classification" if src.is_classifier else "regression"
    if task != d.task or src.n_outputs != d.n_out:
        raise ValueError(
            f"the model is a {task} network with {src.n_outputs} outputs but the data are "
            f"{d.task} with {d.n_out}; choose the data it was trained on"
        )
    if model.classes is not None and d.classes is not None:
        if not np.array_equal(model.classes, d.classes):
            raise ValueError("the model's class labels are not the data's")
    net = MLP(src.layer_sizes, src.activation, src.loss, np.float64)
    for k, v in src.params.items():
        net.params[k][...] = v
    return net


class Session:
    """A network, its data and its optimiser, trained one step at a time.

    Parameters
    ----------
    config : ExploreConfig
    user_data : backprop.data.Dataset, optional
        The data of ``backprop explore --data FILE`` (``config.data == "file"``).
    start : backprop.io.Model, optional
        The model of ``backprop explore --model FILE``: with ``config.init == "model"``
        the network starts from its weights (its layers and activation replace the
        config's) and its preprocessor is applied to the data.
    """

    def __init__(
        self, config: ExploreConfig, user_data: Dataset | None = None, start: Model | None = None
    ) -> None:
        from_model = config.init == "model"
        if from_model and start is None:
            raise ValueError("init 'model' needs a file given to `backprop explore --model FILE`")
        if from_model:
            assert start is not None
            config = dataclasses.replace(
                config, hidden=tuple(start.net.layer_sizes[1:-1]), activation=start.net.activation
            )
        self.config = cfg = config
        self.data = d = _build_data(cfg, user_data, start.pre if from_model and start else None)
        sizes = [d.X_train.shape[1], *cfg.hidden, d.n_out]
        n_params = sum((a + 1) * b for a, b in itertools.pairwise(sizes))
        if n_params > MAX_PARAMS:
            raise ValueError(
                f"the network {sizes} has {n_params} parameters; the explorer allows at "
                f"most {MAX_PARAMS}"
            )
        loss = "softmax_cross_entropy" if d.task == "classification" else "squared_error"
        if from_model and start is not None:
            self.net = _start_net(start, d)
        else:
            self.net = MLP(sizes, cfg.activation, loss, np.float64, seed=cfg.seed)
        self.optimizer = make_optimizer(
            cfg.optimizer, self.net.params, lr=cfg.lr, weight_decay=cfg.wd
        )
        self.trainer = Trainer(
            self.net,
            self.optimizer,
            batch_size=cfg.batch,
            seed=cfg.seed,
            dropout=cfg.dropout,
            input_dropout=cfg.input_dropout,
        )
        self._peeked: tuple[int, list[np.ndarray | None] | None] | None = None
        self.steps = 0
        self._order = np.empty(0, np.int64)
        self._pos = 0
        self.batch_index = self._next_batch()
        self.history: dict[str, list[float | None]] = {
            k: [] for k in ("step", "train_loss", "test_loss", "train_metric", "test_metric")
        }
        self.grad_norms: list[list[float]] = []  # per step taken, ||dJ/dW(l)|| per layer
        self.record()

    @property
    def metric_name(self) -> str:
        """ "accuracy" for a classifier, "rmse" for a regressor."""
        return self.trainer.history.metric_name

    def _next_batch(self) -> np.ndarray:
        """Indices of the next batch: consecutive slices of a fresh permutation per epoch."""
        n = len(self.data.X_train)
        bs = min(self.config.batch, n)
        if self._pos >= n:
            self._pos = 0
        if self._pos == 0:
            self._order = self.trainer.rng.permutation(n)
        idx = self._order[self._pos : self._pos + bs]
        self._pos += bs
        return idx

    def batch(self) -> tuple[np.ndarray, np.ndarray]:
        """The batch the next step trains on: (X, y)."""
        return self.data.X_train[self.batch_index], self.data.y_train[self.batch_index]

    @property
    def drop(self) -> list[float]:
        """The drop probability of the inputs, then of each hidden layer."""
        return [self.config.input_dropout] + [self.config.dropout] * (self.net.n_layers - 1)

    def masks(self) -> list[np.ndarray | None] | None:
        """The dropout masks (M / keep, as `MLP.loss_and_grads` takes them) that the next
        step will draw for `batch`, or None without dropout.

        They are drawn by the trainer's own code from its generator, whose state is then
        put back, so the next `step` draws exactly these (the views show what it uses).
        """
        if self._peeked is None or self._peeked[0] != self.steps:
            rng = self.trainer.rng.bit_generator
            saved = rng.state
            drawn = self.trainer.dropout_masks(len(self.batch_index))
            rng.state = saved
            copies = None if drawn is None else [None if M is None else M.copy() for M in drawn]
            self._peeked = (self.steps, copies)
        return self._peeked[1]

    def step(self, count: int = 1, seconds: float | None = None) -> int:
        """Take ``count`` optimiser steps, then record the curves once.

        ``seconds``: stop early, after at least one step, once this much time has passed
        (the server's bound on one request; the caller asks again for the rest).

        Returns
        -------
        int
            The steps taken.

        Raises
        ------
        backprop.trainer.TrainingDiverged
            The loss became NaN or infinite (the weights go back to the last good ones).
        """
        count = check_int("steps", count, low=LIMITS["steps"][0], high=LIMITS["steps"][1])
        end = math.inf if seconds is None else time.monotonic() + seconds
        y_train = self.data.y_train
        taken = 0
        while taken < count and (taken == 0 or time.monotonic() < end):
            taken += 1
            Xb = self.data.X_train[self.batch_index]
            yb = y_train[self.batch_index]
            if y_train.ndim == 1 and self.data.task == "regression":
                yb = yb.reshape(-1, 1)
            self.trainer.step(Xb, yb)
            self.steps += 1
            g = self.trainer.grads
            self.grad_norms.append(
                [float(np.linalg.norm(g[f"W{l}"])) for l in range(1, self.net.n_layers + 1)]
            )
            self.batch_index = self._next_batch()
        del self.grad_norms[:-MAX_HISTORY]
        self.record()
        return taken

    def _evaluate(self, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        if self.data.task == "regression" and y.ndim == 1:
            y = y.reshape(-1, 1)
        return self.trainer.evaluate(X, y)

    def record(self) -> None:
        """Append the train and test loss and metric at the current step to the curves."""
        h = self.history
        if len(h["step"]) >= MAX_HISTORY:
            for v in h.values():
                del v[1::2]
        d = self.data
        (tl, tm), (vl, vm) = (
            self._evaluate(d.X_train, d.y_train),
            self._evaluate(d.X_test, d.y_test),
        )
        for key, value in zip(h, (self.steps, tl, vl, tm, vm), strict=True):
            h[key].append(value if math.isfinite(value) else None)  # JSON has no NaN: null

    def model(self) -> Model:
        """The current network as a `backprop.io.Model` (with its preprocessing and labels)."""
        return Model(
            self.net,
            preprocessor=self.data.pre,
            classes=self.data.classes,
            config={"explore": self.config.to_dict()},
        )
