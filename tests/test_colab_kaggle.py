"""Kaggle as it is today: the API token (KAGGLE_API_TOKEN) works wherever the legacy pair works and is never
printed or written; Colab's dataset cache (/kaggle/input/...) holds any of the three CIFAR-10 layouts; a
competition download without accepted rules says where to accept them; NANODDPM_CIFAR10_DIR skips the download."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import kagglehub
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "colab"))
from fake_cifar10 import WRITERS  # noqa: E402

from nanoddpm_utils import cifar10  # noqa: E402
from nanoddpm_utils.cifar10 import load_cifar10  # noqa: E402
from nanoddpm_utils.images import DataError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "KGAT_fake0123456789abcdefTOKEN"
LEGACY_KEY = "fakelegacykey0123456789abcdef"
LAYOUT_SLUGS = {"batches": "cifar10-python", "png": "cifar10", "competition": "cifar-10"}


@pytest.fixture
def no_kaggle_env(monkeypatch, tmp_path):
    for name in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", cifar10.LOCAL_CIFAR10_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))


@pytest.mark.parametrize("layout", ["batches", "png", "competition"])
def test_colab_dataset_cache_path_with_each_layout(layout, tmp_path, monkeypatch, no_kaggle_env):
    """On Colab kagglehub answers with a folder of its read-only cache mount, /kaggle/input/<slug>."""
    cache = tmp_path / "kaggle" / "input" / LAYOUT_SLUGS[layout]
    WRITERS[layout](cache)
    for p in [cache, *cache.rglob("*")]:  # read-only, as the mount is
        p.chmod(0o555 if p.is_dir() else 0o444)
    calls = []
    fake = lambda handle, *a, **k: calls.append(handle) or str(cache)  # noqa: E731
    monkeypatch.setattr(kagglehub, "dataset_download", fake)
    monkeypatch.setattr(kagglehub, "competition_download", fake)
    images, labels = load_cifar10("train", layout=layout, return_labels=True)
    assert calls == [cifar10.KAGGLE_SOURCES[layout][1]]
    assert images.dtype == np.uint8 and images.shape[1:] == (32, 32, 3) and len(images) == len(labels) > 0
    assert set(np.unique(labels)) <= set(range(10))
    auto, _ = load_cifar10("train", path=cache, return_labels=True)  # the same folder, layout detected
    np.testing.assert_array_equal(auto, images)


def test_competition_without_accepted_rules_says_where_to_accept(monkeypatch, no_kaggle_env):
    def refuse(handle, *a, **k):
        err = RuntimeError("403 Client Error.\n\nYou don't have permission to access resource at URL: ...")
        err.response = SimpleNamespace(status_code=403)
        raise err

    monkeypatch.setattr(kagglehub, "competition_download", refuse)
    with pytest.raises(DataError) as e:
        load_cifar10("train", layout="competition")
    msg = str(e.value)
    assert "\n" not in msg and "https://www.kaggle.com/competitions/cifar-10/rules" in msg and "403" in msg


@pytest.mark.parametrize("form", ["token", "legacy", "kaggle.json", "access_token"])
def test_download_errors_never_show_a_credential(form, monkeypatch, tmp_path, no_kaggle_env):
    secret = TOKEN if form in ("token", "access_token") else LEGACY_KEY
    config_dir = Path(os.environ["KAGGLE_CONFIG_DIR"])
    if form == "token":
        monkeypatch.setenv("KAGGLE_API_TOKEN", TOKEN)
    elif form == "legacy":
        monkeypatch.setenv("KAGGLE_USERNAME", "learner")
        monkeypatch.setenv("KAGGLE_KEY", LEGACY_KEY)
    elif form == "kaggle.json":
        config_dir.mkdir()
        (config_dir / "kaggle.json").write_text(json.dumps({"username": "learner", "key": LEGACY_KEY}))
    else:
        config_dir.mkdir()
        (config_dir / "access_token").write_text(TOKEN + "\n")

    def leak(handle, *a, **k):  # a library error that quotes the credential it sent
        raise RuntimeError(f"401 Unauthorized for Bearer {secret} while fetching {handle}")

    monkeypatch.setattr(kagglehub, "dataset_download", leak)
    with pytest.raises(DataError) as e:
        load_cifar10("train")
    msg = str(e.value)
    assert secret not in msg and secret[:8] not in msg and "***" in msg
    assert msg.index("KAGGLE_API_TOKEN") < msg.index("KAGGLE_USERNAME")  # the token first, the legacy pair second


def test_a_local_copy_named_by_the_environment_is_read_and_nothing_downloaded(monkeypatch, tmp_path, no_kaggle_env):
    WRITERS["batches"](tmp_path / "copy")
    monkeypatch.setenv(cifar10.LOCAL_CIFAR10_ENV, str(tmp_path / "copy"))
    monkeypatch.setattr(kagglehub, "dataset_download", lambda *a, **k: pytest.fail("downloaded"))
    assert load_cifar10("test").shape == (48, 32, 32, 3)
    assert load_cifar10("train").shape == (5 * 48, 32, 32, 3)


def setup_sh(home: Path, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KAGGLE_", "COLAB_"))}
    env = {**base, "HOME": str(home), "PYTHON": sys.executable, "NANODDPM_SKIP_INSTALL": "1", **env}
    return subprocess.run(["bash", str(ROOT / "colab_setup.sh")], capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.skipif(sys.platform == "win32", reason="bash script")
def test_colab_setup_saves_the_token_0600_for_subprocesses_without_printing_it(tmp_path):
    r = setup_sh(tmp_path, COLAB_RELEASE_TAG="test", KAGGLE_API_TOKEN=TOKEN)
    assert r.returncode == 0, r.stderr
    path = tmp_path / ".kaggle" / "access_token"
    assert path.read_text() == TOKEN and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not (tmp_path / ".kaggle" / "kaggle.json").exists()
    assert TOKEN not in r.stdout + r.stderr and "access_token" in r.stdout
    # kagglehub, in a fresh subprocess (as `!python -m nanoddpm_utils` is), finds it
    probe = (
        "from kagglehub.config import get_kaggle_credentials as g; c = g(); "
        "print('token' if c and c.api_key else 'none')"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env={**env, "HOME": str(tmp_path)}
    )
    assert out.stdout.strip() == "token", out.stderr


def test_a_training_run_holds_no_credential_in_any_file(tmp_path, monkeypatch, capfd):
    """A run with both credential forms set: nothing in its output, config.json, metrics or W&B's offline files."""
    from nanoddpm_utils import train
    from nanoddpm_utils.config import get_preset
    from nanoddpm_utils.data import load_digits
    from nanoddpm_utils.tracking import Tracker

    monkeypatch.setenv("KAGGLE_API_TOKEN", TOKEN)
    monkeypatch.setenv("KAGGLE_USERNAME", "learner")
    monkeypatch.setenv("KAGGLE_KEY", LEGACY_KEY)
    monkeypatch.setenv("WANDB_MODE", "offline")
    config = get_preset("smoke").replace(
        train={"steps": 5, "steps_per_call": 5, "log_every": 5, "ckpt_every": 5, "sample_every": 5}
    )
    run_dir = tmp_path / "run"
    with Tracker(run_dir, config.to_dict(), name="credentials") as tracker:
        train.fit(config, load_digits("train"), run_dir=run_dir, tracker=tracker)
    out, err = capfd.readouterr()
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert any(p.name == "config.json" for p in files) and any(p.name == "metrics.jsonl" for p in files)
    assert tracker.mode != "offline" or any("wandb" in p.parts for p in files)  # W&B's files are searched too
    written = out + err + "".join(p.read_bytes().decode("latin-1") for p in files)
    for secret in (TOKEN, LEGACY_KEY):
        assert secret not in written
