"""backprop: the classic backpropagation lecture notes as tested, fast NumPy code.

- `backprop.notes`: the notes' equations, literally (per example, batch in columns, rows).
- `MLP`: the engine, the notes' delta recursion at any depth.
- `backprop.gradcheck`: finite-difference checks.
- `save`, `load`, `Model`: safetensors model files a PyTorch ``nn.Sequential`` can load.
- `train`, `TrainConfig`, `evaluate`: a whole run on a `backprop.data.Dataset`
  (`backprop.run`, `backprop.config`, `backprop.report`).
- `MLPClassifier`, `MLPRegressor`: scikit-learn compatible estimators.
- `export`: a model as ONNX or as a PyTorch state dict that takes raw input
  (`backprop.exporter`).

The names of the last three lines are imported on first use, so that ``import backprop``
does not pay for scikit-learn or the training stack.
"""

import importlib

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
    "TrainConfig",
    "__version__",
    "evaluate",
    "export",
    "gradcheck",
    "load",
    "notes",
    "read_metadata",
    "save",
    "train",
]

# name -> the module that defines it, imported on first use (`__getattr__`). The package
# sits above every module it names here, so these imports close no circle.
_LAZY = {
    "MLPClassifier": "backprop.estimators",
    "MLPRegressor": "backprop.estimators",
    "TrainConfig": "backprop.config",
    "evaluate": "backprop.report",
    "export": "backprop.exporter",
    "train": "backprop.run",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'backprop' has no attribute {name!r}")
