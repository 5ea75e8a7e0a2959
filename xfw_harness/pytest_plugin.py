"""pytest plugin: YAML case files become tests: one per case x sweep point x device x Keras backend, run by
xfw_harness.suite.collect. Collected: files named `test_*.yaml` / `test_*.yml` wherever pytest collects tests (the ini
option `harness_case_files` changes the patterns), every YAML file under the `harness_cases` folders (default:
cases/), and any YAML file named on the command line.

Registered as a pytest11 entry point, so it is active wherever the package is installed: in every pytest run of
that environment, cases or none. So nothing heavy loads until a case file is collected: this module imports only
pytest and the harness's light modules at start-up, and the frameworks (PyTorch, Keras and its backend) load with
the first case file (tests/entry/test_plugin_startup.py checks it; benchmarks/test_startup.py measures it).
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import Any

import pytest

from xfw_harness.core.backend_choice import BACKENDS, BackendSelectionError, chosen_backends
from xfw_harness.core.errors import FrameworkMissing
from xfw_harness.core.native_logs import ENV_FRAMEWORK_LOGS
from xfw_harness.core.verdicts import Status
from xfw_harness.suite.choices import DETAILS
from xfw_harness.tools import catalogue

RESULTS_KEY = "harness_result"
# Names of case files collected wherever pytest collects tests (as test_*.py are): pytest's own example of
# non-Python tests collects YAML files this way.
CASE_FILE_PATTERNS = ("test_*.yaml", "test_*.yml")


class _Recorder:
    """The results of one session, kept per config: pytester runs sessions inside a session, in one process."""

    def __init__(self) -> None:
        self.results: list[dict[str, Any]] = []  # filled on the controller process, written at session end

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # Runs on the controller also under pytest-xdist: user_properties travel with the report.
        if report.when not in ("setup", "call", "teardown") and report.failed:
            self.results.extend(_crashed(report))  # pytest-xdist: the worker running this test died
        if report.when != "call":
            return
        for key, value in report.user_properties:
            if key == RESULTS_KEY:
                self.results.append(value)


def _crashed(report: pytest.TestReport) -> list[dict[str, Any]]:
    """An error result for a case test whose process died (pytest-xdist reports it with when="???"), so that the
    results file names it rather than losing it."""
    file, _, rest = report.nodeid.partition("::")
    if Path(file).suffix not in (".yaml", ".yml") or not rest:
        return []
    from xfw_harness.core.backend_choice import DEVICES
    from xfw_harness.engine import Result
    from xfw_harness.suite.backends import COMPARED

    # A case test's id ends in `-DEVICE-BACKEND]` (a sweep value may hold a `-` too: only the last two parts count);
    # an invalid case's (`CASE`, `CASE[SWEEP-ID]`) has neither.
    case, _, params = rest.partition("[")
    parts = params.removesuffix("]").split("-")
    device, backend = parts[-2:] if len(parts) >= 2 else ("-", "-")
    if device not in DEVICES or backend not in (*BACKENDS, COMPARED):
        device, backend = "-", "-"
    message = f"the process running this test crashed: {report.longreprtext.strip()}"
    return [Result(id=report.nodeid, file=file, case=case, blocks=[], sweep={}, status=Status.ERROR, message=message,
                   device=device, backend=backend).to_dict()]


_RECORDER = pytest.StashKey[_Recorder]()
_BLOCK_MARKERS = pytest.StashKey[set[str]]()  # the blocks whose marker is registered
_REGISTRY_READ = pytest.StashKey[bool]()  # the registry's own blocks added (at the first case file)
_HEADER_SHOWN = pytest.StashKey[bool]()  # pytest-xdist: the header printed for the first worker's collection
_CASE_TEST_ID = re.compile(r"\.ya?ml::")  # a case test's node id (CaseItem under its YAML file)
_SELECTED = pytest.StashKey[tuple[str, ...]]()  # the Keras backends of this run, read once by pytest_configure


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("harness_cases", "folders whose *.yaml files are harness case files", type="args",
                  default=["cases"])
    parser.addini("harness_case_files", "glob patterns of the names of harness case files collected anywhere",
                  type="args", default=list(CASE_FILE_PATTERNS))
    group = parser.getgroup("xfw-harness", "cross-framework equivalence cases")
    group.addoption("--harness-results", metavar="PATH", default=None,
                    help="write every case result (verdicts, metrics) as JSON to PATH, for `xfw-harness report`")
    _add_shard_options(group)
    group.addoption("--harness-details", choices=DETAILS, default="failed",
                    help="which case results keep pictures and generated code in --harness-results (default: failed)")
    group.addoption("--keras-backend", action="append", metavar="BACKEND", default=None,
                    help="run Keras on this backend: tensorflow, jax or torch (repeatable; all: every installed one, "
                         "the default; $HARNESS_KERAS_BACKENDS=a,b sets the default)")
    group.addoption("--framework-logs", action="store_true", default=False,
                    help="let the frameworks' native start-up logs and Python-side warnings through "
                         f"(${ENV_FRAMEWORK_LOGS}=1 likewise)")
    group.addoption("--harness-timeout", metavar="SECONDS", type=float, default=None,
                    help="time limit of each case test; past it the test is an error and the others run (default: "
                         "$HARNESS_TIMEOUT or 120; 0: none)")


def _add_shard_options(group: Any) -> None:
    group.addoption("--harness-shard", metavar="K/N", default=None,
                    help="run only the K-th of N disjoint parts of the collected tests, balanced by expected cost "
                         "(the same split on every machine: one CI job per part)")
    group.addoption("--harness-shard-durations", metavar="RESULTS", default=None,
                    help="balance --harness-shard by the durations in this earlier --harness-results file")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    spec = config.getoption("--harness-shard")
    if not spec:
        return
    from xfw_harness.suite.results import ResultsFileError
    from xfw_harness.suite.sharding import ShardError, select_shard

    # Case items carry their point (an estimated cost); other tests count the median cost (xfw_harness.suite.sharding).
    tests = [(item.nodeid, item.point if isinstance(item, CaseItem) else None) for item in items]
    try:
        chosen = select_shard(spec, tests, config.getoption("--harness-shard-durations"))
    except (ShardError, ResultsFileError) as e:
        raise pytest.UsageError(str(e)) from None
    deselected = [item for item in items if item.nodeid not in chosen]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item.nodeid in chosen]


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Each other Keras backend's case tests start at once in its worker, side by side with this process's
    (xfw_harness.suite.backends.prefetch): not under pytest-xdist, whose workers get their tests one at a time."""
    config = session.config
    if config.option.collectonly or hasattr(config, "workerinput") or getattr(config.option, "numprocesses", None):
        return
    planned = [(item.point, item.device, item.backend) for item in session.items if isinstance(item, CaseItem)]
    if not planned:
        return
    from xfw_harness.suite.backends import prefetch

    prefetch(planned, config.getoption("--harness-details"), config.getoption("--harness-timeout"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cpu: harness cases run on the CPU")
    config.addinivalue_line("markers", "gpu: harness cases run on the GPU")
    for backend in BACKENDS:
        config.addinivalue_line("markers", f"{backend}: harness cases run with Keras on its {backend} backend")
    config.addinivalue_line("markers", "backends: harness cases comparing Keras's backends with each other")
    # One marker per block (`-m conv2d`), from the shipped catalogue: `pytest --markers` lists them, and
    # --strict-markers accepts them, before any case file is collected (the registry would load the frameworks).
    shipped = catalogue.read() or {}
    for name, entry in shipped.items():
        config.addinivalue_line("markers", catalogue.marker_line(name, entry["doc"]))
    config.stash[_BLOCK_MARKERS] = set(shipped)
    if config.getoption("--framework-logs"):
        os.environ[ENV_FRAMEWORK_LOGS] = "1"  # before any framework loads; backend workers inherit it
    # a bad --keras-backend is a usage error before anything runs, cases or none
    config.stash[_SELECTED] = _selected_backends(config)
    config.stash[_RECORDER] = _Recorder()
    config.pluginmanager.register(config.stash[_RECORDER])


def _register_block_markers(config: pytest.Config) -> None:
    """The markers of blocks the shipped catalogue does not hold (a project's own blocks, registered by its
    conftest), when the first case file is collected: the block registry loads the frameworks, which a run without
    case files never pays for."""
    if config.stash.get(_REGISTRY_READ, False):
        return
    from xfw_harness.blocks import all_blocks

    registered = config.stash[_BLOCK_MARKERS]
    for name, block in all_blocks().items():
        if name not in registered:
            config.addinivalue_line("markers", catalogue.marker_line(name, block.doc))
            registered.add(name)
    config.stash[_REGISTRY_READ] = True


def _selected_backends(config: pytest.Config) -> tuple[str, ...]:
    try:
        return chosen_backends(config.getoption("--keras-backend"))
    except BackendSelectionError as e:
        raise pytest.UsageError(str(e)) from None


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> list[str]:
    """The frameworks' versions, the backends and the devices, under "collected N items", when cases were
    collected (a run without case files never loads the frameworks to print them)."""
    if not any(isinstance(item, CaseItem) for item in items):
        return []
    return _header(config)


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: its controller collects nothing itself
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """Under pytest-xdist the same header, once, when the first worker's collection holds case tests."""
    config = node.config
    if config.stash.get(_HEADER_SHOWN, False) or not any(_CASE_TEST_ID.search(i) for i in ids):
        return
    config.stash[_HEADER_SHOWN] = True
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        for line in _header(config):
            reporter.write_line(line)


def _header(config: pytest.Config) -> list[str]:
    from xfw_harness.core.frameworks import gpu_unavailable_reason, placement, versions

    v = versions()
    gpu = gpu_unavailable_reason()
    where = "" if gpu else " (" + ", ".join(f"{k} on {w}" for k, w in placement("gpu").items()) + ")"
    return [f"harness: torch {v['torch']}, keras {v['keras']} (this process on {v['backend']} "
            f"{v['backend_version']}), numpy {v['numpy']}",
            "harness: Keras backends " + ", ".join(config.stash[_SELECTED]) + " (--keras-backend)",
            "harness: devices cpu" + (f"; gpu not available: {gpu}" if gpu else f", gpu{where}")]


def _is_case_file(file_path: Path, parent: pytest.Collector) -> bool:
    if file_path.suffix not in (".yaml", ".yml"):
        return False
    if parent.session.isinitpath(file_path):
        return True
    if any(fnmatch.fnmatch(file_path.name, pattern) for pattern in parent.config.getini("harness_case_files")):
        return True
    root = parent.config.rootpath
    return any(file_path.is_relative_to((root / d).resolve()) for d in parent.config.getini("harness_cases"))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if _is_case_file(file_path, parent):
        return CaseFile.from_parent(parent, path=file_path)
    return None


class CaseFile(pytest.File):
    def collect(self):  # noqa: ANN201 (pytest's own signature)
        try:  # the first case file loads the frameworks (this module's docstring)
            from xfw_harness.blocks import network_block
            from xfw_harness.cases import RefusedPoint, load_file
            from xfw_harness.suite.backends import backends_for
            from xfw_harness.suite.collect import devices_for
        except FrameworkMissing as e:  # one line saying what to install, not an import traceback
            raise self.CollectError(str(e)) from None

        _register_block_markers(self.config)
        selected = self.config.stash[_SELECTED]
        network = network_block().name  # a network's tests carry its block's marker too
        entries, error = load_file(self.path)
        if error is not None:
            yield InvalidCaseItem.from_parent(self, name="<file>", error=error)
        for entry in entries:
            if entry.error is not None:
                yield InvalidCaseItem.from_parent(self, name=entry.name, error=entry.error)
                continue
            for point in entry.points:
                if isinstance(point, RefusedPoint):
                    yield InvalidCaseItem.from_parent(self, name=f"{entry.name}[{point.sweep_id}]", error=point.error)
                    continue
                for device in devices_for(point):
                    for backend in backends_for(point, selected):
                        item = CaseItem.from_parent(
                            self, name=f"{entry.name}[{'-'.join(filter(None, [point.sweep_id, device, backend]))}]",
                            point=point, device=device, backend=backend, selected=selected)
                        for marker in dict.fromkeys([*point.blocks, device, backend,
                                                     *([network] if point.sequential else [])]):
                            item.add_marker(marker)
                        yield item


class HarnessFailure(Exception):
    """A case whose verdict failed or errored; its message is the whole report (no traceback)."""


class _HarnessItem(pytest.Item):
    """What both kinds of harness test share: a result recorded for --harness-results, a traceback-free failure."""

    def record_and_raise(self, result: Any, failure: str | None) -> None:
        self.user_properties.append((RESULTS_KEY, result.to_dict()))
        if result.status == Status.SKIPPED:
            pytest.skip(result.message)
        if failure is not None:
            raise HarnessFailure(failure)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, HarnessFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class CaseItem(_HarnessItem):
    def __init__(self, *, point: Any, device: str, backend: str, selected: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.point = point
        self.device = device
        self.backend = backend
        self.selected = selected

    def runtest(self) -> None:
        from xfw_harness.suite.collect import PlannedTest

        planned = PlannedTest(self.nodeid, self.point, self.device, backend=self.backend, selected=self.selected)
        result = planned.run(self.config.getoption("--harness-details"), self.config.getoption("--harness-timeout"))
        # A known difference (expect.divergent) that still differs is a pass, shown as DIVERGENT (teststatus below).
        self.record_and_raise(result, None if result.status in (Status.PASSED, Status.SKIPPED, Status.DIVERGENT)
                              else f"{result.status.upper()}: {result.message}")

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"case {self.name}"


class InvalidCaseItem(_HarnessItem):
    """A case (or file) that cannot run: it fails with the loader's message, and the others still run."""

    def __init__(self, *, error: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        from xfw_harness.suite.collect import error_result

        self.record_and_raise(error_result(str(self.error.file), self.name, "?", self.error),
                              f"INVALID CASE: {self.error}")

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"invalid case {self.name}"


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, Any] | None:
    """A passing case test whose result is "divergent" (a documented real difference, still there) is counted and
    shown as such: `3 divergent` in the summary line, `D` / `DIVERGENT` in the progress output."""
    if report.when == "call" and report.passed and any(
            key == RESULTS_KEY and value.get("status") == Status.DIVERGENT for key, value in report.user_properties):
        return str(Status.DIVERGENT), "D", ("DIVERGENT", {"yellow": True})
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    report = yield
    if isinstance(item, CaseItem) and report.skipped and isinstance(report.longrepr, tuple):
        # `-rs` shows where a skip came from: the case file and the test, not this plugin's pytest.skip call.
        report.longrepr = (str(item.path), None, f"{item.name}: {report.longrepr[2].removeprefix('Skipped: ')}")
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = session.config.getoption("--harness-results")
    if not path or hasattr(session.config, "workerinput"):
        return
    from xfw_harness.suite.results import write_results

    write_results(Path(path), sorted(session.config.stash[_RECORDER].results, key=lambda r: r["id"]))
