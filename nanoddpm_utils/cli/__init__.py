"""The command line, ``python -m nanoddpm_utils train|sample|eval``, read top to bottom: ``parsing`` (the flags; no
jax), ``errors`` (one line and an exit code per failure), ``paths`` (checked before any work), ``commands``."""
