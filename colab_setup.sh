#!/usr/bin/env bash
# Install this repository's package, nanoddpm_utils, into a Colab runtime (or any other Python).
#
#   bash colab_setup.sh            # run from anywhere; the notebooks' first cell does it for you on Colab
#
# Every package the runtime already holds (Colab's jax, jaxlib and libtpu or CUDA plugin, numpy, ipywidgets, ...)
# is pinned at its installed version (a pip constraints file), so pip installs only what is missing and can never
# upgrade, downgrade or reinstall what the runtime came with. Idempotent: a second run with the same
# pyproject.toml does nothing. tests/test_colab_replica.py runs it in a replica of Colab's preinstalled set.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-python3}"

# --- Kaggle credentials (Colab only) -------------------------------------------------------------------------
# On Colab, `!python -m nanoddpm_utils train --data cifar10` runs in a subprocess, where kagglehub cannot read
# the notebook's Secrets panel (google.colab.userdata answers only inside the notebook's own kernel): save the
# credentials where kagglehub looks for them. Kaggle's API token (KAGGLE_API_TOKEN, its current form) goes to
# ~/.kaggle/access_token; the legacy pair (KAGGLE_USERNAME and KAGGLE_KEY) to ~/.kaggle/kaggle.json. Each comes
# from the environment, else from Colab's Secrets. A file is created under umask 077 with mode 0600 (never
# readable by others, not even for an instant), and only if there is none yet. Secrets travel in the
# environment only (never on a command line) and are never printed.
write_kaggle_credentials() {
    local dir="${KAGGLE_CONFIG_DIR:-$HOME/.kaggle}"
    (umask 077 && timeout 20 "$PY" - "$dir" <<'PYEOF'
import json
import os
import sys


def secret(name):
    value, source = os.environ.get(name, ""), "the environment"
    if not value:
        try:
            from google.colab import userdata

            value, source = userdata.get(name), "Colab Secrets"
        except Exception:  # no such secret, no access granted, or not the notebook's kernel
            return "", ""
    return (value or "").strip(), source


def write_private(path, text, source):
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # O_EXCL: never overwrite one
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)  # whatever the umask said
    print(f"colab_setup.sh: wrote {path} (mode 600) from {source}")


token, source = secret("KAGGLE_API_TOKEN")
if token:
    write_private(os.path.join(sys.argv[1], "access_token"), token, source)
user, _ = secret("KAGGLE_USERNAME")
key, source = secret("KAGGLE_KEY")
if user and key:
    write_private(os.path.join(sys.argv[1], "kaggle.json"), json.dumps({"username": user, "key": key}), source)
PYEOF
    ) || echo "colab_setup.sh: could not save the Kaggle credentials in $dir; add them by hand (README: When things go wrong)" >&2
}

if [ -n "${COLAB_RELEASE_TAG:-}" ] || "$PY" -c "import google.colab" >/dev/null 2>&1; then
    write_kaggle_credentials
fi
[ "${NANODDPM_SKIP_INSTALL:-}" = 1 ] && exit 0  # the credentials step only (tests/test_colab_setup.py)

# Skip when this exact pyproject.toml is already installed from this clone by this Python.
stamp_dir="${XDG_CACHE_HOME:-$HOME/.cache}/nanoddpm"
stamp="$stamp_dir/setup-$(cat "$REPO_DIR/pyproject.toml" <(command -v "$PY") <(echo "$REPO_DIR") | sha1sum | cut -c1-16)"
if [ -f "$stamp" ] && (cd / && "$PY" -c "from importlib import metadata; metadata.version('nanoddpm_utils')") >/dev/null 2>&1; then
    exit 0
fi

# Pin every installed package at its version: "name==version" per line. This holds the accelerator stack
# ("jax", "jaxlib", "libtpu" or the CUDA plugin, built for the runtime's chip) and everything else Colab ships
# (an ipywidgets upgrade, for one, breaks Colab's widget display in a running kernel).
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
"$PY" - >"$constraints" <<'PYEOF'
from importlib import metadata

seen = set()
for dist in metadata.distributions():
    name = (dist.metadata["Name"] or "").lower().replace("_", "-")
    if name and name not in seen and name not in ("pip", "setuptools", "wheel", "nanoddpm-utils"):
        seen.add(name)
        print(f"{name}=={dist.version}")
PYEOF

if ! "$PY" -m pip install --quiet --disable-pip-version-check --no-input \
        --constraint "$constraints" --editable "$REPO_DIR"; then
    echo "colab_setup.sh: pip failed (its message is above) with the runtime's $(wc -l <"$constraints") installed packages held at their versions, among them:" >&2
    grep -E '^(jax|jaxlib|libtpu|numpy|ipywidgets)==' "$constraints" | sed 's/^/    /' >&2
    echo "  If pip reports a conflict with them, pyproject.toml needs a newer version than this runtime has:" >&2
    echo "  pick a newer runtime version (Runtime > Change runtime type) rather than replacing its packages by hand." >&2
    exit 1
fi

mkdir -p "$stamp_dir" && touch "$stamp"
kept="$(grep -E '^(jax|jaxlib|libtpu|numpy|ipywidgets)==' "$constraints" | paste -sd' ')"
echo "nanoddpm_utils installed from $REPO_DIR; the $(wc -l <"$constraints") packages already installed kept their versions${kept:+ ($kept, ...)}"
