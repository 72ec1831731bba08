import os

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("NANODDPM_SMOKE", "1")

import jax  # noqa: E402

# Catch silent broadcasting bugs: (n,) + (n, 1) must be written out, never implied.
jax.config.update("jax_numpy_rank_promotion", "raise")

# Tests build the same small models and steps again and again (new closures, same programs):
# a persistent compilation cache lets later tests reuse what earlier ones compiled.
_cache = os.path.join(os.path.dirname(__file__), "..", ".pytest_cache", "jax")
jax.config.update("jax_compilation_cache_dir", os.path.abspath(_cache))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
