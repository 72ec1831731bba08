import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nanoddpm_utils import train
from nanoddpm_utils.config import get_preset
from nanoddpm_utils.data import get_batch
from nanoddpm_utils.state import init_state, learning_rate
from nanoddpm_utils.train import (
    GRID_DDIM_STEPS,
    batch_loss,
    check_data,
    drop_labels,
    ema_update,
    fit,
    make_train_step,
    make_train_steps,
    schedule_for,
)

CONFIG = get_preset("smoke").replace(train={"warmup_steps": 0, "lr": 1e-3, "ema_decay": 0.8})


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return jnp.asarray(rng.integers(0, 256, (32, 8, 8, 1), dtype=np.uint8))


def params_of(model):
    return jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))


def copy_state(state):
    return jax.tree_util.tree_map(lambda x: jnp.copy(x) if eqx.is_array(x) else x, state)


def test_one_step_lowers_the_loss_on_its_batch(data):
    schedule = schedule_for(CONFIG)
    state = init_state(CONFIG, 0)
    # the keys the step will use (see _train_step)
    _, k_batch, k_loss = jax.random.split(jax.random.wrap_key_data(state.key), 3)
    x0 = get_batch(k_batch, data, CONFIG.train.batch_size, CONFIG.train.random_flip)
    before = float(batch_loss(state.model, schedule, x0, k_loss))
    new, metrics = make_train_step(CONFIG)(data, copy_state(state))
    assert float(metrics["loss"]) == pytest.approx(before, rel=1e-5)
    after = float(batch_loss(new.model, schedule, x0, k_loss))
    assert after < before
    assert int(new.step) == 1


def test_scan_of_k_steps_equals_k_single_steps(data):
    K = 4
    state = init_state(CONFIG, 1)
    single = make_train_step(CONFIG)
    a, losses = copy_state(state), []
    for _ in range(K):
        a, m = single(data, a)
        losses.append(float(m["loss"]))
    b, mb = make_train_steps(CONFIG, K)(data, copy_state(state))
    np.testing.assert_allclose(np.asarray(mb["loss"]), losses, rtol=1e-5)
    for pa, pb in zip(params_of(a.model) + params_of(a.ema), params_of(b.model) + params_of(b.ema)):
        np.testing.assert_allclose(pa, pb, rtol=1e-5, atol=1e-6)
    assert int(b.step) == K
    np.testing.assert_array_equal(a.key, b.key)


def test_ema_equals_its_closed_form(data):
    d = CONFIG.train.ema_decay
    state = init_state(CONFIG, 2)
    p = [[jnp.copy(x) for x in params_of(state.model)]]
    step = make_train_step(CONFIG)
    for _ in range(3):
        state, _ = step(data, state)
        p.append([jnp.copy(x) for x in params_of(state.model)])
    n = 3
    # ema_n = d^n p_0 + (1 - d) sum_{k=1..n} d^(n-k) p_k   (the EMA starts as a copy of p_0)
    for i, e in enumerate(params_of(state.ema)):
        expected = d**n * p[0][i] + sum((1 - d) * d ** (n - k) * p[k][i] for k in range(1, n + 1))
        np.testing.assert_allclose(e, expected, rtol=1e-5, atol=1e-6)


def test_ema_update_formula():
    m = init_state(CONFIG, 3).model
    zero = jax.tree_util.tree_map(lambda x: jnp.zeros_like(x) if eqx.is_inexact_array(x) else x, m)
    out = ema_update(zero, m, 0.25)
    for o, x in zip(params_of(out), params_of(m)):
        np.testing.assert_allclose(o, 0.75 * x, rtol=1e-6)


def test_state_is_donated(data):
    state = init_state(CONFIG, 4)
    w = state.model.conv_in.weight
    make_train_step(CONFIG)(data, state)
    assert w.is_deleted()  # the old buffers were reused for the new state


def test_same_seed_same_losses(data):
    cfg = CONFIG.replace(train={"steps": 10, "log_every": 5, "steps_per_call": 5})
    _, h1 = fit(cfg, np.asarray(data), progress=False)
    _, h2 = fit(cfg, np.asarray(data), progress=False)
    assert [r["loss"] for r in h1] == [r["loss"] for r in h2]
    assert [r["step"] for r in h1] == [5, 10]
    _, h3 = fit(cfg.replace(train={"seed": 1}), np.asarray(data), progress=False)
    assert [r["loss"] for r in h3] != [r["loss"] for r in h1]


def test_fit_runs_remainder_steps_and_rejects_negative(data):
    cfg = CONFIG.replace(train={"steps": 7, "log_every": 5, "steps_per_call": 5})
    state, hist = fit(cfg, np.asarray(data), progress=False)
    assert int(state.step) == 7 and [r["step"] for r in hist] == [5, 7]
    assert all(np.isfinite(r["loss"]) and r["images_per_sec"] > 0 for r in hist)
    with pytest.raises(ValueError, match="steps must be >= 0"):
        fit(cfg, np.asarray(data), steps=-1, progress=False)


def test_learning_rate_matches_optax_warmup_schedule():
    """Our warmup-then-constant rate (used by the optimizer and logged) against optax's own linear schedule."""
    c = get_preset("digits").replace(train={"warmup_steps": 200, "steps": 3000})
    ref = optax.linear_schedule(0.0, c.train.lr, c.train.warmup_steps)
    for step in (0, 1, 100, 200, 201, 1500, 2999, 3000, 3500):
        np.testing.assert_allclose(float(learning_rate(c, jnp.int32(step))), float(ref(step)), rtol=1e-5, atol=1e-9)


def test_grids_during_training_use_few_ddim_steps(data, tmp_path, monkeypatch):
    calls = []
    real = train.sample_images

    def recorder(config, model, key, num, **kw):
        calls.append(kw)
        return real(config, model, key, num, **kw)

    monkeypatch.setattr(train, "sample_images", recorder)
    cfg = CONFIG.replace(train={"steps": 10, "log_every": 5, "steps_per_call": 5, "sample_every": 10})
    fit(cfg, np.asarray(data), run_dir=tmp_path, progress=False)
    T = cfg.diffusion.num_timesteps
    assert [(c["sampler"], c["steps"]) for c in calls] == [("ddim", min(GRID_DDIM_STEPS, T))]
    assert (tmp_path / "samples" / "step_00000010.png").exists()


# --------------------------------------------------------------------------- labels (class-conditional runs)
COND = get_preset("smoke").replace(model={"num_classes": 10})


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 1.0])
def test_drop_labels_rate(p):
    n = 200_000
    labels = jnp.asarray(np.arange(n) % 10, jnp.int32)
    out = np.asarray(drop_labels(jax.random.key(0), labels, p, 10))
    dropped = out == 10
    se = np.sqrt(p * (1 - p) / n)
    assert abs(dropped.mean() - p) <= 5 * se + 1e-12
    np.testing.assert_array_equal(out[~dropped], np.asarray(labels)[~dropped])  # the rest kept as they were


def test_check_data():
    images = np.zeros((4, 8, 8, 1), np.uint8)
    check_data(get_preset("smoke"), images)
    check_data(COND, (images, np.array([0, 9, 3, 3])))
    with pytest.raises(ValueError, match="unconditional"):
        check_data(get_preset("smoke"), (images, np.zeros(4, int)))
    with pytest.raises(ValueError, match="needs \\(images, labels\\)"):
        check_data(COND, images)
    with pytest.raises(ValueError, match="0 .. 9"):
        check_data(COND, (images, np.array([0, 10, 3, 3])))
