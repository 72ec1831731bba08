"""tools/execute_notebooks.py (`make executed`) and the outputs' life in tools/sync_notebooks.py, on small
notebooks written here: outputs written with the hash of the code they came from, kept by a re-sync while
that code is unchanged and dropped when it changes; figures as PNGs at the chosen DPI, widgets as their
picture; no local path of this machine left; a cell that errors or a warning from the notebook's own
code refuses the notebook.
"""

import base64
import importlib.util
import io
import json
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ex = _load("execute_notebooks")
sync = ex.sync

NOTEBOOK = """\
# %% [markdown]
# # A small notebook

# %%
import os
import tempfile

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

print("here:", os.getcwd(), "temp:", tempfile.gettempdir())

# %% tags=["needs-real-data"]
from nanoddpm_utils.embedding import timestep_embedding  # a package module the record must name

print("a horse")

# %% [markdown]
# A figure, 4 by 3 inches.

# %%
fig, ax = plt.subplots(figsize=(4, 3))
ax.plot(np.arange(10) ** 2)
plt.show()

# %%
import io

from PIL import Image

png = io.BytesIO()
Image.new("RGB", (7, 5), (255, 0, 0)).save(png, format="PNG")
widgets.VBox([widgets.IntSlider(3), widgets.Image(value=png.getvalue(), format="png")])

# %%
from IPython.display import display

bar = widgets.FloatProgress(value=0, max=40)  # as tqdm.auto draws a progress bar: labels around a bar
box = widgets.HBox([widgets.HTML("steps:"), bar, widgets.HTML("0/40")])
display(box)
bar.value, box.children[2].value = 40, "40/40 [00:01&lt;00:00]"
bar2 = widgets.IntProgress(value=0, max=3)  # tqdm.auto's own labels: "desc: NN%" on the left
display(widgets.HBox([widgets.HTML("sampling:   0%"), bar2, widgets.HTML("0/3")]))
bar2.value = 3
bar2.description = ""
display(widgets.IntSlider(5))  # no picture, no progress: nothing a reader could use
print("done")
"""


def pngs(nb):
    return [o["data"]["image/png"] for c in sync.code_cells(nb) for o in c.outputs if "image/png" in o.get("data", {})]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    d = tmp_path_factory.mktemp("nb")
    py, out = d / "small.py", d / "small.ipynb"
    py.write_text(NOTEBOOK)
    ex.execute(py, out, "full", timeout=120, cwd=d)
    return py, out


def test_outputs_hash_and_mode_are_written(executed):
    py, out = executed
    nb = nbformat.read(out, as_version=4)
    record = nb.metadata[sync.EXECUTED_KEY]
    assert {k: v for k, v in record.items() if k != "package_sha256"} == {
        "code_sha256": sync.code_hash(nb),
        "mode": "full",
    }
    # the package files the kernel loaded, each with its hash (no weights: nanoddpm_utils.pretrained was not loaded)
    assert set(record["package_sha256"]) == {"nanoddpm_utils/__init__.py", "nanoddpm_utils/embedding.py"}
    assert record["package_sha256"]["nanoddpm_utils/embedding.py"] == sync.file_sha256(
        ROOT / "nanoddpm_utils" / "embedding.py"
    )
    assert "a horse" in str(sync.code_cells(nb)[1].outputs)  # real data (no stand-in): tagged outputs stay
    assert sync.code_hash(nb) == sync.code_hash(sync.notebook_from_py(py.read_text()))
    # the cells are exactly what sync_notebooks.py makes of the .py, plus outputs
    fresh = sync.notebook_from_py(py.read_text())
    assert [(c.cell_type, c.source, c.id) for c in nb.cells] == [(c.cell_type, c.source, c.id) for c in fresh.cells]
    assert all(c.execution_count for c in sync.code_cells(nb))


def test_figures_are_pngs_at_the_chosen_dpi_and_widgets_their_picture(executed):
    from PIL import Image

    nb = nbformat.read(executed[1], as_version=4)
    figure, widget = [Image.open(io.BytesIO(base64.b64decode(p))) for p in pngs(nb)]
    assert figure.size[0] <= 4 * ex.DPI and figure.size[1] <= 3 * ex.DPI and figure.size[0] > 3 * ex.DPI, figure.size
    assert widget.size == (7, 5)
    assert not any(ex.WIDGET_VIEW in o.get("data", {}) for c in sync.code_cells(nb) for o in c.outputs)


def test_a_progress_bar_shows_its_final_state_and_a_bare_widget_goes(executed):
    nb = nbformat.read(executed[1], as_version=4)
    last = sync.code_cells(nb)[-1].outputs
    assert [(o.output_type, o.get("name"), o.get("text")) for o in last] == [
        ("stream", "stderr", "steps: 100% 40/40 [00:01<00:00]\n"),
        ("stream", "stderr", "sampling:   0% 0/3\n"),
        ("stream", "stdout", "done\n"),
    ]


def test_no_local_paths(executed):
    text = executed[1].read_text()
    assert str(executed[0].parent) not in text and "here: <tmp>/" in text
    for path, _ in ex.local_paths():
        assert json.dumps(path)[1:-1] not in text, path


def test_sync_keeps_outputs_while_the_code_is_unchanged(executed, tmp_path):
    py, out = executed
    text = py.read_text()
    kept = nbformat.reads(sync.ipynb_text(text, out), as_version=4)
    assert pngs(kept) and sync.executed_info(kept)
    assert sync.ipynb_text(text, out) == out.read_text()  # a re-sync changes nothing
    # prose may change: the outputs still belong to the code
    kept = nbformat.reads(sync.ipynb_text(text.replace("A figure, 4 by 3", "A figure"), out), as_version=4)
    assert pngs(kept)
    # code may not: the outputs are dropped with the record
    dropped = nbformat.reads(sync.ipynb_text(text.replace("** 2", "** 3"), out), as_version=4)
    assert pngs(dropped) == [] and sync.executed_info(dropped) is None
    assert all(c.outputs == [] and c.execution_count is None for c in sync.code_cells(dropped))


def test_the_notebook_test_catches_code_changed_after_execution(executed, tmp_path):
    nb = nbformat.read(executed[1], as_version=4)
    sync.code_cells(nb)[2].source = sync.code_cells(nb)[2].source.replace("** 2", "** 3")  # edited, not re-run
    assert sync.executed_info(nb)["code_sha256"] != sync.code_hash(nb)
    assert not sync.carry_outputs(sync.notebook_from_py(executed[0].read_text().replace("** 2", "** 3")), nb)


@pytest.mark.parametrize(
    "cell, expected",
    [
        ("raise ValueError('a bug')", "ValueError"),
        ("import warnings\nwarnings.warn('our own code warns')", "our own code warns"),
    ],
)
def test_refused(cell, expected, tmp_path):
    py, out = tmp_path / "bad.py", tmp_path / "bad.ipynb"
    py.write_text(f"# %% [markdown]\n# # Bad\n\n# %%\nprint('fine')\n\n# %%\n{cell}\n")
    with pytest.raises(Exception, match=expected):
        ex.execute(py, out, "smoke", timeout=120, cwd=tmp_path)
    assert not out.exists()


def test_clean_and_check_on_outputs():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")])
    nb.cells[0].outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=f"saved {ex.ROOT}/runs/a and {ex.NOTEBOOKS}/b\n"),
        nbformat.v4.new_output("execute_result", data={"text/plain": f"'{sys.prefix}/lib/x.py'"}),
    ]
    assert ex.check_and_clean(nb, "n") == []
    assert nb.cells[0].outputs[0]["text"] == "saved ../runs/a and ./b\n"
    assert str(ex.ROOT) not in nb.cells[0].outputs[1]["data"]["text/plain"]
    nb.cells[0].outputs = [nbformat.v4.new_output("error", ename="KeyError", evalue="k", traceback=[])]
    with pytest.raises(ex.Refused, match="KeyError"):
        ex.check_and_clean(nb, "n")


def test_a_smoke_run_without_the_data_reads_a_stand_in_and_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv("NANODDPM_CIFAR10_DIR", raising=False)
    env = ex.stand_in_env("06_train_cifar10", "smoke", tmp_path)
    assert env == {"NANODDPM_CIFAR10_DIR": str(tmp_path)}
    assert sorted(p.name for p in (tmp_path / "cifar-10-batches-py").iterdir())[-1] == "test_batch"
    assert ex.stand_in_env("06_train_cifar10", "full", tmp_path) == {}  # the real run reads the real data
    assert ex.stand_in_env("01_forward_process", "smoke", tmp_path) == {}
    monkeypatch.setenv("NANODDPM_CIFAR10_DIR", "/data/cifar10")
    assert ex.stand_in_env("06_train_cifar10", "smoke", tmp_path) == {}  # a folder of the real data wins
    site = _load("build_site")
    nb = nbformat.v4.new_notebook(
        metadata={sync.EXECUTED_KEY: {"code_sha256": "x", "mode": "smoke", "stand_in": "NANODDPM_CIFAR10_DIR"}}
    )
    assert "stand-in" in site.note_cell(nb)
    nb.metadata[sync.EXECUTED_KEY].pop("stand_in")
    assert "smoke mode" in site.note_cell(nb) and "stand-in" not in site.note_cell(nb)


def test_a_notebook_is_stale_when_its_code_mode_or_package_changed(executed, monkeypatch):
    py, out = executed
    monkeypatch.setattr(ex, "NOTEBOOKS", py.parent)
    assert ex.stale("small") is None
    nb = nbformat.read(out, as_version=4)
    assert sync.stale_reason(nb) is None
    record = nb.metadata[sync.EXECUTED_KEY]
    record["package_sha256"]["nanoddpm_utils/embedding.py"] = "0" * 64  # as if embedding.py changed since
    assert sync.stale_reason(nb) == "changed since it ran: nanoddpm_utils/embedding.py"
    record["package_sha256"]["nanoddpm_utils/gone.py"] = "0" * 64  # a module that no longer exists
    assert "nanoddpm_utils/gone.py" in sync.stale_reason(nb)
    record.pop("package_sha256")  # executed before the package was recorded
    assert sync.stale_reason(nb) == "executed before package files were recorded"
    nb.metadata.pop(sync.EXECUTED_KEY)
    assert sync.stale_reason(nb) == "not executed"
    monkeypatch.setitem(ex.MODES, "small", "smoke")
    assert "mode" in ex.stale("small")
    monkeypatch.delitem(ex.MODES, "small")
    py.write_text(py.read_text().replace("** 2", "** 3"))  # the .py edited, the .ipynb not synced
    try:
        assert "out of step" in ex.stale("small")
    finally:
        py.write_text(py.read_text().replace("** 3", "** 2"))


def test_a_run_on_a_stand_in_drops_the_outputs_that_need_real_data(tmp_path, monkeypatch):
    monkeypatch.delenv("NANODDPM_TEST_DATA", raising=False)
    monkeypatch.setitem(ex.STAND_INS, "blobs", "NANODDPM_TEST_DATA")
    py, out = tmp_path / "blobs.py", tmp_path / "blobs.ipynb"
    py.write_text(
        '# %% [markdown]\n# # Blobs\n\n# %% tags=["needs-real-data"]\nprint("a horse")\n\n'
        '# %%\nprint("the loss went down")\n'
    )
    ex.execute(py, out, "smoke", timeout=120, cwd=tmp_path)
    nb = nbformat.read(out, as_version=4)
    assert [c.outputs for c in sync.code_cells(nb)][0] == []
    assert "the loss went down" in str(sync.code_cells(nb)[1].outputs)
    assert nb.metadata[sync.EXECUTED_KEY]["stand_in"] == "NANODDPM_TEST_DATA"
