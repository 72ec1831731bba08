"""The notebooks' hygiene: each .ipynb is generated from its .py, its outputs (if any) come from its code
as it is now, and it links where it should.

Running them is nbmake's job (`pytest --nbmake notebooks/*.ipynb`); these checks are static and fast.
Every .ipynb must carry the outputs of `make executed`, made from the code beside it;
NANODDPM_REQUIRE_EXECUTED=0 allows notebooks without outputs while they are being rewritten.
"""

import importlib.util
import os
import re
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
FIX = "run: python tools/sync_notebooks.py"

_spec = importlib.util.spec_from_file_location("sync_notebooks", ROOT / "tools" / "sync_notebooks.py")
sync = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sync)


def cells(nb):
    return [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in nb.cells]


# The course: 00_name, 01_name, ... in order; then appendices A1_name, A2_name, ... (sorted order keeps them last).
MAIN = [p for p in NOTEBOOKS if re.fullmatch(r"\d\d_[a-z0-9_]+", p.stem)]
APPENDIX = [p for p in NOTEBOOKS if re.fullmatch(r"A\d_[a-z0-9_]+", p.stem)]


def test_there_are_notebooks():
    assert MAIN, "no notebooks/NN_name.py found"
    names = [p.stem for p in NOTEBOOKS]
    assert MAIN + APPENDIX == NOTEBOOKS, f"notebook names must be NN_name (course) or AN_name (appendix): {names}"
    assert [int(p.stem[:2]) for p in MAIN] == list(range(len(MAIN))), f"course numbers must run 00, 01, ...: {names}"


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda p: p.stem)
def test_ipynb_matches_its_py(py):
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} is missing; {FIX}"
    expected = jupytext.read(py)  # what jupytext makes of the .py today
    committed = nbformat.read(ipynb, as_version=4)
    assert cells(committed) == cells(expected), f"{ipynb.name} differs from {py.name}; {FIX}"


REQUIRE_EXECUTED = os.environ.get("NANODDPM_REQUIRE_EXECUTED", "1") != "0"  # =0 while rewriting notebooks
EXECUTE = "run: make executed (python tools/execute_notebooks.py --stale)"

_spec = importlib.util.spec_from_file_location("execute_notebooks", ROOT / "tools" / "execute_notebooks.py")
execute_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(execute_notebooks)


def test_no_notebook_is_stale():
    """Outputs made from the code and the package as they are now: CI names every stale notebook at once."""
    if not REQUIRE_EXECUTED:
        pytest.skip("NANODDPM_REQUIRE_EXECUTED=0")
    reasons = {p.stem: execute_notebooks.stale(p.stem) for p in NOTEBOOKS}
    stale = [f"{name} ({why})" for name, why in reasons.items() if why]
    assert not stale, f"stale outputs: {'; '.join(stale)}; {EXECUTE}"


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_come_from_the_code_beside_them(py):
    nb = nbformat.read(py.with_suffix(".ipynb"), as_version=4)
    info = sync.executed_info(nb)
    has_outputs = any(c.outputs or c.execution_count is not None for c in sync.code_cells(nb))
    if info is None:
        assert not has_outputs, f"{py.stem}.ipynb has outputs that make executed did not record; {FIX}"
        assert not REQUIRE_EXECUTED, f"{py.stem}.ipynb has not been executed; {EXECUTE}"
        return
    assert info["code_sha256"] == sync.code_hash(nb), (
        f"{py.stem}.ipynb: its code changed since its outputs were made; {EXECUTE}"
    )
    assert info["mode"] in {"full", "smoke"}, info
    assert not any(o.get("output_type") == "error" for c in sync.code_cells(nb) for o in c.outputs), py.stem


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda p: p.stem)
def test_badge_setup_cell_and_links_use_this_repo(py):
    text = py.read_text()
    # the badge opens this very notebook from REPO/BRANCH
    assert f"[![Open In Colab]({sync.BADGE_IMG})]({sync.colab_url(f'notebooks/{py.stem}.ipynb')})" in text, FIX
    for owner_repo, branch in re.findall(
        r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/([\w.-]+)/", text
    ):
        assert (owner_repo, branch) == (sync.REPO, sync.BRANCH), FIX
    # the first code cell is the Colab setup cell, identical in every notebook
    first_code = next(c for c in jupytext.read(py).cells if c.cell_type == "code")
    assert first_code.source == sync.setup_cell(), f"{py.name}: the first code cell is not the setup cell; {FIX}"
    assert f"https://github.com/{sync.REPO}" in first_code.source
    # and the sync script would change nothing
    assert sync.rewrite_py(text, py.stem) == text, FIX


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda p: p.stem)
def test_smoke_switch(py):
    assert 'SMOKE = os.environ.get("NANODDPM_SMOKE") == "1"' in py.read_text()


# each notebook's last cell links to the next one: the course in order, then the appendices, the last back to 00
CHAIN = MAIN + APPENDIX
NEXT = list(zip(CHAIN, CHAIN[1:] + CHAIN[:1])) if len(CHAIN) > 1 else []


@pytest.mark.parametrize("pair", NEXT, ids=lambda pair: pair[0].stem)
def test_links_to_the_next_notebook(pair):
    this, nxt = pair[0], pair[1].stem
    last = jupytext.read(this).cells[-1]
    assert last.cell_type == "markdown" and f"]({nxt}.ipynb)" in last.source, (
        f"the last cell of {this.name} should link to {nxt}.ipynb"
    )
    assert sync.colab_url(f"notebooks/{nxt}.ipynb") in last.source


def test_readme_colab_links_use_this_repo():
    readme = ROOT / "README.md"
    if not readme.exists():
        pytest.skip("no README.md")
    found = re.findall(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/([\w.-]+)/", readme.read_text())
    assert all(f == (sync.REPO, sync.BRANCH) for f in found), FIX
