# Everything runs in .venv, which the first target that needs it creates (set-up included on a fresh machine).
PYTHON ?= python3
VENV ?= .venv
REQUIREMENTS ?= requirements.lock
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(notdir $(REQUIREMENTS))
PYTEST_ARGS ?=

.PHONY: setup test report report-scale bench profile lint clean docs mutation fuzz schema

setup: $(STAMP)

$(STAMP): $(REQUIREMENTS) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r $(REQUIREMENTS)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $@

# The harness's own tests and every shipped case, on every device present (the layering, the docs site's strict
# build and its examples are tests too: tests/project/test_architecture.py, tests/docs/).
test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

# Runs every shipped case and writes reports/index.html, reports/results.json and reports/junit.xml.
# With reports/bench.json from `make bench`, the report also has the speed table.
report: setup
	$(PY) -m xfw_harness run cases --quiet --json reports/results.json --junit reports/junit.xml \
	  --html reports/index.html $(if $(wildcard reports/bench.json),--bench reports/bench.json); \
	  status=$$?; echo "open reports/index.html"; exit $$status

# Speed of every block in both frameworks, the harness's overhead, its memory at 200 and 2,000 tests
# (pytest-benchmark; reports/bench.json), then the report with its speed table.
bench: setup
	mkdir -p reports
	$(PY) -m pytest benchmarks -p no:cacheprovider --benchmark-json=reports/bench.json \
	  --benchmark-columns=median,iqr,rounds --benchmark-sort=name $(PYTEST_ARGS)
	$(MAKE) --no-print-directory report

# Where a full run's time goes (pyinstrument): reports/profile.html.
profile: setup
	mkdir -p reports
	$(PY) -m pyinstrument -r html -o reports/profile.html -m xfw_harness run cases --quiet
	@echo "open reports/profile.html"

# Mutation check, three parts; exit status 1 if any finds a survivor. (1) mutmut (pyproject.toml's [tool.mutmut])
# over the modules that decide verdicts, each mutant against the tests that call the mutated function, in workers
# forked from a fork server, cached in mutants/ (a rerun retests what changed and every survivor; timeouts are
# rechecked unforked): the score per module and every survivor not in mutation/equivalent.yaml, by file:line
# (scripts/mutation_tool.py). (2) The same over the blocks' emulation geometry against the shipped cases that pin it
# (--scope emulations, in .mutation/emulations/). (3) Realistic adapter bugs (scripts/mutants.py), one at a time in a
# copy of the harness, against the shipped cases. Times: docs/performance.md. `make test` checks all three in short
# (tests/project/test_mutation.py, test_mutation_tool.py).
mutation: setup
	@status=0; $(PY) scripts/mutation_tool.py || status=1; $(PY) scripts/mutation_tool.py --scope emulations || status=1; \
	$(PY) scripts/mutation.py || status=1; exit $$status

# Property-based search for divergences (xfw-harness fuzz) in every registered block and in random networks; the
# minimal case of each finding is written to reports/fuzz/. Cases with a difference catalogued in
# cases/known_differences.yaml are counted as known and not searched. Exit status 1 when something was found (or a
# block's run could compare nothing).
FUZZ_EXAMPLES ?= 100
fuzz: setup
	@status=0; for block in $$($(PY) -c "from xfw_harness.tools.fuzz import fuzzable_blocks; print(*fuzzable_blocks())"); do \
	  $(PY) -m xfw_harness fuzz $$block --examples $(FUZZ_EXAMPLES) || status=1; done; exit $$status

# The report's size and load time on the shipped suite and on a generated one of 2,000 tests (docs/performance.md).
report-scale: setup
	$(PY) scripts/report_scale.py --tests 2000 --out reports/scale

# ruff, and import-linter's layers contract (pyproject.toml: each package imports only the layers below it).
lint: setup
	$(PY) -m ruff check xfw_harness tests scripts benchmarks docs
	$(VENV)/bin/lint-imports --no-cache

# Generated from the block registry: the case file's JSON Schema for editors (xfw_harness/cases/json_schema.py, with the
# loader's tables) and the block catalogue that `xfw-harness list` and `xfw-harness new` read (xfw_harness/tools/catalogue.py),
# into xfw_harness/data/; a test fails while either shipped file is stale.
schema: setup
	$(PY) -m xfw_harness.cases.json_schema
	$(PY) -m xfw_harness.tools.catalogue

clean:
	rm -rf $(VENV) reports .pytest_cache .ruff_cache

# The documentation site (mkdocs.yml, docs/): built strictly into reports/site; its block reference and catalogue of
# known differences are generated at build time (docs/hooks.py). `.venv/bin/mkdocs serve` serves it while editing.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir reports/site
	@echo "open reports/site/index.html"

# The model zoo as a benchmark: torchvision's models (random weights) through `xfw-harness port`, each in its own
# process, then each saved .keras reloaded in a fresh process: reports/zoo/zoo.json and zoo.md. Its own venv,
# .venv-zoo (requirements-zoo.txt: torch 2.14.1 and torchvision 0.29.1, a CUDA build of about 5.5 GB that runs on
# the CPU), since torchvision does not import beside requirements.lock's torch 2.13.0. ZOO_ARGS: e.g.
# `--models resnet18 alexnet --timeout 300`, or `--fx-census` for what torch.fx and torch.export make of each model.
.PHONY: zoo
ZOO_VENV := .venv-zoo
ZOO_STAMP := $(ZOO_VENV)/.installed-requirements-zoo.txt
ZOO_ARGS ?=

$(ZOO_STAMP): requirements-zoo.txt pyproject.toml
	$(PYTHON) -m venv $(ZOO_VENV)
	$(ZOO_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-zoo.txt
	$(ZOO_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	rm -f $(ZOO_VENV)/.installed-*
	touch $@

zoo: $(ZOO_STAMP)
	$(ZOO_VENV)/bin/python scripts/zoo.py --out reports/zoo $(ZOO_ARGS)
