"""Preprocessing: what turns raw inputs into network inputs, and labels into class indices.

One `Preprocessor` is fitted on the training rows only and recorded in the model file, so
`Model.predict`, the command line and the estimators apply exactly the transformation
training applied, to any container (array, ``.npy`` of any dtype, flat or (n, h, w), CSV,
IDX).  One `LabelEncoder` maps labels to the class indices 0..c-1 of the notes' one-hot
targets (page 5) everywhere.  The seeded train/validation split lives here too.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from backprop.data.formats import DataError, require_real
from backprop.data.rows import Rows, as_rows
from backprop.data.tables import LABEL_COLUMNS, is_index_column

__all__ = [
    "LabelEncoder",
    "Preprocessor",
    "check_finite",
    "train_val_split",
]

# A scale below this is a constant feature (an always-black border pixel): it maps to 0,
# not to inf.
_MIN_SCALE = 1e-8


def check_finite(a: np.ndarray | Rows, what: str, source: str | None = None) -> None:
    """Raise DataError if ``a`` has NaN/inf, naming the count and the first row/column."""
    if not np.issubdtype(a.dtype, np.floating):
        return
    if a.size == 0 if isinstance(a, np.ndarray) else len(a) == 0:
        return
    two_d = a if isinstance(a, Rows) else a.reshape(len(a), -1)
    count = 0
    first: tuple[int, int] | None = None
    for rows, chunk in as_rows(two_d).chunks():  # one streaming pass (a memory map too)
        bad = ~np.isfinite(chunk)
        n_bad = int(bad.sum())
        if n_bad and first is None:
            r, c = np.argwhere(bad)[0]
            first = (rows.start + int(r), int(c))
        count += n_bad
    if first is not None:
        where = f"row {first[0]}" + (f", column {first[1]}" if two_d.shape[1] > 1 else "")
        prefix = f"{source}: " if source else ""
        raise DataError(
            f"{prefix}{what}: {count} NaN/inf value{'s' if count > 1 else ''} "
            f"(first at {where}, counting from 0)"
        )


def train_val_split(
    X: Any, y: np.ndarray, val_fraction: float, *, seed: int = 0, stratify: bool = True
) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """Deterministic (optionally stratified) split into training and validation parts.

    Parameters
    ----------
    X : ndarray of shape (n, d), or `backprop.data.Rows`
        A `Rows` (a memory-mapped file) is split into two `Rows` holding row indices of
        the same base: nothing is copied. An array is split into two new arrays.
    y : ndarray of shape (n,) or (n, k)
    val_fraction : float in [0, 1)
        Share of rows in the validation part: ``m = floor(val_fraction * n + 0.5)``. With
        ``stratify``, the m rows are shared among classes in proportion to their sizes
        (largest remainders), each class with 2+ rows giving at least 1 and at most
        ``n_c - 1`` rows so that it appears in both parts.
    seed : int
        Same seed, same split.
    stratify : bool
        Split each class (value of 1-D ``y``) separately.

    Returns
    -------
    X_tr : ndarray or Rows of shape (n - m, d)
    X_val : ndarray or Rows of shape (m, d)
    y_tr : ndarray of shape (n - m,) or (n - m, k)
    y_val : ndarray of shape (m,) or (m, k)
    """
    if not 0 <= val_fraction < 1:
        raise DataError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n = len(X)
    if len(y) != n:
        raise DataError(f"X has {n} rows but y has {len(y)}")
    if val_fraction == 0:
        return X, X[:0], y, y[:0]  # (a Rows slice is a Rows)
    rng = np.random.default_rng(seed)
    n_val = int(np.floor(val_fraction * n + 0.5))  # round half up
    if stratify and y.ndim == 1:
        _, inverse = np.unique(y, return_inverse=True)
        sizes = np.bincount(inverse)
        # Largest-remainder apportionment: the class shares add up to n_val exactly
        # (rounding each class separately could lose or gain a row per class).
        quotas = val_fraction * sizes
        k = np.floor(quotas).astype(np.int64)
        extra = n_val - int(k.sum())
        k[np.argsort(-(quotas - k), kind="stable")[:extra]] += 1
        # Every class with 2+ rows in both parts, even if the total drifts a little.
        k = np.where(sizes >= 2, np.clip(k, 1, sizes - 1), 0)
        val_parts = []
        for c, k_c in enumerate(k):
            members = np.flatnonzero(inverse == c)
            rng.shuffle(members)
            val_parts.append(members[:k_c])
        val_idx = np.concatenate(val_parts) if val_parts else np.empty(0, dtype=np.intp)
    else:
        val_idx = rng.permutation(n)[:n_val]
    is_val = np.zeros(n, dtype=bool)
    is_val[val_idx] = True
    # Shuffle within each part so neither is ordered by class.
    tr_idx = rng.permutation(np.flatnonzero(~is_val))
    val_idx = rng.permutation(np.flatnonzero(is_val))
    if isinstance(X, Rows):
        return X.subset(tr_idx), X.subset(val_idx), y[tr_idx], y[val_idx]
    return X[tr_idx], X[val_idx], y[tr_idx], y[val_idx]


# --------------------------------------------------------------------------------------
# Labels


class LabelEncoder:
    """Labels <-> class indices 0..c-1 (the notes' one-hot targets, page 5).

    Parameters
    ----------
    classes : array-like of shape (c,), optional
        Known classes, in the order of the network's outputs (distinct). Without it, call
        `fit`, which takes the sorted distinct labels.

    Attributes
    ----------
    classes_ : ndarray of shape (c,)
    """

    def __init__(self, classes: ArrayLike | None = None) -> None:
        self.classes_ = np.empty(0)
        if classes is not None:
            arr = np.asarray(classes)
            if arr.ndim != 1 or len(np.unique(arr)) != len(arr):
                raise DataError(f"classes must be distinct labels in a 1-D array, got {arr!r}")
            self.classes_ = arr

    def fit(self, labels: ArrayLike) -> LabelEncoder:
        """Take the sorted distinct values of ``labels`` (shape (n,)) as the classes."""
        self.classes_ = np.unique(np.asarray(labels))
        return self

    def transform(
        self, labels: ArrayLike, *, what: str = "labels", among: str = "the classes"
    ) -> np.ndarray:
        """Class index of each label.

        Parameters
        ----------
        labels : array-like of shape (n,)
        what, among : str
            Words for the error message: "{what} 7, 9 are not among {among} (...)".

        Returns
        -------
        ndarray of shape (n,), int64

        Raises
        ------
        DataError
            A label that is not a class (one line naming the unknown labels), or labels
            of another kind (strings against numbers).
        """
        y = np.asarray(labels)
        classes = self.classes_
        if len(classes) == 0:
            raise DataError("LabelEncoder has no classes; call fit(labels) first")
        if _is_text(y) != _is_text(classes):
            raise DataError(
                f"the {what} ({y.dtype}) and {among} ({_show(classes, 10)}) are of "
                "different kinds (strings against numbers)"
            )
        order = np.argsort(classes, kind="stable")
        pos = np.minimum(np.searchsorted(classes[order], y), len(classes) - 1)
        found = classes[order][pos] == y
        if not np.all(found):
            raise DataError(
                f"{what} {_show(np.unique(y[~found]), 10)} are not among {among} "
                f"({_show(classes, 20)})"
            )
        return order[pos].astype(np.int64)

    def inverse_transform(self, indices: ArrayLike) -> np.ndarray:
        """The labels of class indices (shape (n,))."""
        return self.classes_[np.asarray(indices, dtype=np.intp)]


def _is_text(a: np.ndarray) -> bool:
    """Strings, as a str dtype or as an object array holding only str."""
    if a.dtype.kind == "O":
        return all(isinstance(v, str) for v in a.ravel())
    return a.dtype.kind in "US"


def _show(values: np.ndarray, limit: int) -> str:
    """Up to ``limit`` values as plain text (no numpy repr), then "..."."""
    items = [str(v.item() if isinstance(v, np.generic) else v) for v in values[:limit]]
    return ", ".join(items) + (", ..." if len(values) > limit else "")


# --------------------------------------------------------------------------------------
# Inputs


def _vector(name: str, value: object, allowed: Sequence[int]) -> np.ndarray | None:
    """None, or a finite float64 1-D array whose length is one of ``allowed``."""
    if value is None:
        return None
    if isinstance(value, list) and not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        raise DataError(f"{name} must be a list of numbers")
    try:
        arr = np.array(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be numbers: {exc}") from None
    if len(arr) not in allowed:
        raise DataError(
            f"{name} must have {' or '.join(map(str, sorted(set(allowed))))} values, got {len(arr)}"
        )
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{name} contains NaN or infinity")
    return arr


@dataclass(frozen=True)
class Preprocessor:
    """Raw inputs -> network inputs: ``((X / input_scale) - mean) / scale``, recorded.

    Fitted on the training rows only (`fit`) and stored in the model file, so a model
    applies to raw input exactly what training applied.  For images each pixel is centred
    on its own mean but all share one scale (a per-pixel scale would blow up near-constant
    border pixels; see docs/training.md for the measured choice); for tabular data mean
    and scale are per feature.

    Parameters
    ----------
    n_features : int
        Input width d.
    input_scale : float, optional
        The raw inputs' known full scale, divided out first: 16 for digits (pixels
        0..16), 255 for uint8 images. None: no division.
    mean, scale : ndarray of shape (1,) or (d,), optional
        Standardisation of the scaled inputs (both or neither; scale > 0). Shape (1,) is
        one value for all features (the scale of images), (d,) one per feature.
    feature_names : tuple of str of length d, optional
        Column names seen in training; a CSV header is matched to them.
    image_shape : (int, int), optional
        ``(rows, cols)`` when each row is a flattened image; (n, rows, cols) input is
        accepted then.
    raw_min, raw_max : ndarray of shape (1,) or (d,), optional
        Range of the raw training inputs (global for images), for the warning about
        inputs far outside it.

    Raises
    ------
    DataError
        An inconsistent part (named).
    """

    n_features: int
    input_scale: float | None = None
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    feature_names: tuple[str, ...] | None = None
    image_shape: tuple[int, int] | None = None
    raw_min: np.ndarray | None = None
    raw_max: np.ndarray | None = None

    def __post_init__(self) -> None:
        d = self.n_features
        if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 1:
            raise DataError(f"n_features must be a positive int, got {d!r}")
        set_ = object.__setattr__  # frozen: normalise the fields once, here
        set_(self, "n_features", int(d))
        if self.input_scale is not None:
            s = self.input_scale
            if isinstance(s, bool) or not isinstance(s, int | float) or not 0 < s < math.inf:
                raise DataError(f"input_scale must be a positive finite number, got {s!r}")
            set_(self, "input_scale", float(s))
        for name in ("mean", "scale", "raw_min", "raw_max"):
            set_(self, name, _vector(name, getattr(self, name), (1, d)))
        if (self.mean is None) != (self.scale is None):
            raise DataError("mean and scale must both be given, or neither")
        lo, hi = self.raw_min, self.raw_max
        if (lo is None) != (hi is None) or (
            lo is not None and hi is not None and lo.shape != hi.shape
        ):
            raise DataError("raw_min and raw_max must both be given, with the same length")
        if self.scale is not None and not np.all(self.scale > 0):
            raise DataError("scale must be positive (a feature's scale is <= 0)")
        if self.raw_min is not None and not np.all(self.raw_min <= self.raw_max):
            raise DataError("raw_min must not exceed raw_max")
        if self.feature_names is not None:
            names = self.feature_names
            if not isinstance(names, list | tuple) or not all(isinstance(s, str) for s in names):
                raise DataError("feature_names must be a list of strings")
            if len(names) != d:
                raise DataError(f"{len(names)} feature names for {d} inputs")
            set_(self, "feature_names", tuple(names))
        if self.image_shape is not None:
            shape = self.image_shape
            if (
                not isinstance(shape, list | tuple)
                or len(shape) != 2
                or not all(isinstance(s, int | np.integer) and s >= 1 for s in shape)
            ):
                raise DataError(f"image_shape must be two positive ints, got {shape!r}")
            h, w = int(shape[0]), int(shape[1])
            if h * w != d:
                raise DataError(f"image_shape {h}x{w} has {h * w} pixels but there are {d} inputs")
            set_(self, "image_shape", (h, w))

    # ------------------------------------------------------------------ fit

    @classmethod
    def fit(
        cls,
        X_raw: ArrayLike | Rows,
        *,
        input_scale: float | None = None,
        image_shape: tuple[int, int] | None = None,
        feature_names: Sequence[str] | None = None,
        standardize: bool = True,
        per_feature: bool | None = None,
        per_feature_mean: bool = True,
    ) -> Preprocessor:
        """Fit on raw training inputs in one streaming pass (a memory map is never copied).

        Parameters
        ----------
        X_raw : array-like of shape (n, d), or (n, rows, cols) with ``image_shape``, or Rows
            Raw training inputs, any integer or float dtype.
        input_scale : float, optional
            Known full scale of the raw values (see the class).
        image_shape : (int, int), optional
        feature_names : sequence of str, optional
        standardize : bool, default True
            Fit a mean and scale; False keeps only ``input_scale``.
        per_feature : bool, optional
            One scale (and training range) per feature (True) or one for all (False).
            Default: one for all for images (``image_shape`` given), per feature otherwise.
        per_feature_mean : bool, default True
            With ``per_feature=False``: centre each feature on its own mean (True) or all
            on one mean (False). The one scale is the standard deviation of all values
            about their overall mean in both cases.

        Returns
        -------
        Preprocessor
        """
        X = _as_rows(X_raw, image_shape, "training inputs")
        n, d = X.shape
        if n == 0:
            raise DataError("cannot fit a Preprocessor on zero rows")
        if per_feature is None:
            per_feature = image_shape is None
        # One pass over row chunks (a memory-mapped file is read once, never held): Chan
        # et al.'s parallel combination of each chunk's mean and sum of squared
        # deviations, in float64, and the finiteness check on the same chunk.
        count, mean, m2 = 0, np.zeros(d), np.zeros(d)
        lo, hi = np.full(d, np.inf), np.full(d, -np.inf)
        for _, raw in as_rows(X).chunks():
            chunk = np.asarray(raw, dtype=np.float64)
            if not np.isfinite(chunk).all():
                check_finite(X, "training inputs")  # the message: count, first row/column
            n_b = len(chunk)
            mean_b = chunk.mean(axis=0)
            delta = mean_b - mean
            total = count + n_b
            m2 += ((chunk - mean_b) ** 2).sum(axis=0) + delta**2 * (count * n_b / total)
            mean += delta * (n_b / total)
            count = total
            np.minimum(lo, chunk.min(axis=0), out=lo)
            np.maximum(hi, chunk.max(axis=0), out=hi)
        var = m2 / count
        if not per_feature:
            # Pool the features (equal counts): total variance = mean within + between.
            grand = mean.mean()
            var = np.array([np.mean(var + (mean - grand) ** 2)])
            mean = mean if per_feature_mean else np.array([grand])
            lo, hi = np.array([lo.min()]), np.array([hi.max()])
        std = np.sqrt(var)
        div = 1.0 if input_scale is None else float(input_scale)
        return cls(
            n_features=d,
            input_scale=input_scale,
            mean=mean / div if standardize else None,
            scale=np.where(std < _MIN_SCALE * div, 1.0, std / div) if standardize else None,
            feature_names=None if feature_names is None else tuple(feature_names),
            image_shape=image_shape,
            raw_min=lo,
            raw_max=hi,
        )

    # ------------------------------------------------------------------ apply

    def transform(
        self, X: ArrayLike | Rows, dtype: DTypeLike = np.float32, *, warn: bool = True
    ) -> np.ndarray:
        """Network inputs for raw inputs.

        Parameters
        ----------
        X : array-like of shape (n, d), or (n, rows, cols) for an image model
            Raw inputs of any integer or float dtype (uint8 images, 0..16 digits pixels,
            CSV floats), as training saw them.
        dtype : float dtype, default float32
        warn : bool, default True
            Warn (one `UserWarning` line naming the expected range) when the input lies
            far outside the training range, e.g. pixels already divided by 16 or 255.

        Returns
        -------
        ndarray of shape (n, d)
            A new C-contiguous array ``((X / input_scale) - mean) / scale``, computed in
            ``dtype`` (the caller's X is untouched).

        Raises
        ------
        DataError
            Wrong shape or width (both widths named), no rows, non-numeric, NaN or inf.
        """
        A = _as_rows(X, self.image_shape, "input")
        n, d = A.shape
        if d != self.n_features:
            raise DataError(f"model expects {self.n_features} features per row, input has {d}")
        if n == 0:
            raise DataError("input has zero rows")
        dt = np.dtype(dtype)
        out = np.empty((n, d), dtype=dt)
        for rows, chunk in as_rows(A).chunks():
            out[rows] = chunk  # cast chunk by chunk: a memory map is read once
        check_finite(out, "input")
        if warn:
            self._warn_if_out_of_range(out)
        return self.apply(out, out)

    def apply(self, raw: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``((raw / input_scale) - mean) / scale`` into ``out``: no check, no warning.

        What `transform` computes after its checks, and what `backprop.data.Rows` applies
        to each gathered batch (the same operations in the same dtype, so a batch comes
        out bit for bit as the rows of the whole transformed array).

        Parameters
        ----------
        raw : ndarray of shape (b, d)
            Raw inputs (any real dtype; may be ``out`` itself).
        out : ndarray of shape (b, d), float

        Returns
        -------
        ndarray of shape (b, d)
            ``out``.
        """
        dt = out.dtype
        if raw is not out:
            out[...] = raw
        if self.input_scale is not None:
            out /= np.asarray(self.input_scale, dtype=dt)  # division: 255 maps exactly to 1
        if self.mean is not None and self.scale is not None:
            out -= self.mean.astype(dt)
            out /= self.scale.astype(dt)
        return out

    def _warn_if_out_of_range(self, A: np.ndarray) -> None:
        if self.raw_min is None or self.raw_max is None:
            return
        lo, hi = self.raw_min, self.raw_max
        if len(lo) == 1:
            x_lo, x_hi = np.array([A.min()], np.float64), np.array([A.max()], np.float64)
        else:
            x_lo, x_hi = A.min(axis=0).astype(np.float64), A.max(axis=0).astype(np.float64)
        span = np.where(hi > lo, hi - lo, np.maximum(np.abs(hi), 1.0))
        far = (x_lo < lo - span) | (x_hi > hi + span)
        # Images: values squeezed into a tenth of the training range (0..1 given to a
        # model that expects 0..16 or 0..255) are as wrong as values far outside it.
        squeezed = (len(lo) == 1) & (x_hi > x_lo) & (x_hi - x_lo <= span / 10)
        bad = np.flatnonzero(far | squeezed)
        if len(bad) == 0:
            return
        j = int(bad[0])
        what = "input values" if len(lo) == 1 else f"feature {self._feature_label(j)}"
        hint = (
            f" (the model divides by {self.input_scale:g} itself: give raw values)"
            if self.input_scale is not None
            else ""
        )
        warnings.warn(
            f"{what} lie in {x_lo[j]:g}..{x_hi[j]:g}, far from the training range "
            f"{lo[j]:g}..{hi[j]:g}{hint}; predictions may be wrong",
            UserWarning,
            stacklevel=_stacklevel_outside_package(),
        )

    def _feature_label(self, j: int) -> str:
        if self.feature_names is not None:
            return f"{self.feature_names[j]!r} (column {j + 1})"
        return f"column {j + 1}"

    def select_columns(
        self, values: np.ndarray, header: Sequence[str] | None, source: str = "input"
    ) -> np.ndarray:
        """The model's input columns of a table, matched by name, never by guess.

        Rules: a header holding every stored feature name -> those columns, in the
        model's order. Otherwise label (``target``, ``label``, ``y``) and index (``id``,
        ``index``, ``Unnamed: 0``, empty) columns are dropped by name, and the rest is
        used in order if it has exactly d columns. Anything else is refused.

        Parameters
        ----------
        values : ndarray of shape (n, w)
        header : sequence of str of length w, or None
        source : str
            Named in the error message (the file).

        Returns
        -------
        ndarray of shape (n, d)

        Raises
        ------
        DataError
            One line naming both column counts (and the missing names, if any).
        """
        d, w = self.n_features, values.shape[1]
        if header is None:
            if w == d:
                return values
            raise DataError(
                f"{source}: has {w} columns, the model expects {d}; without a header row "
                "the columns cannot be matched by name"
            )
        return values[:, self.column_order(header, source)]

    def column_order(self, header: Sequence[str], source: str = "input") -> list[int]:
        """Positions in ``header`` of the model's input columns, in the model's order:
        `select_columns`' rules, for any table with named columns (a CSV, a DataFrame).

        Parameters
        ----------
        header : sequence of str of length w
        source : str
            Named in the error message.

        Returns
        -------
        list of int of length d

        Raises
        ------
        DataError
            As `select_columns`.
        """
        d, w = self.n_features, len(header)
        names = self.feature_names
        header = [h.strip() for h in header]
        if names is not None and set(names) <= set(header):
            return [header.index(name) for name in names]
        kept = [
            j
            for j, h in enumerate(header)
            if h.lower() not in LABEL_COLUMNS and not is_index_column(h)
        ]
        known = [] if names is None else [h for h in header if h in set(names)]
        if len(kept) == d and not known:
            return kept
        if known:
            missing = [s for s in names or () if s not in set(header)]
            problem = f"it lacks the model's column(s) {', '.join(missing[:5])}"
        else:
            problem = (
                "the model stores no feature names"
                if names is None
                else f"none of its names match the model's ({', '.join(names[:3])}, ...)"
            )
        raise DataError(
            f"{source}: has {w} columns ({len(kept)} after dropping label/index columns), "
            f"the model expects {d}; {problem}"
        )

    # ------------------------------------------------------------------ describe

    @property
    def standardization(self) -> str:
        """``"none"``, ``"per-feature"``, ``"global"`` (one mean and one scale) or
        ``"per-feature mean, global scale"`` (images)."""
        if self.mean is None or self.scale is None:
            return "none"
        if self.n_features == 1 or len(self.scale) > 1:
            return (
                "per-feature"
                if len(self.mean) > 1 or self.n_features == 1
                else "global mean, per-feature scale"
            )
        return "global" if len(self.mean) == 1 else "per-feature mean, global scale"

    def expected_range(self) -> str | None:
        """The raw training range as text (``"0..16"``; per feature: min..max over all)."""
        if self.raw_min is None or self.raw_max is None:
            return None
        text = f"{self.raw_min.min():g}..{self.raw_max.max():g}"
        return text if len(self.raw_min) == 1 else f"{text} (per feature)"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (float64 values round-trip exactly)."""

        def vec(a: np.ndarray | None) -> list[float] | None:
            return None if a is None else a.tolist()

        return {
            "n_features": self.n_features,
            "input_scale": self.input_scale,
            "mean": vec(self.mean),
            "scale": vec(self.scale),
            "feature_names": None if self.feature_names is None else list(self.feature_names),
            "image_shape": None if self.image_shape is None else list(self.image_shape),
            "raw_min": vec(self.raw_min),
            "raw_max": vec(self.raw_max),
        }

    @classmethod
    def from_dict(cls, d: object) -> Preprocessor:
        """Rebuild from `to_dict` output, validating every field (DataError names it)."""
        if not isinstance(d, Mapping):
            raise DataError(f"preprocessor must be a JSON object, got {type(d).__name__}")
        fields = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - fields)
        if unknown:
            raise DataError(f"preprocessor has unknown field(s) {', '.join(unknown)}")
        if "n_features" not in d:
            raise DataError("preprocessor lacks n_features")
        return cls(**dict(d))


def _stacklevel_outside_package() -> int:
    """The ``stacklevel`` (seen from the caller of this function) of the first frame
    outside backprop, so a warning names the user's line, not Model.predict's."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    level, frame = 1, sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _as_rows(X: ArrayLike | Rows, image_shape: tuple[int, int] | None, what: str) -> Any:
    """X as (n, d) without copying: flattens (n, rows, cols) images; checks the dtype."""
    if isinstance(X, Rows):  # a memory-mapped file: streamed, never materialised
        require_real(X.base, what)
        return X
    A = X if isinstance(X, np.ndarray) else np.asarray(X)
    require_real(A, what)
    if A.ndim == 3 and image_shape is not None and tuple(A.shape[1:]) == tuple(image_shape):
        return A.reshape(len(A), -1)
    if A.ndim != 2:
        shape = "" if image_shape is None else f" or (n, {image_shape[0]}, {image_shape[1]})"
        raise DataError(f"{what} must be 2-D (n, d){shape}, got shape {A.shape}")
    return A
