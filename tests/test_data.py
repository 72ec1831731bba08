"""Tests for nanoddpm_utils.data: the digits, a folder of images, ``load_dataset`` by name and batches on device."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from test_cifar10 import RNG, _save_png

from nanoddpm_utils.data import get_batch, load_dataset, load_digits, load_image_folder
from nanoddpm_utils.images import DataError, to_model_range, to_uint8

# --- scikit-learn digits -------------------------------------------------------------


def test_digits_scaling_shapes_and_split():
    from sklearn.datasets import load_digits as sk

    all_x, all_y = load_digits("all", return_labels=True)
    assert all_x.shape == (1797, 8, 8, 1) and all_x.dtype == np.uint8
    np.testing.assert_array_equal(all_x[..., 0], np.round(sk().images * 255 / 16).astype(np.uint8))
    assert all_x.min() == 0 and all_x.max() == 255

    tr_x, tr_y = load_digits("train", return_labels=True)
    te_x, te_y = load_digits("test", return_labels=True)
    assert len(tr_x) == 1437 and len(te_x) == 360 and tr_y.shape == (1437,)
    # train and test are disjoint and together are exactly all 1797 (as a multiset of image+label)
    key = lambda x, y: sorted(xi.tobytes() + bytes([yi]) for xi, yi in zip(x, y))  # noqa: E731
    assert key(np.concatenate([tr_x, te_x]), np.concatenate([tr_y, te_y])) == key(all_x, all_y)
    # stratified: every digit is ~20% test
    assert all(34 <= (te_y == d).sum() <= 38 for d in range(10))
    # deterministic
    np.testing.assert_array_equal(load_digits("test"), te_x)
    assert isinstance(load_digits("train"), np.ndarray)


def test_bad_split():
    with pytest.raises(DataError, match="unknown split 'val'"):
        load_digits("val")


# --- a local image folder ----------------------------------------------------------


def test_image_folder(tmp_path):
    imgs = RNG.integers(0, 256, (3, 16, 12, 3), dtype=np.uint8)
    _save_png(tmp_path / "b" / "2.PNG", imgs[1])
    _save_png(tmp_path / "a.png", imgs[0])
    _save_png(tmp_path / "c.jpeg", imgs[2])  # JPEG is lossy: only its shape is checked
    (tmp_path / "notes.txt").write_text("not an image")
    x = load_image_folder(tmp_path)
    assert x.shape == (3, 16, 12, 3) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[:2], imgs[:2])  # sorted: a.png, b/2.PNG, c.jpeg
    gray = load_image_folder(tmp_path, channels=1)
    assert gray.shape == (3, 16, 12, 1)
    np.testing.assert_array_equal(gray[0, ..., 0], np.asarray(Image.fromarray(imgs[0]).convert("L")))
    np.testing.assert_array_equal(load_dataset(str(tmp_path), channels=1), gray)
    with pytest.raises(DataError, match="has no test split"):
        load_dataset(str(tmp_path), split="test")


def test_image_folder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_image_folder(tmp_path / "nope")
    with pytest.raises(DataError, match=r"neither 'digits', 'cifar10' nor an existing folder"):
        load_dataset(str(tmp_path / "nope"))
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match=r"no images found .*\.png, \.jpg, \.jpeg"):
        load_image_folder(tmp_path)
    _save_png(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    _save_png(tmp_path / "b.png", np.zeros((8, 10, 3), np.uint8))
    with pytest.raises(DataError, match=r"a\.png is 8x8 but .*b\.png is 10x8; resize them all .*resize\(\(8, 8\)\)"):
        load_image_folder(tmp_path)
    (tmp_path / "b.png").write_bytes(b"this is not a png")
    with pytest.raises(DataError, match=r"cannot read image .*b\.png"):
        load_image_folder(tmp_path)


def test_load_dataset_presets():
    x = load_dataset("digits", image_size=8, channels=1)
    assert x.shape == (1437, 8, 8, 1)
    assert load_dataset("digits", split="test").shape == (360, 8, 8, 1)
    with pytest.raises(DataError, match=r"8x8x1 \(HxWxC\) but the preset expects 32x32x3.*image_size=8"):
        load_dataset("digits", image_size=32, channels=3)
    with pytest.raises(DataError, match="preset expects 8x8x3"):
        load_dataset("digits", channels=3)


# --- batches on device ------------------------------------------------------------------


def test_get_batch_draws_from_data():
    data = jnp.asarray(np.arange(5, dtype=np.uint8)[:, None, None, None] * 50 * np.ones((1, 4, 6, 2), np.uint8))
    x = get_batch(jax.random.PRNGKey(0), data, 64, False)
    assert x.shape == (64, 4, 6, 2) and x.dtype == jnp.float32
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    values = set(np.unique(to_uint8(x)).tolist())
    assert values <= {0, 50, 100, 150, 200} and len(values) >= 4  # random images, all from the data
    np.testing.assert_array_equal(x, get_batch(jax.random.PRNGKey(0), data, 64, False))  # same key, same batch


def test_get_batch_flips_and_jits():
    img = np.zeros((1, 5, 7, 3), np.uint8)
    img[0, :, :2] = 255  # bright left edge: asymmetric left-right
    data = jnp.asarray(img)
    original = to_model_range(img[0])
    flipped = original[:, ::-1]
    batched = jax.jit(get_batch, static_argnums=(2, 3))
    seen = []
    for i in range(8):
        key = jax.random.PRNGKey(i)
        x = np.asarray(batched(key, data, 16, True))
        # jit == eager (up to 1 ulp: XLA may divide by 127.5 as a multiply by its reciprocal), range exact
        np.testing.assert_allclose(x, np.asarray(get_batch(key, data, 16, True)), rtol=0, atol=2e-7)
        assert x.min() == -1.0 and x.max() == 1.0
        for xi in x:
            is_orig, is_flip = np.allclose(xi, original, atol=2e-7), np.allclose(xi, flipped, atol=2e-7)
            assert is_orig or is_flip
            seen.append(is_flip)
        np.testing.assert_allclose(
            np.asarray(batched(key, data, 16, False)), np.broadcast_to(original, x.shape), rtol=0, atol=2e-7
        )  # never flipped without random_flip
    assert 0.25 < np.mean(seen) < 0.75  # both orientations, about half each
