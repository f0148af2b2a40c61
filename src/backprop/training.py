"""The training recipe: `TrainConfig`, `fit` a network as a config says, `train` on a dataset.

The notes (pages 1-7) end at the gradient and "a small step against it"; the stepping
itself is `backprop.trainer.Trainer` (one engine for this module, the CLI, the
scikit-learn estimators and the benchmark) and the policies around it are callbacks
(`backprop.callbacks`). This module turns a `TrainConfig` into that engine: a
learning-rate schedule over the whole run, the optimiser, early stopping on the
validation loss (the one meaning of "best epoch"), checkpoints, a progress bar; and
`train` adds the data side: split, the model's recorded preprocessing, scaled regression
targets, and the result files with ``out=``.
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from backprop.augment import Augmenter, parse_augment
from backprop.callbacks import (
    Callback,
    EarlyStopping,
    EpochLog,
    History,
    ProgressBar,
    progress_enabled,
)
from backprop.checks import (
    check_bool,
    check_choice,
    check_fraction,
    check_int,
    check_ints,
    check_real,
)
from backprop.distributed import world
from backprop.layers import ACTIVATIONS
from backprop.losses import LOSSES
from backprop.network import MLP
from backprop.optim import OPTIMIZERS, SCHEDULES, make_optimizer, make_schedule
from backprop.recipes import RECIPES
from backprop.trainer import (
    Checkpoint,
    CheckpointError,
    Trainer,
    TrainingDiverged,
    TrainResult,
    load_checkpoint,
    save_checkpoint,
)

if TYPE_CHECKING:
    from backprop.data import Dataset
    from backprop.io import Model

__all__ = [
    "Callback",
    "CheckpointError",
    "EpochLog",
    "History",
    "MirrorWarning",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "evaluate",
    "fit",
    "load_checkpoint",
    "mirror_warning",
    "resolve_epochs",
    "save_checkpoint",
    "train",
]

DTYPES = ("float32", "float64")
KEEP = ("best", "last")


# ----------------------------------------------------------------------------- config


@dataclass
class TrainConfig:
    """Everything that defines a training run; the defaults are a good recipe.

    The defaults (one hidden layer of 1024 ReLU units, AdamW with lr 2e-3 and weight decay
    0.01 annealed by a cosine schedule, batches of 128, 9 epochs or at least 1500 updates)
    reach 0.90 test accuracy on Fashion-MNIST and 0.97 on digits; see ``docs/training.md``
    for the measurements and the alternatives tried.

    Parameters
    ----------
    hidden : tuple of int, default (1024,)
        Widths of the hidden layers, each >= 1 (one entry: the notes' two-layer net).
    activation : {"relu", "tanh", "sigmoid", "identity"}, default "relu"
    epochs : int or None, default None
        Passes over the training data, >= 1. None ("auto") means `AUTO_EPOCHS` (9), or
        more on a small dataset so that the run makes at least `AUTO_MIN_STEPS` (1500)
        updates: Adam with a cosine schedule needs a number of *steps*, and 9 epochs of
        digits are only 99 of them. See `resolve_epochs`.
    batch_size : int, default 128
        Examples per step, >= 1 (the last batch of an epoch may be smaller).
    optimizer : {"sgd", "momentum", "nesterov", "adam", "adamw"}, default "adamw"
    lr : float, default 2e-3
        Learning rate, > 0: the peak of the schedule.
    momentum : float, default 0.9
        For "momentum" and "nesterov", 0 <= momentum < 1.
    weight_decay : float, default 0.01
        L2 coefficient (decoupled decay for "adamw"), >= 0.
    schedule : {"constant", "step", "cosine", "onecycle"}, default "cosine"
        Learning rate over the ``epochs * batches per epoch`` steps of the run.
    val_fraction : float, default 0.1
        Share of the training data held out for validation, 0 <= val_fraction < 1 (used
        by `train`; `fit` takes the validation data as arguments).
    patience : int or None, default None
        Early stopping: stop after this many epochs (>= 1) without a lower validation
        loss. None trains every epoch.
    seed : int, default 0
        Seeds the weight initialisation, the train/validation split and the shuffling.
    dtype : {"float32", "float64"}, default "float32"
    standardize : bool, default True
        Standardise inputs with the training part's mean and scale (`train` only).
    keep : {"best", "last"}, default "best"
        With validation data, the weights the network ends with: those of the best
        epoch (lowest validation loss) or of the last one. Without validation data the
        last epoch's are kept.
    dropout : float, default 0.0
        Inverted dropout on every hidden layer during training: each unit of each example
        is zeroed with this probability and the survivors scaled by 1 / (1 - dropout)
        (``docs/training.md``); 0 <= dropout < 1. Never applied at prediction.
    input_dropout : float, default 0.0
        The same on the inputs.
    max_norm : float or None, default None
        After every step, rescale each hidden unit's incoming weight vector to norm <=
        max_norm (> 0; `backprop.constraints.MaxNorm`). None: no constraint.
    label_smoothing : float, default 0.0
        Classification: train the cross-entropy against (1 - e) onehot(y) + e / c with
        e = label_smoothing, 0 <= e < 1 (``docs/training.md``). Validation and test losses
        stay the plain cross-entropy.
    augment : str or None, default None
        Image data: warp every training batch afresh (`backprop.augment`), e.g.
        ``"shift=2,rotate=10,scale=0.1,elastic=2,sigma=4"``. None: no augmentation.
    recipe : str or None, default None
        The `backprop.recipes.RECIPES` entry the config started from (`from_recipe` sets
        it): a label kept in the model and the run's files; the other fields hold the
        values. None: no recipe.
    """

    hidden: tuple[int, ...] = (1024,)
    activation: str = "relu"
    epochs: int | None = None
    batch_size: int = 128
    optimizer: str = "adamw"
    lr: float = 2e-3
    momentum: float = 0.9
    weight_decay: float = 0.01
    schedule: str = "cosine"
    val_fraction: float = 0.1
    patience: int | None = None
    seed: int = 0
    dtype: str = "float32"
    standardize: bool = True
    keep: str = "best"
    dropout: float = 0.0
    input_dropout: float = 0.0
    max_norm: float | None = None
    label_smoothing: float = 0.0
    augment: str | None = None
    recipe: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.hidden, list):  # from JSON or argparse
            self.hidden = tuple(self.hidden)

    def validate(self) -> None:
        """Check every field.

        Raises
        ------
        ValueError
            Naming the first bad field, its value and what is allowed.
        """
        check_ints("hidden", self.hidden, low=1)
        check_choice("activation", self.activation, ACTIVATIONS)
        if self.epochs is not None:
            check_int("epochs", self.epochs, low=1)
        check_int("batch_size", self.batch_size, low=1)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_real("lr", self.lr, low=0, low_open=True)
        check_fraction("momentum", self.momentum)
        check_real("weight_decay", self.weight_decay, low=0)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_fraction("val_fraction", self.val_fraction)
        if self.patience is not None:
            check_int("patience", self.patience, low=1)
        check_int("seed", self.seed, low=0)
        check_choice("dtype", self.dtype, DTYPES)
        check_bool("standardize", self.standardize)
        check_choice("keep", self.keep, KEEP)
        check_fraction("dropout", self.dropout)
        check_fraction("input_dropout", self.input_dropout)
        if self.max_norm is not None:
            check_real("max_norm", self.max_norm, low=0, low_open=True)
        check_fraction("label_smoothing", self.label_smoothing)
        if self.augment is not None:
            parse_augment(self.augment)
        if self.recipe is not None:
            check_choice("recipe", self.recipe, RECIPES)

    @classmethod
    def from_recipe(cls, name: str, **overrides: Any) -> TrainConfig:
        """The config of a named recipe (`backprop.recipes.RECIPES`), then ``overrides``.

        Parameters
        ----------
        name : str
            A key of ``RECIPES``; stored in the config's ``recipe`` field.
        **overrides
            Fields given explicitly: they win over the recipe's values.

        Returns
        -------
        TrainConfig
            Validated.

        Raises
        ------
        ValueError
            On an unknown recipe (naming the choices) or a bad field.
        """
        check_choice("recipe", name, RECIPES)
        config = cls(**{**RECIPES[name].overrides, **overrides, "recipe": name})
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-serialisable dict (``hidden`` as a list)."""
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """Rebuild a config from `to_dict`'s output; missing keys take their defaults.

        Raises
        ------
        ValueError
            On an unknown key or a bad value (the config is validated).
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training config key(s): {', '.join(unknown)}")
        cfg = cls(**dict(d))
        cfg.validate()
        return cfg


# 9 epochs reach 0.90 on Fashion-MNIST on each of seeds 0-2, sooner than the 12 used
# before (issue 12; docs/training.md has the runs and the command).
AUTO_EPOCHS = 9
AUTO_MIN_STEPS = 1500


def resolve_epochs(config: TrainConfig, n_train: int) -> int:
    """The number of epochs a run makes: ``config.epochs``, or the "auto" rule.

    Parameters
    ----------
    config : TrainConfig
    n_train : int
        Training examples (validation excluded).

    Returns
    -------
    int
        ``config.epochs`` when set; else ``max(AUTO_EPOCHS, ceil(AUTO_MIN_STEPS / steps))``
        with ``steps = ceil(n_train / batch_size)`` updates per epoch.
    """
    if config.epochs is not None:
        return config.epochs
    steps_per_epoch = -(-n_train // min(config.batch_size, n_train))
    return max(AUTO_EPOCHS, -(-AUTO_MIN_STEPS // steps_per_epoch))


class MirrorWarning(UserWarning):
    """Augmentation mirrors the images of a dataset whose classes are not mirror-symmetric."""


def mirror_warning(dataset: Dataset, config: TrainConfig) -> str | None:
    """The warning for ``config.augment``'s flip on ``dataset``, or None when it is fine.

    A mirrored 3 is not a 3: flipping digits teaches the network wrong labels. Datasets
    not known to be asymmetric (``dataset.mirror_symmetric`` None: files) are trusted.
    """
    if config.augment is None or dataset.mirror_symmetric is not False:
        return None
    if not parse_augment(config.augment).flip:
        return None
    return (
        f"augment flip mirrors the {dataset.name} images left to right, but their classes are "
        f"not mirror-symmetric (a mirrored digit is not the same digit); drop flip= from "
        f"--augment ({config.augment!r})"
    )


def check_network_fits(
    config: TrainConfig,
    n_features: int,
    n_outputs: int,
    n_train: int,
    *,
    what: str | None = None,
    error: type[Exception] = ValueError,
) -> None:
    """Refuse in one line a network too large for the memory available, before allocating.

    Per parameter a run holds the weights, their gradients, the last good copy (for
    divergence), up to two optimiser slots (Adam) and a checkpoint's serialised copy: six;
    per example of a batch, each layer's pre-activation, activation and delta.

    Raises
    ------
    ValueError
        (or ``error``) ``"<what> needs <size> of memory; this machine has <size> available"``.
    """
    from backprop._memory import check_fits

    sizes = [n_features, *config.hidden, n_outputs]
    n_params = sum((a + 1) * b for a, b in itertools.pairwise(sizes))
    batch = min(config.batch_size, n_train)
    need = (6 * n_params + 3 * batch * sum(sizes)) * np.dtype(config.dtype).itemsize
    check_fits(need, what or f"hidden={list(config.hidden)}: the network", error)


# ----------------------------------------------------------------------------- fit


def fit(
    net: MLP,
    X_train: ArrayLike,
    y_train: ArrayLike,
    X_val: ArrayLike | None = None,
    y_val: ArrayLike | None = None,
    *,
    config: TrainConfig,
    callbacks: Sequence[Callback] = (),
    progress: bool | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    resume: bool = False,
    y_scale: float = 1.0,
    augmenter: Augmenter | None = None,
    threads: int | None = None,
) -> TrainResult:
    """Train ``net`` in place by mini-batch gradient descent, as ``config`` says.

    Builds the schedule, the optimiser and a `backprop.trainer.Trainer`, with these
    callbacks around it: `EarlyStopping` on the validation loss (the best epoch; with
    ``config.patience`` it also stops the run; with ``config.keep == "best"`` the network
    ends with the best epoch's weights), `Checkpoint`, then ``callbacks``, then the
    progress bar.

    Parameters
    ----------
    net : MLP
        Trained in place (its parameters are updated).
    X_train : array-like of shape (n, d)
    y_train : array-like of shape (n,) or (n, k)
        Class indices 0..c-1 (classifier) or targets (regressor).
    X_val : array-like of shape (m, d), optional
    y_val : array-like of shape (m,) or (m, k), optional
        Validation data, evaluated after every epoch. Without it there is no best epoch
        (the last one is kept) and ``val_loss``/``val_metric`` are NaN.
    config : TrainConfig
        Uses ``epochs``, ``batch_size``, ``optimizer``, ``lr``, ``momentum``,
        ``weight_decay``, ``schedule``, ``patience``, ``keep`` and ``seed`` (shuffling).
    callbacks : sequence of Callback
    progress : bool or None
        Show tqdm bars (epochs, and batches within an epoch, with the running loss) on
        stderr. None: only when stderr is a terminal.
    checkpoint : path, optional
        Write a checkpoint (weights, optimiser state, RNG state, history, early-stopping
        state) there, atomically, at the end of every epoch.
    resume : bool, default False
        Continue from ``checkpoint`` (which must exist and match ``config`` and ``net``):
        the result is bit for bit that of an uninterrupted run.

        Under ``mpiexec -n K`` (`backprop.distributed.world`) every rank calls `fit` with
        the same data and config; each takes its share of every global batch of
        ``config.batch_size`` examples, and rank 0 alone writes the checkpoint and shows
        progress (docs/scaling.md).
    y_scale : float, default 1.0
        If the caller divided the regression targets by this scale, losses and RMSE in
        the history are multiplied back into original units (`train` does this).
    augmenter : backprop.augment.Augmenter, optional
        Required when ``config.augment`` is set: it knows the image shape and the
        background (`train` builds it from the dataset and the preprocessor).
    threads : int, optional
        BLAS threads for the run; default: the user's ``OPENBLAS_NUM_THREADS`` (or
        ``OMP_NUM_THREADS``...) if set, else chosen from the layer sizes and the batch
        (`backprop.threads`). Not part of the recipe: a resumed run may use another.

    Returns
    -------
    TrainResult

    Raises
    ------
    ValueError
        On invalid config or data.
    TrainingDiverged
        When a loss becomes NaN or infinite (weights reset to the last good ones).
    CheckpointError
        When ``resume`` is set and the checkpoint is missing or does not match.
    """
    config.validate()
    if (X_val is None) != (y_val is None):
        raise ValueError("give both X_val and y_val, or neither")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path")
    if config.augment is not None and augmenter is None:
        raise ValueError("augment needs images: pass augmenter= (train() builds it)")
    # Validate once; the loop itself never checks again.
    Xt = _check_inputs(net, X_train)
    yt = net.check_y(y_train, Xt.shape[0])
    val = None
    if X_val is not None and y_val is not None:
        Xv = _check_inputs(net, X_val)
        val = (Xv, net.check_y(y_val, Xv.shape[0]))

    n = Xt.shape[0]
    steps_per_epoch = -(-n // min(config.batch_size, n))
    epochs = resolve_epochs(config, n)
    schedule = make_schedule(config.schedule, config.lr, epochs * steps_per_epoch)
    opt = make_optimizer(
        config.optimizer,
        net.params,
        lr=schedule,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    # Under `mpiexec -n K` the K ranks train data-parallel (backprop.distributed); the
    # callbacks are the same on every rank (their states go into one checkpoint), rank 0
    # alone writes the checkpoint and shows the progress bar.
    comm = world()
    trainer = Trainer(
        net,
        opt,
        batch_size=config.batch_size,
        seed=config.seed,
        y_scale=y_scale,
        comm=comm,
        dropout=config.dropout,
        input_dropout=config.input_dropout,
        max_norm=config.max_norm,
        label_smoothing=config.label_smoothing,
        augment=augmenter,
    )
    around: list[Callback] = []
    if val is not None:
        around.append(
            EarlyStopping("val_loss", patience=config.patience, restore_best=config.keep == "best")
        )
    if checkpoint is not None:
        around.append(Checkpoint(checkpoint, {"config": config.to_dict()}))
    bar = None
    if progress_enabled(progress) and comm.is_root:  # last in the list: ranks' lists agree
        bar = ProgressBar(epochs, steps_per_epoch, loss_scale=y_scale**2)
    try:
        return trainer.fit(
            Xt,
            yt,
            epochs=epochs,
            validation_data=val,
            callbacks=[*around, *callbacks, *([bar] if bar else [])],
            resume_from=checkpoint if resume else None,
            threads=threads,
        )
    finally:
        if bar is not None:
            bar.close()


def _check_inputs(net: MLP, X: Any) -> Any:
    """``net.check_X(X)``, except that a `backprop.data.Rows` is checked without reading it.

    A `Rows` (`train`'s split of a dataset, a memory-mapped file) is gathered batch by
    batch by the trainer; its values were checked finite when the dataset was loaded, and
    reading it all here would be the copy it exists to avoid.
    """
    from backprop.data.rows import Rows

    if not isinstance(X, Rows):
        return net.check_X(X)
    if X.shape[1] != net.n_inputs or len(X) == 0 or X.dtype != net.dtype:
        raise ValueError(
            f"X ({X!r}) must have {net.n_inputs} columns, rows, and the network's dtype {net.dtype}"
        )
    return X


# ----------------------------------------------------------------------------- train


def train(
    dataset: Dataset,
    config: TrainConfig | None = None,
    *,
    callbacks: Sequence[Callback] = (),
    progress: bool | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    resume: bool = False,
    out: str | os.PathLike[str] | None = None,
    threads: int | None = None,
) -> tuple[Model, TrainResult]:
    """Train a network on a `Dataset` from scratch: split, standardise, build, fit.

    The training part of ``dataset`` is split (seeded, stratified for classification)
    into training and validation data; a `backprop.data.Preprocessor` fitted on the
    training part (raw-input scale such as digits' /16 or uint8's /255, then a mean per
    feature with one scale for all pixels of images, or a scale per feature otherwise)
    turns raw inputs into network inputs and
    is stored in the model, which applies it to raw input; regression targets are
    standardised too and the scaling folded back into the last layer afterwards, so the
    model predicts in original units. The test part is not touched.

    Parameters
    ----------
    dataset : Dataset
    config : TrainConfig, optional
        Defaults to ``TrainConfig()``.
    callbacks, progress, checkpoint, resume, threads
        As in `fit`.
    out : path, optional
        Write the run's result files there (`backprop.report.write_results`: the model,
        ``metrics.json`` with the test-set scores, ``history.csv``, the plots), the same
        directory ``backprop train`` writes. Under ``mpiexec``, rank 0 alone writes them.

    Returns
    -------
    model : backprop.io.Model
        Network, preprocessor (raw-input scale, standardisation, image shape, feature
        names), class labels, and the config (plus ``"task"`` and ``"dataset"``) as a dict.
    result : TrainResult

    Raises
    ------
    ValueError
        On an invalid config.
    TrainingDiverged
        With ``.model`` set to the model holding the last good weights.
    """
    from backprop.data import Preprocessor, train_val_split
    from backprop.data.rows import as_rows
    from backprop.io import Model

    config = TrainConfig() if config is None else config
    config.validate()
    dt = np.dtype(config.dtype)
    classify = dataset.task == "classification"
    # The split is two sets of row indices of the raw inputs (`Rows`), in memory or a
    # memory-mapped file alike: nothing is copied, and the trainer gathers each batch.
    X_tr, X_val, y_tr, y_val = train_val_split(
        as_rows(dataset.X_train),
        dataset.y_train,
        config.val_fraction,
        seed=config.seed,
        stratify=classify,
    )
    # Fitted on the training part only; the same transform, recorded in the model, is what
    # Model.predict applies to raw input later (new C-ordered arrays in the training dtype).
    pre = Preprocessor.fit(
        X_tr,
        input_scale=dataset.input_scale,
        image_shape=dataset.image_shape,
        feature_names=dataset.feature_names,
        standardize=config.standardize,
    )
    # Applied to each gathered batch (and validation chunk), never to the whole array:
    # the values are those of pre.transform, element for element (`Preprocessor.apply`).
    X_tr = X_tr.preprocessed(pre, dt)
    X_val = X_val.preprocessed(pre, dt)
    augmenter = None
    if config.augment is not None:
        if pre.image_shape is None:
            raise ValueError(f"augment needs image data; {dataset.name} has no image shape")
        # What moves in from outside an image is a blank raw pixel, preprocessed.
        blank = pre.transform(np.zeros((1, dataset.n_features)), dtype=dt, warn=False)[0]
        augmenter = Augmenter(config.augment, pre.image_shape, blank)
        if (mirrored := mirror_warning(dataset, config)) is not None:
            warnings.warn(mirrored, MirrorWarning, stacklevel=2)

    y_mean: np.ndarray | None = None
    y_scale = 1.0
    if not classify:
        y2 = np.asarray(y_tr, dtype=np.float64).reshape(len(y_tr), -1)
        y_mean = y2.mean(axis=0)
        y_scale = float(np.sqrt(((y2 - y_mean) ** 2).mean())) or 1.0
        # One scale for every target column, so losses convert back exactly.
        y_tr = ((y2 - y_mean) / y_scale).astype(dt)
        # The width is y2's: an empty validation part (--val-fraction 0) cannot infer it.
        y_val = np.asarray(y_val, np.float64).reshape(len(y_val), y2.shape[1])
        y_val = ((y_val - y_mean) / y_scale).astype(dt)

    check_network_fits(config, dataset.n_features, dataset.n_outputs, len(X_tr))
    net = MLP(
        [dataset.n_features, *config.hidden, dataset.n_outputs],
        activation=config.activation,
        loss="softmax_cross_entropy" if classify else "squared_error",
        dtype=dt,
        seed=config.seed,
    )

    def to_model() -> Model:
        if y_mean is not None:
            # Outputs were trained on (y - mean) / scale: fold the inverse into the last layer.
            L = net.n_layers
            net.params[f"W{L}"] *= y_scale
            net.params[f"b{L}"] *= y_scale
            net.params[f"b{L}"] += y_mean.astype(dt)
        return Model(
            net,
            preprocessor=pre,
            classes=dataset.classes if classify else None,
            config={**config.to_dict(), "task": dataset.task, "dataset": dataset.name},
        )

    try:
        result = fit(
            net,
            X_tr,
            y_tr,
            X_val if len(X_val) else None,
            y_val if len(X_val) else None,
            config=config,
            callbacks=callbacks,
            progress=progress,
            checkpoint=checkpoint,
            resume=resume,
            y_scale=y_scale,
            augmenter=augmenter,
            threads=threads,
        )
    except TrainingDiverged as exc:
        exc.model = to_model()
        raise
    model = to_model()
    if out is not None and world().is_root:  # every rank holds the same model
        from backprop.report import write_results

        write_results(out, model, result, dataset, config=config)
    return model, result


# ----------------------------------------------------------------------------- evaluate


def evaluate(
    model: Model, X: ArrayLike, y: ArrayLike, *, baseline_mean: ArrayLike | None = None
) -> dict[str, float]:
    """Test-set metrics of a model on raw inputs (as `Dataset` holds them).

    Parameters
    ----------
    model : backprop.io.Model
    X : array-like of shape (n, d), or Rows
        Raw inputs; the model's preprocessor turns them into network inputs (a `Rows`,
        a memory-mapped test set, chunk by chunk).
    y : array-like of shape (n,) or (n, k)
        Class indices 0..c-1 (as in `Dataset`) for a classifier; targets for a regressor.
    baseline_mean : array-like of shape () or (k,), optional
        Regression only: the constant the mean predictor predicts. Pass the mean of the
        *training* targets for an honest baseline; by default the mean of ``y`` itself is
        used (the best constant in hindsight, slightly optimistic).

    Returns
    -------
    metrics : dict
        Classification: ``{"accuracy", "loss"}`` (mean cross-entropy). Regression:
        ``{"rmse", "loss", "baseline_rmse"}`` where loss is the half mean squared error
        and baseline_rmse the RMSE of always predicting ``baseline_mean``.
    """
    net = model.net
    # Chunk by chunk for a `Rows` (a memory-mapped test set): outputs (n, c) only in memory.
    out = model.forward(X)  # finite, or ModelOutputError (NaN scores: a broken model)
    if model.is_binary:  # class indices 0/1 -> the one-output indicator it was trained on
        y = np.asarray(y).reshape(-1, 1)
    yy = net.check_y(y, out.shape[0])
    if model.is_classifier:
        hit = (out > 0) == yy if model.is_binary else out.argmax(axis=1) == yy
        loss, _ = LOSSES[net.loss](out, yy)
        return {"accuracy": float(np.mean(hit)), "loss": float(loss)}
    y64 = yy.astype(np.float64)
    resid = out.astype(np.float64) - y64
    mse = float(np.mean(resid**2))
    constant = y64.mean(axis=0) if baseline_mean is None else np.asarray(baseline_mean, float)
    base = float(np.sqrt(np.mean((y64 - constant) ** 2)))
    loss = 0.5 * float(np.sum(resid**2)) / len(y64)
    return {"rmse": math.sqrt(mse), "loss": loss, "baseline_rmse": base}
