"""Data parallelism with JAX's own SPMD (``jax.sharding``): one mesh axis, ``"data"``.

The recipe, the same on one device (a laptop, Colab's v5e-1), eight (a TPU v3-8) or a pod:

- a 1-D mesh over the devices (``make_mesh``), with ``AxisType.Auto`` so XLA propagates
  shardings itself (JAX >= 0.8 defaults to ``Explicit`` axes);
- model, EMA, optimizer state and the uint8 dataset *replicated* on every device
  (``replicate``, ``put_dataset``);
- each step draws its global batch on device and constrains it to be *split* along
  ``"data"`` (``shard_batch``): every device runs the UNet on its slice, and XLA inserts
  the all-reduce that averages the gradients. No pmap, no hand-written collectives.

On a pod slice, call ``initialize_distributed()`` first (``train --distributed``): every host
runs the same program on the same replicated dataset, and each device gathers its own rows
of the batch, so no host ever feeds another's devices. Checkpoints are written by process 0
from the local replica (``to_host``), and restore on any number of devices.
"""

from __future__ import annotations

import equinox as eqx
import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def initialize_distributed() -> None:
    """``jax.distributed.initialize()`` for a multi-host run (a TPU pod slice, a GPU cluster).

    Call it once, before anything touches a device. On a single machine it is not needed.
    """
    jax.distributed.initialize()


def make_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D mesh named ``"data"`` over all devices, or over the first ``num_devices`` of this host."""
    devices = jax.devices()
    n = len(devices) if num_devices is None else num_devices
    if not isinstance(n, int) or not 1 <= n <= len(devices):
        raise ValueError(
            f"asked for {num_devices} devices, but this machine has {len(devices)} "
            f"({devices[0].platform}); pass a number from 1 to {len(devices)}, or none for all"
        )
    if n < len(devices) and jax.process_count() > 1:
        raise ValueError("a multi-host run uses every device; drop the device limit")
    return jax.make_mesh((n,), (DATA_AXIS,), (AxisType.Auto,), devices=devices[:n])


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """The leading (batch) axis split over ``"data"``; the rest whole."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    """A global batch must split evenly over the devices."""
    n = mesh.size
    if batch_size % n:
        lower, upper = batch_size // n * n, -(-batch_size // n) * n
        hint = f"{lower} or {upper}" if lower else f"{upper}"
        raise ValueError(
            f"batch size {batch_size} does not split evenly over {n} devices; use a multiple of "
            f"{n} (e.g. {hint}) or fewer devices (--devices)"
        )


def replicate(tree, mesh: Mesh):
    """Place every array of ``tree`` (a model, a TrainState) on every device of ``mesh`` (outside jit)."""
    arrays, static = eqx.partition(tree, eqx.is_array)
    return eqx.combine(jax.device_put(arrays, replicated(mesh)), static)


def put_dataset(data: np.ndarray, mesh: Mesh) -> jax.Array:
    """The whole uint8 dataset on every device; on a pod each host passes its own full copy."""
    return jax.make_array_from_process_local_data(replicated(mesh), np.asarray(data))


def shard_batch(x: jax.Array, mesh: Mesh | None) -> jax.Array:
    """Inside jit: split the batch ``x`` over the devices (a no-op without a mesh)."""
    return x if mesh is None else jax.lax.with_sharding_constraint(x, batch_sharded(mesh))


def to_host(tree):
    """Every array of ``tree`` as NumPy, read from this process's replica (for checkpoints and logs)."""

    def get(x):
        if isinstance(x, jax.Array):
            return np.asarray(x.addressable_data(0) if x.is_fully_replicated else x)
        return x

    return jax.tree_util.tree_map(get, tree)
