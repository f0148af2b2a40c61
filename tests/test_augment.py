"""Image augmentation on the fly (issue 15): shapes and ranges, a shift is np.roll,
rotations and scalings against a hand-computed warp, reproducible from the seed,
bit-exact across a resume, wired through TrainConfig and the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from backprop import MLP
from backprop.augment import Augmenter, AugmentSpec, parse_augment
from backprop.checks import OptionError
from backprop.config import TrainConfig
from backprop.training import fit

H, W = 12, 10


def images(b: int, seed: int = 0) -> np.ndarray:
    """Random images in [0, 1] with a blank (0) border of 3 pixels, flattened."""
    rng = np.random.default_rng(seed)
    X = np.zeros((b, H, W))
    X[:, 3:-3, 3:-3] = rng.random((b, H - 6, W - 6))
    return X.reshape(b, H * W)


def test_parse_augment_and_its_one_line_errors():
    assert parse_augment("shift=2, rotate=10,scale=0.1") == AugmentSpec(2, 10.0, 0.1)
    assert parse_augment("elastic=3").sigma == 4.0
    for bad, words in [
        ("shift=2,twist=3", "'twist=3' is unknown"),
        ("shift", "'shift' is not name=value"),
        ("shift=1,shift=2", "'shift=2' is repeated"),
        ("shift=1.5", "augment shift must be a whole number"),
        ("scale=1.0", "augment scale must be"),
        ("rotate=-5", "augment rotate must be"),
        ("shift=0", "all parts are 0"),
    ]:
        with pytest.raises(OptionError, match=words) as exc:
            parse_augment(bad)
        assert "\n" not in str(exc.value)
    with pytest.raises(ValueError, match="augment"):
        TrainConfig(augment="shift=x").validate()


def test_a_shift_is_np_roll_on_the_interior():
    # One image, shift only: the output is np.roll by the drawn (ty, tx); where the roll
    # wraps around, the warp shows background (0) instead.
    X = images(6)
    rng = np.random.default_rng(5)
    drawn = np.random.default_rng(5).integers(-3, 3, size=(2, 6), endpoint=True)
    out = X.copy()
    Augmenter("shift=3", (H, W))(out, rng)
    assert np.any(drawn != 0)
    for i in range(6):
        ty, tx = drawn[:, i]
        rolled = np.roll(X[i].reshape(H, W), (ty, tx), axis=(0, 1))
        np.testing.assert_array_equal(out[i].reshape(H, W)[3:-3, 3:-3], rolled[3:-3, 3:-3])
        # the image had a 3-pixel blank border, so nothing is lost: the whole roll matches
        np.testing.assert_array_equal(out[i].reshape(H, W), rolled)


def test_background_fills_what_moves_in_and_ranges_hold():
    # A preprocessed batch: raw in [0, 1], then minus a mean per pixel, over a scale.
    raw = images(8, seed=1)
    mean = raw.mean(axis=0)
    X = (raw - mean) / 0.3
    blank = (0 - mean) / 0.3
    aug = Augmenter("shift=2,rotate=20,scale=0.2,elastic=2,sigma=3", (H, W), blank)
    out = X.copy()
    aug(out, np.random.default_rng(0))
    assert out.shape == X.shape and out.dtype == X.dtype
    back = out * 0.3 + mean  # undo the preprocessing: bilinear mixes of raw pixels and 0
    assert back.min() >= -1e-12 and back.max() <= 1 + 1e-12
    assert not np.allclose(out, X)


def test_rotation_and_scaling_against_a_hand_computed_warp():
    # Rotation by theta maps p - centre to R(theta) (p - centre), R = [[cos, -sin],
    # [sin, cos]] on (row, column). A bright pixel at centre + (2, 1) rotated by 90
    # degrees lands at centre + (2 cos - sin, 2 sin + cos) = centre + (-1, 2); scaled by 2
    # (no rotation) a pixel at centre + (2, 0) lands at centre + (4, 0). The draws are
    # forced by a generator whose uniform draw is always the given value.
    class Fixed:
        def __init__(self, value):
            self.value = value

        def uniform(self, low, high, size):
            return np.full(size, self.value)

    h = w = 11  # centre (5, 5)
    X = np.zeros((1, h * w))
    X[0, 7 * w + 6] = 1.0
    out = X.copy()
    Augmenter(AugmentSpec(rotate=90.0), (h, w))(out, Fixed(90.0))  # type: ignore[arg-type]
    assert out[0, 4 * w + 7] == pytest.approx(1.0, abs=1e-12)
    assert out.sum() == pytest.approx(1.0, abs=1e-12)
    X = np.zeros((1, h * w))
    X[0, 7 * w + 5] = 1.0
    out = X.copy()
    Augmenter(AugmentSpec(scale=0.5), (h, w))(out, Fixed(2.0))  # type: ignore[arg-type]
    # The output at centre + (4, 0) samples the input at centre + (2, 0) exactly, the one
    # at centre + (3, 0) samples centre + (1.5, 0): half the bright pixel (bilinear).
    assert out[0, 9 * w + 5] == pytest.approx(1.0, abs=1e-12)
    assert out[0, 8 * w + 5] == pytest.approx(0.5, abs=1e-12)


def test_elastic_field_is_smooth_and_moves_pixels():
    X = images(4, seed=2)
    out = X.copy()
    Augmenter("elastic=3,sigma=3", (H, W))(out, np.random.default_rng(1))
    assert not np.array_equal(out, X)
    assert np.abs(out.sum(axis=1) - X.sum(axis=1)).max() < 0.5 * X.sum(axis=1).min()


def test_same_seed_same_batch_and_global_draws_for_shards():
    X = images(10, seed=3)
    spec = "shift=2,rotate=15,scale=0.1,elastic=2"
    aug = Augmenter(spec, (H, W))
    a, b = X.copy(), X.copy()
    aug(a, np.random.default_rng(7))
    aug(b, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    c = X.copy()
    aug(c, np.random.default_rng(8))
    assert not np.array_equal(a, c)
    # Two shards of the same global batch, each drawing for all 10: together the whole.
    r1, r2 = np.random.default_rng(7), np.random.default_rng(7)
    lo, hi = X[:4].copy(), X[4:].copy()
    aug(lo, r1, total=10, start=0)
    aug(hi, r2, total=10, start=4)
    # The same draws; the sampling coordinates carry the image's row offset in the stacked
    # array, so their last bits (and the warped pixels' ~1e-14) depend on the position.
    np.testing.assert_allclose(np.vstack([lo, hi]), a, rtol=0, atol=1e-12)
    assert r1.bit_generator.state == r2.bit_generator.state


def image_blobs(n: int = 160, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = np.zeros((n, 6, 6), np.float32)
    for i, k in enumerate(y):
        X[i, 1 + k, 1:5] = 1.0
    X += rng.normal(0, 0.1, X.shape).astype(np.float32)
    return X.reshape(n, 36), y


def test_training_with_augmentation_reproduces_and_resumes_bit_for_bit(tmp_path):
    from backprop.callbacks import Callback

    class StopAfter2(Callback):
        def on_epoch_end(self, epoch, log, trainer):
            if epoch == 2:
                raise KeyboardInterrupt

    X, y = image_blobs()
    cfg = TrainConfig(hidden=(16,), epochs=4, batch_size=32, augment="shift=1,rotate=10")

    def run(**kw):
        net = MLP([36, 16, 3], seed=0)
        fit(net, X, y, X[:40], y[:40], config=cfg, augmenter=Augmenter(cfg.augment, (6, 6)),
            progress=False, **kw)  # fmt: skip
        return net

    full, again = run(), run()
    for k in full.params:
        np.testing.assert_array_equal(full.params[k], again.params[k])
    plain = MLP([36, 16, 3], seed=0)
    fit(plain, X, y, X[:40], y[:40], config=TrainConfig(hidden=(16,), epochs=4, batch_size=32),
        progress=False)  # fmt: skip
    assert not np.array_equal(plain.params["W1"], full.params["W1"])
    ck = tmp_path / "ck.safetensors"
    with pytest.raises(KeyboardInterrupt):
        run(callbacks=[StopAfter2()], checkpoint=ck)
    resumed = run(checkpoint=ck, resume=True)
    for k in full.params:
        np.testing.assert_array_equal(resumed.params[k], full.params[k])


def test_fit_and_train_refuse_augment_without_images():
    from backprop.data import load_dataset
    from backprop.run import train

    X, y = image_blobs(40)
    with pytest.raises(ValueError, match="augment needs images"):
        fit(MLP([36, 4, 3]), X, y, config=TrainConfig(hidden=(4,), augment="shift=1"))
    with pytest.raises(ValueError, match="augment needs image data; diabetes"):
        train(load_dataset("diabetes"), TrainConfig(hidden=(4,), augment="shift=1"))


def test_cli_augment_flag_reaches_the_config_and_a_bad_spec_is_one_line(tmp_path):
    import contextlib
    import io
    import json

    from backprop import cli

    out = tmp_path / "run"
    argv = ["train", "--data", "digits", "--hidden", "16", "--epochs", "2", "--quiet"]
    assert cli.main([*argv, "--augment", "shift=1,rotate=5", "--out", str(out)]) == 0
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert config["augment"] == "shift=1,rotate=5"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli.main([*argv, "--augment", "shift=1,twist=2", "--out", str(tmp_path / "b")])
    assert code == 2
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and "twist" in lines[0], lines


def test_warping_in_a_worker_thread_is_bit_identical_to_the_main_thread(tmp_path):
    # The worker warps batch k + 1 while the main thread steps on batch k; the random
    # numbers must still come in the unthreaded order (batch k's augmentation, then its
    # dropout masks, then batch k + 1's augmentation...), whole runs and resumes alike.
    # Batches whose weights are all 0 take no step (and draw no masks): covered too.
    from backprop.callbacks import Callback
    from backprop.checkpoint import Checkpoint
    from backprop.optim import make_optimizer
    from backprop.trainer import Trainer

    X, y = image_blobs(150)
    sw = np.ones(len(X), np.float32)
    sw[:40] = 0.0  # unshuffled, batches 0 and 1 of 16 weigh 0 in epoch 0 at least
    aug = Augmenter("shift=1,rotate=10,elastic=1,sigma=2", (6, 6))

    def trainer(thread: bool, shuffle: bool = True) -> Trainer:
        net = MLP([36, 16, 3], seed=0)
        opt = make_optimizer("adamw", net.params, lr=1e-2)
        return Trainer(net, opt, batch_size=16, seed=3, shuffle=shuffle, dropout=0.3,
                       input_dropout=0.1, augment=aug, augment_thread=thread)  # fmt: skip

    for shuffle in (False, True):
        ref, thr = trainer(False, shuffle), trainer(True, shuffle)
        for _ in range(3):
            ref.run_epoch(X, y, sw)
            thr.run_epoch(X, y, sw)
        for k in ref.net.params:
            np.testing.assert_array_equal(thr.net.params[k], ref.net.params[k])
        assert thr.rng.bit_generator.state == ref.rng.bit_generator.state
    assert not np.array_equal(ref.net.params["W1"], trainer(True).net.params["W1"])

    class StopAfter2(Callback):
        def on_epoch_end(self, epoch, log, trainer):
            if epoch == 2:
                raise KeyboardInterrupt

    ck = tmp_path / "ck.safetensors"
    full = trainer(False)
    full.fit(X, y, epochs=4, sample_weight=sw, threads=1)
    with pytest.raises(KeyboardInterrupt):
        trainer(True).fit(X, y, epochs=4, sample_weight=sw, threads=1,
                          callbacks=[Checkpoint(ck), StopAfter2()])  # fmt: skip
    resumed = trainer(True)
    resumed.fit(X, y, epochs=4, sample_weight=sw, threads=1, callbacks=[Checkpoint(ck)],
                resume_from=ck)  # fmt: skip
    for k in full.net.params:
        np.testing.assert_array_equal(resumed.net.params[k], full.net.params[k])


def test_apply_refuses_draws_for_another_batch_size():
    aug = Augmenter("shift=1", (H, W))
    draws = aug.draw(np.random.default_rng(0), 5)
    with pytest.raises(ValueError, match="draws were made for 5 images, the batch has 4"):
        aug.apply(images(4), draws)


def test_the_next_batch_is_drawn_before_the_step_and_warped_in_the_worker():
    # The overlap itself: batch k + 1's warp is drawn (and handed to the worker) before
    # batch k's forward and backward pass starts, and warped outside the main thread.
    import threading

    from backprop.optim import make_optimizer
    from backprop.trainer import Trainer

    events: list[str] = []

    class Recording(Augmenter):
        def draw(self, rng, b, *, total=None, start=0):
            events.append("draw")
            return super().draw(rng, b, total=total, start=start)

        def apply(self, X, draws):
            events.append("apply in " + threading.current_thread().name.split("_")[0])
            super().apply(X, draws)

    X, y = image_blobs(64)
    net = MLP([36, 8, 3], seed=0)
    trainer = Trainer(net, make_optimizer("sgd", net.params, lr=0.1), batch_size=16,
                      dropout=0.2, augment=Recording("shift=1", (6, 6)))  # fmt: skip
    loss_and_grads = net.loss_and_grads

    def recorded(*args, **kw):
        events.append("step")
        return loss_and_grads(*args, **kw)

    net.loss_and_grads = recorded  # type: ignore[method-assign]
    trainer.run_epoch(X, y)
    draws_and_steps = [e for e in events if e in ("draw", "step")]
    assert draws_and_steps == ["draw", "draw", "step", "draw", "step", "draw", "step", "step"]
    assert {e for e in events if e.startswith("apply")} == {"apply in backprop-augment"}


def test_flip_mirrors_the_drawn_images_and_leaves_the_other_draws_as_they_were():
    X = images(8)
    out = X.copy()
    Augmenter("flip=1", (H, W))(out, np.random.default_rng(0))  # every image mirrored
    np.testing.assert_array_equal(out.reshape(8, H, W), X.reshape(8, H, W)[:, :, ::-1])
    # flip=0.5: the images whose draw (the last one of the batch) is below 0.5, exactly.
    rng = np.random.default_rng(3)
    shifts = rng.integers(-1, 1, size=(2, 8), endpoint=True)
    mirrored = rng.random(8) < 0.5
    assert 0 < mirrored.sum() < 8
    out, plain = X.copy(), X.copy()
    Augmenter("shift=1,flip=0.5", (H, W))(out, np.random.default_rng(3))
    Augmenter("shift=1", (H, W))(plain, np.random.default_rng(3))  # the same shifts
    for i in range(8):
        rolled = np.roll(X[i].reshape(H, W), tuple(shifts[:, i]), axis=(0, 1))
        np.testing.assert_array_equal(plain[i].reshape(H, W), rolled)
        # q = centre + F (p - centre) - t: the mirror of the shifted image.
        got = out[i].reshape(H, W)
        np.testing.assert_array_equal(got, rolled[:, ::-1] if mirrored[i] else rolled)
    with pytest.raises(OptionError, match="augment flip must be"):
        parse_augment("flip=1.5")


def test_flipping_digits_warns_once_before_training_and_clothes_do_not(tmp_path):
    import contextlib
    import dataclasses
    import io
    import warnings

    from backprop import cli
    from backprop.config import MirrorWarning, mirror_warning
    from backprop.data import load_dataset
    from backprop.run import train

    digits = load_dataset("digits")
    assert digits.mirror_symmetric is False
    config = TrainConfig(hidden=(8,), epochs=1, augment="shift=1,flip=0.5")
    assert "digits" in mirror_warning(digits, config)
    assert mirror_warning(digits, dataclasses.replace(config, augment="shift=1")) is None
    clothes = dataclasses.replace(digits, mirror_symmetric=True)  # as fashion-mnist's loader
    assert mirror_warning(clothes, config) is None
    unknown = dataclasses.replace(digits, mirror_symmetric=None)  # a file: trusted
    assert mirror_warning(unknown, config) is None
    with pytest.warns(MirrorWarning, match="not mirror-symmetric"):
        train(digits, config)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MirrorWarning)
        train(clothes, config)
    # The CLI says it first (before minutes of training) and once.
    err = io.StringIO()
    argv = ["train", "--data", "digits", "--hidden", "8", "--epochs", "1", "--quiet"]
    with contextlib.redirect_stderr(err), warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        code = cli.main([*argv, "--augment", "flip=0.5", "--out", str(tmp_path / "r")])
    assert code == 0
    assert not [w for w in shown if issubclass(w.category, MirrorWarning)]  # not again
    said = [line for line in err.getvalue().splitlines() if "mirror" in line]
    assert len(said) == 1 and said[0].startswith("backprop train: warning:"), err.getvalue()
