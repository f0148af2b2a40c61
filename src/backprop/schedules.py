"""Learning-rate schedules: the learning rate of every step of a run.

The notes' "small step against the gradient" (pages 1-7) has a size; these give it per
step over a run of known length: constant, step decay, cosine annealing, one-cycle with
warm-up and scikit-learn's inverse scaling. An optimiser (`backprop.optim`) takes a float
or a `Schedule`. Each follows PyTorch's scheduler of the same name (tests compare them).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from backprop.checks import check_choice, check_int, check_real

__all__ = [
    "SCHEDULES",
    "Constant",
    "Cosine",
    "InvScaling",
    "OneCycle",
    "Schedule",
    "StepDecay",
    "make_schedule",
]


class Schedule:
    """A learning-rate schedule: maps the step count t to a learning rate.

    ``t`` is the number of updates done so far (0 for the first update), so the
    optimiser's k-th update (k = 1, 2, ...) uses ``schedule(k - 1)``.
    """

    def __call__(self, t: int) -> float:
        """Return the learning rate for the update that follows ``t`` updates."""
        raise NotImplementedError


@dataclass(frozen=True)
class Constant(Schedule):
    """The same learning rate at every step: lr(t) = lr.

    Parameters
    ----------
    lr : float
        The learning rate, finite and > 0.
    """

    lr: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", check_real("lr", self.lr, low=0, low_open=True))

    def __call__(self, t: int) -> float:
        return self.lr


@dataclass(frozen=True)
class StepDecay(Schedule):
    """Multiply the rate by ``gamma`` every ``step_size`` steps (PyTorch's ``StepLR``).

    lr(t) = lr * gamma ** (t // step_size).

    Parameters
    ----------
    lr : float
        The initial learning rate, finite and > 0.
    step_size : int
        Steps between decays, >= 1.
    gamma : float, default 0.1
        The decay factor, 0 < gamma <= 1.
    """

    lr: float
    step_size: int
    gamma: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", check_real("lr", self.lr, low=0, low_open=True))
        object.__setattr__(self, "step_size", check_int("step_size", self.step_size, low=1))
        gamma = check_real("gamma", self.gamma, low=0, high=1, low_open=True)
        object.__setattr__(self, "gamma", gamma)

    def __call__(self, t: int) -> float:
        return self.lr * self.gamma ** (t // self.step_size)


@dataclass(frozen=True)
class Cosine(Schedule):
    """Cosine annealing from ``lr`` to ``min_lr`` over ``total_steps``, then ``min_lr``.

    lr(t) = min_lr + (lr - min_lr) * (1 + cos(pi * t / total_steps)) / 2 for
    t <= total_steps (PyTorch's ``CosineAnnealingLR`` with ``T_max=total_steps``), and
    min_lr afterwards (where PyTorch's would rise again).

    Parameters
    ----------
    lr : float
        The initial learning rate, finite and > 0.
    total_steps : int
        Length of the annealing, >= 1.
    min_lr : float, default 0.0
        The final learning rate, 0 <= min_lr <= lr.
    """

    lr: float
    total_steps: int
    min_lr: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", check_real("lr", self.lr, low=0, low_open=True))
        object.__setattr__(self, "total_steps", check_int("total_steps", self.total_steps, low=1))
        min_lr = check_real("min_lr", self.min_lr, low=0)
        if min_lr > self.lr:
            raise ValueError(f"min_lr must be <= lr, got min_lr={min_lr!r} > lr={self.lr!r}")
        object.__setattr__(self, "min_lr", min_lr)

    def __call__(self, t: int) -> float:
        if t >= self.total_steps:
            return self.min_lr
        cos = math.cos(math.pi * t / self.total_steps)
        return self.min_lr + (self.lr - self.min_lr) * (1.0 + cos) / 2.0


@dataclass(frozen=True)
class OneCycle(Schedule):
    """One cycle: linear warm-up to ``max_lr``, then cosine annealing down.

    With initial = max_lr / div_factor, final = initial / final_div_factor and
    w = round(warmup_fraction * total_steps) warm-up steps (at most total_steps - 1):

    - t < w: lr(t) = initial + (max_lr - initial) * t / w (linear, from initial at t = 0),
    - w <= t < total_steps: lr(t) = final + (max_lr - final) * (1 + cos(pi * s)) / 2 with
      s = (t - w) / (total_steps - w) (cosine, max_lr at t = w),
    - t >= total_steps: lr(t) = final.

    This is the shape of PyTorch's ``OneCycleLR`` (same ``div_factor`` and
    ``final_div_factor`` meaning) but not its exact values: PyTorch anneals the
    warm-up with a cosine too and reaches its end points one step earlier.

    Parameters
    ----------
    max_lr : float
        The peak learning rate, finite and > 0.
    total_steps : int
        The number of updates of the cycle, >= 1.
    warmup_fraction : float, default 0.3
        Fraction of ``total_steps`` spent warming up, 0 <= warmup_fraction < 1.
    div_factor : float, default 25.0
        initial = max_lr / div_factor, >= 1.
    final_div_factor : float, default 1e4
        final = initial / final_div_factor, >= 1.
    """

    max_lr: float
    total_steps: int
    warmup_fraction: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_lr", check_real("max_lr", self.max_lr, low=0, low_open=True))
        object.__setattr__(self, "total_steps", check_int("total_steps", self.total_steps, low=1))
        frac = check_real("warmup_fraction", self.warmup_fraction, low=0, high=1, high_open=True)
        object.__setattr__(self, "warmup_fraction", frac)
        for name in ("div_factor", "final_div_factor"):
            object.__setattr__(self, name, check_real(name, getattr(self, name), low=1))

    @property
    def warmup_steps(self) -> int:
        """The number w of linear warm-up steps."""
        return min(round(self.warmup_fraction * self.total_steps), self.total_steps - 1)

    @property
    def initial_lr(self) -> float:
        """The rate at t = 0: max_lr / div_factor."""
        return self.max_lr / self.div_factor

    @property
    def final_lr(self) -> float:
        """The rate from t = total_steps on: initial_lr / final_div_factor."""
        return self.initial_lr / self.final_div_factor

    def __call__(self, t: int) -> float:
        w = self.warmup_steps
        if t < w:
            return self.initial_lr + (self.max_lr - self.initial_lr) * t / w
        if t >= self.total_steps:
            return self.final_lr
        cos = math.cos(math.pi * (t - w) / (self.total_steps - w))
        return self.final_lr + (self.max_lr - self.final_lr) * (1.0 + cos) / 2.0


@dataclass(frozen=True)
class InvScaling(Schedule):
    """Inverse scaling: lr(t) = lr / (t + 1) ** power_t (scikit-learn's "invscaling").

    scikit-learn's MLP evaluates it at the end of each epoch with t the number of
    training examples seen so far (the estimators do the same); as a step schedule t is
    the number of updates.

    Parameters
    ----------
    lr : float
        The initial learning rate, finite and > 0.
    power_t : float, default 0.5
        The exponent, finite and >= 0 (0 is a constant rate).
    """

    lr: float
    power_t: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", check_real("lr", self.lr, low=0, low_open=True))
        object.__setattr__(self, "power_t", check_real("power_t", self.power_t, low=0))

    def __call__(self, t: int) -> float:
        return self.lr / (t + 1) ** self.power_t


ScheduleFactory = Callable[..., Schedule]
"""``factory(lr, total_steps, *, step_size, gamma, warmup_fraction) -> Schedule``.

A factory reads the keyword options it needs and ignores the others (``gamma`` means
nothing to "cosine").
"""


def _step_decay(
    lr: float, total_steps: int, *, step_size: int | None = None, gamma: float = 0.1, **_: object
) -> StepDecay:
    if step_size is None:  # two decays over the run
        step_size = max(1, check_int("total_steps", total_steps, low=1) // 3)
    return StepDecay(lr, step_size, gamma)


def _one_cycle(
    lr: float, total_steps: int, *, warmup_fraction: float = 0.3, **_: object
) -> OneCycle:
    return OneCycle(lr, total_steps, warmup_fraction=warmup_fraction)


# The registry behind ``make_schedule`` and the CLI's ``--schedule`` choices: a new
# schedule is a `Schedule` subclass and one entry here.
SCHEDULES: dict[str, ScheduleFactory] = {
    "constant": lambda lr, total_steps, **_: Constant(lr),
    "step": _step_decay,
    "cosine": lambda lr, total_steps, **_: Cosine(lr, total_steps),
    "onecycle": _one_cycle,
    "invscaling": lambda lr, total_steps, **_: InvScaling(lr),
}


def make_schedule(
    name: str,
    lr: float,
    total_steps: int,
    *,
    step_size: int | None = None,
    gamma: float = 0.1,
    warmup_fraction: float = 0.3,
) -> Schedule:
    """Build a schedule by name (for the CLI's ``--schedule``).

    Parameters
    ----------
    name : str
        A key of `SCHEDULES`: "constant", "step", "cosine", "onecycle" or "invscaling"
        (``lr / sqrt(t + 1)``, t the step count).
    lr : float
        The base rate: constant rate, initial rate of "step" and "cosine", peak rate of
        "onecycle".
    total_steps : int
        The number of updates of the whole run (epochs * batches per epoch).
    step_size : int, optional
        For "step": steps between decays; default ``max(1, total_steps // 3)`` (two
        decays over the run).
    gamma : float, default 0.1
        For "step": the decay factor.
    warmup_fraction : float, default 0.3
        For "onecycle": the fraction of steps spent warming up.

    Returns
    -------
    Schedule

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones) or a bad value.
    """
    factory = SCHEDULES[check_choice("schedule", name, SCHEDULES)]
    return factory(
        lr, total_steps, step_size=step_size, gamma=gamma, warmup_fraction=warmup_fraction
    )
