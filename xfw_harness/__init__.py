"""Cross-framework equivalence tests for neural-network building blocks: PyTorch vs Keras 3, from YAML cases.

The package is built in layers, each importing only those below it (pyproject.toml's import-linter contract;
docs/architecture.md):

    cli, pytest_plugin, __main__   entry points: thin shells over the layers below
    report                         the HTML report of a results document
    suite                          planning a run, sharding, results files, each test's details for the report
    tools                          xfw-harness show / new / port / fuzz, and the manual's generated pages
    engine                         one point on one device: built, run, compared and judged
    cases                          YAML case files in, validated points out
    blocks                         the block contract, the registry, network planning, one module per family
    core                           errors, schemas, layouts, spatial arithmetic, tolerances, verdicts, comparator
"""

__version__ = "0.1.0"
