"""compute_dtype="auto" picks bfloat16 only where the device multiplies it natively (devices faked by kind)."""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import pytest

from nanoddpm_utils.train import has_bfloat16_units, resolve_compute_dtype


def device(platform, capability=None, kind=""):
    d = SimpleNamespace(platform=platform, device_kind=kind)
    if capability is not None:
        d.compute_capability = capability
    return d


@pytest.mark.parametrize(
    "dev, want",
    [
        (device("tpu", kind="TPU v5 lite"), jnp.bfloat16),
        (device("tpu", kind="TPU v3"), jnp.bfloat16),
        (device("gpu", "8.0", "NVIDIA A100-SXM4-40GB"), jnp.bfloat16),
        (device("gpu", "8.9", "NVIDIA L4"), jnp.bfloat16),
        (device("gpu", "9.0", "NVIDIA H100 80GB HBM3"), jnp.bfloat16),
        (device("cuda", "12.0", "NVIDIA RTX PRO 6000"), jnp.bfloat16),
        (device("gpu", "7.5", "Tesla T4"), jnp.float32),  # Colab's free GPU: no bfloat16 units
        (device("gpu", "7.0", "Tesla V100-SXM2-16GB"), jnp.float32),
        (device("gpu", None, "AMD Instinct MI250"), jnp.float32),  # capability unknown: float32 is always correct
        (device("cpu", kind="cpu"), jnp.float32),
    ],
)
def test_auto_follows_the_device_capability(dev, want):
    assert resolve_compute_dtype("auto", dev) == want
    assert has_bfloat16_units(dev) == (want == jnp.bfloat16)


def test_explicit_dtypes_are_kept_whatever_the_device():
    t4 = device("gpu", "7.5", "Tesla T4")
    assert resolve_compute_dtype("bfloat16", t4) == jnp.bfloat16
    assert resolve_compute_dtype("float32", device("tpu")) == jnp.float32


def test_auto_on_this_machine_uses_the_first_device():
    assert resolve_compute_dtype("auto") == resolve_compute_dtype("auto", jax.devices()[0])
