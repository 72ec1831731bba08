"""The course site, checked the way a reader meets it: every page in headless Chromium (see docs/site.md).

Each page of the built site must load with no console error and nothing from the internet, show every
image, leave no maths untypeset, and link only to pages and anchors that exist; a screenshot of each
page is written to build/site-screenshots/ for a person to look at. The first tests show the check
catches each fault on small pages built here. Needs Debian's chromium (`make site-check` installs it)
and the [site] extra; skips, saying which is missing, otherwise, except under CI=true, where it fails in one line
(CI must not pass without the check; `make test` leaves this file to `make site-check`). NANODDPM_SITE_DIR=DIR
checks a site already built there instead of building one.
"""

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "build" / "site-screenshots"
CHROMIUM = os.environ.get("NANODDPM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def cannot_run(reason: str):
    """Skip, saying why; under CI=true fail instead, in one line: a CI run must not pass without the check."""
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"CI=true and the browser check cannot run: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


try:
    import playwright.sync_api as playwright_api
except ImportError:
    cannot_run("no playwright: pip install -e '.[site]' (make site-check does)")
if CHROMIUM is None:
    cannot_run("no chromium on this machine: apt-get install chromium (make site-check does)")

# text a reader should never see: maths MathJax did not typeset
RAW_MATH_RE = re.compile(
    r"\$\$|\$[^$\s][^$\n]*\$|\\(frac|sqrt|mathbf|mathcal|alpha|beta|epsilon|sigma|bar|sum|"
    r"prod|left|right|begin|end|tilde|hat|mid|cdot|log)\b"
)
HIDE_CODE_JS = """() => {
  const body = document.body.cloneNode(true);
  body.querySelectorAll('pre, code, script, style, mjx-container, .MathJax, textarea').forEach(e => e.remove());
  return body.innerText;
}"""
IMAGES_JS = """async () => {
  const imgs = [...document.images];
  imgs.forEach(i => i.loading = 'eager');
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  return imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
}"""
MATHJAX_JS = (
    "async () => { if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise; }"
)


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


def serve(directory: Path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def check_page(browser, url: str, origin: str, root: Path, screenshot: Path | None = None) -> list[str]:
    """Everything wrong with one page, as sentences (an empty list: the page is fine)."""
    problems = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda m: m.type == "error" and problems.append(f"console error: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
    page.on("requestfailed", lambda r: r.url.startswith(origin) and problems.append(f"failed to load {r.url}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status} for {r.url}"))

    def offline(route):  # the site must work offline: anything from elsewhere is a fault, and is not fetched
        if route.request.url.startswith((origin, "data:", "blob:")):
            return route.continue_()
        problems.append(f"loads from the internet: {route.request.url}")
        return route.abort()

    page.route("**/*", offline)
    page.goto(url, wait_until="load")
    page.evaluate(MATHJAX_JS)
    for src in page.evaluate(IMAGES_JS):
        problems.append(f"image not loaded: {src}")
    for m in RAW_MATH_RE.finditer(page.evaluate(HIDE_CODE_JS)):
        problems.append(f"untypeset maths: ...{m.string[max(0, m.start() - 30) : m.end() + 30]!r}...")
    for href in set(page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")):
        if href.startswith(origin):
            problems += dead_link(href, origin, root)
    if screenshot:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
    page.close()
    return problems


@functools.cache
def _html(path: Path) -> str:
    return path.read_text(errors="replace")


def dead_link(href: str, origin: str, root: Path) -> list[str]:
    url, fragment = urldefrag(href)
    path = root / unquote(urlparse(url).path).lstrip("/")
    if path.is_dir():
        path = path / "index.html"
    if not path.is_file():
        return [f"dead link: {href}"]
    anchor = rf"""id=["']{re.escape(unquote(fragment))}["']"""
    if fragment and path.suffix == ".html" and not re.search(anchor, _html(path)):
        return [f"dead anchor: {href}"]
    return []


# -- the check can fail: one small page per fault --------------------------------------------------------------

GOOD = (
    "<!doctype html><html><head><meta charset='utf-8'><title>t</title></head>"
    "<body><h1 id='top'>Fine</h1>{}</body></html>"
)
FAULTS = {
    "fine": (
        "<p>Plain words, <a href='#top'>a link</a>, <img src='ok.svg'> and code: <code>$x$ \\frac</code></p>",
        None,
    ),
    "broken image": ("<img src='missing.png'>", "image not loaded"),
    "untypeset equation": ("<p>the loss $\\|\\epsilon - \\epsilon_\\theta\\|^2$ here</p>", "untypeset maths"),
    "raw frac": ("<p>and \\frac{1}{2} there</p>", "untypeset maths"),
    "console error": ("<script>console.error('boom')</script>", "console error"),
    "script error": ("<script>undefinedFunction()</script>", "script error"),
    "dead link": ("<a href='nowhere.html'>gone</a>", "dead link"),
    "dead anchor": ("<a href='#nowhere'>gone</a>", "dead anchor"),
    "internet": ("<img src='https://example.com/x.png'>", "loads from the internet"),
}


@pytest.fixture(scope="module")
def fault_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    (root / "ok.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg' width='4' height='4'/>")
    for name, (body, _) in FAULTS.items():
        (root / f"{name.replace(' ', '_')}.html").write_text(GOOD.format(body))
    server, origin = serve(root)
    yield root, origin
    server.shutdown()


@pytest.mark.parametrize("fault", FAULTS)
def test_the_check_catches(fault, browser, fault_site):
    root, origin = fault_site
    problems = check_page(browser, f"{origin}/{fault.replace(' ', '_')}.html", origin, root)
    expected = FAULTS[fault][1]
    if expected is None:
        assert problems == []
    else:
        assert any(p.startswith(expected) for p in problems), problems


# -- the real site -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if os.environ.get("NANODDPM_SITE_DIR"):
        root = Path(os.environ["NANODDPM_SITE_DIR"])
    else:
        try:
            import myst_nb  # noqa: F401
        except ImportError:
            cannot_run("building the site needs the [site] extra: pip install -e '.[site]'")
        root = tmp_path_factory.mktemp("site")
        src = tmp_path_factory.mktemp("site-src")
        run = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "build_site.py"), "--out", str(root), "--src", str(src)],
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, f"the site did not build:\n{run.stdout}\n{run.stderr}"
    server, origin = serve(root)
    yield root, origin
    server.shutdown()


def test_every_page(browser, site):
    root, origin = site
    pages = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.html") if "_static" not in p.parts)
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert "index.html" in pages and all(f"notebooks/{n}.html" in pages for n in notebooks), pages
    problems = []
    for rel in pages:
        shot = SCREENSHOTS / (rel.removesuffix(".html").replace("/", "__") + ".png")
        problems += [f"{rel}: {p}" for p in check_page(browser, f"{origin}/{rel}", origin, root, shot)]
    assert not problems, "\n".join(problems)


def test_open_in_colab_on_every_page_and_the_course_map(site):
    root, _ = site
    sys.path.insert(0, str(ROOT / "tools"))
    import sync_notebooks as sync

    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    index = (root / "index.html").read_text()
    for name in notebooks:  # the course map links every notebook, and its Colab address
        assert f'href="notebooks/{name}.html"' in index and sync.colab_url(f"notebooks/{name}.ipynb") in index, name
        page = (root / "notebooks" / f"{name}.html").read_text()
        assert sync.colab_url(f"notebooks/{name}.ipynb") in page, f"{name}.html has no Open-in-Colab link"
    for page in root.rglob("*.html"):
        if page.name not in {"genindex.html", "search.html"} and "_static" not in page.parts:
            assert "colab.research.google.com/github/" in page.read_text(), f"{page.name}: no Open-in-Colab link"
