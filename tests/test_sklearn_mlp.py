"""scikit-learn's own MLP tests against backprop's estimators.

The installed scikit-learn's ``sklearn/neural_network/tests/test_mlp.py`` is read (not
copied) and executed with one change, its import of ``MLPClassifier``/``MLPRegressor``,
which becomes ``from backprop import ...``. Its test functions become this module's, so
pytest collects and parametrizes them as its own; every test not in `SKIPPED` must pass.
docs/estimators.md lists the results and the reasons.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest
import sklearn

SOURCE = Path(sklearn.__file__).parent / "neural_network" / "tests" / "test_mlp.py"
IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor"

#: Tests not run, each with the reason (docs/estimators.md has the same table).
SKIPPED: dict[str, str] = {}


def _load() -> ModuleType:
    """scikit-learn's test module, executed with backprop's estimators imported."""
    text = SOURCE.read_text(encoding="utf-8")
    if text.count(IMPORT) != 1:  # a scikit-learn release that imports them otherwise
        raise RuntimeError(f"{SOURCE} does not import the MLPs as {IMPORT!r}")
    module = ModuleType("sklearn_test_mlp")
    module.__file__ = str(SOURCE)
    code = compile(text.replace(IMPORT, "from backprop import MLPClassifier, MLPRegressor"), SOURCE, "exec")
    exec(code, module.__dict__)  # noqa: S102 - scikit-learn's installed test source
    return module


_module = _load()


@pytest.fixture
def global_random_seed() -> int:
    """scikit-learn's conftest fixture, with its default seed."""
    return 42


for _name, _test in vars(_module).items():
    if _name.startswith("test_") and callable(_test):
        if _name in SKIPPED:
            _test = pytest.mark.skip(reason=SKIPPED[_name])(_test)
        globals()[_name] = _test
