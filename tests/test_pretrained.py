"""The shipped trained models: checksum, size, package data, loading, sampling, and the errors."""

import fnmatch
import hashlib
import json
import shutil
import tomllib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nanoddpm_utils import pretrained
from nanoddpm_utils.config import PRESETS, get_preset
from nanoddpm_utils.data import load_digits
from nanoddpm_utils.images import to_model_range
from nanoddpm_utils.sample import sample_images
from nanoddpm_utils.state import init_state
from nanoddpm_utils.train import batch_loss, schedule_for

ROOT = Path(__file__).resolve().parents[1]
_INDEX_FILE = pretrained.WEIGHTS_DIR / pretrained.INDEX
INDEX = json.loads(_INDEX_FILE.read_text()) if _INDEX_FILE.exists() else {}


def test_digits_is_shipped():
    assert "digits" in pretrained.available(), "no shipped digits weights: run `make pretrained` and commit them"
    assert pretrained.available() == sorted(INDEX)


@pytest.mark.parametrize("name", sorted(INDEX))
def test_shipped_file_matches_its_checksum_and_is_package_data(name):
    entry = INDEX[name]
    path = pretrained.WEIGHTS_DIR / entry["file"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    assert path.stat().st_size < 4 * 2**20
    # pyproject's package-data must carry the file and the index into wheels (pip install git+..., Colab)
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "nanoddpm_utils.weights" in setuptools["packages"]  # the folder of data is a package of its own
    patterns = setuptools["package-data"]["nanoddpm_utils.weights"]
    for f in (path, pretrained.WEIGHTS_DIR / pretrained.INDEX):
        rel = f.relative_to(pretrained.WEIGHTS_DIR).as_posix()
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), f"{rel} is not package data"


@pytest.fixture(scope="module")
def digits():
    return pretrained.load("digits")


def test_shipped_digits_config_is_the_current_preset(digits):
    # a preset changed since the weights were made: run `make pretrained` and commit the new weights
    config, _ = digits
    assert config == get_preset("digits")


def test_shipped_digits_model_is_trained(digits):
    """On held-out real digits the shipped model's L_simple is far below a fresh model's (about 1.0)."""
    config, model = digits
    schedule = schedule_for(config)
    x0 = to_model_range(load_digits("test")[:128])
    key = jax.random.key(0)
    trained = float(batch_loss(model, schedule, x0, key))
    fresh = float(batch_loss(init_state(config, 0).ema, schedule, x0, key))
    assert fresh > 0.8
    assert trained < 0.35 * fresh, (trained, fresh)


def test_shipped_digits_samples_in_a_few_steps(digits):
    config, model = digits
    images = np.asarray(sample_images(config, model, jax.random.key(0), 8, sampler="ddim", steps=5))
    assert images.shape == (8, 8, 8, 1)
    assert np.isfinite(images).all() and images.min() >= -1.0 and images.max() <= 1.0
    assert images.std() > 0.1  # not a blank


def test_unknown_name_lists_what_is_shipped():
    with pytest.raises(ValueError, match=r"no shipped model named 'nope'; available: .*digits") as e:
        pretrained.load("nope")
    assert "\n" not in str(e.value)


def _copy(tmp_path) -> Path:
    shutil.copytree(pretrained.WEIGHTS_DIR, tmp_path / "weights")
    return tmp_path / "weights"


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_corrupted_copy_is_refused(tmp_path, damage):
    weights = _copy(tmp_path)
    path = weights / INDEX["digits"]["file"]
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01  # one bit of one weight
    else:
        data = data[: len(data) - 4]
    path.write_bytes(bytes(data))
    with pytest.raises(pretrained.PretrainedError, match="SHA-256 .* the file is damaged or was changed"):
        pretrained.load("digits", weights_dir=weights)


def test_a_missing_file_is_named(tmp_path):
    weights = _copy(tmp_path)
    (weights / INDEX["digits"]["file"]).unlink()
    with pytest.raises(pretrained.PretrainedError, match="is missing"):
        pretrained.load("digits", weights_dir=weights)


def test_build_adds_an_entry_without_code_and_is_reproducible(tmp_path):
    """A new entry is a file plus a line of the index; the same preset and seed write the same bytes."""
    weights = _copy(tmp_path)
    path = pretrained.build("smoke", weights_dir=weights, progress=False)
    first = path.read_bytes()
    assert pretrained.available(weights) == sorted(set(INDEX) | {"smoke"})
    config, model = pretrained.load("smoke", weights_dir=weights)
    assert config == get_preset("smoke")
    # the stored weights are the EMA of a run trained from the preset's seed by train.fit
    from nanoddpm_utils.data import load_dataset
    from nanoddpm_utils.train import fit

    state, _ = fit(config, load_dataset("digits", split="train", image_size=8, channels=1), progress=False)
    for a, b in zip(jax.tree_util.tree_leaves(model), jax.tree_util.tree_leaves(state.ema)):
        if isinstance(a, jax.Array):
            np.testing.assert_array_equal(a, b)
    pretrained.build("smoke", weights_dir=weights, progress=False)
    assert path.read_bytes() == first
    assert pretrained.load("digits", weights_dir=weights)[0] == get_preset("digits")  # the other entry is kept


def test_cli_refuses_an_unknown_preset(capsys):
    assert pretrained.main(["nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown preset" in err and "digits" in err


@pytest.mark.parametrize(
    "error, code",
    [
        (ValueError("the dataset is not there\nsecond line"), 2),
        (PermissionError(13, "Permission denied"), 1),
        (MemoryError(), 1),
    ],
)
def test_cli_errors_are_one_line_with_the_cli_exit_codes(monkeypatch, capsys, error, code):
    def fail(name):
        raise error

    monkeypatch.setattr(pretrained, "build", fail)
    assert pretrained.main(["digits"]) == code
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_every_shipped_name_is_a_loadable_model():
    for name in pretrained.available():
        config, model = pretrained.load(name)
        if name in PRESETS:
            assert config.model == PRESETS[name].model
        x = jnp.zeros((config.model.image_size, config.model.image_size, config.model.in_channels))
        assert model(x, jnp.asarray(0)).shape == x.shape
