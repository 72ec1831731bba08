"""The command line, ``python -m nanoddpm_utils train|sample|eval``, in four short modules read top to bottom:
``parsing`` (the flags; imports no jax, so ``--help`` is instant), ``errors`` (one line and an exit code for every
failure), ``paths`` (the user's paths, checked before any work) and ``commands`` (the three commands).
"""
