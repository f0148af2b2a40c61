"""Shared test fixtures.

PyTorch is the independent reference for gradients. Where it is not installed the tests
that need it skip with a reason, except under ``BACKPROP_REQUIRE_TORCH=1`` (set by
``.ci/run``), where its absence is a failure: CI must run them.
"""

from __future__ import annotations

import os
from types import ModuleType

import pytest


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
