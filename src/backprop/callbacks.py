"""What happens around the training loop: history, early stopping, progress bars.

The loop in `backprop.trainer.Trainer` only steps (Keras' ``Model.fit`` design): it knows
nothing about stopping rules, the best epoch, progress bars or checkpoints. Each of those
is a `Callback` with hooks at the start and end of the run, after every step and after
every epoch; a callback stops the run by setting ``trainer.stop_training = True`` (or by
returning True from `Callback.on_epoch_end`). The loop finds a callback by what it does
(`Callback.best_choice` names the run's best epoch), never by its type.

A callback whose state must survive an interrupted run (early stopping's best epoch and
weights) implements `Callback.get_state` / `Callback.set_state`; the trainer stores that
state in its checkpoints under the callback's `Callback.state_name`, so a resumed run
continues bit for bit whatever other callbacks (a progress bar on one rank only) it has.

This module sits below the trainer: a hook sees the trainer through `TrainerState`, the
part of it callbacks may use.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from backprop._fileutil import atomic_write_bytes
from backprop.checks import check_choice
from backprop.distributed import Communicator
from backprop.network import MLP
from backprop.optim import Optimizer

__all__ = [
    "Best",
    "Callback",
    "EarlyStopping",
    "EpochLog",
    "History",
    "ProgressBar",
    "TrainResult",
    "TrainerState",
    "monitor_column",
    "monitor_words",
    "progress_enabled",
]


# ----------------------------------------------------------------------------- history


@dataclass
class EpochLog:
    """What one epoch did.

    Attributes
    ----------
    epoch : int
        1-based epoch number.
    train_loss : float
        Mean of the batch losses during the epoch (weights change as it runs).
    val_loss : float
        Loss on the validation data after the epoch (NaN without validation data).
    val_metric : float
        The validation metric named by ``History.metric_name`` (accuracy, RMSE or R^2;
        NaN without validation data).
    lr : float
        Learning rate of the epoch's last step.
    seconds : float
        Wall time of the epoch, validation included.
    """

    epoch: int
    train_loss: float
    val_loss: float
    val_metric: float
    lr: float
    seconds: float


class History:
    """The per-epoch logs of a run, in order; one `EpochLog` per finished epoch.

    Attributes
    ----------
    logs : list of EpochLog
    metric_name : str
        ``"accuracy"``, ``"rmse"`` or ``"r2"``: what ``val_metric`` is.
    """

    COLUMNS = ("epoch", "train_loss", "val_loss", "val_metric", "lr", "seconds")

    def __init__(self, logs: Sequence[EpochLog] = (), metric_name: str = "accuracy") -> None:
        self.logs: list[EpochLog] = list(logs)
        self.metric_name = metric_name
        self._rebuild_rows()

    def _rebuild_rows(self) -> None:
        # The logs as rows of numbers in a buffer that doubles when full: `to_state` runs
        # after every epoch (the checkpoint) and must not redo the whole history each time.
        self._rows = np.empty((max(16, 2 * len(self.logs)), len(self.COLUMNS)), np.float64)
        for i, log in enumerate(self.logs):
            self._rows[i] = [getattr(log, c) for c in self.COLUMNS]

    def append(self, log: EpochLog) -> None:
        """Add one epoch's log."""
        self.logs.append(log)
        n = len(self.logs)
        if n > len(self._rows):
            self._rows = np.concatenate([self._rows, np.empty_like(self._rows)])
        self._rows[n - 1] = [getattr(log, c) for c in self.COLUMNS]

    def __len__(self) -> int:
        return len(self.logs)

    def __iter__(self) -> Iterator[EpochLog]:
        return iter(self.logs)

    def __getitem__(self, i: int) -> EpochLog:
        return self.logs[i]

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, History)
            and self.logs == other.logs
            and self.metric_name == other.metric_name
        )

    def __repr__(self) -> str:
        return f"History({len(self)} epochs, metric={self.metric_name!r})"

    def column(self, name: str) -> np.ndarray:
        """One column as an array of shape (n_epochs,): a name from ``COLUMNS``."""
        if name not in self.COLUMNS:
            raise ValueError(f"unknown history column {name!r}; choose one of {self.COLUMNS}")
        return np.array([getattr(log, name) for log in self.logs], dtype=np.float64)

    def as_columns(self) -> dict[str, np.ndarray]:
        """Every column: dict of name to ndarray of shape (n_epochs,)."""
        return {name: self.column(name) for name in self.COLUMNS}

    def to_rows(self) -> list[dict[str, float]]:
        """The logs as a list of plain dicts (JSON-serialisable)."""
        return [asdict(log) for log in self.logs]

    def to_csv(self, path: str | os.PathLike[str], *, best_epoch: int | None = None) -> Path:
        """Write ``history.csv``: one row per epoch, plus a ``best`` column when given.

        Columns ``epoch,train_loss,val_loss,val_<metric>,lr,seconds`` and, with
        ``best_epoch``, ``best`` (1 on that epoch's row, 0 elsewhere). Floats are written
        with ``repr`` so they read back exactly. The file is replaced atomically.

        Parameters
        ----------
        path : str or path-like
        best_epoch : int or None
            The run's best epoch (``TrainResult.best_epoch``); None writes no ``best`` column.

        Returns
        -------
        path : Path

        Raises
        ------
        ValueError
            If ``best_epoch`` is not an epoch of the history.
        """
        epochs = [log.epoch for log in self]
        if best_epoch is not None and epochs.count(best_epoch) != 1:
            raise ValueError(f"best_epoch {best_epoch} is not an epoch of the history")
        columns = self.COLUMNS
        header = [c if c != "val_metric" else f"val_{self.metric_name}" for c in columns]
        if best_epoch is not None:
            header.append("best")
        lines = [",".join(header)]
        for log in self:
            row = [repr(getattr(log, c)) for c in columns]
            if best_epoch is not None:
                row.append("1" if log.epoch == best_epoch else "0")
            lines.append(",".join(row))
        return atomic_write_bytes(path, ("\n".join(lines) + "\n").encode("utf-8"))

    def to_state(self) -> tuple[dict[str, Any], np.ndarray]:
        """The history as a checkpoint stores it: the metric's name (JSON) and one float64
        array of shape (n_epochs, 6), the `COLUMNS` (NaN and inf as they are, every float
        exact; a binary array costs a checkpoint far less per epoch than text per row)."""
        n = len(self.logs)
        if n > len(self._rows) or (n and self._rows[n - 1, 0] != self.logs[-1].epoch):
            self._rebuild_rows()  # the list was changed in place, not through `append`
        rows = self._rows[:n]
        return {"metric_name": self.metric_name}, rows

    @classmethod
    def from_state(cls, state: dict[str, Any], rows: np.ndarray) -> History:
        """Inverse of `to_state`.

        Raises
        ------
        ValueError
            ``rows`` not of shape (n, 6), or a metric name that is not a string.
        """
        if rows.ndim != 2 or rows.shape[1] != len(cls.COLUMNS):
            raise ValueError(f"history must have shape (n, {len(cls.COLUMNS)}), got {rows.shape}")
        if not isinstance(state["metric_name"], str):
            raise ValueError("history metric_name must be a string")
        logs = [EpochLog(int(r[0]), *(float(v) for v in r[1:])) for r in rows.tolist()]
        return cls(logs, metric_name=state["metric_name"])


@dataclass
class TrainResult:
    """Summary of a `Trainer.fit` run.

    Attributes
    ----------
    history : History
    best_epoch : int
        The epoch with the best monitored value (``monitor``); the last epoch when
        nothing is monitored (no validation data).
    epochs_run : int
        Epochs finished, resumed ones included.
    stopped_early : bool
        Stopped by early stopping or by a callback before the last epoch.
    train_seconds : float
        Sum of the epochs' wall times (validation included).
    diverged : bool
        True only on the ``result`` of a `TrainingDiverged` exception.
    monitor : str or None
        The `EpochLog` field that chose ``best_epoch`` (``"val_loss"``); None if none.
    kept : {"best", "last"}
        Which weights the network holds at the end: the best epoch's or the last one's.
    """

    history: History
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    train_seconds: float
    diverged: bool = False
    monitor: str | None = None
    kept: str = "last"


# How the best epoch was chosen, in words, keyed by the history.csv column monitored
# (None: nothing was monitored, so the best epoch is the last one).
_MONITOR_WORDS: dict[str | None, str] = {
    "val_loss": "lowest validation loss",
    "train_loss": "lowest training loss",
    "val_accuracy": "highest validation accuracy",
    "val_rmse": "lowest validation RMSE",
    "val_r2": "highest validation R^2",
    None: "the last epoch: nothing monitored",
}


def monitor_column(monitor: str | None, metric_name: str) -> str | None:
    """The ``history.csv`` column a run monitored: ``"val_metric"`` becomes
    ``"val_<metric_name>"`` (e.g. ``"val_accuracy"``); other names stay as they are."""
    return f"val_{metric_name}" if monitor == "val_metric" else monitor


def monitor_words(column: str | None) -> str:
    """How the best epoch was chosen, in words: ``"val_loss"`` -> "lowest validation loss".

    Parameters
    ----------
    column : str or None
        A `monitor_column` result; None when nothing was monitored.
    """
    return _MONITOR_WORDS.get(column, f"best {column}")


# ----------------------------------------------------------------------------- callbacks


class TrainerState(Protocol):
    """The part of a running `backprop.trainer.Trainer` that callbacks see.

    Read-only for callbacks except ``stop_training``.
    """

    net: MLP
    optimizer: Optimizer
    history: History
    epoch: int
    stop_training: bool
    comm: Communicator
    rng: np.random.Generator
    callbacks: list[Callback]


class Best(NamedTuple):
    """The run's best epoch as a callback chose it (`Callback.best_choice`)."""

    epoch: int
    monitor: str
    restored: bool  # whether the network ends the run holding that epoch's weights


class Callback:
    """Hooks into `Trainer.fit`; subclass and override what you need.

    Every hook receives the live `backprop.trainer.Trainer` (``trainer.net``,
    ``trainer.optimizer``, ``trainer.history``, ``trainer.epoch``); treat it as read-only
    except ``trainer.stop_training``. A hook may raise (e.g. ``KeyboardInterrupt``) to
    abort training: the exception propagates out of `fit` and the checkpoint of the last
    finished epoch, if any, stays valid.
    """

    def on_train_begin(self, trainer: TrainerState) -> None:
        """Called once before the first epoch (or the first epoch after a resume)."""

    def on_epoch_end(self, epoch: int, log: EpochLog, trainer: TrainerState) -> bool | None:
        """Called after each epoch's validation; return True to stop training."""
        return None

    def on_batch_end(self, step: int, loss: float, trainer: TrainerState) -> None:
        """Called after every optimiser step (``step`` counts from 1 over the whole run).

        Only called when a subclass overrides it, so the default costs nothing per step.
        """

    def on_train_end(self, trainer: TrainerState, result: TrainResult) -> None:
        """Called once when training ends normally (not on divergence or interrupt)."""

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
        """State to store in a checkpoint: (JSON-serialisable dict, arrays), or None."""
        return None

    def state_name(self) -> str:
        """The stable key of this callback's state in a checkpoint (its class name).

        Two callbacks with state in one run need distinct names: override this.
        """
        return type(self).__name__

    def on_resume(self, run: Mapping[str, Any]) -> None:
        """Called with a checkpoint's run record before a resume restores anything;
        raise (a ``ValueError``) to refuse a checkpoint of another run."""

    def best_choice(self) -> Best | None:
        """The run's best epoch, if this callback chooses one (`EarlyStopping`)."""
        return None

    def set_state(self, meta: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        """Restore what `get_state` returned (when resuming from a checkpoint)."""


_MONITORS = {"val_loss": "min", "val_metric": None, "train_loss": "min"}


class EarlyStopping(Callback):
    """Track the best epoch of a monitored quantity; stop after ``patience`` bad epochs.

    This is the one meaning of "best" in a run: the epoch with the best value of
    ``monitor``. With ``restore_best`` the network ends the run holding that epoch's
    weights (copied into preallocated buffers, no allocation per epoch).

    Parameters
    ----------
    monitor : {"val_loss", "val_metric", "train_loss"}, default "val_loss"
        The `EpochLog` field watched.
    mode : {"min", "max"}, optional
        Whether lower or higher is better; defaults to "min" for losses, and for
        "val_metric" to "min" for RMSE and "max" for accuracy or R^2.
    patience : int or float or None, default None
        Stop once ``patience`` consecutive epochs have not improved on the best by more
        than ``min_delta``. None (or inf) never stops: the best epoch is still tracked.
    min_delta : float, default 0.0
        An epoch counts as progress only if it beats the best by at least this much
        (scikit-learn's ``tol``); with 0, if it is strictly better. The best value and
        weights follow any improvement, however small.
    restore_best : bool, default True
        At the end of the run put back the best epoch's weights.
    best : float, optional
        A best value carried over from an earlier call (scikit-learn's ``warm_start``).

    Attributes
    ----------
    best : float
    best_epoch : int
        0 until the monitored value is first finite.
    wait : int
        Epochs since the last improvement by more than ``min_delta``.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        *,
        mode: str | None = None,
        patience: float | None = None,
        min_delta: float = 0.0,
        restore_best: bool = True,
        best: float | None = None,
    ) -> None:
        self.monitor = check_choice("monitor", monitor, _MONITORS)
        self.mode = None if mode is None else check_choice("mode", mode, ("min", "max"))
        self.patience = math.inf if patience is None else patience
        self.min_delta = float(min_delta)
        self.restore_best = restore_best
        self.best = math.nan if best is None else float(best)
        self.best_epoch = 0
        self.wait = 0
        self._weights: dict[str, np.ndarray] | None = None

    def _sign(self, trainer: TrainerState) -> float:
        """+1 when lower is better, -1 when higher is."""
        mode = self.mode or _MONITORS[self.monitor]
        if mode is None:  # val_metric: RMSE is an error, accuracy and R^2 are scores
            mode = "min" if trainer.history.metric_name == "rmse" else "max"
        return 1.0 if mode == "min" else -1.0

    def on_train_begin(self, trainer: TrainerState) -> None:
        if self.restore_best and self._weights is None:
            self._weights = {k: np.empty_like(p) for k, p in trainer.net.params.items()}
        if math.isnan(self.best):
            self.best = math.inf * self._sign(trainer)

    def on_epoch_end(self, epoch: int, log: EpochLog, trainer: TrainerState) -> bool | None:
        value = getattr(log, self.monitor)
        if math.isnan(value):
            return None
        s = self._sign(trainer)
        # Progress: strictly better, or by at least min_delta when one is set (scikit-learn:
        # "loss > best_loss - tol" is no progress). The best follows any gain.
        if self.min_delta:
            progress = s * value <= s * self.best - self.min_delta
        else:
            progress = s * value < s * self.best
        self.wait = 0 if progress else self.wait + 1
        if s * value < s * self.best:
            self.best, self.best_epoch = value, epoch
            if self._weights is not None:
                for k, p in trainer.net.params.items():
                    np.copyto(self._weights[k], p)
        return self.wait >= self.patience

    def on_train_end(self, trainer: TrainerState, result: TrainResult) -> None:
        self.restore(trainer)

    def restore(self, trainer: TrainerState) -> bool:
        """Put the best epoch's weights into the network; False when there is none."""
        if not self.restore_best or self._weights is None or self.best_epoch == 0:
            return False
        for k, p in trainer.net.params.items():
            np.copyto(p, self._weights[k])
        return True

    def best_choice(self) -> Best | None:
        if self.best_epoch == 0:
            return None
        return Best(self.best_epoch, self.monitor, self.restore_best)

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {"best": repr(self.best), "best_epoch": self.best_epoch, "wait": self.wait}
        tensors = dict(self._weights) if self._weights is not None and self.best_epoch else {}
        return meta, tensors

    def set_state(self, meta: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        self.best = float(meta["best"])
        self.best_epoch = int(meta["best_epoch"])
        self.wait = int(meta["wait"])
        if self.restore_best and tensors:
            self._weights = {k: np.array(v, copy=True) for k, v in tensors.items()}


def progress_enabled(progress: bool | None) -> bool:
    """Whether to show bars: ``progress``, or when None, whether stderr is a terminal."""
    if progress is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return bool(progress)


class ProgressBar(Callback):
    """tqdm bars on stderr: epochs, and batches within an epoch with the running loss."""

    def __init__(self, epochs: int, steps_per_epoch: int, *, loss_scale: float = 1.0) -> None:
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.loss_scale = loss_scale
        self._epoch_bar: Any = None
        self._batch_bar: Any = None
        self._i = 0

    def on_train_begin(self, trainer: TrainerState) -> None:
        from tqdm.auto import tqdm

        self._epoch_bar = tqdm(
            total=self.epochs, initial=trainer.epoch, desc="epochs", unit="epoch", leave=True
        )
        self._batch_bar = tqdm(
            total=self.steps_per_epoch, desc="batches", unit="batch", leave=False
        )

    def on_batch_end(self, step: int, loss: float, trainer: TrainerState) -> None:
        bar = self._batch_bar
        if bar is None:
            return
        if bar.n >= self.steps_per_epoch:
            bar.reset(total=self.steps_per_epoch)
        bar.update()
        self._i += 1
        if self._i % 20 == 0:
            bar.set_postfix(loss=f"{loss * self.loss_scale:.4g}", refresh=False)

    def on_epoch_end(self, epoch: int, log: EpochLog, trainer: TrainerState) -> bool | None:
        if self._epoch_bar is not None:
            post = {"loss": f"{log.train_loss:.4g}"}
            if not math.isnan(log.val_loss):
                post["val_loss"] = f"{log.val_loss:.4g}"
                post[f"val_{trainer.history.metric_name}"] = f"{log.val_metric:.4g}"
            self._epoch_bar.set_postfix(post, refresh=False)
            self._epoch_bar.update()
        return None

    def close(self) -> None:
        """Close the bars (also after an exception)."""
        for bar in (self._batch_bar, self._epoch_bar):
            if bar is not None:
                bar.close()
        self._batch_bar = self._epoch_bar = None

    def on_train_end(self, trainer: TrainerState, result: TrainResult) -> None:
        self.close()
