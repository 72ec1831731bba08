"""Keep every notebook in step with its .py source and with this repository's address.

    python tools/sync_notebooks.py           # rewrite the .py files' badges and setup cells, regenerate the .ipynb
    python tools/sync_notebooks.py --check   # change nothing; exit 1 and name the files that are out of date

The notebooks are written as jupytext percent-format files, ``notebooks/NN_name.py``;
each ``NN_name.ipynb`` is generated from its .py, without outputs. A fork edits the
two lines below and runs this script once: every Open-in-Colab link (in the notebooks
and in README.md) and every notebook's setup cell then point at the fork.
"""

REPO = "suvadityamuk/nanoJaxDDPM"  # GitHub owner/name
BRANCH = "main"

import argparse  # noqa: E402
import hashlib  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CLONE_DIR = "/content/nanoJaxDDPM"  # where a Colab runtime keeps the clone

BADGE_IMG = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE_RE = re.compile(r"\[!\[Open In Colab\]\(" + re.escape(BADGE_IMG) + r"\)\]\([^)]*\)")
COLAB_PREFIX_RE = re.compile(r"https://colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/[\w./-]+?/notebooks/")

SETUP_TEMPLATE = '''\
# Colab only: fetch the course repository and install its package (does nothing anywhere else).
import sys

if "google.colab" in sys.modules:
    import importlib
    import os
    import subprocess

    REPO_DIR = os.environ.get("NANODDPM_CLONE_DIR", "{clone_dir}")  # a fork or a local copy: set these two
    REPO_URL = os.environ.get("NANODDPM_REPO_URL", "https://github.com/{repo}")
    if not os.path.isdir(REPO_DIR):
        subprocess.run(["git", "clone", "-q", "--depth", "1", "-b", "{branch}", REPO_URL, REPO_DIR], check=True)
    else:
        subprocess.run(["git", "-C", REPO_DIR, "pull", "-q", "--ff-only"], check=False)
    subprocess.run(["bash", os.path.join(REPO_DIR, "colab_setup.sh")], check=True,
                   env={{**os.environ, "PYTHON": sys.executable}})  # install into this kernel's Python
    if REPO_DIR not in sys.path:
        sys.path.insert(0, REPO_DIR)  # importable now, without restarting the runtime
    importlib.invalidate_caches()'''


def colab_url(path: str) -> str:
    """The Colab address of a file of this repository, e.g. ``colab_url("notebooks/01_forward_process.ipynb")``."""
    return f"https://colab.research.google.com/github/{REPO}/blob/{BRANCH}/{path}"


def badge(path: str) -> str:
    return f"[![Open In Colab]({BADGE_IMG})]({colab_url(path)})"


def setup_cell() -> str:
    """The source of every notebook's first code cell."""
    return SETUP_TEMPLATE.format(clone_dir=CLONE_DIR, branch=BRANCH, repo=REPO)


def rewrite_py(text: str, name: str) -> str:
    """Return a notebook's .py text with its badge, Colab links and setup cell made current."""
    if len(BADGE_RE.findall(text)) != 1:
        raise ValueError(f"{name}.py: expected exactly one line '{badge(f'notebooks/{name}.ipynb')}'")
    text = BADGE_RE.sub(lambda m: badge(f"notebooks/{name}.ipynb"), text)
    text = COLAB_PREFIX_RE.sub(colab_url("notebooks/"), text)

    # Replace the body of the first code cell (a "# %%" line that is not markdown) up to the next cell.
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if line.startswith("# %%")]
    code = [i for i in starts if "[markdown]" not in lines[i] and "[raw]" not in lines[i]]
    if not code:
        raise ValueError(f"{name}.py has no code cell for the setup")
    first = code[0]
    end = next((i for i in starts if i > first), len(lines))
    body = setup_cell().split("\n") + [""]  # one blank line before the next cell
    return "\n".join(lines[: first + 1] + body + lines[end:])


def notebook_from_py(text: str):
    """The notebook generated from a .py's text: jupytext's reading, no outputs, stable cell ids."""
    import jupytext

    nb = jupytext.reads(text, fmt="py:percent")
    seen = set()
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        # ids from the content (jupytext draws random ones), so an edit changes only its own cell's id
        cell_id = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:8]
        while cell_id in seen:
            cell_id = hashlib.sha1(cell_id.encode()).hexdigest()[:8]
        seen.add(cell_id)
        cell.id = cell_id
    return nb


def main(argv=None) -> int:
    import jupytext

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="report out-of-date files, change nothing")
    args = parser.parse_args(argv)

    targets = []  # (path, what it should contain)
    for py in sorted(NOTEBOOKS.glob("*.py")):
        new_text = rewrite_py(py.read_text(), py.stem)
        targets += [(py, new_text), (py.with_suffix(".ipynb"), jupytext.writes(notebook_from_py(new_text), fmt="ipynb"))]
    readme = ROOT / "README.md"  # its course map links to the notebooks on Colab
    if readme.exists():
        targets.append((readme, COLAB_PREFIX_RE.sub(colab_url("notebooks/"), readme.read_text())))

    stale = [path for path, new in targets if not path.exists() or path.read_text() != new]
    if not args.check:
        for path, new in targets:
            if path in stale:
                path.write_text(new)
    for path in stale:
        print(("out of date: " if args.check else "wrote ") + str(path.relative_to(ROOT)))
    if args.check and stale:
        print("run: python tools/sync_notebooks.py")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
