"""Checkpoints: a whole training run's state in one safetensors file, and back.

`save_checkpoint` writes the weights, the optimiser state, the shuffling RNG, the history
and every callback's state (keyed by `backprop.callbacks.Callback.state_name`) atomically;
the `Checkpoint` callback does it after the first epoch, then every few seconds, and after
the last. `restore_checkpoint` puts a file back into a fresh trainer after checking every
field, so `Trainer.fit(resume_from=...)` continues bit for bit. The trainer is seen
through `backprop.callbacks.TrainerState`: this module sits between the callbacks and the
trainer.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.numpy

from backprop._fileutil import atomic_write_bytes
from backprop.callbacks import Callback, EpochLog, History, TrainerState
from backprop.config import TrainConfig

__all__ = [
    "CHECKPOINT_INTERVAL",
    "CHECKPOINT_VERSION",
    "Checkpoint",
    "CheckpointError",
    "LoadedCheckpoint",
    "load_checkpoint",
    "read_checkpoint_meta",
    "restore_checkpoint",
    "save_checkpoint",
]

# 3: callback states keyed by `Callback.state_name`, not by position in the list.
# 4: the history as one float64 tensor (``history``), not a repr string per row in the JSON.
CHECKPOINT_VERSION = 4

#: Seconds between the `Checkpoint` callback's saves by default: an interrupt loses at
#: most this much training, and a save of even a large network's state (a fraction of
#: a second) stays a small share of it.
CHECKPOINT_INTERVAL = 5.0

#: The tensor holding the history (`History.to_state`).
_HISTORY_TENSOR = "history"


class CheckpointError(ValueError):
    """A checkpoint file is missing, malformed, or does not match the run being resumed."""


def _is_count(value: object) -> bool:
    """A JSON whole number >= 0 (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class Checkpoint(Callback):
    """Save the whole training state to ``path`` (atomically) after an epoch, at most
    every ``min_interval`` seconds.

    The first epoch's checkpoint is always written (an interrupted run keeps its
    directory from then on), and so is that of the run's last epoch (``epochs``) and of
    the epoch at which an earlier callback stops the run. In between, a save waits until
    ``min_interval`` seconds have passed since the last one: a save costs about the same
    whatever the epoch, so the share of the run spent saving is at most one save's time
    over ``min_interval``, and an interrupt loses at most that much training.

    Put it after `EarlyStopping` in the callbacks, so its state is that of the epoch just
    finished and its stop is seen, and before callbacks that may interrupt the run.

    Parameters
    ----------
    path : path
    meta : mapping, optional
        JSON-serialisable facts about the run (the training config) that a resume must
        match exactly.
    epochs : int, optional
        The run's last epoch, always saved. None: the run's end is seen only when a
        callback before this one stops it.
    min_interval : float, optional
        Seconds between saves; 0 saves every epoch. Defaults to `CHECKPOINT_INTERVAL`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        meta: Mapping[str, Any] | None = None,
        *,
        epochs: int | None = None,
        min_interval: float | None = None,
    ):
        self.path = Path(path)
        self.meta = dict(meta or {})
        self.epochs = epochs
        self.min_interval = CHECKPOINT_INTERVAL if min_interval is None else float(min_interval)
        if not self.min_interval >= 0:  # NaN too
            raise ValueError(f"min_interval must be >= 0 seconds, got {min_interval!r}")
        self._saved_at = -math.inf  # monotonic time of the last save: none yet

    def on_train_begin(self, trainer: TrainerState) -> None:
        self._saved_at = -math.inf

    def on_epoch_end(self, epoch: int, log: EpochLog, trainer: TrainerState) -> bool | None:
        if not trainer.comm.is_root:  # every rank holds the same state; rank 0 writes it
            return None
        now = time.monotonic()
        if (
            now - self._saved_at >= self.min_interval
            or trainer.stop_training
            or epoch == self.epochs
        ):
            save_checkpoint(self.path, trainer, self.meta)
            self._saved_at = now
        return None

    def on_resume(self, run: Mapping[str, Any]) -> None:
        """Refuse a checkpoint written by a run with other ``meta`` (another config)."""
        mine, theirs = self.meta, dict(run)
        if mine == theirs:
            return
        a, b = mine.get("config", mine), theirs.get("config", theirs)
        if not isinstance(a, dict) or not isinstance(b, dict):
            raise CheckpointError("checkpoint was written with a different config")
        diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        raise CheckpointError(
            f"checkpoint was written with a different config ({', '.join(diff)} differ)"
        )


def save_checkpoint(
    path: str | os.PathLike[str], trainer: TrainerState, meta: Mapping[str, Any] | None = None
) -> Path:
    """Write a checkpoint of ``trainer`` (safetensors, atomic).

    Tensors: ``param.<name>`` (weights), ``opt.<key>`` (optimiser state, step count
    included), ``cb.<callback>.<name>`` (callback state under `Callback.state_name`, e.g.
    the best weights), ``history`` (the logs, shape (n_epochs, 6)). Metadata (JSON under
    ``"backprop_checkpoint"``): version, ``run``
    (``meta``: the config), layer sizes, epoch, stop flag, shuffling RNG state, the
    history's metric name, callback states by name.

    Parameters
    ----------
    path : path
    trainer : Trainer
    meta : mapping, optional
        JSON-serialisable facts about the run that a resume must match.

    Returns
    -------
    path : Path
    """
    path = Path(path)
    tensors: dict[str, np.ndarray] = {}
    for k, p in trainer.net.params.items():
        tensors[f"param.{k}"] = np.ascontiguousarray(p)
    for k, v in trainer.optimizer.state_dict().items():
        tensors[f"opt.{k}"] = np.array(v, order="C")  # 0-d stays 0-d
    states: dict[str, dict[str, Any]] = {}
    for cb in trainer.callbacks:
        state = cb.get_state()
        if state is None:
            continue
        name = cb.state_name()
        if name in states:
            raise ValueError(
                f"two callbacks keep their state under {name!r}: give one another state_name()"
            )
        states[name] = state[0]
        for k, v in state[1].items():
            tensors[f"cb.{name}.{k}"] = np.ascontiguousarray(v)
    history_state, tensors[_HISTORY_TENSOR] = trainer.history.to_state()
    doc = {
        "version": CHECKPOINT_VERSION,
        "run": dict(meta or {}),
        "layer_sizes": list(trainer.net.layer_sizes),
        "epoch": trainer.epoch,
        "stop": trainer.stop_training,
        "rng": trainer.rng.bit_generator.state,
        "history": history_state,
        "callbacks": states,
    }
    data = safetensors.numpy.save(tensors, metadata={"backprop_checkpoint": json.dumps(doc)})
    # A crash at any point (even SIGKILL) leaves the old checkpoint or the new one.
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        # A failed write (ENOSPC) names no file: the message says which one it was.
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    return path


@dataclass
class LoadedCheckpoint:
    """A checkpoint read back: its metadata (`save_checkpoint`'s document) and tensors."""

    meta: dict[str, Any]
    tensors: dict[str, np.ndarray]

    @property
    def config(self) -> TrainConfig:
        """The `TrainConfig` of the run (checkpoints written by `backprop.run.train`)."""
        return TrainConfig.from_dict(self.meta["run"]["config"])


def read_checkpoint_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a checkpoint written by `save_checkpoint`, without its tensors.

    Returns
    -------
    meta : dict
        ``version``, ``run``, ``layer_sizes``, ``epoch``, ``stop``, ``rng``, ``history``,
        ``callbacks`` as `save_checkpoint` wrote them (unchecked beyond the version).

    Raises
    ------
    CheckpointError
        If the file is missing, unreadable, not a checkpoint or of another version.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint there (nothing to resume)")
    try:
        with safetensors.safe_open(str(path), framework="numpy") as f:
            raw = (f.metadata() or {}).get("backprop_checkpoint")
        if raw is None:
            raise CheckpointError(f"{path}: not a backprop checkpoint (no checkpoint metadata)")
        meta = json.loads(raw)
    except CheckpointError:
        raise
    except Exception as exc:  # safetensors raises its own types for corrupt files
        raise CheckpointError(f"{path}: not a readable checkpoint: {exc}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: checkpoint metadata is not a JSON object")
    if meta.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {meta.get('version')!r} is not supported"
        )
    return meta


def load_checkpoint(path: str | os.PathLike[str]) -> LoadedCheckpoint:
    """Read a checkpoint written by `save_checkpoint`: `read_checkpoint_meta`, then tensors.

    Returns
    -------
    LoadedCheckpoint
        With ``.meta``, ``.tensors`` and ``.config``.

    Raises
    ------
    CheckpointError
        If the file is missing or not a checkpoint.
    """
    meta = read_checkpoint_meta(path)
    try:
        with safetensors.safe_open(str(path), framework="numpy") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own types for corrupt files
        raise CheckpointError(f"{path}: not a readable checkpoint: {exc}") from None
    return LoadedCheckpoint(meta, tensors)


def restore_checkpoint(trainer: TrainerState, ck: LoadedCheckpoint) -> None:
    """Load a checkpoint into a fresh trainer; refuse one from a different run.

    The callbacks' `Callback.on_resume` hooks see the checkpoint's run record first (the
    `Checkpoint` callback refuses another config's file).

    Every field is checked in the type the trainer uses it in before anything is
    changed: the run's config, the layer sizes, each tensor's exact shape and dtype (a
    copy would broadcast a (1, m) weight silently), the epoch counter (a whole number
    equal to the history's length), the stop flag, the RNG state and the callbacks'
    states. A problem is a `CheckpointError` naming the field.
    """
    saved = ck.meta
    run = saved.get("run", {})
    if not isinstance(run, dict):
        raise CheckpointError("checkpoint field 'run' is not a JSON object")
    for cb in trainer.callbacks:  # the `Checkpoint` callback refuses another run's file
        cb.on_resume(run)
    if saved.get("layer_sizes") != list(trainer.net.layer_sizes):
        raise CheckpointError(
            f"checkpoint is for layer sizes {saved.get('layer_sizes')!r}, "
            f"the network has {list(trainer.net.layer_sizes)}"
        )
    for k, p in trainer.net.params.items():
        t = ck.tensors.get(f"param.{k}")
        if t is None or t.shape != p.shape or t.dtype != p.dtype:
            got = "missing" if t is None else f"{t.dtype} {t.shape}"
            raise CheckpointError(
                f"checkpoint tensor param.{k} is {got}, the network needs {p.dtype} {p.shape}"
            )
        if not np.all(np.isfinite(t)):
            raise CheckpointError(f"checkpoint tensor param.{k} holds NaN or infinity")
    try:
        history = History.from_state(saved["history"], ck.tensors[_HISTORY_TENSOR])
    except (KeyError, TypeError, ValueError, IndexError, OverflowError):
        raise CheckpointError("checkpoint field 'history' is malformed") from None
    epoch = saved.get("epoch")
    if not _is_count(epoch) or epoch != len(history):
        raise CheckpointError(
            f"checkpoint field 'epoch' is {epoch!r}, but its history holds {len(history)} epochs"
        )
    if not isinstance(saved.get("stop"), bool):
        raise CheckpointError(f"checkpoint field 'stop' is {saved.get('stop')!r}, not a bool")
    states = saved.get("callbacks", {})
    if not isinstance(states, dict) or not all(isinstance(s, dict) for s in states.values()):
        raise CheckpointError("checkpoint field 'callbacks' is not a JSON object of objects")
    scratch = type(trainer.rng.bit_generator)()
    try:  # on a scratch generator first: a bad state leaves trainer.rng untouched
        scratch.state = saved["rng"]
    except (KeyError, TypeError, ValueError, OverflowError):
        raise CheckpointError(
            "checkpoint field 'rng' is not a state of the trainer's random generator"
        ) from None
    try:
        trainer.optimizer.load_state_dict(
            {k[4:]: v for k, v in ck.tensors.items() if k.startswith("opt.")}
        )
        for cb in trainer.callbacks:
            name = cb.state_name()
            if name in states:
                prefix = f"cb.{name}."
                cb.set_state(
                    states[name],
                    {k[len(prefix) :]: v for k, v in ck.tensors.items() if k.startswith(prefix)},
                )
    except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
        raise CheckpointError(f"checkpoint state does not match the run: {exc}") from None
    for k, p in trainer.net.params.items():
        np.copyto(p, ck.tensors[f"param.{k}"])
    trainer.rng.bit_generator.state = scratch.state
    trainer.epoch = int(epoch)
    trainer.stop_training = saved["stop"]
    trainer.history = history
