"""Sphinx configuration of the course site (built by tools/build_site.py; see docs/site.md).

The pages are the executed notebooks, rendered by myst-nb from their committed outputs (nothing runs
here), with sphinx-book-theme (Jupyter Book's look). Everything a page loads is in the built site:
MathJax comes from sphinx-mathjax-offline, the theme bundles its fonts and icons, and nothing points
at a CDN, so the site works offline and in CI.
"""

import os

project = "nanoJaxDDPM"
author = "nanoJaxDDPM contributors"
REPO = os.environ["NANODDPM_SITE_REPO"]  # owner/name, from tools/sync_notebooks.py (set by tools/build_site.py)
BRANCH = os.environ["NANODDPM_SITE_BRANCH"]

extensions = ["myst_nb", "sphinx-mathjax-offline"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
nb_execution_mode = "off"  # the pages show the outputs committed by `make executed`
nb_ipywidgets_js = {}  # no widget manager from a CDN: the notebooks' sliders are shown as their first picture
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_dmath_double_inline = True  # $$...$$ inside a paragraph is display maths, as in Jupyter
myst_heading_anchors = 3
suppress_warnings = [
    "mystnb.unknown_mime_type",  # widget views without state: their text/plain is shown
    "myst.header",  # the notebooks go from a title (H1) straight to their sections (H3)
]

html_theme = "sphinx_book_theme"
html_title = "nanoJaxDDPM"
html_static_path = ["_static"]
html_last_updated_fmt = None
html_context = {"default_mode": "light"}  # without it the theme logs "invalid theme mode" to the console
html_theme_options = {
    "repository_url": f"https://github.com/{REPO}",
    "repository_branch": BRANCH,
    "path_to_docs": "",  # the site's sources mirror the repository: notebooks/NN_name.ipynb
    "use_repository_button": True,
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    "show_toc_level": 2,
    "secondary_sidebar_items": {"**": ["page-toc"], "index": []},  # the home page is one short page
}
