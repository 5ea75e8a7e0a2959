# Everything runs in .venv, which the first target that needs it creates (set-up included on a fresh machine).
PYTHON ?= python3
VENV ?= .venv
REQUIREMENTS ?= requirements.lock
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(notdir $(REQUIREMENTS))
PYTEST_ARGS ?=

.PHONY: setup test report report-scale lint clean readme

setup: $(STAMP)

$(STAMP): $(REQUIREMENTS) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r $(REQUIREMENTS)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $@

# The harness's own tests and every shipped case, on every device present.
test: setup
	$(PY) -m ruff check harness tests scripts
	$(PY) -m pytest $(PYTEST_ARGS)

# Runs every shipped case and writes reports/index.html, reports/results.json and reports/junit.xml.
report: setup
	$(PY) -m harness run cases --quiet --json reports/results.json --junit reports/junit.xml \
	  --html reports/index.html; status=$$?; echo "open reports/index.html"; exit $$status

# The report's size and load time on the shipped suite and on a generated one of 2,000 tests (README figures).
report-scale: setup
	$(PY) scripts/report_scale.py --tests 2000 --out reports/scale

lint: setup
	$(PY) -m ruff check harness tests scripts

clean:
	rm -rf $(VENV) reports .pytest_cache .ruff_cache

# Regenerates the README's block table from the registry (tests/test_readme.py checks that it is current).
readme: setup
	$(PY) -c "import re, pathlib, harness.registry as r, harness.cli as c; p = pathlib.Path('README.md'); \
	  s = p.read_text(); t = c.markdown_block_table(r.all_blocks()); \
	  p.write_text(re.sub(r'(<!-- BLOCK TABLE START -->\n).*?(<!-- BLOCK TABLE END -->)', \
	  lambda m: m.group(1) + t + '\n' + m.group(2), s, flags=re.S))"
