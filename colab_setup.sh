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
