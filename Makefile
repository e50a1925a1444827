# Two entry points: `make demo` (the main job) and `make test` (lint + docs + whole suite).
# Each creates and reuses a virtual environment in .venv with a Python >= 3.12.
#
# Notebooks: the sources are notebooks/*.py (jupytext percent format). `make notebooks`
# executes them in the full setting into docs/notebooks/*.ipynb (committed; the docs site
# renders them as they are, never re-executing). `make test` executes each once in the small
# setting (NUMPYRO_EBM_SMALL=1, tests/test_notebooks.py) and checks that every committed
# render has the cells (code and text) of its source, so CI runs each notebook once.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
NPROC := $(shell nproc 2>/dev/null || echo 2)

.PHONY: demo quickstart test test-fast lint docs notebooks chromium bench venv clean

$(STAMP): pyproject.toml scripts/find_python.sh
	@set -e; \
	if [ ! -x "$(PY)" ] || ! "$(PY)" -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then \
	  BASE=$$(bash scripts/find_python.sh); \
	  echo "Creating $(VENV) with $$BASE"; \
	  rm -rf "$(VENV)"; "$$BASE" -m venv "$(VENV)"; \
	fi; \
	"$(PY)" -m pip install -q --upgrade pip; \
	"$(PY)" -m pip install -q -e ".[plots,nn,bench,sbi,docs,dev]"; \
	touch "$(STAMP)"

venv: $(STAMP)

# The demo is notebook 1 in its small setting, run as a script: learn an energy on the
# digits, restore noisy half-masked held-out digits with it as a NumPyro prior (MALA, NUTS),
# compare with a Gaussian prior, diagnose; numbers printed, figures in outputs/demo/.
demo: $(STAMP)
	NUMPYRO_EBM_SMALL=1 NUMPYRO_EBM_OUT=outputs/demo MPLBACKEND=Agg \
	  $(PY) notebooks/01_digits_prior.py

quickstart: $(STAMP)
	$(PY) examples/quickstart.py --out outputs/quickstart

lint: $(STAMP)
	$(VENV)/bin/ruff check numpyro_ebm tests examples benchmarks scripts notebooks docs/hooks

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

notebooks: $(STAMP)
	$(PY) scripts/execute_notebooks.py

# Headless Chromium for tests/test_docs_browser.py (Debian's package). Installed when we can
# (root or passwordless sudo with apt-get); otherwise that test skips and says why.
chromium:
	@if [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; then exit 0; fi; \
	if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then SUDO=""; \
	elif command -v apt-get >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	else echo "chromium not installed and cannot be installed here:" \
	  "tests/test_docs_browser.py will skip"; exit 0; fi; \
	echo "Installing chromium (apt-get) for the docs browser test"; \
	$$SUDO apt-get install -y -q chromium >/dev/null || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium >/dev/null; } || \
	  echo "apt-get could not install chromium: tests/test_docs_browser.py will skip"

test: $(STAMP) lint docs chromium
	DOCS_SITE_DIR=site $(PY) -m pytest -n $(NPROC) --dist loadgroup -q $(PYTEST_ARGS)

test-fast: $(STAMP) lint
	DOCS_SITE_DIR= $(PY) -m pytest -n $(NPROC) --dist loadgroup -q -m "not slow" $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) site outputs .pytest_cache
