"""The course in JupyterLab in a real browser, as a learner meets it (`make lab-check`; see docs/lab.md).

JupyterLab is served locally (a free port, a token, settings and runtime files in a temporary folder) over a copy
of the notebooks with their outputs cleared, and Debian's Chromium, driven by Playwright, opens each notebook and
clicks Run > Run All Cells, with the kernel in smoke mode (NANODDPM_SMOKE=1). A notebook fails on an error output
(naming the cell and the error's first line), on a cell that never finishes within the notebook's time
(NANODDPM_LAB_TIMEOUT seconds, 900 unless set), on a widget that does not render, and on a widget whose figure
does not redraw, pixel for pixel, when one of its controls (slider, toggle buttons, dropdown) is moved.
Screenshots of each notebook after its run and of each widget before and after each move are written to
build/lab-screenshots/ for a person to look at. The first tests show the check catches each fault on tiny
notebooks written here.

The same widget check runs with ipywidgets 7.7.1 (what a Colab kernel holds) under JupyterLab 3.6 and its widget
manager (jupyterlab_widgets 1.1), the newest JupyterLab that renders 7.x widgets, when NANODDPM_LAB_WIDGETS7=1
(`make lab-check-widgets7`): its venv is built from PyPI once into ~/.cache/nanoddpm/lab-widgets7 and runs the
widget notebooks only.

Needs Debian's chromium, Playwright and JupyterLab (the [site] and [notebooks] extras); skips, saying which is
missing, otherwise, except under CI=true, where it fails in one line. `make test` leaves this file out.
"""

import hashlib
import io
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "build" / "lab-screenshots"
TIMEOUT = float(os.environ.get("NANODDPM_LAB_TIMEOUT", "900"))  # seconds for one notebook's Run All
REDRAW_TIMEOUT = 120.0  # seconds for a widget's figure to change after a control moved
WIDGET_NOTEBOOKS = ("00", "01", "02", "08", "09")  # the notebooks with widgets, run again with ipywidgets 7.7.1
WIDGET_CALL = re.compile(r"\b(interactive_figure|slider|schedule_widget)\(")  # the course's widget makers
WIDGETS7 = os.environ.get("NANODDPM_LAB_WIDGETS7") == "1"
# ipywidgets 7.7.1 and the newest front end that renders it: JupyterLab 3.6 with jupyterlab_widgets 1.1
# (ipywidgets 7.7.1's own front end; jupyterlab_pygments 0.3 needs JupyterLab 4)
WIDGETS7_FRONT = [
    "ipywidgets==7.7.1",
    "widgetsnbextension==3.6.1",
    "jupyterlab_widgets==1.1.1",
    "jupyterlab==3.6.8",
    "jupyterlab_pygments==0.2.2",
]


def cannot_run(reason: str):
    """Skip, saying why; under CI=true fail instead, in one line: a CI run must not pass without the check."""
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"CI=true and the JupyterLab check cannot run: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


try:
    import playwright.sync_api as playwright_api
    from PIL import Image
except ImportError:
    cannot_run("no playwright: pip install -e '.[site,notebooks]' (make lab-check does)")
try:
    version("jupyterlab")
except PackageNotFoundError:
    cannot_run("no JupyterLab: pip install -e '.[notebooks]' (make lab-check does)")
import nbformat  # noqa: E402  (with JupyterLab)
from test_site import CHROMIUM, FLAGS  # noqa: E402  (the same chromium, found the same way)

if CHROMIUM is None:
    cannot_run("no chromium on this machine: apt-get install chromium (make lab-check does)")


# -- JupyterLab served locally ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server on ``root``, run by ``python`` (whose ipykernel is the notebooks' kernel)."""

    def __init__(self, python: Path, root: Path, home: Path):
        self.python, self.root, self.token, port = python, root, secrets.token_hex(16), free_port()
        self.url = f"http://127.0.0.1:{port}"
        major = int(run_py(python, "import jupyterlab; print(jupyterlab.__version__.split('.')[0])"))
        settings = home / "settings"
        if major >= 4:  # every cell in the page (no windowing), and no news or update prompts
            write_json(
                settings / "@jupyterlab/notebook-extension/tracker.jupyterlab-settings", {"windowingMode": "none"}
            )
            write_json(
                settings / "@jupyterlab/apputils-extension/notification.jupyterlab-settings",
                {"fetchNews": "false", "checkForUpdates": False},
            )
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(
            JUPYTER_TOKEN=self.token,
            JUPYTER_CONFIG_DIR=str(home / "config"),
            JUPYTER_DATA_DIR=str(home / "data"),
            JUPYTER_RUNTIME_DIR=str(home / "runtime"),
            IPYTHONDIR=str(home / "ipython"),
            NANODDPM_SMOKE="1",
            WANDB_MODE="disabled",
        )
        if "NANODDPM_CIFAR10_DIR" not in env:  # notebook 06 reads a tiny stand-in of CIFAR-10, as under make test
            sys.path.insert(0, str(ROOT / "tests" / "colab"))
            from fake_cifar10 import write_batches

            env["NANODDPM_CIFAR10_DIR"] = str(write_batches(home / "cifar10"))
        self.log = open(home / "server.log", "w")  # noqa: SIM115  (closed in stop)
        cmd = [str(python), "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}"]
        cmd += ["--ServerApp.port_retries=0", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True"]
        cmd += [f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={home / 'workspaces'}"]
        cmd += ["--allow-root"] if os.geteuid() == 0 else []  # CI containers run as root
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:
            try:
                self.api("GET", "status")
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    tail = (home / "server.log").read_text()[-2000:]
                    pytest.fail(f"JupyterLab ({python}) did not start:\n{tail}", pytrace=False)
                time.sleep(0.5)

    def api(self, method: str, path: str):
        req = urllib.request.Request(
            f"{self.url}/api/{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self):
        for s in self.api("GET", "sessions"):
            self.api("DELETE", f"sessions/{s['id']}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def run_py(python: Path, code: str) -> str:
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def write_json(path: Path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def cleared_copy(src: Path, dest: Path) -> Path:
    """The notebook with its committed outputs stripped, so that only this run's outputs are judged."""
    nb = nbformat.read(src, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, dest / src.name)
    return dest / src.name


# -- one notebook in the page -----------------------------------------------------------------------------------

PANEL = "(() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget; "
PANEL += "return w && w.content && w.sessionContext ? w : null; })()"
# the notebook as the page holds it: the kernel's status and, per cell, its prompt, errors and widget views
STATE_JS = f"""() => {{
  const p = {PANEL};
  if (!p) return null;
  const k = p.sessionContext.session && p.sessionContext.session.kernel;
  return {{
    path: p.context.path,
    kernel: k ? k.status : null,
    cells: p.content.widgets.map(c => {{
      const m = c.model, code = m.type === 'code', outs = code ? m.outputs.toJSON() : [];
      const view = 'application/vnd.jupyter.widget-view+json';
      return {{
        code: code,
        source: m.sharedModel ? m.sharedModel.getSource() : m.value.text,
        prompt: code ? ((c.node.querySelector('.jp-InputPrompt') || {{}}).textContent || '') : '',
        errors: outs.filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue),
        widgets: outs.filter(o => o.data && o.data[view]).length,
        rendered: c.node.querySelectorAll('.jp-OutputArea-output .jupyter-widgets').length,
      }};
    }}),
  }};
}}"""
READY_JS = f"""async () => {{
  const p = {PANEL};
  await p.sessionContext.ready;
  const k = p.sessionContext.session.kernel;
  return k.status;
}}"""
# the height the page needs to show the whole notebook at once (for its screenshot)
SCROLLERS = f"[{PANEL}.content.node, ...{PANEL}.content.node.querySelectorAll('.jp-WindowedPanel-outer')]"
HEIGHT_JS = f"() => Math.max(...{SCROLLERS}.map(s => s.scrollHeight - s.clientHeight)) + window.innerHeight"
TOP_JS = f"() => {SCROLLERS}.forEach(s => {{ s.scrollTop = 0; }})"


class Failed(Exception):
    """A fault of the notebook (or of its widget), in one sentence."""


def open_notebook(page, lab: Lab, name: str):
    # a workspace of its own: JupyterLab would otherwise reopen (and start kernels for) the notebooks opened before
    workspace = re.sub(r"[^A-Za-z0-9]+", "-", name)
    page.goto(f"{lab.url}/lab/workspaces/{workspace}/tree/{name}?token={lab.token}")
    page.wait_for_function(f"() => {{ const p = {PANEL}; return p && p.context.path === {json.dumps(name)}; }}")
    page.evaluate(READY_JS)
    page.wait_for_function(f"() => {PANEL}.sessionContext.session.kernel.status === 'idle'", timeout=120_000)


def run_all(page, name: str, timeout: float):
    """Run > Run All Cells, then wait until every cell has finished; a Failed names the cell that did not."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^\s*Run\s*$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    deadline = time.monotonic() + timeout
    while True:
        state = page.evaluate(STATE_JS)
        code = [(i, c) for i, c in enumerate(state["cells"]) if c["code"] and c["source"].strip()]
        running = [(i, c) for i, c in code if "*" in c["prompt"]]
        errored = any(c["errors"] for _, c in code)
        finished = all(re.search(r"\d", c["prompt"]) for _, c in code)
        if state["kernel"] == "idle" and not running and (finished or errored):
            return state
        if time.monotonic() > deadline:
            i, c = running[0] if running else (None, None)
            where = f"cell {i} ({first_line(c['source'])!r})" if c else "a cell (none shows [*])"
            raise Failed(f"{name}: {where} never finished within {timeout:.0f} s")
        time.sleep(1)


def first_line(text: str) -> str:
    return next((line for line in text.strip().splitlines()), "")[:100]


def screenshot_notebook(page, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": min(int(page.evaluate(HEIGHT_JS)), 30000)})
    page.evaluate(TOP_JS)
    page.wait_for_timeout(500)
    page.screenshot(path=str(path))
    page.set_viewport_size(size)


# -- widgets: move each control, the figure must redraw ---------------------------------------------------------

CONTROLS = ".widget-slider, .widget-hslider, .widget-toggle-buttons, .widget-dropdown"


def control_value(control) -> str:
    """What the control shows: a slider's readout, the pressed toggle button, the selected option."""
    return control.evaluate(
        """c => { const r = c.querySelector('.widget-readout'); if (r) return r.textContent.trim() || r.value;
                  const b = c.querySelector('button.mod-active'); if (b) return b.textContent.trim();
                  const s = c.querySelector('select'); return s ? s.value : ''; }"""
    )


def move(page, control):
    """Move one control as a learner would: drag a slider's handle, click another button, pick another option."""
    buttons = control.locator("button:not(.mod-active)")
    select = control.locator("select")
    if buttons.count():
        buttons.first.click()
    elif select.count():
        options = select.first.locator("option").all_inner_texts()
        current = select.first.evaluate("s => s.options[s.selectedIndex].text")
        select.first.select_option(label=next(o for o in options if o != current))
    else:
        handle = control.locator(".noUi-handle, .ui-slider-handle").first
        handle.scroll_into_view_if_needed()
        track = control.locator(".noUi-target, .ui-slider").first.bounding_box()
        h = handle.bounding_box()
        x, y = h["x"] + h["width"] / 2, h["y"] + h["height"] / 2
        target = track["x"] + track["width"] * (0.8 if x < track["x"] + track["width"] / 2 else 0.2)
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(target, y, steps=8)
        page.mouse.up()


def pixels(img) -> Image.Image:
    return Image.open(io.BytesIO(img.screenshot())).convert("RGB")


def check_widgets(page, name: str, state, shots: Path, redraw: float) -> int:
    """Every widget view rendered, and every control of every widget redraws its figure; returns the controls moved."""
    for i, c in enumerate(state["cells"]):
        if c["widgets"] > c["rendered"]:
            raise Failed(f"{name}: cell {i}'s widget did not render in the page ({first_line(c['source'])!r})")
    moved = 0
    outputs = page.locator(".jp-OutputArea-output").filter(has=page.locator(CONTROLS))
    for w in range(outputs.count()):
        output = outputs.nth(w)
        figure = output.locator("img")
        if not figure.count():
            continue  # controls without a figure (none in the course)
        figure = figure.first
        controls = output.locator(CONTROLS)
        for k in range(controls.count()):
            control = controls.nth(k)
            label = control.locator(".widget-label").first.inner_text().strip() or f"control {k}"
            tag = f"widget{w}-{re.sub(r'[^A-Za-z0-9]+', '_', label)}"
            figure.scroll_into_view_if_needed()
            before, src = pixels(figure), figure.get_attribute("src")
            before.save(shots / f"{tag}-before.png")
            old = control_value(control)
            move(page, control)
            new, wait = control_value(control), time.monotonic() + 10
            while new == old and time.monotonic() < wait:  # a button shows its new state once the model has it
                page.wait_for_timeout(200)
                new = control_value(control)
            if new == old:
                raise Failed(f"{name}: widget {w}, control {label!r}: moving it did not change its value ({old})")
            try:
                page.wait_for_function(
                    "([img, src]) => img.src !== src && img.complete && img.naturalWidth > 0",
                    arg=[figure.element_handle(), src],
                    timeout=redraw * 1000,
                )
            except playwright_api.TimeoutError:
                kernel = page.evaluate(f"() => {PANEL}.sessionContext.session.kernel.status")
                raise Failed(
                    f"{name}: widget {w}, control {label!r} moved ({old} -> {new}) but the figure did not redraw"
                    f" within {redraw:.0f} s (the kernel is {kernel})"
                ) from None
            after = pixels(figure)
            after.save(shots / f"{tag}-after.png")
            if before.size == after.size and before.tobytes() == after.tobytes():
                raise Failed(f"{name}: widget {w}, control {label!r} moved ({old} -> {new}) but the figure is the same")
            moved += 1
    return moved


def check_notebook(
    browser, lab: Lab, name: str, shots: Path, timeout: float = TIMEOUT, redraw: float = REDRAW_TIMEOUT
) -> tuple[dict, int]:
    """Open, Run All Cells, screenshot, then the widgets; raises Failed with what is wrong."""
    shots.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        open_notebook(page, lab, name)
        try:
            state = run_all(page, name, timeout)
        finally:
            screenshot_notebook(page, shots / "notebook.png")
        errors = [f"cell {i}: {first_line(e)}" for i, c in enumerate(state["cells"]) for e in c["errors"]]
        if errors:
            raise Failed(f"{name}: error output in " + "; ".join(errors))
        return state, check_widgets(page, name, state, shots, redraw)
    finally:
        page.close()
        lab.shutdown_kernels()


# -- fixtures ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


def serve(python: Path, tmp_path_factory):
    base = tmp_path_factory.mktemp("lab")
    (base / "notebooks").mkdir()
    (base / "home").mkdir()
    return Lab(python, base / "notebooks", base / "home")


@pytest.fixture(scope="module")
def lab8(tmp_path_factory):
    lab = serve(Path(sys.executable), tmp_path_factory)
    yield lab
    lab.stop()


def widgets7_venv() -> Path:
    """ipywidgets 7.7.1, JupyterLab 3.6 and the package (its dependencies at the versions here), built once."""
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = [re.match(r"[A-Za-z0-9_.-]+", d).group() for d in deps]
    pins = WIDGETS7_FRONT + [f"{n}=={version(n)}" for n in names if n != "ipywidgets"]
    key = hashlib.sha1(("\n".join(pins) + sys.version).encode()).hexdigest()[:12]
    venv = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nanoddpm" / "lab-widgets7" / key
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        for args in (["ipykernel", *pins], ["--no-deps", "-e", str(ROOT)]):
            r = subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args],
                capture_output=True,
                text=True,
                timeout=1800,
            )
            if r.returncode:
                pytest.fail(f"could not build the ipywidgets 7.7.1 venv in {venv} (needs PyPI):\n{r.stderr[-3000:]}")
        (venv / ".complete").touch()
    return python


@pytest.fixture(scope="module")
def lab7(tmp_path_factory):
    if not WIDGETS7:
        pytest.skip("ipywidgets 7.7.1 under JupyterLab 3.6: NANODDPM_LAB_WIDGETS7=1 (make lab-check-widgets7)")
    lab = serve(widgets7_venv(), tmp_path_factory)
    assert run_py(lab.python, "import ipywidgets; print(ipywidgets.__version__)") == "7.7.1"
    yield lab
    lab.stop()


# -- the check can fail: one tiny notebook per fault -------------------------------------------------------------

WIDGET_SRC = """\
from nanoddpm_utils import widgets
import matplotlib.pyplot as plt

def draw(t):
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, {value}])
    ax.set_title({title})
    return fig

widgets.interactive_figure(lambda t, shape: draw(t), t=(0, 10, 1, 2), shape=["line", "dot"])"""
FAULTS = {
    "error": (
        ["x = 1", "raise ValueError('the fault we planted')", "y = 2"],
        r"cell 1: ValueError: the fault we planted",
    ),
    "hang": (["import time", "time.sleep(3600)"], r"cell 1 \('time.sleep\(3600\)'\) never finished within 30 s"),
    # the figure ignores the slider: moving it leaves the picture as it was
    "frozen": ([WIDGET_SRC.format(value="1", title="'t ignored'")], r"control 't' moved \(2 -> \d+\) but the figure"),
    # the slider redraws, the buttons are not passed to the figure
    "buttons": ([WIDGET_SRC.format(value="t", title="f't = {t}'")], r"control 'shape' moved \(line -> dot\) but the"),
}


def tiny_notebook(lab: Lab, name: str, sources: list[str]) -> str:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, lab.root / f"{name}.ipynb")
    return f"{name}.ipynb"


@pytest.mark.parametrize("fault", FAULTS)
def test_the_check_catches(browser, lab8, fault):
    sources, message = FAULTS[fault]
    name = tiny_notebook(lab8, f"fault_{fault}", sources)
    with pytest.raises(Failed, match=message):
        check_notebook(browser, lab8, name, SHOTS / "faults" / fault, timeout=30, redraw=20)


def test_a_working_widget_passes(browser, lab8):
    good = WIDGET_SRC.format(value="t if shape == 'line' else -t", title="f't = {t}, {shape}'")
    good = good.replace("lambda t, shape: draw(t)", "draw").replace("def draw(t):", "def draw(t, shape):")
    name = tiny_notebook(lab8, "good_widget", [good])
    state, moved = check_notebook(browser, lab8, name, SHOTS / "faults" / "good")
    assert moved == 2 and state["cells"][0]["widgets"] == 1


def test_the_check_catches_a_frozen_widget_on_ipywidgets7(browser, lab7):
    name = tiny_notebook(lab7, "fault_frozen", FAULTS["frozen"][0])
    with pytest.raises(Failed, match=FAULTS["frozen"][1]):
        check_notebook(browser, lab7, name, SHOTS / "widgets7" / "faults" / "frozen", timeout=120, redraw=20)


# -- the course ---------------------------------------------------------------------------------------------------

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def check_course_notebook(browser, lab: Lab, path: Path, shots: Path):
    name = cleared_copy(path, lab.root).name
    try:
        state, moved = check_notebook(browser, lab, name, shots / path.stem)
    except Failed as e:
        pytest.fail(str(e), pytrace=False)
    makers = [i for i, c in enumerate(state["cells"]) if c["code"] and WIDGET_CALL.search(c["source"])]
    if makers:  # a notebook that builds widgets must show them, with controls that were moved
        assert moved >= len(makers), f"{path.name}: {len(makers)} widget cell(s) {makers}, {moved} controls moved"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_in_jupyterlab(browser, lab8, path):
    check_course_notebook(browser, lab8, path, SHOTS)


WIDGET_PATHS = [p for p in NOTEBOOKS if p.name.startswith(WIDGET_NOTEBOOKS)]


@pytest.mark.parametrize("path", WIDGET_PATHS, ids=[p.stem for p in WIDGET_PATHS])
def test_widget_notebook_with_ipywidgets7(browser, lab7, path):
    check_course_notebook(browser, lab7, path, SHOTS / "widgets7")
