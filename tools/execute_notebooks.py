"""Run the notebooks and write their outputs into the committed .ipynb files (``make executed``).

    python tools/execute_notebooks.py                       # every notebooks/*.py, each in its mode (MODES)
    python tools/execute_notebooks.py 01_forward_process    # only these notebooks
    NANODDPM_EXECUTE_SMOKE=1 python tools/execute_notebooks.py 01_forward_process   # smoke mode, to try the tooling
    python tools/execute_notebooks.py --out /tmp/executed   # write the executed notebooks elsewhere
    python tools/execute_notebooks.py --list-stale          # name the notebooks whose outputs are stale, and why
    python tools/execute_notebooks.py --stale               # run only those (make executed)

Each notebook is generated from its .py (as tools/sync_notebooks.py does), run from scratch with
nbclient in a fresh kernel (cwd notebooks/), and written back with its outputs and a record in its
metadata: the sha256 of its code cells, the mode it ran in, and the sha256 of every package file the
kernel had loaded by the end (the nanoddpm_utils modules in sys.modules; the shipped weights when
nanoddpm_utils.pretrained was among them). tools/sync_notebooks.py keeps those outputs only while the
code cells still hash to that value; a notebook is stale when its code, its mode or a recorded package
file changed, or it has no such record, and tests/test_notebooks.py names the stale ones. When a smoke run
read a stand-in instead of its real data (STAND_INS), the outputs of the cells tagged ``needs-real-data``
are dropped: they would show the stand-in under the real data's names. A notebook is refused (nothing
written, exit 1) when a cell errors, when a warning comes
from our own code (the notebook or nanoddpm_utils), or when a local path of this machine survives the
clean-up below; figures are PNGs at DPI dots per inch, and the total size is reported.
"""

import argparse
import html
import importlib.util
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

# The mode each notebook runs in; "full" unless listed. "smoke" sets NANODDPM_SMOKE=1 (tiny sizes).
MODES = {
    # full mode downloads CIFAR-10 from Kaggle and trains for hours: its outputs show the smoke run,
    # and the notebook says so in its own output ("smoke mode: True")
    "06_train_cifar10": "smoke",
}
# Data a notebook needs that this machine may not be able to download. When the variable is unset, a smoke
# run reads a tiny stand-in written by the tests' fabricator (tests/colab/fake_cifar10.py: colour blobs in the
# official layout), the record says so ("stand_in"), and the site says so on top of the page.
STAND_INS = {"06_train_cifar10": "NANODDPM_CIFAR10_DIR"}
REAL_DATA_TAG = "needs-real-data"  # cells whose outputs are dropped when the run read a stand-in
DPI = 100  # figure.dpi for every figure (matplotlib's default): axis labels stay readable on GitHub and the site
# all executed notebooks together: GitHub renders each within a few MB, and every full re-execution adds its
# new figures to the repository's history; figures at DPI 100 put the course at about 6-7 MB
MAX_TOTAL_BYTES = 10_000_000
SMOKE_ALL_ENV = "NANODDPM_EXECUTE_SMOKE"  # =1: run every notebook in smoke mode (to try this script cheaply)

_spec = importlib.util.spec_from_file_location("sync_notebooks", ROOT / "tools" / "sync_notebooks.py")
sync = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sync)

WARNING_RE = re.compile(r"^(?P<file>.*?):\d+: \w*Warning\b", re.M)
OUR_CODE_RE = re.compile(r"nanoddpm_utils|ipykernel_\d+|<ipython-input|/notebooks/")


class Refused(Exception):
    """An executed notebook that must not be committed."""


def local_paths():
    """(path, replacement) pairs, longest path first: where this machine's directories go in the outputs."""
    pairs = [
        (str(NOTEBOOKS), "."),  # the kernel's cwd: paths become relative to the notebook
        (str(ROOT), ".."),
        (os.path.realpath(tempfile.gettempdir()), "<tmp>"),
        (tempfile.gettempdir(), "<tmp>"),
        (sys.prefix, "<python>"),
        (os.path.realpath(sys.prefix), "<python>"),
        (str(Path.home()), "~"),
    ]
    return sorted({p for p in pairs if len(p[0]) > 1}, key=lambda p: -len(p[0]))


SITE_PACKAGES_RE = re.compile(r"[^\s'\"(]*/(site|dist)-packages/")


def clean_text(text: str) -> str:
    text = SITE_PACKAGES_RE.sub("<site-packages>/", text)
    for path, new in local_paths():
        text = re.sub(re.escape(path) + r"(?![\w.-])", lambda m, new=new: new, text)  # whole path components only
    return text


def leftover_paths(text: str) -> list[str]:
    return [path for path, _ in local_paths() if re.search(re.escape(path) + r"(?![\w.-])", text)]


def _map_texts(output, fn):
    """Apply fn to every text an output carries (stream text, text/* data, tracebacks)."""
    if output.get("output_type") == "stream":
        output["text"] = fn(output["text"])
    for mime, value in output.get("data", {}).items():
        if mime.startswith("text/") or mime.endswith("json"):
            if isinstance(value, str):
                output["data"][mime] = fn(value)
    if "traceback" in output:
        output["traceback"] = [fn(line) for line in output["traceback"]]


def check_and_clean(nb, name: str) -> list[str]:
    """Strip local paths from the outputs in place; raise Refused on errors, our warnings or leftover paths.

    Returns notices (warnings from other libraries, kept)."""
    notices, problems = [], []
    for i, cell in enumerate(sync.code_cells(nb)):
        for out in cell.outputs:
            where = f"{name}: code cell {i}"
            if out.get("output_type") == "error":
                problems.append(f"{where}: {out.get('ename')}: {out.get('evalue')}")
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                for m in WARNING_RE.finditer(out["text"]):
                    line = out["text"][m.start() :].split("\n", 1)[0]
                    (problems if OUR_CODE_RE.search(m["file"]) else notices).append(f"{where}: {clean_text(line)}")
            _map_texts(out, clean_text)
            found = []
            _map_texts(out, lambda t: found.extend(leftover_paths(t)) or t)  # noqa: B023 (called at once)
            if found:
                problems.append(f"{where}: local path {sorted(set(found))} left in an output")
    if problems:
        raise Refused("\n".join(problems))
    return notices


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def widgets_to_pictures(nb, state: dict, buffers: dict) -> None:
    """Show each widget output as a picture, in place: the static PNG it came with (a
    ``widgets.interactive_figure`` carries one), else the picture it displays (an ipywidgets Image inside it).

    A saved notebook cannot move a slider, and GitHub and the site show no widgets at all; that
    picture is what a reader can see before running it. A progress bar (tqdm's widget: labels around a
    progress model) becomes the text of its final state, as tqdm prints it in a terminal; any other widget
    without a picture is dropped (its text form is its state when first shown, e.g. a bar at 0%)."""

    def picture(model_id, seen=()):
        if model_id in seen or model_id not in state:
            return None
        if state[model_id].get("_model_name") == "ImageModel" and ("value",) in buffers.get(model_id, {}):
            return buffers[model_id][("value",)]["data"]  # base64, as the image/png mime type wants
        for child in state[model_id].get("children", []):
            found = picture(str(child).removeprefix("IPY_MODEL_"), (*seen, model_id))
            if found:
                return found
        return None

    import nbformat

    def progress_text(model_id):
        children = [
            state.get(str(c).removeprefix("IPY_MODEL_"), {}) for c in state.get(model_id, {}).get("children", [])
        ]
        bars = [c for c in children if c.get("_model_name") in ("FloatProgressModel", "IntProgressModel")]
        if not bars or not bars[0].get("max"):
            return None
        labels = [
            html.unescape(re.sub(r"<[^>]*>", "", str(c.get("value", "")))).strip()
            for c in children
            if c.get("_model_name") == "HTMLModel"
        ]
        if any(t.endswith("%") for t in labels):  # tqdm's left label is "desc: 100%"
            return " ".join(t for t in labels if t)
        percent = f"{100 * bars[0].get('value', 0) / bars[0]['max']:.0f}%"
        return " ".join(t for t in (labels[0] if labels else "", percent, *labels[1:]) if t)

    for cell in sync.code_cells(nb):
        kept = []
        for out in cell.outputs:
            view = out.get("data", {}).get(WIDGET_VIEW)
            if not view:
                kept.append(out)
                continue
            png = out["data"].get("image/png") or picture(view["model_id"])
            text = None if png else progress_text(view["model_id"])
            if png:
                out["data"] = {
                    "image/png": png,
                    "text/plain": "<the widget's picture; run the notebook to use the widget>",
                }
                kept.append(out)
            elif text:
                kept.append(nbformat.v4.new_output("stream", name="stderr", text=text + "\n"))
        cell.outputs = kept


def mode_of(name: str) -> str:
    return "smoke" if os.environ.get(SMOKE_ALL_ENV) == "1" else MODES.get(name, "full")


def needs_stand_in(name: str, mode: str) -> str | None:
    """The variable a smoke run of ``name`` would point at a stand-in, when it has no real data; else None."""
    var = STAND_INS.get(name)
    return var if mode == "smoke" and var is not None and not os.environ.get(var) else None


def stand_in_env(name: str, mode: str, folder: Path) -> dict[str, str]:
    """The variable pointing a smoke run at a stand-in written into ``folder``, when the notebook needs one."""
    var = needs_stand_in(name, mode)
    if var is None:
        return {}
    sys.path.insert(0, str(ROOT / "tests" / "colab"))
    try:
        from fake_cifar10 import write_batches
    finally:
        sys.path.pop(0)
    return {var: str(write_batches(folder))}


# run after the notebook's last cell, then removed: which package files did this notebook use?
PROBE = """import json as _json, sys as _sys
print(_json.dumps(sorted({getattr(_m, "__file__", None) or "" for _n, _m in list(_sys.modules.items())
                          if _n.split(".")[0] == "nanoddpm_utils"} - {""})))"""


def package_record(files: list[str]) -> dict[str, str]:
    """{path from the repository root: sha256} for the package files a kernel loaded (and the shipped weights)."""
    package = ROOT / "nanoddpm_utils"
    paths = {Path(f).resolve() for f in files}
    paths = {p for p in paths if p.is_relative_to(package) and p.is_file()}
    if package / "pretrained.py" in paths:
        paths |= {p for p in (package / "weights").glob("*") if p.is_file()}
    return {p.relative_to(ROOT).as_posix(): sync.file_sha256(p) for p in sorted(paths)}


def stale(name: str) -> str | None:
    """Why notebooks/NAME.ipynb's outputs are stale (code, mode or a package file changed, or no record), or None."""
    import nbformat

    ipynb = NOTEBOOKS / f"{name}.ipynb"
    if not ipynb.exists():
        return "no .ipynb"
    nb = nbformat.read(ipynb, as_version=4)
    if sync.code_hash(nb) != sync.code_hash(sync.notebook_from_py((NOTEBOOKS / f"{name}.py").read_text())):
        return "its .ipynb is out of step with its .py (run python tools/sync_notebooks.py)"
    reason = sync.stale_reason(nb)
    if reason is None and sync.executed_info(nb).get("mode") != MODES.get(name, "full"):
        reason = f"ran in {sync.executed_info(nb).get('mode')} mode, its mode is {MODES.get(name, 'full')}"
    return reason


def drop_real_data_outputs(nb) -> None:
    """Empty the outputs of the code cells tagged REAL_DATA_TAG (the run read a stand-in, not the real data)."""
    for cell in sync.code_cells(nb):
        if REAL_DATA_TAG in cell.metadata.get("tags", []):
            cell.outputs = []


def execute(py: Path, out: Path, mode: str, timeout: int | None = None, cwd: Path | None = None) -> list[str]:
    """Run the notebook generated from ``py`` in ``mode`` and write it, with outputs and record, to ``out``."""
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    nb = sync.notebook_from_py(py.read_text())
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    env = {
        "NANODDPM_SMOKE": "1" if mode == "smoke" else "",
        "WANDB_MODE": "disabled",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    data_dir = tempfile.TemporaryDirectory()
    stand_in = stand_in_env(py.stem, mode, Path(data_dir.name))
    env.update(stand_in)
    saved = {k: os.environ.get(k) for k in [*env, "MATPLOTLIBRC"]}
    with data_dir, tempfile.TemporaryDirectory() as rc_dir:
        Path(rc_dir, "matplotlibrc").write_text(f"figure.dpi: {DPI}\nsavefig.dpi: figure\n")
        os.environ.update(env, MATPLOTLIBRC=rc_dir)  # the kernel inherits this environment
        if mode != "smoke":
            os.environ.pop("NANODDPM_SMOKE")
        try:
            client = NotebookClient(
                nb,
                timeout=timeout,
                kernel_name="python3",
                record_timing=False,
                store_widget_state=True,
                resources={"metadata": {"path": str(cwd or py.parent)}},
            )
            client.execute()
            probe = nb.cells.pop()
            widgets_to_pictures(nb, client.widget_state, client.widget_buffers)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    notices = check_and_clean(nb, py.stem)

    fresh = sync.notebook_from_py(py.read_text())  # exactly what sync_notebooks.py generates, plus the outputs
    for new, ran in zip(sync.code_cells(fresh), sync.code_cells(nb)):
        new.outputs, new.execution_count = ran.outputs, ran.execution_count
    if stand_in:
        drop_real_data_outputs(fresh)
    loaded = json.loads("".join(o.get("text", "") for o in probe.outputs if o.get("name") == "stdout"))
    fresh.metadata[sync.EXECUTED_KEY] = {
        "code_sha256": sync.code_hash(fresh),
        "mode": mode,
        **({"stand_in": list(stand_in)[0]} if stand_in else {}),
        "package_sha256": package_record(loaded),
    }
    out.write_text(jupytext.writes(fresh, fmt="ipynb"))
    return notices


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="notebook names (e.g. 01_forward_process); default: all")
    parser.add_argument("--out", type=Path, help="write the executed notebooks here instead of notebooks/")
    parser.add_argument("--timeout", type=int, default=None, help="seconds per cell (default: no limit)")
    parser.add_argument("--stale", action="store_true", help="run only the stale notebooks (of NAMES, if given)")
    parser.add_argument("--list-stale", action="store_true", help="name the stale notebooks and why; run nothing")
    args = parser.parse_args(argv)

    pys = sorted(NOTEBOOKS.glob("*.py"))
    unknown = set(args.names) - {p.stem for p in pys}
    if unknown:
        print(f"no such notebook: {', '.join(sorted(unknown))}; choose from: {', '.join(p.stem for p in pys)}")
        return 2
    pys = [p for p in pys if not args.names or p.stem in args.names]
    if args.stale or args.list_stale:
        reasons = {p.stem: stale(p.stem) for p in pys}
        pys = [p for p in pys if reasons[p.stem]]
        for p in pys:
            print(f"stale: {p.stem} ({reasons[p.stem]})")
        if args.list_stale or not pys:
            print(f"{len(pys)} stale notebook(s)" + (": run python tools/execute_notebooks.py --stale" if pys else ""))
            return 1 if args.list_stale and pys else 0
    if sync.main(["--check", *(p.stem for p in pys)]) != 0:  # only the notebooks about to run
        print("these notebooks are out of step with their .py files: run python tools/sync_notebooks.py first")
        return 2
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)

    failed = []
    for py in pys:
        mode = mode_of(py.stem)
        out = (args.out or NOTEBOOKS) / f"{py.stem}.ipynb"
        note = " (NANODDPM_SMOKE=1: tiny sizes, not the real run)" if mode == "smoke" else ""
        if needs_stand_in(py.stem, mode):
            note += f"; {STAND_INS[py.stem]} unset: its data is a tiny stand-in, not the real dataset"
        print(f"{py.stem}: running in {mode} mode{note} ...", flush=True)
        start = time.perf_counter()
        try:
            notices = execute(py, out, mode, timeout=args.timeout, cwd=NOTEBOOKS)
        except Refused as e:
            failed.append(py.stem)
            print(f"{py.stem}: REFUSED, not written:\n{e}")
            continue
        except Exception as e:  # noqa: BLE001  a cell raised: nbclient's message names the cell
            failed.append(py.stem)
            print(f"{py.stem}: FAILED, not written:\n{clean_text(str(e))[-3000:]}")
            continue
        for n in notices:
            print(f"  note, a warning from another library (kept): {n}")
        print(
            f"{py.stem}: wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} "
            f"({out.stat().st_size / 1e6:.2f} MB, {time.perf_counter() - start:.0f} s)",
            flush=True,
        )

    written = sorted((args.out or NOTEBOOKS).glob("*.ipynb"))
    total = sum(p.stat().st_size for p in written)
    print(f"all notebooks: {total / 1e6:.2f} MB (limit {MAX_TOTAL_BYTES / 1e6:.0f} MB)")
    if total > MAX_TOTAL_BYTES:
        print(f"too big: lower DPI (now {DPI}) in {Path(__file__).name} or show fewer figures")
        return 1
    if failed:
        print(f"not executed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
