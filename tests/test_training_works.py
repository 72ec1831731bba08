"""Training works: a short digits run from scratch learns, as judged by the package's own digits judges.

Every "the model learned" check in the notebooks needs the full run; this one runs in CI (smoke mode or not)
in about a minute on 2 CPU cores: a smaller digits model (ch 16, T = 100) for 300 steps. Its loss must fall
well below its start, and its samples must score far closer to real digits than the same model's before
training, on the judges of ``evaluate.py`` (mean over 8 classifiers trained on real digits). An untrained
model, a loss that does not teach the noise, or a sampler that does not denoise fails these margins.
"""

import jax
import numpy as np

from nanoddpm_utils.config import get_preset
from nanoddpm_utils.data import load_digits
from nanoddpm_utils.evaluate import digits_quality_table
from nanoddpm_utils.images import to_uint8
from nanoddpm_utils.sample import sample_images
from nanoddpm_utils.state import init_state
from nanoddpm_utils.train import fit

CONFIG = get_preset("digits").replace(
    model={"ch": 16},
    diffusion={"num_timesteps": 100},
    train={"steps": 300, "lr": 2e-3, "warmup_steps": 50, "ema_decay": 0.98, "log_every": 25, "steps_per_call": 25},
)
NUM = 200


def quality(model) -> dict:
    images = to_uint8(sample_images(CONFIG, model, jax.random.key(1), NUM))
    return digits_quality_table(images)


def test_a_short_digits_run_learns():
    start = init_state(CONFIG, jax.random.key(0))
    before = quality(start.ema)  # first: fit donates the state it is given
    state, history = fit(CONFIG, load_digits("train"), state=start, progress=False)
    after = quality(state.ema)
    losses = [row["loss"] for row in history]
    print("loss", np.round(losses, 3))
    print(
        {
            name: {k: round(v, 3) for k, v in table["samples"].items()}
            for name, table in (("before", before), ("after", after))
        },
        "real",
        after["real (held out)"]["frechet"],
        "noise",
        after["noise"]["frechet"],
    )
    assert len(losses) == CONFIG.train.steps // CONFIG.train.log_every
    # L_simple of a fresh model is about 1 (it predicts noise of variance 1 poorly); learning halves it and more
    assert np.mean(losses[-2:]) < 0.5 * losses[0], losses
    s0, s1, real, noise = before["samples"], after["samples"], after["real (held out)"], after["noise"]
    # the judges' Frechet distance: the untrained model's samples sit near uniform noise, trained ones near real digits
    assert s0["frechet"] > 0.5 * noise["frechet"], (s0, noise)
    assert s1["frechet"] < 0.15 * s0["frechet"] and s1["frechet"] < 10 * real["frechet"], (s1, s0, real)
    # every digit drawn, in shares not far from even (log 10 = 2.30 nats when all ten are equally common)
    assert s1["classes_present"] == 10 and s1["coverage_entropy"] > 2.0, s1
