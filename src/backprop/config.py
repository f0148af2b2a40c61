"""The training recipe: `TrainConfig`, and the rules a run derives from it.

Everything that defines a run (network, optimiser, schedule, regularisers, seed) is one
validated, JSON-serialisable dataclass, shared by ``backprop train``, `backprop.run.train`,
the checkpoints (a resume must match it) and the model files (which record it).
`resolve_epochs` turns its "auto" epochs into a number; `check_network_fits` refuses a
network too large for the memory before anything is allocated; `mirror_warning` names
an augmentation that would teach wrong labels.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from backprop._memory import check_fits
from backprop.augment import parse_augment
from backprop.checks import (
    check_bool,
    check_choice,
    check_fraction,
    check_int,
    check_ints,
    check_real,
)
from backprop.data import Dataset
from backprop.layers import ACTIVATIONS
from backprop.optim import OPTIMIZERS
from backprop.recipes import RECIPES
from backprop.schedules import SCHEDULES

__all__ = [
    "AUTO_EPOCHS",
    "AUTO_MIN_STEPS",
    "DTYPES",
    "KEEP",
    "MirrorWarning",
    "TrainConfig",
    "check_network_fits",
    "mirror_warning",
    "resolve_epochs",
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
    sizes = [n_features, *config.hidden, n_outputs]
    n_params = sum((a + 1) * b for a, b in itertools.pairwise(sizes))
    batch = min(config.batch_size, n_train)
    need = (6 * n_params + 3 * batch * sum(sizes)) * np.dtype(config.dtype).itemsize
    check_fits(need, what or f"hidden={list(config.hidden)}: the network", error)
