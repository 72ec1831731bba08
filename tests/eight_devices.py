"""Run by tests/test_parallel.py in a subprocess with 8 simulated CPU devices (XLA_FLAGS set by the test).

    python tests/eight_devices.py OUT_DIR

Writes OUT_DIR/step.npz (parameters after one step on a mesh of 8 and of 1 device, same global
batch), OUT_DIR/hlo.txt (the 8-device step's compiled program) and two run directories
trained by ``fit`` on 8 and on 1 device, for the parent process to restore on its single device.
"""

import sys
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

from nanoddpm_utils.config import get_preset
from nanoddpm_utils.data import load_digits
from nanoddpm_utils.parallel import batch_sharded, make_mesh, put_dataset, replicate
from nanoddpm_utils.sample import sample_images
from nanoddpm_utils.state import init_state
from nanoddpm_utils.train import fit, make_train_step

CONFIG = get_preset("smoke").replace(
    train={
        "batch_size": 16,
        "warmup_steps": 0,
        "steps": 6,
        "steps_per_call": 3,
        "log_every": 3,
        "sample_every": 1000,
        "ckpt_every": 3,
    }
)


def params(state):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(eqx.filter(state.model, eqx.is_inexact_array))]


def main(out: Path) -> None:
    assert jax.device_count() == 8, f"expected 8 simulated devices, got {jax.device_count()}"
    data = load_digits("train")[:256]
    results = {}
    for n in (8, 1):
        mesh = make_mesh(n)
        step = make_train_step(CONFIG, mesh=mesh)
        state, data_on_mesh = replicate(init_state(CONFIG, 0), mesh), put_dataset(data, mesh)
        if n == 8:
            arrays, static = eqx.partition(state, eqx.is_array)
            combined = jax.jit(lambda d, a: step(d, eqx.combine(a, static)))  # noqa: B023 (used at once)
            hlo = combined.lower(data_on_mesh, arrays).compile().as_text()
            (out / "hlo.txt").write_text(hlo)
        state, metrics = step(data_on_mesh, state)
        leaf = jax.tree_util.tree_leaves(eqx.filter(state.model, eqx.is_inexact_array))[0]
        assert len(leaf.sharding.device_set) == n and leaf.sharding.is_fully_replicated
        results[f"loss{n}"] = np.asarray(metrics["loss"])
        for i, p in enumerate(params(state)):
            results[f"p{n}_{i}"] = p
    for n in (8, 1):  # sampling: the images split over the devices, the same images as on one
        mesh = make_mesh(n)
        images = sample_images(
            CONFIG, replicate(state.ema, mesh), jax.random.key(5), 16, sampler="ddim", steps=5, mesh=mesh
        )
        assert images.sharding.is_equivalent_to(batch_sharded(mesh), images.ndim), images.sharding
        results[f"samples{n}"] = np.asarray(images)
    np.savez(out / "step.npz", **results)
    for n in (8, 1):
        fit(CONFIG, data, run_dir=out / f"run{n}", devices=n, progress=False)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
