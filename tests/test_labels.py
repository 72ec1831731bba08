"""Labels for class-conditional training: ``load_dataset(..., return_labels=True)`` on every source it reads,
each fabricated in its exact on-disk layout (the writers are test_cifar10.py's), and batches that keep each
image with its label."""

import jax
import numpy as np
import pytest
from test_cifar10 import RNG, _make_competition, _save_png, _write_batch

from nanoddpm_utils.cifar10 import CIFAR10_CLASSES
from nanoddpm_utils.data import get_batch, image_folder_classes, load_dataset
from nanoddpm_utils.images import DataError


def test_digits_labels_are_sklearns_targets():
    from sklearn.datasets import load_digits as sk

    ref = sk()
    for split in ("train", "test", "all"):
        images, labels = load_dataset("digits", split=split, return_labels=True)
        np.testing.assert_array_equal(images, load_dataset("digits", split=split))  # the same images
        assert labels.dtype == np.int32 and labels.shape == (len(images),)
        # each image's label is the target of the identical sklearn image (found by its pixels, not by index)
        lookup = {np.round(img * 255 / 16).astype(np.uint8).tobytes(): t for img, t in zip(ref.images, ref.target)}
        assert all(lookup[img[..., 0].tobytes()] == y for img, y in zip(images[:200], labels[:200]))
    assert set(load_dataset("digits", return_labels=True)[1].tolist()) == set(range(10))


def test_cifar_batches_labels(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    images = RNG.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8])
    _write_batch(folder / "data_batch_1", images[:6], labels[:6])
    _write_batch(folder / "data_batch_2", images[6:9], labels[6:9])
    _write_batch(folder / "test_batch", images[9:], labels[9:])
    x, y = load_dataset(str(tmp_path), return_labels=True)
    np.testing.assert_array_equal(x, images[:9])
    np.testing.assert_array_equal(y, labels[:9])
    x, y = load_dataset(str(tmp_path), split="test", return_labels=True)
    np.testing.assert_array_equal(y, labels[9:])


def test_cifar_png_class_folders_labels(tmp_path):
    imgs = RNG.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    for i, cls in enumerate(["truck", "airplane", "truck", "frog"]):
        _save_png(tmp_path / "cifar10" / "train" / cls / f"{i}.png", imgs[i])
    _save_png(tmp_path / "cifar10" / "test" / "frog" / "9.png", imgs[0])
    x, y = load_dataset(str(tmp_path), return_labels=True)
    # files sorted by class folder then name: airplane/1, frog/3, truck/0, truck/2; CIFAR-10's own numbers
    np.testing.assert_array_equal(x, imgs[[1, 3, 0, 2]])
    np.testing.assert_array_equal(y, [0, 6, 9, 9])


def test_cifar_competition_csv_labels(tmp_path):
    pytest.importorskip("py7zr")
    imgs = RNG.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    names = ["dog", "cat", "ship", "dog", "horse"]
    _make_competition(tmp_path, imgs, names)
    x, y = load_dataset(str(tmp_path), return_labels=True)
    np.testing.assert_array_equal(x, imgs)
    np.testing.assert_array_equal(y, [CIFAR10_CLASSES.index(n) for n in names])


def test_image_folder_one_subfolder_per_class(tmp_path):
    imgs = RNG.integers(0, 256, (5, 6, 6, 3), dtype=np.uint8)
    layout = [("roses", "a.png"), ("tulips", "b.jpg"), ("daisy", "c.png"), ("roses", "sub/d.png"), ("daisy", "e.PNG")]
    for (cls, name), img in zip(layout, imgs):
        _save_png(tmp_path / cls / name, img)
    (tmp_path / "empty").mkdir()  # a folder without images is not a class
    assert image_folder_classes(tmp_path) == ["daisy", "roses", "tulips"]
    x, y = load_dataset(str(tmp_path), return_labels=True, image_size=6, channels=3)
    # sorted paths: daisy/c, daisy/e, roses/a, roses/sub/d, tulips/b
    np.testing.assert_array_equal(y, [0, 0, 1, 1, 2])
    np.testing.assert_array_equal(x[[0, 1, 2, 3]], imgs[[2, 4, 0, 3]])  # PNG is lossless (b is a JPEG)
    np.testing.assert_array_equal(x, load_dataset(str(tmp_path)))  # the same images as without labels


def test_image_folder_labels_need_class_folders(tmp_path):
    _save_png(tmp_path / "cats" / "a.png", RNG.integers(0, 256, (4, 4, 3), dtype=np.uint8))
    _save_png(tmp_path / "loose.png", RNG.integers(0, 256, (4, 4, 3), dtype=np.uint8))
    with pytest.raises(DataError, match="not in a class folder"):
        load_dataset(str(tmp_path), return_labels=True)
    assert load_dataset(str(tmp_path)).shape == (2, 4, 4, 3)  # without labels any layout is fine


def test_get_batch_keeps_each_image_with_its_label():
    images = np.arange(50, dtype=np.uint8).reshape(50, 1, 1, 1) * 5
    labels = np.arange(50, dtype=np.int32) % 7
    key = jax.random.key(3)
    x, y = get_batch(key, images, 64, False, labels=labels)
    np.testing.assert_array_equal(x, get_batch(key, images, 64, False))  # the same images as without labels
    index = np.rint((np.asarray(x)[:, 0, 0, 0] * 127.5 + 127.5) / 5).astype(int)
    np.testing.assert_array_equal(np.asarray(y), labels[index])
