"""Data parallelism (parallel.py), mixed precision and the step's hygiene: donation, no host
transfers, one compilation per shape."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nanoddpm_utils import checkpoint
from nanoddpm_utils.config import get_preset
from nanoddpm_utils.data import get_batch, load_digits
from nanoddpm_utils.parallel import check_batch_size, make_mesh, put_dataset, replicate
from nanoddpm_utils.state import init_state
from nanoddpm_utils.train import batch_loss, fit, make_train_step, schedule_for

HERE = Path(__file__).parent
SMOKE = get_preset("smoke")


@pytest.fixture(scope="module")
def data():
    return load_digits("train")[:256]


def inexact_leaves(model):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))]


# --------------------------------------------------------------------------- 8 simulated devices
@pytest.fixture(scope="module")
def eight(tmp_path_factory):
    out = tmp_path_factory.mktemp("eight")
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    r = subprocess.run(
        [sys.executable, str(HERE / "eight_devices.py"), str(out)], env=env, capture_output=True, text=True, timeout=900
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def test_one_step_on_8_devices_equals_1_device(eight):
    r = np.load(eight / "step.npz")
    n = sum(1 for k in r.files if k.startswith("p8_"))
    assert n > 10
    np.testing.assert_allclose(r["loss8"], r["loss1"], rtol=1e-5)
    for i in range(n):
        np.testing.assert_allclose(r[f"p8_{i}"], r[f"p1_{i}"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(r["samples8"], r["samples1"], rtol=1e-4, atol=1e-5)
    # the step really is data parallel: the gradients are averaged across devices by an all-reduce
    assert "all-reduce" in (eight / "hlo.txt").read_text()


def test_checkpoint_from_8_devices_restores_on_1(eight, data):
    assert jax.device_count() == 1
    s8, c8 = checkpoint.restore(eight / "run8")
    s1, c1 = checkpoint.restore(eight / "run1")
    assert int(s8.step) == int(s1.step) == 6 and c8 == c1
    for a, b in zip(inexact_leaves(s8.model), inexact_leaves(s1.model)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for a, b in zip(inexact_leaves(s8.ema), inexact_leaves(s1.ema)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    state, metrics = make_train_step(c8)(jnp.asarray(data), s8)  # and it trains on here
    assert int(state.step) == 7 and np.isfinite(float(metrics["loss"]))


def test_batch_size_must_split_over_devices():
    mesh = make_mesh(1)
    check_batch_size(7, mesh)  # anything splits over one device

    class Eight:  # the check reads only the mesh's size
        size = 8

    with pytest.raises(ValueError, match=r"batch size 12 does not split evenly over 8 devices.*8 or 16"):
        check_batch_size(12, Eight())
    with pytest.raises(ValueError, match="this machine has 1"):
        make_mesh(2)


# --------------------------------------------------------------------------- the step's hygiene
def test_step_needs_no_host_transfer_and_has_no_callbacks(data):
    mesh = make_mesh()
    step = make_train_step(SMOKE, mesh=mesh)
    d, state = put_dataset(data, mesh), replicate(init_state(SMOKE, 0), mesh)
    state, _ = step(d, state)
    with jax.transfer_guard("disallow"):  # any implicit host<->device copy raises
        state, metrics = step(d, state)
    assert int(state.step) == 2
    jaxpr = str(eqx.filter_make_jaxpr(lambda d, s: step(d, s))(d, state)[0])
    assert "callback" not in jaxpr and "debug" not in jaxpr


class _Compiles(logging.Handler):
    def __init__(self):
        super().__init__()
        self.names = []

    def emit(self, record):
        msg = record.getMessage()
        if msg.startswith("Compiling "):
            self.names.append(msg.split()[1])


def test_fit_compiles_each_function_once(data, tmp_path):
    config = SMOKE.replace(train={"steps": 22, "sample_every": 10, "ckpt_every": 10})  # K = 5: 4 scans, 2 singles
    # a test that ran earlier in this process may have compiled the module-level sampler for the same shapes;
    # start from an empty in-memory cache so every compile fit needs is seen here
    jax.clear_caches()
    handler = _Compiles()
    logger = logging.getLogger("jax")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        with jax.log_compiles(True):
            state, _ = fit(config, data, run_dir=tmp_path, progress=False)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert int(state.step) == 22
    counts = {name: handler.names.count(name) for name in set(handler.names)}
    # fit runs a scan of K steps plus single steps for the remainder; the grids (at 10, 20 and 22) are DDIM
    for fn in ("train_steps", "train_step", "ddim_sample_loop"):
        hits = [n for n in counts if n == f"jit({fn})"]
        assert hits, f"{fn} was never compiled? saw {sorted(counts)}"
        assert counts[hits[0]] == 1, f"{fn} compiled {counts[hits[0]]} times: {counts}"


# --------------------------------------------------------------------------- mixed precision
def test_bfloat16_loss_and_gradient_stay_close_to_float32(data):
    key = jax.random.key(3)
    model = init_state(SMOKE, 0).model
    # the output conv starts at zero (each block starts as the identity), which would make eps = 0 in
    # any dtype: give it weights so the comparison means something
    w = model.conv_out.weight
    model = eqx.tree_at(lambda m: m.conv_out.weight, model, 0.2 * jax.random.normal(key, w.shape))
    x0 = get_batch(jax.random.key(1), jnp.asarray(data), 64, False)
    schedule = schedule_for(SMOKE)

    def loss_and_grad(dtype):
        loss, g = eqx.filter_value_and_grad(batch_loss)(model, schedule, x0, key, dtype)
        return float(loss), jnp.concatenate([x.ravel() for x in jax.tree_util.tree_leaves(g)])

    l32, g32 = loss_and_grad(jnp.float32)
    l16, g16 = loss_and_grad(jnp.bfloat16)
    noise_only = float(
        batch_loss(eqx.tree_at(lambda m: m.conv_out.weight, model, jnp.zeros_like(w)), schedule, x0, key)
    )
    assert abs(l32 - noise_only) > 0.1, "the model's output must matter for this test"
    assert abs(l16 - l32) <= 0.01 * l32, (l16, l32)  # stated tolerance: 1% of the loss
    cos = float(g16 @ g32 / (jnp.linalg.norm(g16) * jnp.linalg.norm(g32)))
    assert cos > 0.99, cos
    assert g16.dtype == jnp.float32  # gradients (and so Adam's state) stay float32
    jaxpr = str(jax.make_jaxpr(lambda x: batch_loss(model, schedule, x, key, jnp.bfloat16))(x0))
    assert "bf16" in jaxpr  # the UNet really ran in bfloat16


def test_compute_dtype_is_validated():
    with pytest.raises(ValueError, match="unknown compute_dtype 'float16'"):
        SMOKE.replace(train={"compute_dtype": "float16"})
