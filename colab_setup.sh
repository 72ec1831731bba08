#!/usr/bin/env bash
# Install this repository's package, nanoddpm_utils, into a Colab runtime (or any other Python).
#
#   bash colab_setup.sh            # run from anywhere; the notebooks' first cell does it for you on Colab
#
# Colab's jax, jaxlib and libtpu (or CUDA plugin) are built for its accelerator: they are pinned at the
# versions already installed (a pip constraints file), so pip installs only what is missing and can never
# upgrade, downgrade or reinstall them. Idempotent: a second run with the same pyproject.toml does nothing.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-python3}"

# --- Kaggle credentials (Colab only) -------------------------------------------------------------------------
# On Colab, `!python -m nanoddpm_utils train --data cifar10` runs in a subprocess, where kagglehub cannot read
# the notebook's Secrets panel: save the credentials as ~/.kaggle/kaggle.json for it. They come from
# KAGGLE_USERNAME and KAGGLE_KEY in the environment, else from Colab's Secrets (google.colab.userdata, which
# answers only inside the notebook's own kernel). The file is created under umask 077 with mode 0600 (never
# readable by others, not even for an instant), and only if there is none yet. The key travels in the
# environment only (never on a command line) and is never printed.
write_kaggle_json() {
    local dir="${KAGGLE_CONFIG_DIR:-$HOME/.kaggle}"
    [ -e "$dir/kaggle.json" ] && return 0
    (umask 077 && timeout 20 "$PY" - "$dir" <<'PYEOF'
import json
import os
import sys

user, key, source = os.environ.get("KAGGLE_USERNAME", ""), os.environ.get("KAGGLE_KEY", ""), "the environment"
if not (user and key):
    try:
        from google.colab import userdata

        user, key, source = userdata.get("KAGGLE_USERNAME"), userdata.get("KAGGLE_KEY"), "Colab Secrets"
    except Exception:  # no such secrets, no access granted, or not the notebook's kernel
        sys.exit(0)
user, key = (user or "").strip(), (key or "").strip()
if not (user and key):
    sys.exit(0)
os.makedirs(sys.argv[1], mode=0o700, exist_ok=True)
path = os.path.join(sys.argv[1], "kaggle.json")
try:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # O_EXCL: never overwrite one
except FileExistsError:
    sys.exit(0)
with os.fdopen(fd, "w") as f:
    json.dump({"username": user, "key": key}, f)
os.chmod(path, 0o600)  # whatever the umask said
print(f"colab_setup.sh: wrote {path} (mode 600) from {source}")
PYEOF
    ) || echo "colab_setup.sh: could not write $dir/kaggle.json; add it by hand (README: When things go wrong)" >&2
}

if [ -n "${COLAB_RELEASE_TAG:-}" ] || "$PY" -c "import google.colab" >/dev/null 2>&1; then
    write_kaggle_json
fi
[ "${NANODDPM_SKIP_INSTALL:-}" = 1 ] && exit 0  # the credentials step only (tests/test_colab_setup.py)

# Skip when this exact pyproject.toml is already installed from this clone by this Python.
stamp_dir="${XDG_CACHE_HOME:-$HOME/.cache}/nanoddpm"
stamp="$stamp_dir/setup-$(cat "$REPO_DIR/pyproject.toml" <(command -v "$PY") <(echo "$REPO_DIR") | sha1sum | cut -c1-16)"
if [ -f "$stamp" ] && (cd / && "$PY" -c "from importlib import metadata; metadata.version('nanoddpm_utils')") >/dev/null 2>&1; then
    exit 0
fi

# Pin the preinstalled accelerator stack: "name==version" for each of these that is installed.
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
"$PY" - >"$constraints" <<'EOF'
from importlib import metadata

for name in ("jax", "jaxlib", "libtpu", "libtpu-nightly",
             "jax-cuda12-plugin", "jax-cuda12-pjrt", "jax-cuda13-plugin", "jax-cuda13-pjrt"):
    try:
        print(f"{name}=={metadata.version(name)}")
    except metadata.PackageNotFoundError:
        pass
EOF

if ! "$PY" -m pip install --quiet --disable-pip-version-check --no-input \
        --constraint "$constraints" --editable "$REPO_DIR"; then
    echo "colab_setup.sh: pip failed (its message is above). These preinstalled packages were held fixed:" >&2
    sed 's/^/    /' "$constraints" >&2
    echo "  If pip reports a conflict with them, pyproject.toml needs a newer jax than this runtime has:" >&2
    echo "  pick a newer runtime version (Runtime > Change runtime type) rather than replacing its jax by hand." >&2
    exit 1
fi

mkdir -p "$stamp_dir" && touch "$stamp"
kept="$(paste -sd' ' "$constraints")"
echo "nanoddpm_utils installed from $REPO_DIR${kept:+ (kept $kept)}"
