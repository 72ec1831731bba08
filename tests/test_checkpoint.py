import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nanoddpm_utils import checkpoint
from nanoddpm_utils.checkpoint import CheckpointError
from nanoddpm_utils.config import get_preset
from nanoddpm_utils.train import fit, init_state

CONFIG = get_preset("smoke").replace(train={"steps": 10, "log_every": 5, "steps_per_call": 5, "ckpt_every": 5,
                                            "sample_every": 1000})


@pytest.fixture(scope="module")
def data():
    return np.random.default_rng(0).integers(0, 256, (32, 8, 8, 1), dtype=np.uint8)


def leaves(state):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(eqx.filter(state, eqx.is_array))]


def test_round_trip(tmp_path):
    state = init_state(CONFIG, 0)
    checkpoint.save(tmp_path, state, CONFIG)
    restored, cfg = checkpoint.restore(tmp_path)
    assert cfg == CONFIG
    for a, b in zip(leaves(state), leaves(restored), strict=True):
        np.testing.assert_array_equal(a, b)


def test_resume_equals_straight_run(tmp_path, data):
    straight, _ = fit(CONFIG, data, progress=False)
    half, _ = fit(CONFIG, data, steps=5, run_dir=tmp_path, progress=False)
    state, cfg = checkpoint.restore(tmp_path)
    assert int(state.step) == 5
    resumed, _ = fit(cfg, data, state=state, progress=False)
    for a, b in zip(leaves(straight), leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)


def test_keeps_last_k_and_skips_corrupt(tmp_path):
    state = init_state(CONFIG, 0)
    for s in range(1, 6):
        checkpoint.save(tmp_path, eqx.tree_at(lambda st: st.step, state, jnp.int32(s)), CONFIG, keep=3)
    names = [p.name for p in checkpoint.list_checkpoints(tmp_path)]
    assert names == ["step_00000003.eqx", "step_00000004.eqx", "step_00000005.eqx"]
    newest = tmp_path / "checkpoints" / "step_00000005.eqx"
    newest.write_bytes(newest.read_bytes()[:100])  # truncated
    with pytest.warns(UserWarning, match="step_00000005.eqx: its checksum does not match"):
        restored, _ = checkpoint.restore(tmp_path)
    assert int(restored.step) == 4


def test_mismatched_config_and_missing(tmp_path):
    with pytest.raises(CheckpointError, match="not a run directory"):
        checkpoint.restore(tmp_path)
    checkpoint.save_config(tmp_path, CONFIG)
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        checkpoint.restore(tmp_path)
    checkpoint.save(tmp_path, init_state(CONFIG, 0), CONFIG)
    other = CONFIG.replace(model={"ch": 16})
    with pytest.raises(CheckpointError, match=r"trained with another model \(ch 8 there, 16 here\)"):
        checkpoint.restore(tmp_path, other)
    # a config.json edited to another model: the leaves no longer fit
    d = CONFIG.to_dict()
    d["model"]["ch"] = 16
    (tmp_path / "config.json").write_text(json.dumps(d))
    with pytest.raises(CheckpointError, match=r"does not fit the model of .*config.json \(.*model\.\w+.*changed shape"):
        checkpoint.restore(tmp_path)
