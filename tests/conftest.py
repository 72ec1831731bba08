import os

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("NANODDPM_SMOKE", "1")

import jax  # noqa: E402

# Catch silent broadcasting bugs: (n,) + (n, 1) must be written out, never implied.
jax.config.update("jax_numpy_rank_promotion", "raise")
