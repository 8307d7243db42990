"""Augmentation (shifts, rotations, flips, elastic distortions) and per-pixel standardization: exact against per-image
references, seeded."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from mlplab import config as configs
from mlplab import data
from mlplab.augment import (
    MIN_STD,
    BatchTransform,
    Standardizer,
    bilinear_sample,
    elastic_images,
    flip_images,
    gaussian_matrix,
    rotate_images,
    shift_images,
)
from mlplab.cli import main
from mlplab.data import Split
from mlplab.errors import MlplabError
from mlplab.models import MLP, SoftmaxRegression, TwoLayerNet
from mlplab.optim import Adam
from mlplab.run import make_transform, train_run
from mlplab.training import evaluate, fit

SHAPE = (7, 9)


@pytest.fixture(scope="module")
def digits() -> data.Dataset:
    return data.load("digits")


def random_images(n: int, dtype: str = "uint8", seed: int = 0) -> np.ndarray:
    images = np.random.default_rng(seed).integers(1, 256, size=(n, SHAPE[0] * SHAPE[1]))
    return images.astype(dtype)


def shifted(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """One image moved down by dy and right by dx, zeros coming in: the per-image reference."""
    h, w = SHAPE
    src, out = image.reshape(h, w), np.zeros((h, w), image.dtype)
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = src[
        max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return out.ravel()


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_shifts_match_the_per_image_reference(dtype):
    x = random_images(40, dtype)
    out = shift_images(x, SHAPE, 2, np.random.default_rng(3))
    dy, dx = np.random.default_rng(3).integers(-2, 3, size=(2, 40))
    assert out.dtype == x.dtype and out.shape == x.shape
    assert {int(v) for v in dy} == {-2, -1, 0, 1, 2}
    for i in range(40):
        np.testing.assert_array_equal(out[i], shifted(x[i], int(dy[i]), int(dx[i])))


def test_shifts_are_seeded_and_leave_the_input_alone():
    x = random_images(30)
    before = x.copy()
    first = shift_images(x, SHAPE, 1, np.random.default_rng(0))
    np.testing.assert_array_equal(first, shift_images(x, SHAPE, 1, np.random.default_rng(0)))
    assert not np.array_equal(first, shift_images(x, SHAPE, 1, np.random.default_rng(1)))
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(shift_images(x, SHAPE, 0, np.random.default_rng(0)), x)


def test_rotations_match_scipy_rotate_per_image():
    x = random_images(12, "float64")
    out = rotate_images(x, SHAPE, 20.0, np.random.default_rng(4))
    rng = np.random.default_rng(4)
    rng.integers(0, 1, size=(2, 12))  # the (zero) shift draws come first
    angles = rng.uniform(-20, 20, size=12)
    for i in range(12):
        expected = ndimage.rotate(x[i].reshape(SHAPE), angles[i], reshape=False, order=1, mode="constant")
        np.testing.assert_allclose(out[i].reshape(SHAPE), expected, atol=1e-9)
    assert np.abs(out - x).max() > 10  # they really turned


def test_zero_angle_rotation_is_exactly_the_shift():
    x = random_images(25, "float32")
    rotated = rotate_images(x, SHAPE, 0.0, np.random.default_rng(9), max_shift=2)
    np.testing.assert_array_equal(rotated, shift_images(x, SHAPE, 2, np.random.default_rng(9)))


def test_standardizer_statistics_and_floor():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(10_000, 6)).astype(np.uint8)
    x[:, 0] = 7  # constant pixel: std 0, floored
    x[:, 1] = rng.integers(0, 2, size=10_000)  # nearly constant in scaled units: std ≈ 0.002, floored
    split = Split(x, np.zeros(10_000, np.int64))
    st = Standardizer.fit(split, 255.0, "float64")
    scaled = x / 255.0
    np.testing.assert_allclose(st.mean, scaled.mean(axis=0), rtol=1e-12)
    expected_std = np.maximum(scaled.std(axis=0), MIN_STD)
    np.testing.assert_allclose(1 / st.inv_std, expected_std, rtol=1e-9)
    standardized = st(scaled.copy())
    np.testing.assert_allclose(standardized.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(standardized[:, 2:].std(axis=0), 1, rtol=1e-9)
    np.testing.assert_allclose(standardized[:, 0], 0, atol=1e-12)
    assert Standardizer.fit(split, 255.0).mean.dtype == np.float32


def test_folding_the_standardization_into_the_first_layer(digits):
    st = Standardizer.fit(digits.train, digits.pixel_max, "float64")
    x = digits.test.x / digits.pixel_max
    scale, shift = st.affine()
    np.testing.assert_allclose(x * scale + shift, st(x.copy()), rtol=1e-12, atol=1e-12)
    for model in (MLP(64, [20, 10], activation="tanh", dtype="float64"), TwoLayerNet(64, 12, dtype="float64")):
        for p in model.params.values():
            p[...] = np.random.default_rng(1).normal(0, 0.3, p.shape)
        before = model.scores(st(x.copy()))
        model.fold_input_affine(*st.affine())
        np.testing.assert_allclose(model.scores(x), before, rtol=1e-10, atol=1e-10)
    assert not SoftmaxRegression(64).folds_input_affine(64)
    with pytest.raises(MlplabError, match="bias"):
        SoftmaxRegression(64).fold_input_affine(*st.affine())


def test_transform_augments_training_batches_only(digits):
    st = Standardizer.fit(digits.train, digits.pixel_max)
    transform = BatchTransform(digits.image_shape, shift=1, rotate=10, standardizer=st)
    x = (digits.val.x[:50] / np.float32(digits.pixel_max)).astype(np.float32)
    evaluated = transform.eval(x.copy())
    np.testing.assert_allclose(evaluated, (x - st.mean) * st.inv_std, rtol=1e-6)
    np.testing.assert_array_equal(transform.eval(x.copy()), evaluated)
    trained = transform.train(x.copy(), np.random.default_rng(0))
    assert not np.allclose(trained, evaluated)
    np.testing.assert_array_equal(trained, transform.train(x.copy(), np.random.default_rng(0)))
    assert not BatchTransform((8, 8)).augments and transform.augments


def test_fit_with_standardization_returns_a_raw_input_model(digits):
    st = Standardizer.fit(digits.train, digits.pixel_max, "float64")
    transform = BatchTransform(digits.image_shape, standardizer=st)
    model = MLP(64, [32], dtype="float64")
    history = fit(model, Adam(0.003), digits, epochs=4, batch_size=32, seed=0, transform=transform)
    # The returned model has the standardization folded in: plain evaluation reproduces fit's numbers.
    val_loss, val_acc = evaluate(model, digits.val, digits.pixel_max)
    assert val_acc == history.best_val_acc
    assert val_loss == pytest.approx(history.val_loss[history.best_epoch - 1], rel=1e-9)
    assert evaluate(model, digits.test, digits.pixel_max)[1] == history.test_acc
    assert history.best_val_acc > 0.9


def test_augmented_runs_are_deterministic(digits):
    config = configs.resolve(
        None,
        ["type=MLP", "hidden_sizes=[32]", "epochs=3", "augment=1", "rotate=10", "normalize=standardize"],
    )
    first, _ = train_run(config, dataset=digits)
    second, _ = train_run(config, dataset=digits)
    assert first["train_loss"] == second["train_loss"] and first["val_acc"] == second["val_acc"]
    plain, _ = train_run({**config, "augment": 0, "rotate": 0.0}, dataset=digits)
    assert plain["train_loss"] != first["train_loss"]
    reseeded, _ = train_run({**config, "seed": 7}, dataset=digits)
    assert reseeded["train_loss"] != first["train_loss"]


def test_config_keys_build_the_transform(digits):
    assert make_transform(configs.resolve(), digits, "float32") is None
    transform = make_transform(
        configs.resolve(None, ["augment=2", "rotate=15", "normalize=standardize"]), digits, "float32"
    )
    assert (transform.shift, transform.rotate, transform.image_shape) == (2, 15.0, (8, 8))
    assert transform.standardizer is not None and transform.standardizer.mean.dtype == np.float32
    # Statistics of the training split, never of validation or test.
    np.testing.assert_array_equal(transform.standardizer.mean, Standardizer.fit(digits.train, 16.0).mean)
    assert not np.allclose(transform.standardizer.mean, Standardizer.fit(digits.val, 16.0).mean)
    only_shift = make_transform(configs.resolve(None, ["augment=1"]), digits, "float32")
    assert only_shift.standardizer is None


@pytest.mark.parametrize("bad", ["augment=-1", "augment=1.5", "rotate=200", "normalize=minmax"])
def test_bad_augmentation_values_are_refused(bad):
    with pytest.raises(MlplabError, match=bad.split("=")[0]):
        configs.resolve(None, [bad])


def test_cli_refuses_standardizing_a_model_without_a_first_bias(tmp_path, capsys):
    status = main(
        ["train", "--set", "type=SoftmaxRegression", "--set", "normalize=standardize", "--out", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "b1" in err and "Traceback" not in err
    assert not (tmp_path / "metrics.json").exists()


def test_bilinear_sample_kernel_matches_scipy_per_image():
    rng = np.random.default_rng(11)
    images = rng.random((4, *SHAPE)).astype(np.float32)
    rows = rng.uniform(-2, SHAPE[0] + 1, (4, *SHAPE)).astype(np.float32)  # some points outside the image
    cols = rng.uniform(-2, SHAPE[1] + 1, (4, *SHAPE)).astype(np.float32)
    expected = [
        ndimage.map_coordinates(images[b], [rows[b], cols[b]], order=1, mode="grid-constant", cval=0.0)
        for b in range(4)
    ]
    np.testing.assert_allclose(bilinear_sample(images, rows, cols), np.stack(expected), rtol=1e-6, atol=1e-6)


def test_gaussian_matrix_smooths_like_scipy_with_zeros_beyond_the_edges():
    field = np.random.default_rng(12).uniform(-1, 1, (3, *SHAPE))
    smoothed = gaussian_matrix(SHAPE[0], 2.0) @ field @ gaussian_matrix(SHAPE[1], 2.0).T
    expected = ndimage.gaussian_filter(field, (0, 2.0, 2.0), mode="constant", truncate=3.0)
    np.testing.assert_allclose(smoothed, expected, rtol=1e-5, atol=1e-6)


def test_elastic_distortions_are_seeded_local_and_zero_at_alpha_zero():
    x = random_images(6, "float32") / np.float32(255)
    np.testing.assert_array_equal(elastic_images(x, SHAPE, 0.0, 4.0, np.random.default_rng(0)), x)
    warped = elastic_images(x, SHAPE, 8.0, 2.0, np.random.default_rng(1))
    assert warped.shape == x.shape and warped.dtype == np.float32
    np.testing.assert_array_equal(warped, elastic_images(x, SHAPE, 8.0, 2.0, np.random.default_rng(1)))
    assert not np.allclose(warped, x)
    # Each image moves by its own smooth field: images differ in how much they changed.
    change = np.abs(warped - x).mean(axis=1)
    assert change.std() > 0 and warped.min() >= -1e-6 and warped.max() <= 1.0 + 1e-6  # a convex blend of pixels


def test_elastic_key_reaches_the_training_transform(digits):
    config = configs.resolve(None, ["type=MLP", "elastic=10", "elastic_sigma=2"])
    transform = make_transform(config, digits, "float32")
    assert transform is not None and transform.augments and transform.elastic == 10 and transform.elastic_sigma == 2
    x = (digits.val.x[:20] / np.float32(digits.pixel_max)).astype(np.float32)
    assert not np.allclose(transform.train(x.copy(), np.random.default_rng(0)), x)
    np.testing.assert_array_equal(transform.eval(x.copy()), x)
    with pytest.raises(MlplabError, match="elastic"):
        configs.resolve(None, ["elastic=-1"])


def test_flips_mirror_about_half_the_images_left_to_right_seeded():
    x = random_images(400)
    flipped = flip_images(x, SHAPE, np.random.default_rng(3))
    images, out = x.reshape(-1, *SHAPE), flipped.reshape(-1, *SHAPE)
    mirrored = np.array([np.array_equal(o, i[:, ::-1]) for i, o in zip(images, out, strict=True)])
    kept = np.array([np.array_equal(o, i) for i, o in zip(images, out, strict=True)])
    assert np.all(mirrored ^ kept) and 160 < mirrored.sum() < 240  # each image one or the other, about half flipped
    np.testing.assert_array_equal(flipped, flip_images(x, SHAPE, np.random.default_rng(3)))
    np.testing.assert_array_equal(x, random_images(400))  # the input is left alone


def test_flip_key_reaches_the_training_transform_only(digits):
    transform = make_transform(configs.resolve(None, ["type=MLP", "flip=true"]), digits, "float32")
    assert transform is not None and transform.augments and transform.flip
    x = (digits.val.x[:50] / np.float32(digits.pixel_max)).astype(np.float32)
    assert not np.array_equal(transform.train(x.copy(), np.random.default_rng(0)), x)
    np.testing.assert_array_equal(transform.eval(x.copy()), x)
    assert make_transform(configs.resolve(None, ["type=MLP"]), digits, "float32") is None
    with pytest.raises(MlplabError, match="flip"):
        configs.resolve(None, ["flip=2"])
