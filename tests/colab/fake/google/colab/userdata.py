"""``google.colab.userdata`` as Colab answers it: the Secrets panel, with Colab's errors.

On Colab a secret reaches only the notebook's own kernel (the request goes through the front end); a
subprocess such as ``!python -m ...`` gets no answer. The replica answers inside an IPython kernel only and
raises ``TimeoutException`` elsewhere.
"""

import json
import os
import sys

from .errors import Error


class NotebookAccessError(Exception):
    """The secret exists but this notebook was not granted access to it."""

    def __init__(self, key):
        super().__init__(f"Notebook does not have access to secret {key}")


class SecretNotFoundError(Error):
    """No secret of that name in the Secrets panel."""

    def __init__(self, key):
        super().__init__(f"Secret {key} does not exist.")


class TimeoutException(Error):
    """The front end did not answer (as in a subprocess of the kernel)."""

    def __init__(self, key):
        super().__init__(
            f"Requesting secret {key} timed out. Secrets can only be fetched when running from the Colab UI."
        )


def _in_kernel() -> bool:
    return "ipykernel" in sys.modules


def get(key):
    if not _in_kernel():
        raise TimeoutException(key)
    path = os.environ.get("FAKE_COLAB_SECRETS")
    store = json.loads(open(path).read()) if path and os.path.exists(path) else {}
    if key not in store.get("secrets", {}):
        raise SecretNotFoundError(key)
    if key in store.get("no_access", []):
        raise NotebookAccessError(key)
    return store["secrets"][key]
