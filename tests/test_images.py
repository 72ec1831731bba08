"""Tests for nanoddpm_utils.images: the model's range and back, image grids and PNGs."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from nanoddpm_utils.images import image_grid, save_png, to_model_range, to_uint8


def planted(n=10, h=8, w=8, c=1):
    """n uint8 images, image i filled with the value 10 * (i + 1) (never 255, the pad value)."""
    return np.stack([np.full((h, w, c), 10 * (i + 1), np.uint8) for i in range(n)])


# --- pixel ranges ------------------------------------------------------------------------------


def test_range_round_trip():
    u = np.arange(256, dtype=np.uint8).reshape(16, 16)
    x = to_model_range(u)
    assert x.dtype == np.float32 and isinstance(x, np.ndarray)
    assert x.min() == -1.0 and x.max() == 1.0
    np.testing.assert_array_equal(to_uint8(x), u)
    back = to_uint8(to_model_range(jnp.asarray(u)))  # JAX in, NumPy out
    assert isinstance(back, np.ndarray) and back.dtype == np.uint8
    np.testing.assert_array_equal(back, u)
    np.testing.assert_array_equal(to_uint8(np.array([-3.0, 2.0, 0.0, 0.999])), [0, 255, 128, 255])
    jitted = np.asarray(jax.jit(to_model_range)(jnp.asarray(u)))  # XLA must not overshoot: 255 -> exactly 1
    assert jitted.min() == -1.0 and jitted.max() == 1.0
    np.testing.assert_array_equal(to_uint8(jitted), u)
    assert to_uint8(u) is u  # uint8 passes through (the one conversion tracking and viz use too)
    np.testing.assert_array_equal(to_uint8(jnp.asarray(x, jnp.bfloat16)), to_uint8(x.astype(jnp.bfloat16)))
    for bad in (np.zeros(3, np.int32), np.zeros(3, bool)):  # integers of unknown scale are refused
        with pytest.raises(TypeError, match="uint8 or float"):
            to_uint8(bad)


# --- image_grid --------------------------------------------------------------------------------


def test_image_grid_shape_default_nrow():
    grid = image_grid(planted(10))  # ceil(sqrt(10)) = 4 columns, 3 rows, 1 px between tiles
    assert grid.dtype == np.uint8
    assert grid.shape == (3 * 8 + 2 * 1, 4 * 8 + 3 * 1, 1) == (26, 35, 1)
    assert image_grid(planted(6, 5, 7, 3), nrow=3, pad=2).shape == (2 * 5 + 2, 3 * 7 + 2 * 2, 3)


def test_image_grid_tile_positions_and_padding():
    imgs = planted(10)
    grid = image_grid(imgs)
    for i in range(10):
        r, c = divmod(i, 4)
        tile = grid[r * 9 : r * 9 + 8, c * 9 : c * 9 + 8]
        np.testing.assert_array_equal(tile, imgs[i])
    assert (grid[8, :] == 255).all() and (grid[:, 8] == 255).all()  # pad row/column is white
    assert (grid[18:, 18:] == 255).all()  # the two empty slots of the last row are white


def test_image_grid_distinct_rgb_tiles_with_nrow():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(5, 4, 6, 3), dtype=np.uint8)
    grid = image_grid(imgs, nrow=5, pad=0)
    assert grid.shape == (4, 30, 3)
    for i in range(5):
        np.testing.assert_array_equal(grid[:, 6 * i : 6 * i + 6], imgs[i])


def test_image_grid_values():
    floats = np.stack([np.full((2, 2, 1), v, np.float32) for v in (-1.0, 1.0, 0.0, -3.0)])
    grid = image_grid(floats, nrow=4, pad=1)
    assert grid[0, 0, 0] == 0 and grid[0, 3, 0] == 255  # -1 -> 0, +1 -> 255
    assert grid[0, 6, 0] == 128  # 0 -> round(127.5) = 128
    assert grid[0, 9, 0] == 0  # out of range is clipped
    u8 = np.random.default_rng(1).integers(0, 256, size=(1, 5, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(image_grid(u8), u8[0])  # uint8 passes through unchanged
    assert image_grid(jnp.asarray(floats)).dtype == np.uint8  # jax arrays work too
    with pytest.raises(TypeError):
        image_grid(np.zeros((1, 2, 2, 1), np.int32))


# --- save_png --------------------------------------------------------------------------------


def test_save_png_grayscale_batch(tmp_path):
    imgs = planted(10)
    path = save_png(imgs, tmp_path / "new" / "dir" / "samples.png")
    assert path.exists()
    assert os.listdir(path.parent) == ["samples.png"]  # no temp file left behind
    with Image.open(path) as im:
        assert im.mode == "L"
        assert im.size == (350, 260)  # grid 26x35, factor ceil(256/26) = 10
        arr = np.asarray(im)
    grid = image_grid(imgs)[..., 0]
    np.testing.assert_array_equal(arr[::10, ::10], grid)
    np.testing.assert_array_equal(arr, grid.repeat(10, 0).repeat(10, 1))  # nearest-neighbour


def test_save_png_rgb_grid_and_float(tmp_path):
    grid = np.random.default_rng(2).integers(0, 256, size=(300, 400, 3), dtype=np.uint8)
    with Image.open(save_png(grid, tmp_path / "big.png")) as im:
        assert im.mode == "RGB" and im.size == (400, 300)  # already big: not upscaled
        np.testing.assert_array_equal(np.asarray(im), grid)
    with Image.open(save_png(-np.ones((4, 32, 32, 3), np.float32), tmp_path / "f.png")) as im:
        assert im.size == (65 * 4, 65 * 4) and np.asarray(im)[0, 0].tolist() == [0, 0, 0]
