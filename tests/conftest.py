"""Shared test fixtures.

PyTorch is the independent reference for gradients. Where it is not installed the tests
that need it skip with a reason, except under ``BACKPROP_REQUIRE_TORCH=1`` (set by
``.ci/run``), where its absence is a failure: CI must run them.

Training runs draw their plots in the test's process (``BACKPROP_PLOT_WORKERS=0``): the
suite runs on every core, so a run's drawing workers would find no spare core and only
add processes. tests/test_drawing.py turns them back on and holds them to this process's
plots.
"""

from __future__ import annotations

import os
from types import ModuleType

import pytest

os.environ["BACKPROP_PLOT_WORKERS"] = "0"


def require_torch() -> ModuleType:
    """Import torch, or skip (fail in CI) with the reason."""
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the environment
        reason = "PyTorch is not installed: pip install -e '.[test]' (torch==2.13.0)"
        if os.environ.get("BACKPROP_REQUIRE_TORCH") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return torch


@pytest.fixture
def torch() -> ModuleType:
    """The torch module, float64 by default for reference computations."""
    return require_torch()


@pytest.fixture
def plots_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs draw their plots in the test's process, where a test has replaced a function
    of `backprop.plots` (drawing workers would import the real one): so they do whether
    or not the suite's ``BACKPROP_PLOT_WORKERS=0`` stands."""
    monkeypatch.setenv("BACKPROP_PLOT_WORKERS", "0")
