"""A replica of ``google.colab`` for the tests: ``drive.mount``, ``userdata.get`` and ``output``.

``google`` stays a namespace package (no ``__init__.py``), so protobuf's ``google.protobuf`` still imports.
Put ``tests/colab/fake`` first on PYTHONPATH and set:
- ``FAKE_COLAB_DRIVE``: a folder that plays "My Drive"; it outlives the notebook runs of a test, as Drive
  outlives a Colab runtime;
- ``FAKE_COLAB_SECRETS``: a JSON file ``{"secrets": {name: value}, "no_access": [name, ...]}``, the Secrets panel.
"""

from . import drive, output, userdata  # noqa: F401
