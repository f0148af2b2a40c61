"""A whole training run: a `Dataset` in, a `Model` (and a run directory) out.

The layers below each do one thing; this module composes them, and the data flows down
through them once:

1. `prepare`: split the training part (seeded, stratified for classification), fit the
   `backprop.data.Preprocessor` on the training part only (raw-input scale such as
   digits' /16 or uint8's /255, then standardisation), scale regression targets, build
   the augmenter. Nothing is copied: the splits are `Rows` of the raw inputs, each batch
   preprocessed as the trainer gathers it.
2. `build_network`: the `MLP` the config describes, refused in one line if it cannot fit
   in memory.
3. `backprop.training.fit`: the config onto the `backprop.trainer.Trainer`.
4. `to_model`: the trained network, its preprocessing and labels, as one `Model` that
   predicts on raw input in the data's own units.
5. With ``out=``: `backprop.report.write_results` writes the results (the model,
   ``metrics.json``, ``history.csv``, the plots) into a staging directory beside ``out``
   and `backprop.rundir` publishes them, ``metrics.json`` last: the run directory and its
   one protocol, the same for ``backprop train`` and the Python API.

``backprop train``, ``mpiexec -n K backprop train``, the Python API and the benchmarks all
run through here.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backprop import rundir
from backprop.augment import Augmenter
from backprop.callbacks import Callback, TrainResult
from backprop.config import MirrorWarning, TrainConfig, check_network_fits, mirror_warning
from backprop.data import Dataset, Preprocessor, train_val_split
from backprop.data.rows import Rows, as_rows
from backprop.distributed import world
from backprop.drawing import Drawer
from backprop.io import Model
from backprop.network import MLP
from backprop.report import RESULT_FILES, write_results
from backprop.threads import training_threads
from backprop.trainer import TrainingDiverged
from backprop.training import fit

__all__ = [
    "Prepared",
    "build_network",
    "plot_drawer",
    "prepare",
    "publish_results",
    "to_model",
    "train",
]


@dataclass
class Prepared:
    """A dataset made ready for `backprop.training.fit` (see `prepare`).

    Attributes
    ----------
    X_train : Rows of shape (n, d)
        Training rows of the raw inputs, preprocessed batch by batch into the run's dtype.
    y_train : ndarray of shape (n,) or (n, k)
        Class indices, or regression targets as ``(y - y_mean) / y_scale``.
    X_val : Rows of shape (m, d) or None
    y_val : ndarray of shape (m,) or (m, k), or None
        The validation part; None when ``config.val_fraction`` is 0.
    preprocessor : Preprocessor
        Fitted on the training part; the model applies it to raw input.
    y_mean : ndarray of shape (k,) or None
        Regression: the training targets' mean (None for classification).
    y_scale : float
        Regression: the one scale of all target columns (1.0 for classification).
    augmenter : Augmenter or None
        Set when ``config.augment`` is.
    """

    X_train: Rows
    y_train: np.ndarray
    X_val: Rows | None
    y_val: np.ndarray | None
    preprocessor: Preprocessor
    y_mean: np.ndarray | None
    y_scale: float
    augmenter: Augmenter | None


def prepare(dataset: Dataset, config: TrainConfig) -> Prepared:
    """Split, preprocess and scale a dataset's training part as ``config`` says.

    Parameters
    ----------
    dataset : Dataset
        Raw inputs; its test part is not touched.
    config : TrainConfig
        Uses ``val_fraction``, ``seed``, ``standardize``, ``dtype`` and ``augment``.

    Returns
    -------
    Prepared

    Raises
    ------
    ValueError
        ``config.augment`` on data without an image shape.
    """
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
    has_val = len(X_val) > 0
    return Prepared(
        X_train=X_tr,
        y_train=np.asarray(y_tr),
        X_val=X_val if has_val else None,
        y_val=np.asarray(y_val) if has_val else None,
        preprocessor=pre,
        y_mean=y_mean,
        y_scale=y_scale,
        augmenter=augmenter,
    )


def build_network(dataset: Dataset, config: TrainConfig, n_train: int) -> MLP:
    """The network ``config`` describes for ``dataset``, with its initial weights.

    Raises
    ------
    ValueError
        When it would not fit in the memory available (`check_network_fits`).
    """
    check_network_fits(config, dataset.n_features, dataset.n_outputs, n_train)
    classify = dataset.task == "classification"
    return MLP(
        [dataset.n_features, *config.hidden, dataset.n_outputs],
        activation=config.activation,
        loss="softmax_cross_entropy" if classify else "squared_error",
        dtype=np.dtype(config.dtype),
        seed=config.seed,
    )


def to_model(net: MLP, prepared: Prepared, dataset: Dataset, config: TrainConfig) -> Model:
    """The trained network as a `Model` that predicts on raw input, in the data's units.

    A regression network was trained on ``(y - y_mean) / y_scale``: the inverse is folded
    into its last layer here, in place (call this once per trained network).
    """
    if prepared.y_mean is not None:
        L = net.n_layers
        net.params[f"W{L}"] *= prepared.y_scale
        net.params[f"b{L}"] *= prepared.y_scale
        net.params[f"b{L}"] += prepared.y_mean.astype(net.dtype)
    classify = dataset.task == "classification"
    return Model(
        net,
        preprocessor=prepared.preprocessor,
        classes=dataset.classes if classify else None,
        config={**config.to_dict(), "task": dataset.task, **dataset.provenance()},
    )


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
    """Train a network on a `Dataset` from scratch: `prepare`, build, fit, `to_model`.

    Parameters
    ----------
    dataset : Dataset
    config : TrainConfig, optional
        Defaults to ``TrainConfig()``.
    callbacks, progress, checkpoint, resume, threads
        As in `backprop.training.fit`.
    out : path, optional
        Write the run's result files there (`backprop.report.write_results`: the model,
        ``metrics.json`` with the test-set scores and the run's wall time, ``history.csv``,
        the plots), the same directory ``backprop train`` writes, by `publish_results`.
        Under ``mpiexec``, rank 0 alone writes them.

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
    started = time.perf_counter()
    config = TrainConfig() if config is None else config
    config.validate()
    prepared = prepare(dataset, config)
    if (mirrored := mirror_warning(dataset, config)) is not None:
        warnings.warn(mirrored, MirrorWarning, stacklevel=2)
    net = build_network(dataset, config, len(prepared.X_train))
    drawer = None
    if out is not None and world().is_root:
        batch = min(config.batch_size, len(prepared.X_train))
        drawer = plot_drawer(net.layer_sizes, batch, threads)
    try:
        result = fit(
            net,
            prepared.X_train,
            prepared.y_train,
            prepared.X_val,
            prepared.y_val,
            config=config,
            callbacks=callbacks,
            progress=progress,
            checkpoint=checkpoint,
            resume=resume,
            y_scale=prepared.y_scale,
            augmenter=prepared.augmenter,
            threads=threads,
        )
        model = to_model(net, prepared, dataset, config)
        if out is not None and world().is_root:  # every rank holds the same model
            run_seconds = time.perf_counter() - started
            publish_results(
                Path(out), model, result, dataset, config, run_seconds=run_seconds, drawer=drawer
            )
    except TrainingDiverged as exc:
        exc.model = to_model(net, prepared, dataset, config)
        raise
    finally:
        if drawer is not None:
            drawer.close()
    return model, result


def plot_drawer(layer_sizes: Sequence[int], batch_size: int, threads: int | None) -> Drawer:
    """What draws a run's plots: workers warming up beside the training where it leaves a
    core free (`backprop.drawing`; as many as the cores, at most
    `backprop.drawing.allowed_workers`), else this process.

    Under ``mpiexec`` the ranks share the cores, so rank 0 draws its plots itself.

    Raises
    ------
    ValueError
        If ``BACKPROP_PLOT_WORKERS`` is not a non-negative integer.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    if world().size > 1 or training_threads(layer_sizes, batch_size, threads) >= cores:
        return Drawer()
    return Drawer(workers=cores)  # the drawer caps them (`allowed_workers`)


def publish_results(
    out: Path,
    model: Model,
    result: TrainResult,
    dataset: Dataset,
    config: TrainConfig,
    *,
    run_seconds: float | None = None,
    drawer: Drawer | None = None,
) -> None:
    """Write a run's results into ``out`` all at once, ``metrics.json`` last.

    They are written into a staging directory beside ``out`` and then renamed into it
    (`backprop.rundir.finish_run`, interrupts held), which also removes the run's
    ``checkpoint.safetensors`` and ``run.json`` there, done with: ``out`` holds either an
    unfinished run (resumable, no ``metrics.json``) or a finished one, never a mixture,
    and an earlier run's result files that this one does not write are removed.
    ``run_seconds`` (the run's wall time so far) goes into ``metrics.json``.
    """
    out.mkdir(parents=True, exist_ok=True)
    with rundir.staging_dir(out) as tmp:
        write_results(
            tmp, model, result, dataset, config=config, run_seconds=run_seconds, drawer=drawer
        )
        with rundir.interrupts_deferred():
            rundir.finish_run(tmp, out, RESULT_FILES)
