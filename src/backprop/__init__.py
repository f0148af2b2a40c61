"""backprop: the classic backpropagation lecture notes as tested, fast NumPy code.

- `backprop.notes`: the notes' equations, literally (per example, batch in columns, rows).
- `MLP`: the engine, the notes' delta recursion at any depth.
- `backprop.gradcheck`: finite-difference checks.
- `save`, `load`, `Model`: safetensors model files a PyTorch ``nn.Sequential`` can load.
- `MLPClassifier`, `MLPRegressor`: scikit-learn compatible estimators (imported lazily, so
  that ``import backprop`` does not pay for importing scikit-learn).
"""

from backprop import gradcheck, notes
from backprop._version import __version__
from backprop.io import Model, ModelFileError, load, read_metadata, save
from backprop.network import MLP

__all__ = [
    "MLP",
    "MLPClassifier",
    "MLPRegressor",
    "Model",
    "ModelFileError",
    "__version__",
    "gradcheck",
    "load",
    "notes",
    "read_metadata",
    "save",
]


def __getattr__(name: str) -> object:
    if name in ("MLPClassifier", "MLPRegressor"):
        from backprop import estimators  # here: importing scikit-learn costs start-up time

        return getattr(estimators, name)
    raise AttributeError(f"module 'backprop' has no attribute {name!r}")
