# Two entry points: `make demo` (the main job) and `make test` (lint + docs + whole suite).
# Each creates and reuses a virtual environment in .venv with a Python >= 3.12.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
NPROC := $(shell nproc 2>/dev/null || echo 2)

.PHONY: demo test test-fast lint docs bench venv clean

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

demo: $(STAMP)
	$(PY) examples/quickstart.py --out outputs/quickstart

lint: $(STAMP)
	$(VENV)/bin/ruff check numpyro_ebm tests examples benchmarks

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

test: $(STAMP) lint docs
	$(PY) -m pytest -n $(NPROC) --dist loadgroup -q $(PYTEST_ARGS)

test-fast: $(STAMP) lint
	$(PY) -m pytest -n $(NPROC) --dist loadgroup -q -m "not slow" $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) site outputs .pytest_cache
