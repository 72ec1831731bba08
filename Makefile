# The README's commands. Each creates .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PRESET ?= digits
RUN    ?= runs/$(PRESET)

.PHONY: train pretrained test lab bench executed site site-check chromium colab-check clean

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
	$(PY) -m nanoddpm_utils.pretrained digits digits_cond

## test: the package tests and every notebook (pytest --nbmake), in smoke mode
test: $(VENV)/.installed-dev
	NANODDPM_SMOKE=1 $(PY) -m pytest -n 2 --dist loadfile --nbmake tests $(wildcard notebooks/*.ipynb)

## lab: open the notebooks locally
lab: $(VENV)/.installed-notebooks
	$(VENV)/bin/jupyter lab notebooks

## bench: benchmarks (not tests), ours beside the PyTorch peer; prints tables quoted in the README
bench: $(VENV)/.installed-bench
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

# Debian's chromium for the browser test (installed when missing and we may; the test skips without it)
chromium:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } || \
	  echo "no chromium: install it (apt-get install chromium); the browser test will skip"

## colab-check: the Colab replica in full (Colab's preinstalled packages in a venv, a fake google.colab): colab_setup.sh,
## the unit suite on Colab's jax, notebooks 01 and 06 as on Colab, 06 resumed from a fake Drive (needs PyPI once)
colab-check: $(VENV)/.installed-dev
	NANODDPM_COLAB_CHECK=1 $(PY) -m pytest -q tests/test_colab_replica.py

clean:
	rm -rf $(VENV) runs .pytest_cache
