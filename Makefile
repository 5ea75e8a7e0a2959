# Everything runs in .venv, which the first target that needs it creates (set-up included on a fresh machine).
PYTHON ?= python3
VENV ?= .venv
REQUIREMENTS ?= requirements.lock
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(notdir $(REQUIREMENTS))
PYTEST_ARGS ?=

.PHONY: setup test report lint clean

setup: $(STAMP)

$(STAMP): $(REQUIREMENTS) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r $(REQUIREMENTS)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $@

# The harness's own tests and every shipped case, on every device present.
test: setup
	$(PY) -m ruff check harness tests
	$(PY) -m pytest $(PYTEST_ARGS)

# Runs every shipped case and writes reports/index.html and reports/results.json.
report: setup
	$(PY) -m harness run cases --quiet --json reports/results.json --html reports/index.html; \
	  status=$$?; echo "open reports/index.html"; exit $$status

lint: setup
	$(PY) -m ruff check harness tests

clean:
	rm -rf $(VENV) reports .pytest_cache .ruff_cache
