"""nanoddpm_utils: denoising diffusion (Ho et al. 2020) from scratch in JAX and Equinox."""

__version__ = "0.1.0"
