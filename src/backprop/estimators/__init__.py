"""scikit-learn compatible estimators: `MLPClassifier` and `MLPRegressor`.

They take the parameters, and set the fitted attributes, of
``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor`` wherever the meaning is the
same, so they drop into pipelines, grid searches and cross-validation; the arithmetic
is the engine's (`backprop.network.MLP`: the notes' delta recursion, pages 4-7).

As in scikit-learn's ``_multilayer_perceptron.py``, what differs lives apart:

- `backprop.estimators.base`: the parameters, their validation, the set-up of every
  ``fit`` and the attributes that describe the network;
- `backprop.estimators.stochastic`: ``solver="sgd"``/``"adam"`` on the one engine,
  `backprop.trainer.Trainer`, that `backprop.train` and the CLI drive too, with
  scikit-learn's stopping and learning-rate rules as callbacks;
- `backprop.estimators.lbfgs`: ``solver="lbfgs"``, scipy's L-BFGS-B over one flat view
  of the parameters;
- `backprop.estimators.modelfile`: ``save``/``load``/``to_model``/``from_model`` and the
  schema of the training record a model file keeps;
- `backprop.estimators.classifier`, `backprop.estimators.regressor`: the targets and
  the predictions;
- `backprop.estimators.convert`: `register_skl2onnx`, the estimators as skl2onnx
  operators (``skl2onnx.to_onnx(est, X[:1])``).

Deliberate differences from scikit-learn are listed in ``docs/estimators.md``; the main
ones: the multi-output squared error and its gradient are scaled consistently, and
``predict_log_proba`` of logistic outputs is the exact log-sigmoid. The same
``random_state`` gives scikit-learn's initial weights. Two classes get scikit-learn's
layout: one logistic output (``coefs_[-1]`` has 1 column) trained with binary
cross-entropy.
"""

from backprop.estimators.classifier import MLPClassifier
from backprop.estimators.convert import register_skl2onnx
from backprop.estimators.regressor import MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor", "register_skl2onnx"]
