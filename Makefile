# One-command set-up: `make demo` and `make test` create .venv and install everything first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[test,lightning,hf,peers]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) recipes/demo.py --output-dir reports/demo

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check robusttrain recipes tests

clean:
	rm -rf $(VENV) reports build *.egg-info
