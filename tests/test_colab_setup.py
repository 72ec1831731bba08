"""colab_setup.sh's credentials step: on Colab it writes ~/.kaggle/kaggle.json (mode 0600) and never prints the key.

NANODDPM_SKIP_INSTALL=1 stops the script after that step (no pip); COLAB_RELEASE_TAG, which Colab sets,
makes it behave as on Colab.
"""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KEY = "kaggleFAKEkey-0123456789abcdef"


def setup_sh(home: Path, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KAGGLE_", "COLAB_"))}
    env = {**base, "HOME": str(home), "PYTHON": sys.executable, "NANODDPM_SKIP_INSTALL": "1", **env}
    return subprocess.run(["bash", str(ROOT / "colab_setup.sh")], capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.skipif(sys.platform == "win32", reason="bash script")
def test_writes_kaggle_json_0600_on_colab_without_printing_the_key(tmp_path):
    r = setup_sh(tmp_path, COLAB_RELEASE_TAG="test", KAGGLE_USERNAME="someone", KAGGLE_KEY=KEY)
    assert r.returncode == 0, r.stderr
    path = tmp_path / ".kaggle" / "kaggle.json"
    assert json.loads(path.read_text()) == {"username": "someone", "key": KEY}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert KEY not in r.stdout + r.stderr and "kaggle.json" in r.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="bash script")
def test_keeps_an_existing_kaggle_json(tmp_path):
    path = tmp_path / ".kaggle" / "kaggle.json"
    path.parent.mkdir()
    path.write_text('{"username": "mine", "key": "my-own-key"}')
    r = setup_sh(tmp_path, COLAB_RELEASE_TAG="test", KAGGLE_USERNAME="someone", KAGGLE_KEY=KEY)
    assert r.returncode == 0, r.stderr
    assert path.read_text() == '{"username": "mine", "key": "my-own-key"}'
    assert KEY not in r.stdout + r.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="bash script")
def test_writes_nothing_off_colab_or_without_credentials(tmp_path):
    r = setup_sh(tmp_path, KAGGLE_USERNAME="someone", KAGGLE_KEY=KEY)  # not on Colab: env vars are enough there
    assert r.returncode == 0, r.stderr
    r2 = setup_sh(tmp_path, COLAB_RELEASE_TAG="test")  # on Colab, no credentials anywhere
    assert r2.returncode == 0, r2.stderr
    assert not (tmp_path / ".kaggle").exists()
    assert KEY not in r.stdout + r.stderr


def test_still_pins_the_preinstalled_accelerator_stack():
    script = (ROOT / "colab_setup.sh").read_text()
    for name in ("jax", "jaxlib", "libtpu"):
        assert f'"{name}"' in script
    assert "--constraint" in script
