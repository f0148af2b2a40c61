"""Image augmentation on the fly: random shifts, rotations, scalings, elastic deformations, flips.

Beyond the notes (issue 15): every training batch of images is warped afresh before the
forward pass, so the network never sees the same picture twice. Each image gets its own
random affine map (a rotation by theta, a scaling by s about the image centre, then a
shift by (ty, tx) whole pixels) and, optionally, an elastic displacement field (Simard,
Steinkraus and Platt 2003: uniform noise in [-1, 1] per pixel and direction, smoothed by
a Gaussian of width sigma, times alpha) and a left-right mirror (F = diag(1, -1) for a
mirrored image, the identity otherwise). Output pixel p samples the input at

    q = centre + R(-theta) (F (p - centre) - t) / s + alpha * (G_sigma * U)(p)

by bilinear interpolation, with the background outside the image. All images of a batch
are warped together (no Python loop per image): each is padded with one background pixel
all round, and four NumPy gathers on the flat padded batch (each image's coordinates
offset into its own block) give the four corners of every sample's cell. NumPy releases
the GIL there, so the Trainer can warp the next batch in a worker thread while it trains
on this one (``scipy.ndimage.map_coordinates``, which did this before, holds the GIL).

The network sees preprocessed inputs (the model's `Preprocessor`: a mean per pixel
subtracted, one scale), whose blank pixel is not 0; the batch is warped as its difference
to ``background`` (the preprocessed blank image), so what slides in from outside is the
raw background, as if the raw image had been warped before preprocessing.

The random numbers come from the generator the caller passes (the Trainer's, so runs
reproduce and resume bit for bit) in a fixed order and amount per batch: `Augmenter.draw`
takes them all, `Augmenter.apply` (deterministic) warps, and calling the Augmenter does both.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike

from backprop.checks import OptionError, check_int, check_real

__all__ = ["AugmentSpec", "Augmenter", "WarpDraws", "parse_augment"]


@dataclass(frozen=True)
class AugmentSpec:
    """What `Augmenter` draws per image; zero switches a part off.

    Attributes
    ----------
    shift : int
        Shift by a whole number of pixels, uniform in ``-shift .. shift`` along each axis.
    rotate : float
        Rotation by an angle uniform in ``[-rotate, rotate]`` degrees.
    scale : float
        Scaling by a factor uniform in ``[1 - scale, 1 + scale]``, 0 <= scale < 1.
    elastic : float
        Elastic deformation strength alpha in pixels (0: none).
    sigma : float
        Width in pixels of the Gaussian that smooths the elastic field, > 0.
    flip : float
        Probability of mirroring an image left to right, 0 <= flip <= 1 (clothes, unlike
        digits, look the same mirrored).
    """

    shift: int = 0
    rotate: float = 0.0
    scale: float = 0.0
    elastic: float = 0.0
    sigma: float = 4.0
    flip: float = 0.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            _CHECKS[name](f"augment {name}", value)


_CHECKS: dict[str, Callable[[str, object], object]] = {
    "shift": lambda n, v: check_int(n, v, low=0),
    "rotate": lambda n, v: check_real(n, v, low=0.0, high=180.0),
    "scale": lambda n, v: check_real(n, v, low=0.0, high=1.0, high_open=True),
    "elastic": lambda n, v: check_real(n, v, low=0.0),
    "sigma": lambda n, v: check_real(n, v, low=0.0, low_open=True),
    "flip": lambda n, v: check_real(n, v, low=0.0, high=1.0),
}


def parse_augment(text: str) -> AugmentSpec:
    """Read an augmentation spec such as ``"shift=2,rotate=10,scale=0.1,elastic=2,sigma=4"``.

    Parameters
    ----------
    text : str
        Comma-separated ``name=value`` pairs, names among `AugmentSpec`'s fields; those
        left out are 0 (``sigma``: 4).

    Returns
    -------
    AugmentSpec

    Raises
    ------
    OptionError
        One line naming the bad part: an unknown name, a part without ``=``, a repeated
        name, a value that is not a number or out of range, or a spec that does nothing.
    """
    if not isinstance(text, str):
        raise OptionError("augment", text, "a spec such as 'shift=2,rotate=10'")
    values: dict[str, int | float] = {}
    for part in text.split(","):
        name, eq, raw = (s.strip() for s in part.partition("="))
        if not eq or name not in _CHECKS or name in values:
            what = "repeated" if name in values else "unknown" if eq else "not name=value"
            raise OptionError(
                "augment",
                text,
                f"name=value pairs among {', '.join(_CHECKS)}",
                f"augment spec {text!r}: {part.strip()!r} is {what}; write name=value pairs "
                f"among {', '.join(_CHECKS)}, e.g. 'shift=2,rotate=10'",
            )
        try:
            values[name] = int(raw) if name == "shift" else float(raw)
        except ValueError:
            kind = "a whole number" if name == "shift" else "a number"
            raise OptionError(f"augment {name}", raw, kind) from None
    spec = AugmentSpec(**values)  # type: ignore[arg-type]
    if not (spec.shift or spec.rotate or spec.scale or spec.elastic or spec.flip):
        raise OptionError("augment", text, "a spec that changes the images (all parts are 0)")
    return spec


class Augmenter:
    """Warp a batch of flattened images in place, each by its own random transform.

    Parameters
    ----------
    spec : AugmentSpec or str
        What to draw (a string goes through `parse_augment`).
    image_shape : (int, int)
        Rows and columns; each row of a batch is one image flattened in C order.
    background : array-like of shape (rows * cols,) or scalar, default 0.0
        The network input of a blank pixel (the preprocessed raw 0): the value that fills
        what moves in from outside the image.

    Examples
    --------
    >>> import numpy as np
    >>> aug = Augmenter("shift=1", (3, 3))
    >>> X = np.arange(9.0).reshape(1, 9)
    >>> aug(X, np.random.default_rng(0))  # draws (ty, tx) = (1, 0): one row down
    >>> X.reshape(3, 3)
    array([[0., 0., 0.],
           [0., 1., 2.],
           [3., 4., 5.]])
    """

    def __init__(
        self,
        spec: AugmentSpec | str,
        image_shape: tuple[int, int],
        background: ArrayLike = 0.0,
    ) -> None:
        self.spec = parse_augment(spec) if isinstance(spec, str) else spec
        h, w = (int(v) for v in image_shape)
        if h < 1 or w < 1:
            raise ValueError(f"image_shape must be two positive sizes, got {image_shape}")
        self.image_shape = (h, w)
        bg = np.asarray(background, np.float64)
        if bg.ndim and bg.shape != (h * w,):
            raise ValueError(f"background must have {h * w} values (one per pixel), got {bg.shape}")
        self._background = np.broadcast_to(bg, (h * w,)).reshape(h, w)
        self._bufs: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        sigma = self.spec.sigma
        self._smooth = (_gaussian_matrix(h, sigma), _gaussian_matrix(w, sigma))

    def _buffers(self, b: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Padded images (b, h + 2, w + 2), background (0) all round; coordinates; offsets."""
        bufs = self._bufs.get(b)
        if bufs is None or bufs[0].dtype != dtype:
            if len(self._bufs) >= 2:  # a full batch size and a last partial one
                self._bufs.pop(next(iter(self._bufs)))
            h, w = self.image_shape
            padded = np.zeros((b, h + 2, w + 2), dtype)
            coords = np.empty((2, b, h, w))
            # Flat index of image i's pixel (0, 0) in the padded batch.
            offsets = (np.arange(b) * ((h + 2) * (w + 2)) + (w + 2) + 1).reshape(b, 1, 1)
            bufs = self._bufs[b] = (padded, coords, offsets)
        return bufs

    def draw(
        self, rng: np.random.Generator, b: int, *, total: int | None = None, start: int = 0
    ) -> WarpDraws:
        """The random part of `__call__`: every number it takes from ``rng``, nothing else.

        Parameters
        ----------
        rng : numpy.random.Generator
            Every random number comes from here, in a fixed order and amount.
        b : int
            Images in the batch (or in this rank's shard of it).
        total, start : int, optional
            As in `__call__`.

        Returns
        -------
        WarpDraws
            What `apply` needs; it holds no reference to ``rng``.
        """
        total = b if total is None else total
        h, w = self.image_shape
        spec = self.spec
        # The draws, always in this order and for `total` images.
        sl = slice(start, start + b)
        ty = tx = None
        if spec.shift:
            t = rng.integers(-spec.shift, spec.shift, size=(2, total), endpoint=True)
            ty, tx = t[0, sl], t[1, sl]
        theta = rng.uniform(-spec.rotate, spec.rotate, total)[sl] if spec.rotate else None
        s = rng.uniform(1 - spec.scale, 1 + spec.scale, total)[sl] if spec.scale else None
        field = rng.uniform(-1.0, 1.0, (2, total, h, w)) if spec.elastic else None
        # Drawn last, so that a spec without flip draws what it drew before flip existed.
        flip = rng.random(total)[sl] < spec.flip if spec.flip else None
        return WarpDraws(b, sl, ty, tx, theta, s, field, flip)

    def apply(self, X: np.ndarray, draws: WarpDraws) -> None:
        """The deterministic part of `__call__`: warp ``X`` in place by drawn transforms.

        Uses no random generator, only NumPy calls that release the GIL on arrays of this
        size, so it can run in a worker thread while the main thread trains on the
        previous batch (`backprop.trainer.Trainer.run_epoch`). Not reentrant: one call at
        a time per Augmenter (the work buffers are shared).

        Parameters
        ----------
        X : ndarray of shape (b, rows * cols), C-contiguous float
            The batch the draws were made for.
        draws : WarpDraws
            From `draw` with the same ``b``.
        """
        b = X.shape[0]
        if b != draws.b:
            raise ValueError(f"draws were made for {draws.b} images, the batch has {b}")
        if b == 0:
            return
        h, w = self.image_shape
        padded, coords, offsets = self._buffers(b, X.dtype)
        rows, cols = coords  # source row and column of every output pixel
        cy, cx = (h - 1) / 2, (w - 1) / 2
        u = np.arange(h, dtype=np.float64).reshape(1, h, 1) - cy  # p - centre
        v = np.arange(w, dtype=np.float64).reshape(1, 1, w) - cx
        if draws.flip is not None:
            v = v * np.where(draws.flip, -1.0, 1.0).reshape(b, 1, 1)  # F (p - centre)
        if draws.ty is not None and draws.tx is not None:
            u = u - draws.ty.reshape(b, 1, 1)  # - t
            v = v - draws.tx.reshape(b, 1, 1)
        if draws.theta is None and draws.s is None:
            np.add(u, cy, out=rows)
            np.add(v, cx, out=cols)
        else:
            # R(-theta) / s applied to (u, v): rows = cy + a u + c v, cols = cx - c u + a v
            rad = np.zeros(b) if draws.theta is None else np.radians(draws.theta)
            inv = np.ones(b) if draws.s is None else 1.0 / draws.s
            a = (np.cos(rad) * inv).reshape(b, 1, 1)
            c = (np.sin(rad) * inv).reshape(b, 1, 1)
            np.add(a * u, c * v, out=rows)
            rows += cy
            np.subtract(a * v, c * u, out=cols)
            cols += cx
        if draws.field is not None:
            # Each field smoothed by the Gaussian along columns then rows (two small
            # matrix products), then scaled by alpha: Simard et al.'s elastic distortion.
            # (The whole global batch's fields, then this shard's: the same numbers on
            # every rank, whatever its share.)
            # (One matrix product for all rows of all fields, then a stacked one.)
            gy, gx = self._smooth
            along_cols = (draws.field.reshape(-1, w) @ gx).reshape(draws.field.shape)
            field = np.matmul(gy, along_cols)[:, draws.rows]
            field *= self.spec.elastic
            rows += field[0]
            cols += field[1]
        images = X.reshape(b, h, w)
        np.subtract(images, self._background, out=padded[:, 1:-1, 1:-1])
        _bilinear(padded, rows, cols, offsets, images)
        images += self._background

    def __call__(
        self, X: np.ndarray, rng: np.random.Generator, *, total: int | None = None, start: int = 0
    ) -> None:
        """Replace each row of ``X`` by a randomly warped copy, in place.

        ``draw`` then ``apply``; the Trainer calls the two apart, to warp the next batch
        in a background thread.

        Parameters
        ----------
        X : ndarray of shape (b, rows * cols), C-contiguous float
            A batch of network inputs.
        rng : numpy.random.Generator
            Every random number comes from here, in a fixed order.
        total, start : int, optional
            Draw the transforms of a batch of ``total`` images (default b) and apply those
            of images ``start .. start + b - 1``: each rank of a data-parallel run warps
            its shard of a global batch, and all ranks' generators stay in step.
        """
        self.apply(X, self.draw(rng, X.shape[0], total=total, start=start))


@dataclass(frozen=True)
class WarpDraws:
    """The random numbers of one batch's warp (`Augmenter.draw`); None: that part is off.

    Attributes
    ----------
    b : int
        Images warped.
    rows : slice
        Their positions in the drawn (global) batch, ``start .. start + b``.
    ty, tx : ndarray of shape (b,) or None
        Whole-pixel shifts.
    theta : ndarray of shape (b,) or None
        Rotation angles in degrees.
    s : ndarray of shape (b,) or None
        Scale factors.
    field : ndarray of shape (2, total, rows, cols) or None
        The elastic noise of the whole drawn batch, before smoothing.
    flip : ndarray of bool, shape (b,), or None
        Which images are mirrored left to right.
    """

    b: int
    rows: slice
    ty: np.ndarray | None
    tx: np.ndarray | None
    theta: np.ndarray | None
    s: np.ndarray | None
    field: np.ndarray | None
    flip: np.ndarray | None


def _bilinear(
    padded: np.ndarray, rows: np.ndarray, cols: np.ndarray, offsets: np.ndarray, out: np.ndarray
) -> None:
    """out[i, p] = padded image i at (rows, cols)[i, p], bilinear; overwrites rows, cols.

    ``padded`` holds each image with one background pixel all round, so a coordinate
    clipped to -1 .. h (or w) reads background, like ``map_coordinates``'s constant mode.
    Four gathers on the flat batch (np.take, which releases the GIL) instead of one
    ``scipy.ndimage.map_coordinates`` call, which holds it: the warp can then overlap
    the training step in another thread.
    """
    _, hp, wp = padded.shape
    h, w = hp - 2, wp - 2
    np.clip(rows, -1.0, float(h), out=rows)
    np.clip(cols, -1.0, float(w), out=cols)
    # The cell's top-left corner, at most (h - 1, w - 1) so that its other corners exist;
    # the fractions are then in [0, 1] (1 at the far edge: all weight on the background).
    r0 = np.minimum(np.floor(rows), h - 1.0)
    c0 = np.minimum(np.floor(cols), w - 1.0)
    rows -= r0
    cols -= c0
    flat = padded.reshape(-1)
    i00 = (r0 * wp + c0).astype(np.intp)
    i00 += offsets
    v00 = flat.take(i00)
    v01 = flat.take(i00 + 1)
    i00 += wp
    v10 = flat.take(i00)
    v11 = flat.take(i00 + 1)
    # Interpolate along columns, then rows; a weight of 0 leaves the corner exact.
    v01 -= v00
    v01 *= cols
    v01 += v00  # top edge
    v11 -= v10
    v11 *= cols
    v11 += v10  # bottom edge
    v11 -= v01
    v11 *= rows
    v11 += v01
    out[...] = v11


def _gaussian_matrix(n: int, sigma: float) -> np.ndarray:
    """G with G[i, j] = g(i - j) / sum_k g(k), g(k) = exp(-k^2 / (2 sigma^2)), |k| <= 4 sigma
    and beyond the image 0 (the image is padded with zeros): ``G @ x`` smooths x."""
    reach = min(n - 1, math.ceil(4 * sigma))
    k = np.arange(-reach, reach + 1)
    g = np.exp(-(k**2) / (2 * sigma**2))
    g /= g.sum()
    d = np.arange(n).reshape(n, 1) - np.arange(n).reshape(1, n)
    G = np.where(np.abs(d) <= reach, g[np.clip(d + reach, 0, 2 * reach)], 0.0)
    return G
