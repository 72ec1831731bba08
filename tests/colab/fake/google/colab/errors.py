"""Colab's base error class (google.colab.errors.Error)."""


class Error(Exception):
    """Base class of google.colab's errors."""
