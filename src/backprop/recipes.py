"""Named training recipes: `TrainConfig` overrides, each with what it reached when measured.

Beyond the notes (issue 15). A recipe is a starting point for a run, ``backprop train
--recipe NAME`` or ``TrainConfig.from_recipe(NAME)``: the fields it sets, on top of
`TrainConfig`'s defaults; anything given explicitly overrides it. Each entry names the
runs of ``benchmarks/results/recipe.json`` that measured it (written by
``benchmarks/recipe.py --recipe NAME --record ...``) and quotes their result, which
``tests/test_recipes.py`` checks against that record; ``docs/training.md`` has the table
and how each recipe was chosen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RECIPES", "Recipe", "describe_recipes"]


@dataclass(frozen=True)
class Recipe:
    """One named recipe.

    Attributes
    ----------
    description : str
        One line: what it is for.
    overrides : mapping of str to value
        `TrainConfig` fields that differ from the defaults (``hidden`` as a tuple).
    dataset : str
        The dataset its figures were measured on.
    records : tuple of str
        Keys in ``benchmarks/results/recipe.json`` of its measured runs (one per seed).
    accuracy : float or None
        Mean test accuracy of those runs, as recorded (None: not measured).
    fit_seconds : float or None
        The longest training time among them, in seconds.
    """

    description: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    dataset: str = "fashion-mnist"
    records: tuple[str, ...] = ()
    accuracy: float | None = None
    fit_seconds: float | None = None

    def reaches(self) -> str:
        """What the recorded runs reached, as one phrase (``"not measured"`` without any)."""
        if self.accuracy is None or not self.records:
            return "not measured"
        runs = "1 run" if len(self.records) == 1 else f"mean of {len(self.records)} seeds"
        seconds = "" if self.fit_seconds is None else f", at most {self.fit_seconds:.0f} s"
        return (
            f"{self.dataset}: test accuracy {self.accuracy:.4f} ({runs}{seconds} of training "
            "on the 2-core development machine)"
        )


#: name -> Recipe; ``default`` is `TrainConfig()` itself.
RECIPES: dict[str, Recipe] = {
    "default": Recipe(
        "TrainConfig's defaults: one hidden layer of 1024 ReLU, AdamW, cosine, auto epochs",
        records=("fashion-mnist", "fashion-mnist --seed 1", "fashion-mnist --seed 2"),
        accuracy=0.9017,
        fit_seconds=24.0,
    ),
    "best": Recipe(
        "the most accurate MLP on Fashion-MNIST within 10 minutes of training on 2 cores",
        overrides={
            "hidden": (1024, 1024),
            "epochs": 80,
            "batch_size": 256,
            "dropout": 0.2,
            "label_smoothing": 0.1,
            "augment": "flip=0.5,shift=1",
            # Every training image trains: the last epoch of the cosine schedule is kept.
            "val_fraction": 0.0,
        },
        records=(
            "fashion-mnist --recipe best",
            "fashion-mnist --recipe best --seed 1",
            "fashion-mnist --recipe best --seed 2",
        ),
        accuracy=0.9130,
        fit_seconds=503.0,
    ),
    "best-one-layer": Recipe(
        "best's training with one hidden layer of 2048 (the notes' two-layer net)",
        overrides={
            "hidden": (2048,),
            "epochs": 70,
            "batch_size": 256,
            "dropout": 0.3,
            "label_smoothing": 0.1,
            "augment": "flip=0.5,shift=1",
            "val_fraction": 0.0,
        },
        records=("fashion-mnist --recipe best-one-layer",),
        accuracy=0.9107,
        fit_seconds=327.0,
    ),
}


def _flag(name: str, value: Any) -> str:
    """A `TrainConfig` field and value as the ``backprop train`` flag that sets it."""
    flag = "--" + name.replace("_", "-")
    if isinstance(value, tuple | list):
        return f"{flag} {' '.join(map(str, value))}"
    return f"{flag} {value}"


def describe_recipes(recipes: Mapping[str, Recipe] | None = None) -> list[str]:
    """The lines ``backprop train --recipe`` prints: each recipe, its flags, what it reached.

    Parameters
    ----------
    recipes : mapping of str to Recipe, optional
        Defaults to `RECIPES`.

    Returns
    -------
    list of str
        A heading, then per recipe its name and description, the flags it sets and what
        its recorded runs reached.
    """
    recipes = RECIPES if recipes is None else recipes
    lines = ["recipes (backprop train --recipe NAME; flags given with it override its values):"]
    width = max(map(len, recipes))
    for name, recipe in recipes.items():
        pad = " " * (width + 4)
        flags = " ".join(_flag(k, v) for k, v in recipe.overrides.items()) or "(none)"
        lines += [
            f"  {name:{width}s}  {recipe.description}",
            f"{pad}sets: {flags}",
            f"{pad}reaches: {recipe.reaches()}",
        ]
    return lines
