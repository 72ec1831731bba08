"""Build the course as a static web site from the committed notebooks (``make site``; see docs/site.md).

    python tools/build_site.py              # writes build/site/index.html
    python tools/build_site.py --out DIR    # elsewhere

It gathers the sources in build/site-src, laid out like the repository (notebooks/NN_name.ipynb,
docs/cheatsheet.md) so that the links between them resolve, then runs Sphinx (myst-nb,
sphinx-book-theme; configuration in site/conf.py) with warnings as errors. On the way it:
- writes the home page: the course map (every notebook, its title, its Colab link) and a sample picture
  (the first local image of README.md, else the last figure of an executed sampling notebook);
- swaps the Colab badge image (served by Google) for a local copy, so that no page loads anything from
  the internet, and points links to other repository files at GitHub;
- says on top of a page when its outputs come from smoke mode, or when it was not executed;
- leaves out the Colab setup cell (it does nothing outside Colab).
Nothing is executed: the pages show the outputs `make executed` committed.
"""

import argparse
import base64
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "site"
_spec = importlib.util.spec_from_file_location("sync_notebooks", ROOT / "tools" / "sync_notebooks.py")
sync = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sync)

SAMPLE_FROM = ["05_reverse_sampler", "04_training_loop"]  # where a sample picture is looked for, in order
LINK_RE = re.compile(r"(\]\()([^)\s#]+)(#[^)\s]*)?(\))")  # markdown links and images: ](target#anchor)
SITE_DOCS = {"docs/cheatsheet.md"}  # repository documents that become pages when they exist


def github_url(path: str) -> str:
    return f"https://github.com/{sync.REPO}/blob/{sync.BRANCH}/{path}"


def rewrite_links(text: str, src: str, pages: set[str]) -> str:
    """Point relative links to files that are not pages of the site at GitHub; badges at the local badge."""
    text = text.replace(sync.BADGE_IMG, "/_static/colab-badge.svg")

    def fix(m):
        target = m[2]
        if re.match(r"[a-z]+:", target) or target.startswith("/"):
            return m[0]
        path = os.path.normpath(os.path.join(os.path.dirname(src), target))
        if path in pages or path.endswith(".ipynb"):  # a notebook that is not a page: Sphinx fails on it
            return m[0]
        return m[1] + github_url(path) + (m[3] or "") + m[4]

    return LINK_RE.sub(fix, text)


def title_of(nb) -> str:
    first = next(c for c in nb.cells if c.cell_type == "markdown").source
    return re.sub(r"^#+\s*", "", first.strip().split("\n", 1)[0])


def note_cell(nb):
    info = sync.executed_info(nb)
    if info is None:
        return (
            "```{note}\nThis page shows the notebook's code without its outputs: it has not been executed "
            "(`make executed`). Open it in Colab to run it.\n```"
        )
    if info.get("mode") == "smoke":
        data = (
            " Its data is a tiny stand-in (coloured blobs in CIFAR-10's file layout), not CIFAR-10: the machine "
            "that ran it could not download the dataset, so the cells that need the real images show no output."
            if info.get("stand_in")
            else ""
        )
        return (
            "```{note}\nThe outputs on this page come from the notebook's smoke mode (`NANODDPM_SMOKE=1`): "
            f"tiny sizes and few steps, so that it runs in minutes.{data} Run it yourself for the real thing.\n```"
        )
    return None


def sample_picture(notebooks: list[Path], src: Path) -> str | None:
    """Copy a sample picture into src; returns its file name, or None when there is none to show."""
    readme = ROOT / "README.md"
    if readme.exists():
        for m in re.finditer(r"!\[[^]]*\]\(([^)\s]+)\)", readme.read_text()):
            local = ROOT / m[1]
            if not re.match(r"[a-z]+:", m[1]) and local.is_file():
                shutil.copy(local, src / ("sample" + local.suffix))
                return "sample" + local.suffix
    by_name = {p.stem: p for p in notebooks}
    for name in SAMPLE_FROM:
        if name in by_name:
            nb = nbformat.read(by_name[name], as_version=4)
            pngs = [
                o["data"]["image/png"]
                for c in sync.code_cells(nb)
                for o in c.outputs
                if "image/png" in o.get("data", {})
            ]
            if sync.executed_info(nb) and pngs:
                (src / "sample.png").write_bytes(base64.b64decode(pngs[-1]))
                return "sample.png"
    return None


def build_sources(src: Path) -> None:
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(SITE, src)
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    docs = sorted(d for d in SITE_DOCS if (ROOT / d).exists())
    pages = {f"notebooks/{p.name}" for p in notebooks} | set(docs)

    (src / "notebooks").mkdir()
    rows, toc = [], []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        rel = f"notebooks/{path.name}"
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = rewrite_links(cell.source, rel, pages)
        setup = next(c for c in nb.cells if c.cell_type == "code")
        if setup.source == sync.setup_cell():  # Colab-only plumbing: not shown on the site
            setup.metadata.setdefault("tags", []).append("remove-cell")
        note = note_cell(nb)
        if note:  # after the title cell
            nb.cells.insert(1, nbformat.v4.new_markdown_cell(note))
        nbformat.write(nb, src / rel)
        number, _, _ = path.stem.partition("_")
        rows.append(
            f"| {number} | [{title_of(nb)}]({rel}) | "
            f"[![Open in Colab](_static/colab-badge.svg)]({sync.colab_url(rel)}) |"
        )
        toc.append(rel.removesuffix(".ipynb"))

    for doc in docs:
        text = (ROOT / doc).read_text()
        colab = (
            f"[![Open in Colab](/_static/colab-badge.svg)]({sync.colab_url(notebooks[0].relative_to(ROOT).as_posix())})"
        )
        lines = text.split("\n")
        head = next((i for i, line in enumerate(lines) if line.startswith("# ")), -1)
        lines.insert(head + 1, f"\n{colab} (the course starts with notebook {notebooks[0].stem[:2]})\n")
        (src / doc).parent.mkdir(parents=True, exist_ok=True)
        (src / doc).write_text(rewrite_links("\n".join(lines), doc, pages))
        toc.append(doc.removesuffix(".md"))

    picture = sample_picture(notebooks, src)
    index = (src / "index.md").read_text()
    index = index.replace("{{ sample_picture }}", f"![Samples drawn by a trained model]({picture})" if picture else "")
    index = index.replace("{{ course_map }}", "\n".join(["| | notebook | run it |", "| --- | --- | --- |", *rows]))
    index = index.replace("{{ toc }}", "\n".join(toc))
    index = index.replace(
        "{{ cheatsheet }}",
        "The [cheat sheet](docs/cheatsheet.md) has every formula and function on one page." if docs else "",
    )
    (src / "index.md").write_text(index)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "site", help="where the HTML goes")
    parser.add_argument("--src", type=Path, default=ROOT / "build" / "site-src", help="where the sources gather")
    args = parser.parse_args(argv)

    build_sources(args.src)
    env = {**os.environ, "NANODDPM_SITE_REPO": sync.REPO, "NANODDPM_SITE_BRANCH": sync.BRANCH}
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q", "-E", str(args.src), str(args.out)]
    rc = subprocess.run(cmd, env=env).returncode
    if rc == 0:
        print(f"site: {args.out / 'index.html'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
