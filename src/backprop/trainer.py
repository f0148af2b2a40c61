"""The one training engine: mini-batch gradient descent on an `MLP`.

The notes (pages 1-7) end at the gradient; `Trainer.step` is "a small step against it":
gather a batch, run `MLP.loss_and_grads` (the delta recursion), add a penalty if any,
check the loss is finite, let the optimiser update the weights. `Trainer.run_epoch` does
that over a seeded permutation of the data, and `Trainer.fit` repeats epochs, validates,
records the `History` and calls the callbacks (`backprop.callbacks`), which hold every
policy: early stopping and the best epoch, progress bars, user hooks. `backprop.train`,
the CLI, the scikit-learn estimators and the benchmark all drive this class.

Speed: a step allocates nothing of its own. Each batch is gathered with
``np.take(..., out=)`` into a preallocated buffer, the gradients go into a preallocated
dict that `MLP.loss_and_grads` overwrites, and the optimiser updates in place.

Divergence: when a batch loss (or the validation loss) is NaN or infinite, the weights are
reset to those at the end of the last finished epoch (the initial ones in epoch 1) and
`TrainingDiverged` is raised; its message names the learning rate and suggests a smaller
one, and its ``result`` attribute holds the history so far.

Data parallelism: with ``comm`` (`backprop.distributed`, K ranks under ``mpiexec``) every
rank takes its shard of each global batch, the gradients (views of one flat buffer) are
summed by one Allreduce per step and divided by the global batch weight once, and every
rank takes the same step; validation is sharded and gathered (docs/scaling.md). Without
it (K = 1) the step is the single-process one above, unchanged.

Checkpoints (`backprop.checkpoint`): the `Checkpoint` callback saves the whole state after
every epoch; `Trainer.fit(resume_from=...)` restores it and continues bit for bit.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager, nullcontext
from typing import Any, NamedTuple

import numpy as np

from backprop.augment import Augmenter
from backprop.callbacks import Callback, EpochLog, History, TrainResult
from backprop.checkpoint import load_checkpoint, restore_checkpoint
from backprop.constraints import MaxNorm
from backprop.data.rows import Rows, as_rows
from backprop.distributed import LOCAL, Communicator, shard
from backprop.kernels import use_fused
from backprop.losses import LOSSES, PREDICTIONS
from backprop.network import MLP, flat_views, issparse
from backprop.optim import Optimizer
from backprop.threads import choose_threads
from backprop.threads import limit as limit_threads

__all__ = ["Penalty", "Trainer", "TrainingDiverged"]

#: ``penalty(grads, batch_weight) -> extra loss``: adds a regulariser's gradient to
#: ``grads`` in place and returns its value (scikit-learn's ``alpha`` term).
Penalty = Callable[[dict[str, np.ndarray], float], float]


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite; the network holds the last good weights.

    Attributes
    ----------
    lr : float
        The learning rate when it happened.
    epoch : int
        The epoch (1-based) in which it happened.
    result : TrainResult
        History up to the last finished epoch, with ``diverged=True``.
    model : object or None
        Set by `backprop.run.train`: the `backprop.io.Model` with the last good weights.
    what : str
        The loss that became non-finite ("training loss", "validation loss").
    lr_name : str
        How the message spells the learning rate (`describe`).
    context : str or None
        Words put before the message (scikit-learn's own, for the estimators).
    """

    def __init__(
        self,
        *,
        lr: float,
        epoch: int,
        result: TrainResult,
        what: str,
        lr_name: str = "lr",
        context: str | None = None,
    ) -> None:
        self.lr = lr
        self.epoch = epoch
        self.result = result
        self.what = what
        self.lr_name = lr_name
        self.context = context
        self.model: Any = None
        message = self.describe(lr_name)
        super().__init__(message if context is None else f"{context} ({message})")

    def describe(self, lr_name: str = "lr", *, peak: float | None = None) -> str:
        """The one wording of a divergence, naming the learning rate as the caller's user
        spells it (``lr_name``: "lr", scikit-learn's "learning_rate_init", the CLI's
        "--lr") and a tenth of it to try.

        Parameters
        ----------
        lr_name : str
            How the learning rate is spelled; a flag (``--lr``) is followed by a space,
            a parameter by ``=``.
        peak : float, optional
            The rate the user set (the schedule's peak), when it differs from the rate
            at the time (``self.lr``): the advice is then a tenth of the peak.
        """
        sep = " " if lr_name.startswith("-") else "="
        where = f"the end of epoch {self.epoch - 1}" if self.epoch > 1 else "the start of training"
        if peak is None:
            return (
                f"training diverged in epoch {self.epoch}: the {self.what} became NaN or "
                f"infinite with learning rate {self.lr:g}; try a smaller learning rate, e.g. "
                f"{lr_name}{sep}{self.lr / 10:g} (weights kept from {where})"
            )
        return (
            f"training diverged in epoch {self.epoch} (the loss became NaN or infinite) with "
            f"{lr_name}{sep}{peak:g}, the schedule being at {self.lr:g} then; try "
            f"{lr_name}{sep}{peak / 10:g}"
        )


def _metric_fn(net: MLP, metric: str) -> Callable[[np.ndarray, np.ndarray, Any], float]:
    """The validation metric of a forward pass ``out`` (before the loss overwrites it)."""
    if metric == "accuracy" and net.is_multilabel:
        # scikit-learn's multilabel score: subset accuracy (every label right), with a
        # label predicted where sigmoid(s) > 0.5, i.e. s > 0.
        return lambda out, y, sw: float(
            np.average(((out > 0) == (y > 0.5)).all(axis=1), weights=sw)
        )
    if metric == "accuracy":
        return lambda out, y, sw: float(np.average(out.argmax(axis=1) == y, weights=sw))
    # A regressor is scored on what it predicts: the scores through the loss's inverse link
    # (themselves for squared error, e^s for Poisson's log-means), as scikit-learn's score.
    mean = PREDICTIONS[net.loss]
    if metric == "r2":
        from sklearn.metrics import r2_score

        return lambda out, y, sw: (
            float(r2_score(y, mean(out), sample_weight=sw)) if np.isfinite(out).all() else math.nan
        )
    if metric == "rmse":
        return lambda out, y, sw: math.sqrt(
            float(np.average(((mean(out) - y.reshape(out.shape)) ** 2).mean(axis=1), weights=sw))
        )
    raise ValueError(f"unknown metric {metric!r}; choose accuracy, rmse or r2")


class Batch(NamedTuple):
    """This rank's part of one batch, as `Trainer._sharded_step` takes it."""

    X: np.ndarray  # (b, d): the rows, gathered (and warped) into a reused buffer
    y: np.ndarray  # (b,) or (b, k)
    sample_weight: np.ndarray | None  # (b,)
    weight: float  # b, or the sum of the sample weights
    rows: slice  # where these rows sit in the global batch (all of it on one rank)
    n_global: int  # the global batch's size


class Trainer:
    """Mini-batch training of ``net`` by ``optimizer``: the one stepping core.

    Parameters
    ----------
    net : MLP
        Trained in place.
    optimizer : Optimizer
        Built on ``net.params`` (it updates them in place).
    batch_size : int
        Examples per step (clipped to the data size; the last batch may be smaller).
    seed : int or numpy.random.Generator, default 0
        Seeds the shuffling of each epoch.
    shuffle : bool, default True
        A fresh permutation every epoch; False keeps the data order.
    metric : {"accuracy", "rmse", "r2"}, optional
        Validation metric; default accuracy for a classifier, RMSE for a regressor.
    penalty : Penalty, optional
        Called after each backward pass with the gradients and the batch's weight sum.
    y_scale : float, default 1.0
        If the caller divided the regression targets by this scale, losses and RMSE in
        the history are multiplied back into original units.
    lr_name : str, default "lr"
        How the divergence message names the learning rate.
    dropout, input_dropout : float, default 0.0
        Inverted dropout on each hidden layer and on the inputs while training: a fresh
        mask per step, drawn from the run's RNG (so runs reproduce and resume bit for bit).
    max_norm : float, optional
        After each step, rescale each hidden unit's incoming weights to norm <= max_norm
        (`backprop.constraints.MaxNorm`).
    label_smoothing : float, default 0.0
        Train the cross-entropy against (1 - e) onehot(y) + e / c (`backprop.losses`);
        the validation loss stays the plain one.
    augment : backprop.augment.Augmenter, optional
        Warp every gathered training batch (images) afresh, drawing from the run's RNG.
    augment_thread : bool, default True
        Warp batch k + 1 in a worker thread while the main thread steps on batch k (the
        random numbers are still drawn in the main thread, in the same order, so the
        weights are bit for bit those of ``augment_thread=False``, which warps each
        batch in the main thread just before its step).
    comm : backprop.distributed.Communicator, optional
        Train data-parallel with the other ranks of an MPI job (`backprop.distributed`):
        every rank passes the same data and seed, takes its `shard` of each global batch
        and of the validation data, and all ranks take identical steps. Default: this
        process alone.

    Attributes
    ----------
    history : History
    epoch : int
        Epochs finished.
    stop_training : bool
        Set by a callback to end the run after the current epoch.
    """

    def __init__(
        self,
        net: MLP,
        optimizer: Optimizer,
        *,
        batch_size: int,
        seed: int | np.random.Generator = 0,
        shuffle: bool = True,
        metric: str | None = None,
        penalty: Penalty | None = None,
        y_scale: float = 1.0,
        lr_name: str = "lr",
        comm: Communicator | None = None,
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        max_norm: float | None = None,
        label_smoothing: float = 0.0,
        augment: Augmenter | None = None,
        augment_thread: bool = True,
    ) -> None:
        self.net = net
        self.optimizer = optimizer
        self.batch_size = int(batch_size)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.shuffle = shuffle
        metric = metric or ("accuracy" if net.is_classifier else "rmse")
        self._metric = _metric_fn(net, metric)
        self.penalty = penalty
        self.y_scale = float(y_scale)
        self.lr_name = lr_name
        self.history = History(metric_name=metric)
        self.epoch = 0
        self.stop_training = False
        self.callbacks: list[Callback] = []
        self.comm = LOCAL if comm is None else comm
        # Preallocated once: gradients (overwritten every step), last good weights. The
        # gradients are views of one flat buffer, followed by two slots for the batch's
        # loss and weight sums, so that one Allreduce adds up a whole step across ranks.
        n_params = sum(p.size for p in net.params.values())
        self._flat = np.empty(n_params + 2, net.dtype)
        self.grads = flat_views(net.params, self._flat)
        self._good = {k: p.copy() for k, p in net.params.items()}
        self._lr = optimizer.lr
        # Dropout: the drop probability of the inputs, then of each hidden layer; masks are
        # drawn from the run's RNG every step into buffers kept per batch size.
        self._drop = [float(input_dropout)] + [float(dropout)] * (net.n_layers - 1)
        self._mask_buffers: dict[int, list[np.ndarray | None]] = {}
        # Max-norm projection after each step (backprop.constraints), label smoothing of
        # the cross-entropy's targets (backprop.losses): issue 15.
        self._max_norm = None if max_norm is None else MaxNorm(net.params, net.n_layers, max_norm)
        self.label_smoothing = float(label_smoothing)
        if self.label_smoothing and not net.is_classifier:
            raise ValueError("label_smoothing needs a classifier (softmax cross-entropy)")
        self.augment = augment
        self.augment_thread = bool(augment_thread)
        # Set by run_epoch while a worker warps batches: called by the step right after
        # it has drawn its dropout masks, to draw (and start warping) the next batch, so
        # the RNG gives its numbers in the same order as without the worker.
        self._after_masks: Callable[[], None] | None = None
        #: Whether the last `fit` ran the one-pass kernels (`backprop.kernels`).
        self.fused = False

    # ------------------------------------------------------------------ one step
    def _masks_then_next(self, n: int, rows: slice | None = None) -> list[np.ndarray | None] | None:
        """`dropout_masks`, then the next batch's augmentation draws (when a worker warps)."""
        masks = self.dropout_masks(n, rows)
        if self._after_masks is not None:
            self._after_masks()
        return masks

    def dropout_masks(self, n: int, rows: slice | None = None) -> list[np.ndarray | None] | None:
        """Fresh inverted-dropout masks M / keep for a batch of n (None without dropout).

        With K ranks every rank draws the masks of the whole global batch (n rows) and
        uses its ``rows``, so the ranks' generators stay in step.
        """
        if not any(self._drop):
            return None
        if rows is not None:
            drawn = self.dropout_masks(n)
            assert drawn is not None
            return [None if M is None else M[rows] for M in drawn]
        masks = self._mask_buffers.get(n)
        if masks is None:
            if len(self._mask_buffers) >= 2:  # a full batch size and a last partial one
                self._mask_buffers.pop(next(iter(self._mask_buffers)))
            widths = self.net.layer_sizes[:-1]
            masks = [
                None if p == 0 else np.empty((n, w), self.net.dtype)
                for p, w in zip(self._drop, widths, strict=True)
            ]
            self._mask_buffers[n] = masks
        for M, p in zip(masks, self._drop, strict=True):
            if M is not None:
                keep = 1.0 - p
                self.rng.random(dtype=M.dtype, out=M)
                np.less(M, keep, out=M)  # 1 with probability keep, else 0
                M *= 1.0 / keep  # inverted: the expected activation is unchanged
        return masks

    def step(self, Xb: np.ndarray, yb: np.ndarray, swb: np.ndarray | None = None) -> float:
        """One update on a batch: the notes' gradient, a penalty, the optimiser's step.

        Parameters
        ----------
        Xb : ndarray of shape (b, d)
            Already validated, in the network's dtype.
        yb : ndarray of shape (b,) or (b, k)
        swb : ndarray of shape (b,), optional
            Sample weights with a positive sum.

        Returns
        -------
        J : float
            The batch loss (penalty included), before the update.

        Raises
        ------
        TrainingDiverged
            If J is NaN or infinite (the weights are reset to the last good ones).
        """
        self._lr = self.optimizer.lr
        J, _ = self.net.loss_and_grads(
            Xb,
            yb,
            sample_weight=swb,
            grads=self.grads,
            check=False,
            masks=self._masks_then_next(Xb.shape[0]),
            label_smoothing=self.label_smoothing,
        )
        return self._update(J, float(Xb.shape[0]) if swb is None else float(swb.sum()))

    def _update(self, J: float, weight: float) -> float:
        """What follows the gradient of a batch of total ``weight`` (in ``self.grads``):
        the penalty, the divergence check, the optimiser's step, the max-norm projection.

        Returns the loss with the penalty.
        """
        if self.penalty is not None:
            J += self.penalty(self.grads, weight)
        if not math.isfinite(J):
            raise self._diverged("training loss")
        self.optimizer.step(self.grads)
        if self._max_norm is not None:
            self._max_norm()
        return J

    def _sharded_step(
        self,
        Xb: np.ndarray,
        yb: np.ndarray,
        swb: np.ndarray | None,
        weight: float,
        rows: slice,
        n_global: int,
    ) -> tuple[float, float]:
        """`step` on this rank's shard of a global batch: one Allreduce, identical updates.

        ``MLP.loss_and_grads`` returns the weighted mean over the shard, sum / weight; times
        ``weight`` it is the shard's sum (the notes' A^T delta and 1_n^T delta are sums
        over examples, pages 6-7), the Allreduce adds the K sums, the loss sums and the
        weights, and one division by the global weight gives the global batch's gradient.

        Returns
        -------
        (J, weight) : the global batch's loss and weight sum (same on every rank); weight 0
            means the batch had nothing to learn and no step was taken.
        """
        self._lr = self.optimizer.lr
        flat = self._flat
        n_params = flat.size - 2
        masks = self._masks_then_next(n_global, rows)  # on every rank, even for an empty shard
        if len(Xb) and weight > 0:
            J, _ = self.net.loss_and_grads(
                Xb,
                yb,
                sample_weight=swb,
                grads=self.grads,
                check=False,
                masks=masks,
                label_smoothing=self.label_smoothing,
            )
            flat[:n_params] *= weight
            flat[n_params] = J * weight
            flat[n_params + 1] = weight
        else:  # this rank's shard is empty (a last batch smaller than K) or weighs 0
            flat[:] = 0
        self.comm.allreduce(flat, "the gradient Allreduce")
        total = float(flat[n_params + 1])
        if total <= 0:
            return 0.0, 0.0
        J = float(flat[n_params]) / total
        flat[:n_params] /= total
        return self._update(J, total), total

    def run_epoch(
        self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> float:
        """One pass over (X, y) in batches of a fresh seeded permutation.

        Returns
        -------
        float
            The mean batch loss, weighted by batch size (or sample weight sum).
        """
        batch_hooks = [
            cb for cb in self.callbacks if type(cb).on_batch_end is not Callback.on_batch_end
        ]
        loss_sum = weight_sum = 0.0
        with closing(self._batches(X, y, sample_weight)) as batches:
            for batch in batches:
                if self.comm.size > 1:  # every rank steps (one Allreduce), even on no weight
                    J, weight = self._sharded_step(*batch)
                elif batch.weight > 0:
                    J, weight = self.step(batch.X, batch.y, batch.sample_weight), batch.weight
                else:
                    continue  # every weight in the batch is 0: nothing to learn
                if weight <= 0:
                    continue  # as above, for the global batch (the same on every rank)
                loss_sum += J * weight
                weight_sum += weight
                for cb in batch_hooks:
                    cb.on_batch_end(self.optimizer.t, J, self)
        return loss_sum / weight_sum if weight_sum else math.nan

    def _batches(
        self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None
    ) -> Generator[Batch, None, None]:
        """This rank's part of each batch of an epoch, in the order of a fresh seeded
        permutation (one drawn per epoch from the trainer's generator).

        The buffers are allocated once per epoch and reused: a batch is valid until the
        next one is drawn. Close the generator when done (`run_epoch` does, also when a
        step raises): it holds the augmentation worker.
        """
        n = X.shape[0]
        bs = min(self.batch_size, n)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        rank, size = self.comm.rank, self.comm.size
        # With K ranks each holds its shard of a global batch: every rank draws the same
        # `order` from the shared seed and gathers only its own rows of each batch.
        local = -(-bs // size)
        # Sparse X (CSR, issue 17): each batch is a row slice X[idx], CSR too (its size is
        # the batch's nonzeros, not n x d); the network takes it as it is.
        sparse = issparse(X)
        # Dense X is read through `Rows` (issue 14): an array (np.take), or the raw rows
        # of a memory-mapped file, preprocessed batch by batch; only a batch's rows are
        # read, and under MPI only this rank's rows of it.
        rows_src = None if sparse else as_rows(X)
        aug = self.augment
        # Augmentation in a worker (issue 15): batch k + 1 is gathered and its warp drawn
        # in this thread, then warped in the worker (into the other of two X buffers)
        # while this thread steps on batch k. Its draws come right after batch k's dropout
        # masks (`_masks_then_next`), where the unthreaded loop would make them too.
        threaded = aug is not None and self.augment_thread and not sparse
        Xb_bufs = [
            np.empty((0 if sparse else local, *X.shape[1:]), X.dtype)
            for _ in range(2 if threaded else 1)
        ]
        yb_full = np.empty((local, *y.shape[1:]), y.dtype)
        swb_full = None if sample_weight is None else np.empty(local, sample_weight.dtype)

        def rows_of(start: int) -> tuple[np.ndarray, int]:
            """This rank's rows of the batch at ``start`` and their offset in it."""
            idx = order[start : start + bs]
            if size == 1:
                return idx, 0
            lo, hi = shard(len(idx), rank, size)
            return idx[lo:hi], lo

        ahead: list[tuple[np.ndarray, int, np.ndarray, Future[None]]] = []

        def prepare_next() -> None:
            """Gather batch len(ahead), draw its warp, start the worker on it."""
            assert aug is not None and pool is not None
            k = len(ahead)
            start = k * bs
            if start >= n:
                return
            idx, lo = rows_of(start)
            Xb = Xb_bufs[k % 2][: len(idx)]
            assert rows_src is not None  # not threaded for sparse X
            rows_src.take(idx, out=Xb)
            draws = aug.draw(self.rng, len(idx), total=min(bs, n - start), start=lo)
            ahead.append((idx, lo, Xb, pool.submit(aug.apply, Xb, draws)))

        with ThreadPoolExecutor(1, "backprop-augment") if threaded else nullcontext() as pool:
            try:
                for k, start in enumerate(range(0, n, bs)):
                    if threaded:
                        while len(ahead) <= k:  # not yet drawn (batch k - 1 took no step)
                            prepare_next()
                        idx, lo, Xb, job = ahead[k]
                        job.result()
                        # Batch k + 1 is drawn once this step has drawn its masks.
                        self._after_masks = prepare_next if len(ahead) == k + 1 else None
                    else:
                        idx, lo = rows_of(start)
                        Xb = Xb_bufs[0][: len(idx)]
                        if rows_src is None:
                            Xb = X[idx]
                        else:
                            rows_src.take(idx, out=Xb)
                        if aug is not None:  # drawn for the global batch: ranks in step
                            aug(Xb, self.rng, total=min(bs, n - start), start=lo)
                    b = len(idx)
                    yb = np.take(y, idx, axis=0, out=yb_full[:b])
                    swb = None
                    if sample_weight is not None and swb_full is not None:
                        swb = np.take(sample_weight, idx, out=swb_full[:b])
                    weight = float(b) if swb is None else float(swb.sum())
                    yield Batch(Xb, yb, swb, weight, slice(lo, lo + b), min(bs, n - start))
                    self._after_masks = None
            finally:
                self._after_masks = None

    def evaluate(
        self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> tuple[float, float]:
        """Loss and metric on validated data in one forward pass (original units).

        With K ranks each runs the forward pass on its `shard` of the rows and the
        outputs (n x c, small) are gathered, so every rank computes the same loss and metric.
        """
        if self.comm.size > 1:
            lo, hi = shard(len(X), self.comm.rank, self.comm.size)
            part = self._forward(X[lo:hi]) if hi > lo else None
            if part is None:
                part = np.empty((0, self.net.n_outputs), self.net.dtype)
            out = self.comm.allgather_rows(part, len(X), "the validation outputs")
        else:
            out = self._forward(X)
        metric = self._metric(out, y, sample_weight) * (
            self.y_scale if self.history.metric_name == "rmse" else 1.0
        )
        loss, _ = LOSSES[self.net.loss](out, y, out=out, sample_weight=sample_weight)
        return float(loss) * self.y_scale**2, metric

    def _forward(self, X: Any) -> np.ndarray:
        """The network's outputs on validated X; a `Rows` chunk by chunk (a new array)."""
        if isinstance(X, Rows):
            return X.map_chunks(lambda c: self.net.forward(c, check=False), self.net.n_outputs)
        return self.net.forward(X, check=False)

    # ------------------------------------------------------------------ the run
    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        epochs: int,
        validation_data: tuple[np.ndarray, np.ndarray] | None = None,
        sample_weight: np.ndarray | None = None,
        validation_sample_weight: np.ndarray | None = None,
        callbacks: Sequence[Callback] = (),
        resume_from: str | os.PathLike[str] | None = None,
        threads: int | None = None,
        kernels: str | None = None,
    ) -> TrainResult:
        """Train until ``epochs`` epochs are finished or a callback stops the run.

        Parameters
        ----------
        X : ndarray of shape (n, d)
            Validated (``net.check_X``), in the network's dtype.
        y : ndarray of shape (n,) or (n, k)
            Validated (``net.check_y``).
        epochs : int
            Total epochs of the run (a resumed run counts those already done).
        validation_data : (X_val, y_val), optional
            Evaluated after every epoch; without it ``val_loss``/``val_metric`` are NaN.
        sample_weight, validation_sample_weight : ndarray of shape (n,), optional
        callbacks : sequence of Callback
            Called in order; an `EarlyStopping` among them chooses the best epoch, a
            `Checkpoint` saves the state after the callbacks before it.
        resume_from : path, optional
            Continue from this checkpoint (which must exist and match the `Checkpoint`
            callback's ``meta`` and the network): bit for bit an uninterrupted run.
        threads : int, optional
            BLAS threads for the epochs. Default: the user's ``OPENBLAS_NUM_THREADS``
            (or ``OMP_NUM_THREADS``...) if set, else chosen from the layer sizes and the
            batch (`backprop.threads.choose_threads`), so that small products do not
            spin-wait on a busy machine.
        kernels : {"auto", "numpy", "fused"}, optional
            The elementwise work of each step: NumPy (the reference) or the one-pass
            kernels of `backprop.kernels`. Default: ``BACKPROP_KERNELS``, else "auto",
            which fuses when the run is large enough to repay numba's start-up
            (`backprop.kernels.use_fused`). The weights differ at most in the last bit
            of the softmax's ``exp`` and ``log``.

        Returns
        -------
        TrainResult

        Raises
        ------
        TrainingDiverged
            When a loss becomes NaN or infinite.
        CheckpointError
            When ``resume_from`` is given and the checkpoint is missing or does not match.
        """
        self.callbacks = list(callbacks)
        if resume_from is not None:
            restore_checkpoint(self, load_checkpoint(resume_from))
        for k, p in self.net.params.items():
            np.copyto(self._good[k], p)
        for cb in self.callbacks:
            cb.on_train_begin(self)
        # Overflow in a diverging run is expected and detected, not worth a warning.
        batch = -(-min(self.batch_size, X.shape[0]) // self.comm.size)
        if self.comm.size > 1 and threads is None:
            # The ranks on one machine share its cores: each gets its share at most.
            cores = max(1, (os.cpu_count() or 1) // self.comm.local_size)
            threads = choose_threads(self.net.layer_sizes, batch, available=cores)
        steps = max(0, epochs - self.epoch) * -(-X.shape[0] // max(1, self.batch_size))
        self.fused = use_fused(self.net.n_params, steps, kernels)
        with (
            np.errstate(over="ignore", invalid="ignore"),
            limit_threads(self.net.layer_sizes, batch, threads),
            self._kernels(self.fused),
        ):
            while self.epoch < epochs and not self.stop_training:
                t0 = time.perf_counter()
                train_loss = self.run_epoch(X, y, sample_weight) * self.y_scale**2
                val_loss = val_metric = math.nan
                if validation_data is not None:
                    val_loss, val_metric = self.evaluate(*validation_data, validation_sample_weight)
                    if not math.isfinite(val_loss):
                        raise self._diverged("validation loss")
                self.epoch += 1
                log = EpochLog(
                    self.epoch, train_loss, val_loss, val_metric, self._lr, time.perf_counter() - t0
                )
                self.history.append(log)
                for k, p in self.net.params.items():
                    np.copyto(self._good[k], p)
                for cb in self.callbacks:
                    if cb.on_epoch_end(self.epoch, log, self):
                        self.stop_training = True
                if self.comm.size > 1:  # a callback on one rank stops them all
                    self.stop_training = self.comm.any(self.stop_training, "the stop flag")
        result = self._result(diverged=False, epochs=epochs)
        for cb in self.callbacks:
            cb.on_train_end(self, result)
        return result

    @contextmanager
    def _kernels(self, fused: bool) -> Iterator[None]:
        """Run the network and the optimiser fused (or not) inside the block only."""
        saved = self.net.fused, self.optimizer.fused
        self.net.fused = self.optimizer.fused = fused
        try:
            yield
        finally:
            self.net.fused, self.optimizer.fused = saved

    def _result(self, *, diverged: bool, epochs: int) -> TrainResult:
        # The best epoch is the first callback's that chooses one (early stopping); else
        # the last epoch, whose weights the network holds.
        chosen = next((b for cb in self.callbacks if (b := cb.best_choice()) is not None), None)
        best, monitor, kept = self.epoch, None, "last"
        if chosen is not None:
            best, monitor = chosen.epoch, chosen.monitor
            kept = "best" if chosen.restored and not diverged else "last"
        return TrainResult(
            history=self.history,
            best_epoch=best,
            epochs_run=self.epoch,
            stopped_early=self.stop_training and self.epoch < epochs,
            train_seconds=float(sum(log.seconds for log in self.history)),
            diverged=diverged,
            monitor=monitor,
            kept=kept,
        )

    def _diverged(self, what: str) -> TrainingDiverged:
        """Reset to the last good weights and build the exception to raise."""
        for k, p in self.net.params.items():
            np.copyto(p, self._good[k])
        epoch = self.epoch + 1
        result = self._result(diverged=True, epochs=epoch)
        return TrainingDiverged(
            lr=self._lr, epoch=epoch, result=result, what=what, lr_name=self.lr_name
        )

    # ------------------------------------------------------------------ checkpoints
