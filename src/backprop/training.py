"""A `TrainConfig` onto the engine: `fit` a network as a config says.

The notes (pages 1-7) end at the gradient and "a small step against it"; the stepping
itself is `backprop.trainer.Trainer` (one engine for `backprop.run`, the CLI, the
scikit-learn estimators and the benchmark) and the policies around it are callbacks
(`backprop.callbacks`). `fit` turns a `backprop.config.TrainConfig` into that engine: a
learning-rate schedule over the whole run, the optimiser, early stopping on the
validation loss (the one meaning of "best epoch"), checkpoints, a progress bar. The data
side (split, preprocessing, the model and its files) is `backprop.run`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from numpy.typing import ArrayLike

from backprop.augment import Augmenter
from backprop.callbacks import Callback, EarlyStopping, ProgressBar, TrainResult, progress_enabled
from backprop.checkpoint import Checkpoint
from backprop.config import TrainConfig, resolve_epochs
from backprop.data.rows import Rows
from backprop.distributed import world
from backprop.network import MLP
from backprop.optim import make_optimizer
from backprop.schedules import make_schedule
from backprop.trainer import Trainer

__all__ = ["fit"]


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
        state) there, atomically, by `backprop.checkpoint.Checkpoint`: after the first
        and the last epoch, and in between at most every `CHECKPOINT_INTERVAL` seconds.
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
        around.append(Checkpoint(checkpoint, {"config": config.to_dict()}, epochs=epochs))
    bar = None
    if progress_enabled(progress) and comm.is_root:  # stateless: rank 0 alone may have it
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
    if not isinstance(X, Rows):
        return net.check_X(X)
    if X.shape[1] != net.n_inputs or len(X) == 0 or X.dtype != net.dtype:
        raise ValueError(
            f"X ({X!r}) must have {net.n_inputs} columns, rows, and the network's dtype {net.dtype}"
        )
    return X
