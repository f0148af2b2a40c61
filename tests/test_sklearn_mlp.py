"""scikit-learn's own MLP tests against backprop's estimators.

The installed scikit-learn's ``sklearn/neural_network/tests/test_mlp.py`` is read (not
copied) and executed with one change, its import of ``MLPClassifier``/``MLPRegressor``,
which becomes ``from backprop import ...``. Its test functions become this module's, so
pytest collects and parametrizes them as its own; every test not in `SKIPPED` must pass.
docs/estimators.md lists the results and the reasons.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
import sklearn

SOURCE = Path(sklearn.__file__).parent / "neural_network" / "tests" / "test_mlp.py"
IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor"

#: Tests not run (a name, or a name with its parameters), each with the reason;
#: docs/estimators.md has the same table. Every other test of the module must pass.
SKIPPED = {
    # They read or set scikit-learn's private attributes.
    "test_fit": "sets scikit-learn's private attributes (_coef_grads, _coef_velocity, ...) "
    "on an unfitted estimator",
    "test_gradient": "calls scikit-learn's private _loss_grad_lbfgs (ours: MLP.loss_and_grads, "
    "checked against PyTorch in tests/test_gradcheck.py)",
    "test_learning_rate_warmstart": "reads scikit-learn's private _optimizer.learning_rate "
    "(ours: _optimizer.lr, test_estimators.py::test_warm_start_learning_rate_as_sklearn)",
    "test_adaptive_learning_rate": "reads scikit-learn's private _optimizer.learning_rate "
    "(ours: _optimizer.lr, test_estimators.py::test_adaptive_learning_rate_as_sklearn)",
    # Deliberate differences (docs/estimators.md says why).
    "test_predict_proba_multilabel": "deliberate: predict_log_proba is the exact log-sigmoid, "
    "not log(predict_proba), which loses its relative digits where a probability rounds "
    "near 1 (-3.5e-16 against -4.4e-16)",
    "test_preserve_feature_names[MLPClassifier]": "deliberate: a classifier of one class is "
    "refused with an error (the test fits y of one class)",
}


def _load() -> ModuleType:
    """scikit-learn's test module, executed with backprop's estimators imported."""
    text = SOURCE.read_text(encoding="utf-8")
    if text.count(IMPORT) != 1:  # a scikit-learn release that imports them otherwise
        raise RuntimeError(f"{SOURCE} does not import the MLPs as {IMPORT!r}")
    module = ModuleType("sklearn_test_mlp")
    module.__file__ = str(SOURCE)
    code = compile(
        text.replace(IMPORT, "from backprop import MLPClassifier, MLPRegressor"), SOURCE, "exec"
    )
    exec(code, module.__dict__)
    return module


_module = _load()


@pytest.fixture
def global_random_seed() -> int:
    """scikit-learn's conftest fixture, with its default seed."""
    return 42


@pytest.fixture(autouse=True)
def _skip_listed(request: pytest.FixtureRequest) -> None:
    """Skip what `SKIPPED` lists, by name or by name and parameters."""
    node = request.node
    reason = SKIPPED.get(node.name) or SKIPPED.get(getattr(node, "originalname", ""))
    if reason:
        pytest.skip(reason)


for _name, _test in vars(_module).items():
    if _name.startswith("test_") and callable(_test):
        globals()[_name] = _test


def test_every_skipped_name_is_a_test_of_the_module() -> None:
    """A renamed or removed scikit-learn test must not leave a stale entry behind."""
    names = {name.split("[")[0] for name in SKIPPED}
    assert names <= {name for name in vars(_module) if name.startswith("test_")}
