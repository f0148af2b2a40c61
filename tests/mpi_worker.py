"""One training run, started by tests/test_distributed.py (under ``mpiexec -n K`` or alone).

Usage: ``python tests/mpi_worker.py SCENARIO DTYPE OUT_DIR``. Trains a small classifier on
fixed synthetic data with `backprop.training.fit` (two epochs, global batches of 100,
validation data) and lets rank 0 save the final weights to ``OUT_DIR/weights.npz``.

Scenarios: ``plain``; ``crash`` (every rank raises after epoch 1, once the checkpoint is
written); ``resume`` (continues from that checkpoint); ``kill`` (rank 1 SIGKILLs itself
in its 4th step); ``hang`` (rank 1 stops itself with SIGSTOP in its 4th step).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import numpy as np

from backprop.callbacks import Callback
from backprop.config import TrainConfig
from backprop.distributed import world
from backprop.network import MLP
from backprop.training import fit


class _Fault(Callback):
    def __init__(self, scenario: str) -> None:
        self.scenario = scenario

    def on_batch_end(self, step: int, loss: float, trainer: object) -> None:
        if self.scenario in ("kill", "hang") and step == 4 and world().rank == 1:
            os.kill(os.getpid(), signal.SIGKILL if self.scenario == "kill" else signal.SIGSTOP)

    def on_epoch_end(self, epoch: int, log: object, trainer: object) -> None:
        if self.scenario == "crash" and epoch == 1:
            raise RuntimeError("crash after epoch 1 (on purpose)")


def main() -> None:
    scenario, dtype, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    rng = np.random.default_rng(1)
    # 1010 rows: 909 for training gives a last batch of 9, split 5 + 4 across two ranks.
    X = rng.normal(size=(1010, 20))
    y = (X[:, :3].sum(axis=1) > 0).astype(int) + (X[:, 3] > 1)
    net = MLP([20, 32, 3], dtype=dtype, seed=0)
    config = TrainConfig(hidden=(32,), epochs=2, batch_size=100, dtype=dtype, lr=1e-2)
    result = fit(
        net,
        X[:909],
        y[:909],
        X[909:],
        y[909:],
        config=config,
        progress=False,
        checkpoint=out / "checkpoint.safetensors",
        resume=scenario == "resume",
        callbacks=[_Fault(scenario)] if scenario != "plain" else [],
    )
    if world().is_root:
        np.savez(
            out / "weights.npz",
            val_loss=[log.val_loss for log in result.history],
            val_metric=[log.val_metric for log in result.history],
            **net.params,
        )


if __name__ == "__main__":
    main()
