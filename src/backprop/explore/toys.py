"""Seeded 2-D toy sets for the explorer: five classification sets and one regression surface.

Each generator takes ``(n, noise, rng)`` and returns ``(X, y)`` with X of shape (n, 2),
roughly in [-2, 2]^2 so that no preprocessing hides what the first layer sees; y holds
int64 class indices (classification) or float targets (the surface). A new set is one
function and one entry in `TOYS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["TOYS", "Toy"]

Generator = Callable[[int, float, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def _split(n: int, k: int) -> np.ndarray:
    """Class index of each of n examples, k classes as equal as possible."""
    return np.arange(n) % k


def _moons(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = _split(n, 2)
    t = rng.uniform(0, np.pi, n)
    # Upper moon centred at (0, 0), lower one shifted by (1, 0.5) and flipped.
    upper = np.stack([np.cos(t), np.sin(t)], axis=1)
    lower = np.stack([1 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    X = (np.where((y == 0)[:, None], upper, lower) - np.array([0.5, 0.25])) * 1.5
    return X + rng.normal(0, noise, X.shape), y


def _circles(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = _split(n, 2)
    t = rng.uniform(0, 2 * np.pi, n)
    r = np.where(y == 0, 1.6, 0.6)
    X = np.c_[r * np.cos(t), r * np.sin(t)]
    return X + rng.normal(0, noise, X.shape), y


def _xor(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    X = rng.uniform(-2, 2, (n, 2))
    X += np.sign(X) * 0.1  # a margin around the axes
    y = ((X[:, 0] > 0) != (X[:, 1] > 0)).astype(np.int64)
    return X + rng.normal(0, noise, X.shape), y


def _spiral(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = _split(n, 3)
    r = rng.uniform(0.1, 1.0, n)
    t = 1.75 * np.pi * r + y * (2 * np.pi / 3)
    X = 2 * np.c_[r * np.cos(t), r * np.sin(t)]
    return X + rng.normal(0, noise, X.shape), y


def _blobs(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = _split(n, 4)
    centres = np.array([[-1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [1.0, -1.0]])
    X = centres[y] + rng.normal(0, 0.35 + noise, (n, 2))
    return X, y


def _surface(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    X = rng.uniform(-2, 2, (n, 2))
    y = np.sin(1.5 * X[:, 0]) * np.cos(1.5 * X[:, 1])
    return X, y + rng.normal(0, noise, n)


@dataclass(frozen=True)
class Toy:
    """A toy set: its generator, task and number of classes (0 for regression)."""

    make: Generator
    task: str
    n_classes: int


#: The 2-D sets by name: adding one is one entry here.
TOYS: dict[str, Toy] = {
    "moons": Toy(_moons, "classification", 2),
    "circles": Toy(_circles, "classification", 2),
    "xor": Toy(_xor, "classification", 2),
    "spiral": Toy(_spiral, "classification", 3),
    "blobs": Toy(_blobs, "classification", 4),
    "surface": Toy(_surface, "regression", 0),
}
