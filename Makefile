# One-command set-up: `make demo` and `make test` create .venv and install everything first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast docs lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[test,lightning,hf,peers,docs]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) recipes/demo.py --output-dir reports/demo

# The whole suite (CI runs this); it ends by saying how long it took.
test: $(STAMP)
	@start=$$(date +%s); $(PY) -m pytest --durations=10; code=$$?; \
	echo "make test: $$(( ($$(date +%s) - start) / 60 )) min $$(( ($$(date +%s) - start) % 60 )) s of tests"; exit $$code

# A contributor's loop: everything not marked slow (under 3 minutes).
test-fast: $(STAMP)
	@start=$$(date +%s); $(PY) -m pytest -m "not slow"; code=$$?; \
	echo "make test-fast: $$(( $$(date +%s) - start )) s of tests"; exit $$code

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

lint: $(STAMP)
	$(VENV)/bin/ruff check robusttrain recipes bench research tests

clean:
	rm -rf $(VENV) reports build *.egg-info
