import io
import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nanoddpm_utils import checkpoint
from nanoddpm_utils.checkpoint import CheckpointError
from nanoddpm_utils.config import get_preset
from nanoddpm_utils.state import init_state
from nanoddpm_utils.train import fit

CONFIG = get_preset("smoke").replace(
    train={"steps": 10, "log_every": 5, "steps_per_call": 5, "ckpt_every": 5, "sample_every": 1000}
)


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


def test_keeps_last_k_and_skips_corrupt(tmp_path, capsys):
    state = init_state(CONFIG, 0)
    for s in range(1, 6):
        checkpoint.save(tmp_path, eqx.tree_at(lambda st: st.step, state, jnp.int32(s)), CONFIG, keep=3)
    names = [p.name for p in checkpoint.list_checkpoints(tmp_path)]
    assert names == ["step_00000003.eqx", "step_00000004.eqx", "step_00000005.eqx"]
    newest = tmp_path / "checkpoints" / "step_00000005.eqx"
    newest.write_bytes(newest.read_bytes()[:100])  # truncated
    restored, _ = checkpoint.restore(tmp_path)
    assert int(restored.step) == 4
    err = capsys.readouterr().err
    assert (
        err == "warning: skipping checkpoint step_00000005.eqx: its checksum does not match (truncated or "
        "corrupted); using step_00000004.eqx\n"
    )  # one line, no file:line prefix


def test_restore_a_given_file_verifies_it_and_names_the_cause(tmp_path):
    for step in (1, 2):
        checkpoint.save(tmp_path, at_step(step), CONFIG)
    first, second = checkpoint.list_checkpoints(tmp_path)
    assert int(checkpoint.restore(tmp_path, path=first)[0].step) == 1
    second.write_bytes(second.read_bytes()[:-7])  # damaged
    with pytest.raises(CheckpointError, match=r"step_00000002.eqx cannot be used: its checksum does not match"):
        checkpoint.restore(tmp_path, path=second)
    with pytest.raises(CheckpointError, match="cannot be used: it is not a file"):
        checkpoint.restore(tmp_path, path=tmp_path / "nothing.eqx")
    first.with_suffix(".json").unlink()
    with pytest.raises(CheckpointError, match="its checksum file is missing"):
        checkpoint.restore(tmp_path, path=first)


def test_read_leaves_refuses_leaves_left_over():
    big, small = init_state(CONFIG, 0), init_state(CONFIG, 0).model
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, big)
    with pytest.raises(ValueError):
        checkpoint.read_leaves(buf.getvalue(), small)
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, small)
    back = checkpoint.read_leaves(buf.getvalue(), small)
    for a, b in zip(leaves(small), leaves(back), strict=True):
        np.testing.assert_array_equal(a, b)


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


def at_step(step: int):
    return eqx.tree_at(lambda st: st.step, init_state(CONFIG, 0), jnp.int32(step))


def names(run):
    return [int(p.name[5:13]) for p in checkpoint.list_checkpoints(run)]


def test_keep_goes_by_what_was_written_not_by_name(tmp_path):
    """The audit's case: the newest checkpoint is corrupt, the run resumes from an older one and saves at a step
    below the corrupt one's with --keep 1. Deciding by name kept only the corrupt file."""
    for step in (5, 10):
        checkpoint.save(tmp_path, at_step(step), CONFIG, keep=3)
    newest = tmp_path / "checkpoints" / "step_00000010.eqx"
    newest.write_bytes(newest.read_bytes()[:-7])
    resumed, _ = checkpoint.restore(tmp_path)  # says on stderr that it skips step_00000010.eqx
    assert int(resumed.step) == 5
    checkpoint.save(tmp_path, at_step(7), CONFIG, keep=1)  # e.g. --ckpt-minutes fired at step 7
    assert names(tmp_path) == [5, 7]  # the one written and the one resumed from; the corrupt one is gone
    checkpoint.save(tmp_path, at_step(8), CONFIG, keep=1)
    assert names(tmp_path) == [5, 8]  # the resumed-from checkpoint stays for the whole run
    assert int(checkpoint.restore(tmp_path)[0].step) == 8


def test_keep_never_deletes_another_formats_checkpoint(tmp_path):
    checkpoint.save(tmp_path, at_step(3), CONFIG)
    meta = tmp_path / "checkpoints" / "step_00000003.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "format": 99}))
    for step in (4, 5, 6):
        checkpoint.save(tmp_path, at_step(step), CONFIG, keep=1)
    assert names(tmp_path) == [3, 6]


def test_nothing_is_deleted_when_the_new_checkpoint_does_not_read_back(tmp_path, monkeypatch):
    for step in (1, 2):
        checkpoint.save(tmp_path, at_step(step), CONFIG, keep=2)
    real = checkpoint._verify
    monkeypatch.setattr(checkpoint, "_verify", lambda p: "a bad disk" if p.name == "step_00000003.eqx" else real(p))
    with pytest.raises(CheckpointError, match=r"step_00000003.eqx, does not read back \(a bad disk\).*older .* kept"):
        checkpoint.save(tmp_path, at_step(3), CONFIG, keep=1)
    assert names(tmp_path) == [1, 2, 3]


def test_a_linked_checkpoints_folder_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "step_00000001.eqx").write_bytes(b"someone else's file")
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoints").symlink_to(elsewhere)
    for call in (lambda: checkpoint.save(run, at_step(2), CONFIG, keep=1), lambda: checkpoint.list_checkpoints(run)):
        with pytest.raises(CheckpointError, match="checkpoints is a symbolic link .*must be a real folder"):
            call()
    assert sorted(p.name for p in elsewhere.iterdir()) == ["step_00000001.eqx"]


def test_a_linked_run_folder_is_resolved(tmp_path):
    real = tmp_path / "real"
    link = tmp_path / "link"
    real.mkdir()
    link.symlink_to(real)
    for step in (1, 2):
        checkpoint.save(link, at_step(step), CONFIG, keep=1)
    assert names(real) == [2] and (real / "config.json").is_file()
    assert int(checkpoint.restore(link)[0].step) == 2
