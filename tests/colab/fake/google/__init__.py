"""A replica of the parts of Colab's ``google`` namespace the course uses (tests only; see tests/colab/README)."""
