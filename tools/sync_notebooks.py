"""Keep every notebook in step with its .py source and with this repository's address.

    python tools/sync_notebooks.py           # rewrite the .py files' badges and setup cells, regenerate the .ipynb
    python tools/sync_notebooks.py --check   # change nothing; exit 1 and name the files that are out of date
    python tools/sync_notebooks.py 09_guidance   # only these notebooks (and README.md)

The notebooks are written as jupytext percent-format files, ``notebooks/NN_name.py`` (appendices ``AN_name.py``);
each ``.ipynb`` is generated from its .py. Outputs written by ``make executed``
(tools/execute_notebooks.py) are kept only while the code cells still hash to the value
recorded when they ran; otherwise the .ipynb is regenerated without outputs. A fork edits the
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

SETUP_TEMPLATE = """\
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
    importlib.invalidate_caches()"""


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


EXECUTED_KEY = "nanoddpm_executed"  # notebook metadata written by tools/execute_notebooks.py


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def code_hash(nb) -> str:
    """sha256 of a notebook's code cells (their sources, in order): what its outputs were computed from."""
    h = hashlib.sha256()
    for cell in code_cells(nb):
        source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
        h.update(source.encode() + b"\0")
    return h.hexdigest()


def executed_info(nb):
    """The execution record of a notebook (hash, mode, ...) or None if it was never executed by make executed."""
    return nb.metadata.get(EXECUTED_KEY)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stale_reason(nb) -> str | None:
    """Why a notebook's outputs no longer show what its code would print now, or None when they are current.

    The record written at execution holds the hash of the code cells and, under "package_sha256", the hash of
    every package file the kernel loaded (nanoddpm_utils modules, the shipped weights when it loaded them)."""
    info = executed_info(nb)
    if info is None:
        return "not executed"
    if info.get("code_sha256") != code_hash(nb):
        return "its code changed"
    if "package_sha256" not in info:
        return "executed before package files were recorded"
    changed = [
        rel
        for rel, digest in sorted(info["package_sha256"].items())
        if not (ROOT / rel).is_file() or file_sha256(ROOT / rel) != digest
    ]
    return f"changed since it ran: {', '.join(changed)}" if changed else None


def carry_outputs(new_nb, old_nb) -> bool:
    """Copy old_nb's outputs and execution record onto new_nb when its code cells hash to the recorded value.

    Returns True when outputs were carried; new_nb keeps no outputs otherwise (stale outputs are dropped).
    """
    info = executed_info(old_nb)
    if not info or info.get("code_sha256") != code_hash(new_nb) or code_hash(old_nb) != code_hash(new_nb):
        return False
    for new, old in zip(code_cells(new_nb), code_cells(old_nb)):
        new.outputs, new.execution_count = old.outputs, old.execution_count
    new_nb.metadata[EXECUTED_KEY] = info
    return True


def ipynb_text(py_text: str, ipynb: Path) -> str:
    """What ``ipynb`` should contain: generated from the .py, with the committed outputs while still current."""
    import jupytext
    import nbformat

    nb = notebook_from_py(py_text)
    if ipynb.exists():
        try:
            carry_outputs(nb, nbformat.reads(ipynb.read_text(), as_version=4))
        except Exception:  # noqa: BLE001  an unreadable .ipynb is simply regenerated
            pass
    return jupytext.writes(nb, fmt="ipynb")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="report out-of-date files, change nothing")
    parser.add_argument("names", nargs="*", help="only these notebooks (e.g. 01_forward_process); default: all")
    args = parser.parse_args(argv)

    targets = []  # (path, what it should contain)
    for py in sorted(NOTEBOOKS.glob("*.py")):
        if args.names and py.stem not in args.names:
            continue
        new_text = rewrite_py(py.read_text(), py.stem)
        ipynb = py.with_suffix(".ipynb")
        targets += [(py, new_text), (ipynb, ipynb_text(new_text, ipynb))]
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
