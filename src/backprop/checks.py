"""The one set of option checks: every numeric, choice and switch option goes through here.

`TrainConfig.validate`, the optimisers and schedules, the scikit-learn estimators and the
CLI's argparse types all check their options with these functions, so a rule such as
"lr is a finite number > 0" is written once and reads the same wherever it fails:

    lr must be a finite number > 0, got -1.0

Each check returns the value converted to a plain Python ``int``/``float``/``str``/
``bool`` (so NumPy scalars do not leak into configs and JSON) or raises `OptionError`, a
`ValueError` whose one-line message names the option, the value and what is allowed.
Bools are not numbers here: ``True`` is neither an epoch count nor a learning rate.
"""

from __future__ import annotations

import math
from collections.abc import Collection

import numpy as np

__all__ = [
    "OptionError",
    "check_bool",
    "check_choice",
    "check_fraction",
    "check_int",
    "check_ints",
    "check_real",
    "is_int",
    "is_real",
    "whole_number",
]


class OptionError(ValueError):
    """A bad option value; the message is one line.

    Attributes
    ----------
    name : str
        The option.
    value : object
        The value given.
    requirement : str
        What is allowed, as a phrase that follows "must be" (e.g. ``"a finite number > 0"``);
        the CLI prints it after the flag's name.
    """

    def __init__(self, name: str, value: object, requirement: str, message: str = "") -> None:
        self.name = name
        self.value = value
        self.requirement = requirement
        super().__init__(message or f"{name} must be {requirement}, got {value!r}")


def is_int(v: object) -> bool:
    """True for a Python or NumPy integer, but not a bool (``True`` is not an epoch count)."""
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def whole_number(text: str) -> int | None:
    """The whole number ``text`` writes in the digits 0-9 (spaces around allowed), else
    None: an environment variable or a column number typed by a user.

    ``str.isdigit`` alone would also pass digits ``int`` cannot read (``"²"``).
    """
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else None


def is_real(v: object) -> bool:
    """True for a Python or NumPy integer or float, but not a bool."""
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def _bound(x: float) -> str:
    """A bound as people write it: 0 and 1, not 0.0 and 1.0."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _int_requirement(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"a whole number in [{low}, {high}]"
    if low is not None:
        return f"a whole number >= {low}"
    if high is not None:
        return f"a whole number <= {high}"
    return "a whole number"


def _real_requirement(
    low: float | None, high: float | None, low_open: bool, high_open: bool, finite: bool
) -> str:
    if low is not None and high is not None:  # an interval: finite by construction
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        return f"a number in {lo}{_bound(low)}, {_bound(high)}{hi}"
    kind = "a finite number" if finite else "a number"
    if low is not None:
        return f"{kind} {'>' if low_open else '>='} {_bound(low)}"
    if high is not None:
        return f"{kind} {'<' if high_open else '<='} {_bound(high)}"
    return kind


def check_int(name: str, value: object, *, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an int if it is a whole number with low <= value <= high.

    Parameters
    ----------
    name : str
        The option's name, for the message.
    value : object
        A Python or NumPy integer (not a bool, not a float such as 3.0).
    low, high : int, optional
        Inclusive bounds; None for no bound.

    Returns
    -------
    int

    Raises
    ------
    OptionError
        ``"<name> must be a whole number >= <low>, got <value>"`` or the like.
    """
    if (
        not is_int(value)
        or (low is not None and value < low)  # type: ignore[operator]
        or (high is not None and value > high)  # type: ignore[operator]
    ):
        raise OptionError(name, value, _int_requirement(low, high))
    return int(value)  # type: ignore[call-overload]


def check_ints(name: str, values: object, *, low: int | None = None) -> tuple[int, ...]:
    """Return a non-empty list or tuple of whole numbers >= low as a tuple of ints.

    Parameters
    ----------
    name : str
        The option's name (e.g. ``"hidden"``), for the message.
    values : list or tuple of int
        The numbers (e.g. layer widths).
    low : int, optional
        Inclusive lower bound of each.

    Returns
    -------
    tuple of int

    Raises
    ------
    OptionError
        If ``values`` is not a list or tuple, is empty, or holds a value that `check_int`
        refuses; the message shows the whole sequence.
    """
    plural = _int_requirement(low, None).replace("a whole number", "whole numbers")
    if (
        not isinstance(values, list | tuple)
        or not values
        or not all(is_int(v) and (low is None or v >= low) for v in values)
    ):
        raise OptionError(name, values, f"a list of {plural}")
    return tuple(int(v) for v in values)


def check_real(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    finite: bool = True,
) -> float:
    """Return ``value`` as a float if it is a number within the bounds.

    Parameters
    ----------
    name : str
        The option's name, for the message.
    value : object
        A Python or NumPy integer or float (not a bool).
    low, high : float, optional
        Bounds; None for no bound.
    low_open, high_open : bool, default False
        Exclude the bound itself (``low_open=True`` with ``low=0`` means > 0).
    finite : bool, default True
        Refuse inf (NaN is always refused: it satisfies no bound and breaks training).

    Returns
    -------
    float

    Raises
    ------
    OptionError
        ``"<name> must be a finite number > 0, got <value>"``, ``"<name> must be a
        number in [0, 1), got <value>"`` or the like.
    """
    try:
        v = float(value) if is_real(value) else math.nan  # type: ignore[arg-type]
    except OverflowError:  # an integer beyond a float's range (JSON allows 10**400)
        v = math.nan
    ok = not math.isnan(v)
    if ok:
        ok = (
            (not finite or math.isfinite(v))
            and (low is None or (v > low if low_open else v >= low))
            and (high is None or (v < high if high_open else v <= high))
        )
    if not ok:
        raise OptionError(name, value, _real_requirement(low, high, low_open, high_open, finite))
    return v


def check_fraction(name: str, value: object) -> float:
    """Return ``value`` as a float if 0 <= value < 1 (a share held out, a momentum).

    Raises
    ------
    OptionError
        ``"<name> must be a number in [0, 1), got <value>"``.
    """
    return check_real(name, value, low=0.0, high=1.0, high_open=True)


def check_choice(name: str, value: object, allowed: Collection[str]) -> str:
    """Return ``value`` if it is one of the ``allowed`` names (e.g. a registry's keys).

    Raises
    ------
    OptionError
        ``"unknown <name> <value>; choose one of a, b, c"``.
    """
    if not isinstance(value, str) or value not in allowed:
        choices = ", ".join(allowed)
        raise OptionError(
            name, value, f"one of {choices}", f"unknown {name} {value!r}; choose one of {choices}"
        )
    return value


def check_bool(name: str, value: object) -> bool:
    """Return ``value`` if it is ``True`` or ``False``: not 0/1, "yes", or a NumPy bool.

    Raises
    ------
    OptionError
        ``"<name> must be true or false, got <value>"``.
    """
    if not isinstance(value, bool):
        raise OptionError(name, value, "true or false")
    return bool(value)
