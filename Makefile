# The README's commands. Each creates .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PRESET ?= digits
RUN    ?= runs/$(PRESET)

PY313  ?= $(shell pyenv root 2>/dev/null)/versions/3.13.0/bin/python

.PHONY: train pretrained test test-313 lab bench executed site site-check chromium lab-check lab-check-widgets7 colab-check clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	touch $@

$(VENV)/.installed-site: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[dev,site]"
	touch $@

$(VENV)/.installed-notebooks: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[notebooks]"
	touch $@

## train: train the digits preset on CPU and write runs/digits (checkpoint, samples.png, metrics)
train: $(VENV)/.installed
	$(PY) -m nanoddpm_utils train --preset $(PRESET) --out $(RUN) $$(test -d $(RUN)/checkpoints && echo --resume)
	$(PY) -m nanoddpm_utils sample --run $(RUN) --num 64 --out $(RUN)/samples.npz

## pretrained: train the shipped models again (the digits presets from their seeds) into nanoddpm_utils/weights/
pretrained: $(VENV)/.installed
	$(PY) -m nanoddpm_utils.pretrained digits digits_cond digits_fm

## test: ruff (lint, format), then the package tests and every notebook (pytest --nbmake), in smoke mode (the browser
## check of the site is make site-check's)
test: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	NANODDPM_SMOKE=1 $(PY) -m pytest -n 2 --dist loadfile --nbmake tests $(wildcard notebooks/*.ipynb) \
	  --ignore=tests/test_site.py --ignore=tests/test_lab.py

## test-313: the unit tests (not the notebooks) on Python 3.13 (PY313=... names another), in .venv-313 at the
## versions of constraints.txt; the Colab replica (a venv of its own) and the browser check are left out
.venv-313/.installed-dev: pyproject.toml
	$(PY313) -m venv .venv-313
	.venv-313/bin/python -m pip install --quiet --upgrade pip
	.venv-313/bin/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

test-313: .venv-313/.installed-dev
	NANODDPM_SMOKE=1 .venv-313/bin/python -m pytest -x -q -n 2 --dist loadfile tests \
	  --ignore=tests/test_colab_replica.py --ignore=tests/test_site.py --ignore=tests/test_lab.py

## lab: open the notebooks locally
lab: $(VENV)/.installed-notebooks
	$(VENV)/bin/jupyter lab notebooks

## bench: the parameter count of our UNet against the PyTorch peer's (the test; pytest says how long it took), then
## the benchmarks (not tests), ours beside the peer; prints tables quoted in the README
bench: $(VENV)/.installed-bench
	$(PY) -m pytest -q tests/test_bench.py::test_peer_matches_our_architecture_and_times
	$(PY) bench/run_all.py

## executed: run the stale notebooks (code, mode or a package file they use changed since their outputs were made;
## 06 in its smoke mode) and write their outputs into the committed .ipynb files
executed: $(VENV)/.installed-site
	$(PY) tools/sync_notebooks.py
	WANDB_MODE=disabled $(PY) tools/execute_notebooks.py --stale
	NANODDPM_REQUIRE_EXECUTED=1 $(PY) -m pytest -q tests/test_notebooks.py

## site: the course as a static web site, build/site/index.html, from the committed notebooks (no network)
site: $(VENV)/.installed-site
	$(PY) tools/build_site.py

## site-check: build the site, then open every page in headless Chromium (screenshots: build/site-screenshots/)
site-check: site chromium
	NANODDPM_SITE_DIR=$(CURDIR)/build/site $(PY) -m pytest -q tests/test_site.py

$(VENV)/.installed-lab: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[dev,site,notebooks]"
	touch $@

## lab-check: every notebook in JupyterLab in headless Chromium: Run All Cells in smoke mode (no error output, every
## cell finishes), every widget's controls moved (its figure must redraw); screenshots: build/lab-screenshots/
lab-check: $(VENV)/.installed-lab chromium
	$(PY) -m pytest -q tests/test_lab.py

## lab-check-widgets7: the widget notebooks again with ipywidgets 7.7.1 (Colab's) under JupyterLab 3.6, in a venv
## built from PyPI once (~/.cache/nanoddpm/lab-widgets7)
lab-check-widgets7: $(VENV)/.installed-lab chromium
	NANODDPM_LAB_WIDGETS7=1 $(PY) -m pytest -q tests/test_lab.py -k ipywidgets7

# Debian's chromium for the browser test (installed when missing and we may; without it the test skips, or
# under CI=true fails, as this target does)
chromium:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } || \
	  if [ "$$CI" = true ]; then echo "no chromium and no root to install it: add chromium to the CI image" >&2; \
	  exit 1; else \
	  echo "no chromium: install it (apt-get install chromium); the browser test will skip"; fi

## colab-check: the Colab replica in full (Colab's preinstalled packages in a venv on Python 3.13 (PY313), a fake
## google.colab), for the CPU/GPU and the TPU runtimes' sets: colab_setup.sh, the unit suite on Colab's jax,
## notebooks 01 and 06 as on Colab, 06 resumed from a fake Drive (needs PyPI once)
colab-check: $(VENV)/.installed-dev
	NANODDPM_COLAB_CHECK=1 PY313=$(PY313) $(PY) -m pytest -q tests/test_colab_replica.py

clean:
	rm -rf $(VENV) .venv-313 runs .pytest_cache
