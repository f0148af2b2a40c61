"""Optimisers, kept out of the model (their learning-rate schedules: `backprop.schedules`).

The notes stop at the gradient (pages 1-7: "then update each weight by a small step
against its gradient"); this module is that step, in the variants people train with:
plain SGD, heavy-ball momentum, Nesterov momentum, Adam and AdamW, each with L2 weight
decay.

As in scikit-learn's ``_stochastic_optimizers.py`` an optimiser acts on a dict of
parameter arrays (``{"W1": ..., "b1": ..., "W2": ...}``), not on a model: ``step(grads)``
updates those very arrays in place, so the model that holds them sees the change.

Each update follows PyTorch's ``torch.optim`` algorithm of the same name exactly (the
tests compare against it to 1e-12 in float64): ``SGD`` with ``dampening=0``, ``Adam``
and ``AdamW`` without AMSGrad. Like PyTorch's defaults, weight decay applies to every
parameter, biases included.

Speed: the update is a handful of in-place NumPy ufunc calls with ``out=`` into state
buffers allocated once, in the parameters' dtype (float32 stays float32; scalars are
Python floats so NumPy's promotion rules keep them weak). Nothing of parameter size is
allocated per step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from backprop import kernels
from backprop.checks import OptionError, check_choice, check_real
from backprop.schedules import Constant, Schedule

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Adam",
    "AdamW",
    "Optimizer",
    "make_optimizer",
]


# ----------------------------------------------------------------------------------------
# Optimisers


class Optimizer:
    """Base class: holds the parameters, the schedule, the step count and state buffers.

    Subclasses name their per-parameter state buffers in ``_buffer_names`` (allocated
    here, zero, in each parameter's dtype) and implement ``_update``.

    Parameters
    ----------
    params : dict of str to ndarray
        The parameters to update in place, e.g. ``{"W1": (d, h), "b1": (h,), ...}``:
        writeable floating-point arrays.
    lr : float or Schedule
        A fixed learning rate (finite, > 0) or a schedule of the step count.
    weight_decay : float, default 0.0
        Weight decay coefficient, >= 0; applies to every parameter, biases included.

    Attributes
    ----------
    params : dict of str to ndarray
        The same arrays that were passed in.
    schedule : Schedule
        The learning-rate schedule (``Constant`` for a fixed rate).
    t : int
        The number of steps taken.
    """

    _buffer_names: tuple[str, ...] = ()
    _fused: bool = False  # (also for optimisers pickled before the attribute existed)

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float | Schedule = 0.01,
        weight_decay: float = 0.0,
    ) -> None:
        if not isinstance(params, Mapping) or len(params) == 0:
            raise ValueError("params must be a non-empty dict of name -> ndarray")
        for key, p in params.items():
            if not isinstance(key, str):
                raise ValueError(f"parameter names must be strings, got {key!r}")
            if not isinstance(p, np.ndarray) or not np.issubdtype(p.dtype, np.floating):
                raise ValueError(f"parameter {key!r} must be a floating-point ndarray")
            if not p.flags.writeable:
                raise ValueError(f"parameter {key!r} is read-only; it must be updated in place")
        self.params: dict[str, np.ndarray] = dict(params)
        self.schedule: Schedule = lr if isinstance(lr, Schedule) else Constant(lr)
        self.weight_decay = check_real("weight_decay", weight_decay, low=0)
        self.t = 0
        self._fused = False
        # One scratch array per parameter for intermediate results (ufunc out=).
        self._scratch = {k: np.empty_like(p) for k, p in self.params.items()}
        self._state: dict[str, dict[str, np.ndarray]] = {
            name: {k: np.zeros_like(p) for k, p in self.params.items()}
            for name in self._buffer_names
        }

    @property
    def lr(self) -> float:
        """The learning rate of the next step: ``schedule(t)``."""
        return float(self.schedule(self.t))

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """Apply one update to the parameters, in place.

        Parameters
        ----------
        grads : dict of str to ndarray
            dJ/dparam for every parameter, same keys, shapes and dtypes as ``params``.
            Not modified.

        Raises
        ------
        ValueError
            If a key is missing or extra, or a shape or dtype differs.
        """
        if grads.keys() != self.params.keys():
            missing = sorted(self.params.keys() - grads.keys())
            extra = sorted(grads.keys() - self.params.keys())
            raise ValueError(f"grads keys do not match params: missing {missing}, extra {extra}")
        for key, p in self.params.items():
            g = grads[key]
            if g.shape != p.shape or g.dtype != p.dtype:
                raise ValueError(
                    f"grads[{key!r}] has shape {g.shape} and dtype {g.dtype}; "
                    f"the parameter has shape {p.shape} and dtype {p.dtype}"
                )
        if self.fused and all(g.flags.c_contiguous for g in grads.values()):
            self._update_fused(grads, self.lr)
        else:
            self._update(grads, self.lr)
        self.t += 1

    @property
    def fused(self) -> bool:
        """Whether `step` uses the one-pass kernels of `backprop.kernels` (default False).

        The NumPy ``_update`` is the reference; the kernels repeat its arithmetic in one
        pass per parameter. Set by `backprop.trainer.Trainer.fit` (by
        `backprop.kernels.use_fused`); True only for contiguous parameters and an
        optimiser with a ``_update_fused``.
        """
        return self._fused

    @fused.setter
    def fused(self, on: bool) -> None:
        has_kernel = type(self)._update_fused is not Optimizer._update_fused
        contiguous = all(p.flags.c_contiguous for p in self.params.values())
        self._fused = bool(on) and has_kernel and contiguous

    def _update(self, grads: Mapping[str, np.ndarray], lr: float) -> None:
        raise NotImplementedError

    def _update_fused(self, grads: Mapping[str, np.ndarray], lr: float) -> None:
        """``_update`` in one compiled pass per parameter (`backprop.kernels`)."""
        raise NotImplementedError

    def __getstate__(self) -> dict[str, Any]:
        # The flat views would unpickle as copies, cut off from the arrays they view.
        state = dict(self.__dict__)
        state.pop("_flat_cache", None)
        return state

    def rebind(self, params: Mapping[str, np.ndarray]) -> None:
        """Continue on other arrays holding the same parameters, keeping the state.

        After unpickling (joblib stores each array on its own) or after a caller moved
        the parameters into a new buffer, the optimiser's ``params`` are no longer the
        arrays being trained; this points it at those, keeping ``t``, the schedule and
        the state buffers (copied where they are read-only, as after a memory-mapped
        load).

        Parameters
        ----------
        params : dict of str to ndarray
            The same names, shapes and dtypes as ``params``: writeable arrays.

        Raises
        ------
        ValueError
            If a name is missing or extra, a shape or dtype differs, or an array is
            read-only. Nothing is changed in that case.
        """
        if params.keys() != self.params.keys():
            missing = sorted(self.params.keys() - params.keys())
            extra = sorted(params.keys() - self.params.keys())
            raise ValueError(f"params do not match: missing {missing}, extra {extra}")
        for key, p in params.items():
            old = self.params[key]
            if not isinstance(p, np.ndarray) or p.shape != old.shape or p.dtype != old.dtype:
                raise ValueError(
                    f"params[{key!r}] must be an ndarray of shape {old.shape} and dtype "
                    f"{old.dtype}, got {type(p).__name__} {np.shape(p)}"
                )
            if not p.flags.writeable:
                raise ValueError(f"parameter {key!r} is read-only; it must be updated in place")
        self.params = dict(params)
        self._scratch = {k: np.empty_like(p) for k, p in self.params.items()}
        self._state = {
            name: {k: v if v.flags.writeable else np.array(v) for k, v in buffers.items()}
            for name, buffers in self._state.items()
        }
        self.__dict__.pop("_flat_cache", None)  # views of the old arrays
        self.fused = self._fused  # re-checks contiguity

    def _flat_views(self, buffers: tuple[str, ...]) -> dict[str, list[np.ndarray]]:
        """Per parameter: [p, *state buffers] as flat views, built once (the arrays stay)."""
        cache = self.__dict__.setdefault("_flat_cache", {})
        if buffers not in cache:
            cache[buffers] = {
                k: [p.reshape(-1), *(self._state[b][k].reshape(-1) for b in buffers)]
                for k, p in self.params.items()
            }
        return cache[buffers]

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything needed to resume exactly: the step count and the state buffers.

        Returns
        -------
        dict of str to ndarray
            ``"t"``: int64 array of shape (), and one copy per buffer and parameter,
            keyed ``"<buffer>.<param>"`` (e.g. ``"m.W1"``), with the parameter's shape.
            Plain arrays, so the dict can be stored with safetensors. Hyper-parameters
            and the schedule are not included: rebuild the optimiser with the same ones.
        """
        state = {"t": np.array(self.t, dtype=np.int64)}
        for name, buffers in self._state.items():
            for key, buf in buffers.items():
                state[f"{name}.{key}"] = buf.copy()
        return state

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore a state saved by ``state_dict`` of an optimiser of the same kind.

        Parameters
        ----------
        state : dict of str to ndarray
            As returned by ``state_dict``. Copied into the existing buffers.

        Raises
        ------
        ValueError
            If keys are missing or unexpected, a shape differs, or ``t`` is not a
            whole number >= 0. Nothing is changed in that case.
        """
        expected = {"t"} | {f"{n}.{k}" for n in self._state for k in self.params}
        if state.keys() != expected:
            missing = sorted(expected - state.keys())
            extra = sorted(state.keys() - expected)
            raise ValueError(
                f"optimizer state does not match {type(self).__name__}: "
                f"missing keys {missing}, unexpected keys {extra}"
            )
        t = np.asarray(state["t"])
        if t.shape != () or not np.issubdtype(t.dtype, np.integer) or int(t) < 0:
            raise ValueError(f"state 't' must be a whole number >= 0 of shape (), got {t!r}")
        for name, buffers in self._state.items():
            for key, buf in buffers.items():
                value = np.asarray(state[f"{name}.{key}"])
                if value.shape != buf.shape:
                    raise ValueError(
                        f"state {name}.{key!s} has shape {value.shape}, expected {buf.shape}"
                    )
        for name, buffers in self._state.items():
            for key, buf in buffers.items():
                np.copyto(buf, state[f"{name}.{key}"], casting="same_kind")
        self.t = int(t)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.schedule!r}, t={self.t})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay.

    PyTorch's ``torch.optim.SGD`` with ``dampening=0``; with v starting at 0, each step is

        g = grad + weight_decay * p
        v = momentum * v + g
        p -= lr * (g + momentum * v)   if nesterov
        p -= lr * v                    otherwise (p -= lr * g when momentum == 0)

    Parameters
    ----------
    params : dict of str to ndarray
        The parameters, updated in place.
    lr : float or Schedule, default 0.01
        Learning rate.
    momentum : float, default 0.0
        Momentum coefficient mu, 0 <= mu < 1.
    nesterov : bool, default False
        Nesterov momentum (needs momentum > 0).
    weight_decay : float, default 0.0
        L2 coefficient, >= 0, added to the gradient.

    State buffers: ``"v.<param>"`` (the velocity), only when momentum > 0.
    """

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float | Schedule = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        self.momentum = check_real("momentum", momentum, low=0, high=1, high_open=True)
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0, got momentum=0")
        self.nesterov = bool(nesterov)
        self._buffer_names = ("v",) if self.momentum > 0 else ()
        super().__init__(params, lr, weight_decay)

    def _update(self, grads: Mapping[str, np.ndarray], lr: float) -> None:
        mu, wd, nesterov = self.momentum, self.weight_decay, self.nesterov
        for key, p in self.params.items():
            g, tmp = grads[key], self._scratch[key]
            if wd:
                # g = grad + wd * p (L2 penalty wd/2 |p|^2), without touching grads.
                np.multiply(p, wd, out=tmp)
                np.add(tmp, g, out=tmp)
                g = tmp
            if mu:
                v = self._state["v"][key]
                v *= mu
                v += g
                if nesterov:
                    # p -= lr * (g + mu * v), as two passes so no second scratch is needed.
                    np.multiply(g, lr, out=tmp)
                    p -= tmp
                    np.multiply(v, lr * mu, out=tmp)
                else:
                    np.multiply(v, lr, out=tmp)
            else:
                np.multiply(g, lr, out=tmp)
            p -= tmp

    def _update_fused(self, grads: Mapping[str, np.ndarray], lr: float) -> None:
        sgd = kernels.get().sgd
        mu, wd = self.momentum, self.weight_decay
        kind = 0 if not mu else 2 if self.nesterov else 1
        # (v is not used without momentum: the parameter stands in for it.)
        flat = self._flat_views(("v",) if mu else ())
        for key, (p, *state) in flat.items():
            T = p.dtype.type  # scalars in the parameter's dtype, as NumPy casts them
            v = state[0] if mu else p
            sgd(p, grads[key].reshape(-1), v, T(lr), T(mu), T(lr * mu), T(wd), kind)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction and L2 weight decay (``torch.optim.Adam``).

    With m, v starting at 0 and n = t + 1 the number of this step:

        g = grad + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        p -= lr / (1 - beta1**n) * m / (sqrt(v / (1 - beta2**n)) + eps)

    Implementation, for speed: the buffers hold M = m / (1 - beta1) and
    V = v / (1 - beta2), i.e. M = beta1 * M + g and V = beta2 * V + g**2, which saves two
    passes over the parameters per step; all constants fold into two scalars, so the
    update is p -= step_size * M / (sqrt(V) + eps_hat) with
    c = sqrt((1 - beta2) / (1 - beta2**n)), eps_hat = eps / c and
    step_size = lr * (1 - beta1) / ((1 - beta1**n) * c). Same arithmetic as above up to
    rounding.

    Parameters
    ----------
    params : dict of str to ndarray
        The parameters, updated in place.
    lr : float or Schedule, default 1e-3
        Learning rate.
    beta1, beta2 : float, default 0.9, 0.999
        Decay rates of the first and second moment estimates, 0 <= beta < 1.
    eps : float, default 1e-8
        Added to the denominator, > 0.
    weight_decay : float, default 0.0
        L2 coefficient, >= 0, added to the gradient.

    State buffers: ``"m.<param>"`` (M above) and ``"v.<param>"`` (V above).
    """

    _buffer_names = ("m", "v")
    _decoupled = False

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float | Schedule = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self.beta1 = check_real("beta1", beta1, low=0, high=1, high_open=True)
        self.beta2 = check_real("beta2", beta2, low=0, high=1, high_open=True)
        self.eps = check_real("eps", eps, low=0, low_open=True)
        super().__init__(params, lr, weight_decay)

    def _coefficients(self, lr: float) -> tuple[float, float, float, float, float]:
        """(beta1, step_size, eps_hat, decay, l2) of this step, as the class docstring says."""
        b1, b2, wd = self.beta1, self.beta2, self.weight_decay
        n = self.t + 1
        # Python floats, so float32 arrays stay float32 (NEP 50 weak scalars).
        c = math.sqrt((1.0 - b2) / (1.0 - b2**n))
        eps_hat = self.eps / c
        step_size = lr * (1.0 - b1) / ((1.0 - b1**n) * c)
        # AdamW decays the weights directly, Adam adds the L2 gradient wd * p.
        decay = 1.0 - lr * wd if wd and self._decoupled else 1.0
        l2 = 0.0 if self._decoupled else wd
        return b1, step_size, eps_hat, decay, l2

    def _update(self, grads: Mapping[str, np.ndarray], lr: float) -> None:
        b1, step_size, eps_hat, decay, l2 = self._coefficients(lr)
        b2 = self.beta2
        M_all, V_all = self._state["m"], self._state["v"]
        for key, p in self.params.items():
            g, tmp, M, V = grads[key], self._scratch[key], M_all[key], V_all[key]
            if decay != 1.0:
                p *= decay  # AdamW: decay the weights before the step
            if l2:
                np.multiply(p, l2, out=tmp)  # Adam: L2 gradient, g = grad + wd * p
                np.add(tmp, g, out=tmp)
                g = tmp
            M *= b1
            M += g
            V *= b2
            np.square(g, out=tmp)
            V += tmp
            np.sqrt(V, out=tmp)
            tmp += eps_hat
            np.divide(M, tmp, out=tmp)
            tmp *= step_size
            p -= tmp

    def _update_fused(self, grads: Mapping[str, np.ndarray], lr: float) -> None:
        adam = kernels.get().adam
        b1, step_size, eps_hat, decay, l2 = self._coefficients(lr)
        b2 = self.beta2
        for key, (p, M, V) in self._flat_views(("m", "v")).items():
            T = p.dtype.type  # scalars in the parameter's dtype, as NumPy casts them
            adam(
                p,
                grads[key].reshape(-1),
                M,
                V,
                T(b1),
                T(b2),
                T(eps_hat),
                T(step_size),
                T(decay),
                T(l2),
            )


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter; ``torch.optim.AdamW``).

    As ``Adam`` without the L2 gradient term; instead, before each Adam step,
    p *= 1 - lr * weight_decay.

    Parameters
    ----------
    params : dict of str to ndarray
        The parameters, updated in place.
    lr : float or Schedule, default 1e-3
        Learning rate.
    beta1, beta2 : float, default 0.9, 0.999
        Decay rates of the moment estimates, 0 <= beta < 1.
    eps : float, default 1e-8
        Added to the denominator, > 0.
    weight_decay : float, default 0.01
        Decoupled decay coefficient, >= 0.
    """

    _decoupled = True

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float | Schedule = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ) -> None:
        super().__init__(params, lr, beta1, beta2, eps, weight_decay)


OptimizerFactory = Callable[..., Optimizer]
"""``factory(params, lr, *, momentum, weight_decay, **options) -> Optimizer``.

``momentum`` is the CLI's ``--momentum``: a factory that has no use for it ignores it;
``options`` are the optimiser's own further keywords (Adam's ``beta1``...), refused by a
factory that takes none.
"""


def _sgd_variant(use_momentum: bool, nesterov: bool) -> OptimizerFactory:
    """A factory of `SGD` without momentum, with heavy-ball momentum, or with Nesterov's."""

    def make(
        params: Mapping[str, np.ndarray],
        lr: float | Schedule,
        *,
        momentum: float,
        weight_decay: float,
        **options: float,
    ) -> SGD:
        if options:
            raise OptionError(
                "options",
                sorted(options),
                "none",
                f"SGD takes no option(s) {sorted(options)}; they are Adam's",
            )
        mu = momentum if use_momentum else 0.0
        return SGD(params, lr, momentum=mu, nesterov=nesterov, weight_decay=weight_decay)

    return make


def _adam_variant(cls: type[Adam]) -> OptimizerFactory:
    """A factory of `Adam` or `AdamW` (``momentum`` is not theirs: beta1 plays its part)."""

    def make(
        params: Mapping[str, np.ndarray],
        lr: float | Schedule,
        *,
        momentum: float,
        weight_decay: float,
        **options: float,
    ) -> Adam:
        return cls(params, lr, weight_decay=weight_decay, **options)

    return make


# The registry behind ``make_optimizer`` and the CLI's ``--optimizer`` choices: a new
# optimiser is an `Optimizer` subclass (``_buffer_names`` + ``_update``) and one entry here.
OPTIMIZERS: dict[str, OptimizerFactory] = {
    "sgd": _sgd_variant(use_momentum=False, nesterov=False),
    "momentum": _sgd_variant(use_momentum=True, nesterov=False),
    "nesterov": _sgd_variant(use_momentum=True, nesterov=True),
    "adam": _adam_variant(Adam),
    "adamw": _adam_variant(AdamW),
}


def make_optimizer(
    name: str,
    params: Mapping[str, np.ndarray],
    *,
    lr: float | Schedule,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    **kw: float,
) -> Optimizer:
    """Build an optimiser by name (for the CLI's ``--optimizer``).

    Parameters
    ----------
    name : str
        A key of `OPTIMIZERS`: "sgd" is plain SGD (``momentum`` is ignored),
        "momentum" and "nesterov" are ``SGD`` with that momentum, "adam" and "adamw" are
        ``Adam`` and ``AdamW``.
    params : dict of str to ndarray
        The parameters, updated in place.
    lr : float or Schedule
        Learning rate.
    momentum : float, default 0.9
        Momentum for "momentum" and "nesterov".
    weight_decay : float, default 0.0
        L2 coefficient (decoupled decay for "adamw"; note that 0.0 makes "adamw" the
        same as "adam").
    **kw
        Further keyword arguments of ``Adam``/``AdamW`` (``beta1``, ``beta2``, ``eps``);
        none for the SGD variants.

    Returns
    -------
    Optimizer

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones) or a bad value.
    """
    factory = OPTIMIZERS[check_choice("optimizer", name, OPTIMIZERS)]
    return factory(params, lr, momentum=momentum, weight_decay=weight_decay, **kw)
