"""Command line: `xfw-harness run PATH...`, `xfw-harness list`, `show`, `new`, `report`, `port`, `fuzz`. A thin shell:
each command parses its arguments and calls the suite (planning, running, results files), the report or a tool.

The heavy imports (the frameworks, through the engine) are made inside the commands that need them, so that
`xfw-harness --help` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from xfw_harness.core.errors import FrameworkMissing
from xfw_harness.core.native_logs import ENV_FRAMEWORK_LOGS, quiet_warnings
from xfw_harness.core.verdicts import Status
from xfw_harness.report.terminal import COLOURS, summary_table
from xfw_harness.suite.choices import DETAILS
from xfw_harness.tools import catalogue


def _run_all(tests: list, details: str, quiet: bool, console, timeout_s: float | None = None) -> list:  # noqa: ANN001
    """Run the planned tests: a progress bar on a terminal, plain lines otherwise (CI logs, pipes)."""
    from xfw_harness.engine import result_lines

    results = []
    if not console.is_terminal:
        for test in tests:
            result = test.run(details, timeout_s)
            results.append(result)
            for line in result_lines(result, quiet):
                print(line, flush=True)
        return results
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("{task.fields[current]}", style="dim"))
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("running", total=len(tests), current="")
        for test in tests:
            progress.update(task, current=test.id)
            result = test.run(details, timeout_s)
            results.append(result)
            for i, line in enumerate(result_lines(result, quiet)):
                style = COLOURS[result.status] if i == 0 and not line.startswith(" ") else None
                progress.console.print(escape(line), style=style, highlight=False, soft_wrap=True)
            progress.advance(task)
    return results


def cmd_run(args: argparse.Namespace) -> int:
    with quiet_warnings(args.quiet):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from xfw_harness.cases import load_paths
    from xfw_harness.core.frameworks import BackendSelectionError
    from xfw_harness.suite.backends import prefetch, select_backends
    from xfw_harness.suite.collect import error_result, plan_tests
    from xfw_harness.suite.results import results_document, summarise, write_json, write_junit

    console = Console(highlight=False)
    start = time.perf_counter()
    baseline = _read_results_or_report(args.baseline) if args.baseline else None
    if args.baseline and baseline is None:
        return 2
    entries, file_errors = load_paths(args.paths)
    for error in file_errors:
        print(f"INVALID  {error}")
    try:
        backends = select_backends(args.keras_backend)
    except BackendSelectionError as e:
        print(f"harness: {e}", file=sys.stderr)
        return 2
    tests = plan_tests(entries, device=args.device, match=args.k, backends=backends)
    if args.shard:
        tests = _shard(tests, args.shard, args.shard_durations)
        if tests is None:
            return 2
    # Each other backend's tests start at once in its worker, side by side with this process's (suite.backends).
    prefetch([(t.point, t.device, t.backend) for t in tests if t.invalid is None], args.details, args.timeout)
    results = _run_all(tests, args.details, args.quiet, console, args.timeout)
    dicts = [r.to_dict() for r in results] + [
        error_result(str(e.file), "<file>", "?", e).to_dict() for e in file_errors]
    doc = results_document(dicts)
    if args.json:
        write_json(Path(args.json), doc)
    if args.junit:
        write_junit(Path(args.junit), doc)
    if args.html:
        from xfw_harness.report.html import write_report

        write_report(Path(args.html), doc, baseline, _read_bench(args.bench))
    counts = summarise(dicts)
    elapsed = time.perf_counter() - start
    if dicts:
        console.print(summary_table(dicts))
    print(f"\n{counts['passed']} passed, {counts['failed']} failed, {counts['error']} errors, "
          f"{counts['skipped']} skipped in {elapsed:.1f}s" + (f", {counts['divergent']} known-divergent"
                                                           if counts[Status.DIVERGENT] else ""))
    for what, path in (("results", args.json), ("junit", args.junit), ("report", args.html)):
        if path:
            print(f"{what}: {path}")
    return 1 if counts[Status.FAILED] or counts[Status.ERROR] or not dicts else 0


def _shard(tests: list, spec: str, durations_file: str | None) -> list | None:
    """The planned tests of shard K/N (None after printing why, for a bad spec or durations file)."""
    from xfw_harness.suite.results import ResultsFileError
    from xfw_harness.suite.sharding import ShardError, select_shard

    try:
        chosen = select_shard(spec, [(t.id, t.point) for t in tests], durations_file)
    except (ShardError, ResultsFileError) as e:
        print(f"harness: {e}", file=sys.stderr)
        return None
    return [t for t in tests if t.id in chosen]


def _read_bench(path: str | None) -> dict | None:
    """A pytest-benchmark JSON file (`make bench`), for the report's speed table; None when not given."""
    if not path:
        return None
    import json

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        print(f"harness: {path}: cannot read the benchmark file ({e}); the report has no speed table",
              file=sys.stderr)
        return None


def _read_results_or_report(path: str):  # noqa: ANN202 - a results document, or None after printing why
    from xfw_harness.suite.results import ResultsFileError, read_results

    try:
        return read_results(Path(path))
    except ResultsFileError as e:
        print(f"harness: {e}", file=sys.stderr)
        return None


def cmd_report(args: argparse.Namespace) -> int:
    from xfw_harness.report.html import write_report
    from xfw_harness.suite.results import merge, write_json, write_junit

    docs = [_read_results_or_report(p) for p in args.results]
    baseline = _read_results_or_report(args.baseline) if args.baseline else None
    if any(d is None for d in docs) or (args.baseline and baseline is None):
        return 2
    doc, duplicates = merge(docs, [str(p) for p in args.results])
    if duplicates:
        print(f"harness: {len(duplicates)} test(s) appear in more than one results file (overlapping shards?); "
              f"kept the later file's result, e.g. {duplicates[0]}", file=sys.stderr)
    out = Path(args.output)
    write_report(out / "index.html", doc, baseline, _read_bench(args.bench))
    write_json(out / "results.json", doc)
    write_junit(out / "junit.xml", doc)
    s = doc["summary"]
    print(f"{s['total']} tests from {len(args.results)} results file(s): {s['passed']} passed, {s['failed']} failed, "
          f"{s['divergent']} known-divergent, {s['error']} errors, {s['skipped']} skipped")
    print(f"report: {out / 'index.html'}\nresults: {out / 'results.json'}\njunit: {out / 'junit.xml'}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    blocks = catalogue.entries()  # the shipped catalogue: no framework imported
    if unknown := [b for b in args.block if b not in blocks]:
        from xfw_harness.blocks import get_block

        for name in unknown:
            try:
                get_block(name)
            except Exception as e:  # noqa: BLE001 - the CaseError carries the suggestion
                print(getattr(e, "message", e), file=sys.stderr)
        return 2
    texts = [blocks[n]["markdown" if args.markdown else "list"] for n in args.block or blocks]  # in the order asked
    print("\n".join([catalogue.MARKDOWN_HEAD] * args.markdown + texts))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from xfw_harness.tools.show.command import command

    parts = ("torch",) if args.torch_only else ("keras",) if args.keras_only else ("torch", "keras")
    return command(args.spec, args.device, parts, args.keras_backend)


def cmd_new(args: argparse.Namespace) -> int:
    entry = catalogue.entries().get(args.block)  # the shipped catalogue: no framework imported
    if entry is None:  # not in it: the registry says why (an unknown name, with close names)
        from xfw_harness.core.errors import CaseError
        from xfw_harness.tools.new import case_skeleton

        try:
            entry = {"new": case_skeleton(args.block)}
        except CaseError as e:
            entry = {"new_error": e.message}
    if "new_error" in entry:
        print(entry["new_error"], file=sys.stderr)
        return 2
    print(entry["new"], end="")
    return 0


def cmd_port(args: argparse.Namespace) -> int:
    from xfw_harness.tools.port import command

    return command(args.spec, args.weights, args.input_shape, args.out, calibrate=not args.no_calibrate,
                   tflite=args.tflite, backends=args.keras_backend)


def cmd_verify(args: argparse.Namespace) -> int:
    from xfw_harness.tools.crosscheck import command

    return command(args.spec, args.artefact, args.input_shape, args.weights, args.seeds, args.layout, args.tolerance_k)


def cmd_fuzz(args: argparse.Namespace) -> int:
    from xfw_harness.tools.fuzz.command import command

    return command(args.block, args.keras_backend, examples=args.examples, seed=args.seed,
                   time_budget=args.time_budget, out=args.out, device=args.device, dtypes=args.dtypes,
                   include_known=args.include_known)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xfw-harness", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Does this layer compute the same thing in PyTorch and in Keras?\n\n"
                    "A case is a few lines of YAML naming a block (conv2d, max_pool2d, dense, ...), its parameters "
                    "and an input.\nThe harness builds the block in both frameworks, copies PyTorch's weights into "
                    "Keras, runs both on the\nsame input (NCHW for PyTorch, NHWC for Keras) and compares the outputs "
                    "within a tolerance derived\nfrom the dtype and the block's reduction length.",
        epilog="""first steps:
  xfw-harness list conv2d                     what conv2d means, its parameters and defaults
  xfw-harness new conv2d > my_case.yaml       a commented case to edit
  xfw-harness run my_case.yaml                run it: PASS/FAIL per test; exit status 1 on a failure
  xfw-harness show my_case.yaml::conv2d_case  the PyTorch and Keras code the case was translated into
  xfw-harness run cases --json r.json --html reports/index.html
                                          every shipped case, with the HTML report
  xfw-harness report a.json b.json -o reports
                                          one report from the results of several machines or CI jobs
  xfw-harness fuzz conv2d --examples 200      search conv2d's parameter space for a divergence; a minimal case
                                          is written to reports/fuzz/
  xfw-harness port my_models.py:lenet --input-shape 2,1,28,28
                                          a PyTorch nn.Sequential to a verified case and a .keras model

The shipped cases are also pytest tests: `pytest cases`. Manual: docs/ (`make docs` builds it).""")
    parser.add_argument("--framework-logs", action="store_true",
                        help=f"let the frameworks' start-up logs through (${ENV_FRAMEWORK_LOGS}=1 likewise)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run", help="run case files or folders of them: one line per test and a summary",
        description="Run YAML cases in PyTorch and Keras and compare the outputs. Exit status 0 when every test "
                    "passed, 1 when one failed or errored, 2 on bad usage.")
    run.add_argument("paths", nargs="+", help="YAML case files or folders (searched recursively)")
    run.add_argument("--json", metavar="FILE", help="write machine-readable results (for `xfw-harness report`)")
    run.add_argument("--junit", metavar="FILE", help="write JUnit XML, for CI systems")
    run.add_argument("--html", metavar="FILE", help="write the HTML report")
    run.add_argument("--baseline", metavar="RESULTS", help="mark tests that changed since this earlier results file "
                                                            "(in the HTML report)")
    run.add_argument("--bench", metavar="FILE", help="a pytest-benchmark JSON file (`make bench`): the HTML report "
                                                     "gets a speed table")
    run.add_argument("--details", choices=DETAILS, default="failed",
                     help="which tests keep pictures and generated code for the report (default: failed)")
    run.add_argument("--device", choices=("cpu", "gpu"), help="run only on this device")
    run.add_argument("--keras-backend", action="append", metavar="BACKEND",
                     help="run Keras on this backend: tensorflow, jax or torch (repeatable; all: every installed one, "
                          "the default; $HARNESS_KERAS_BACKENDS=a,b sets the default)")
    run.add_argument("-k", metavar="TEXT", help="run only tests whose id contains TEXT")
    run.add_argument("-q", "--quiet", action="store_true", help="print failures, errors and the summary only")
    run.add_argument("--timeout", metavar="SECONDS", type=float, default=None,
                     help="time limit of each test; past it the test is an error and the others run (default: "
                          "$HARNESS_TIMEOUT or 120; 0: none)")
    run.add_argument("--shard", metavar="K/N", help="run only the K-th of N disjoint parts of the tests, balanced by "
                                                  "expected cost (the same split on every machine)")
    run.add_argument("--shard-durations", metavar="RESULTS", help="balance --shard by the durations measured in "
                                                                  "this earlier results file")
    run.set_defaults(func=cmd_run)
    rep = sub.add_parser(
        "report", help="build the HTML report from results files, merging shards",
        description="Build one report from one or more results files (`xfw-harness run --json`, `pytest "
                    "--harness-results`), e.g. the shards of a suite run on several machines or CI jobs. Writes "
                    "DIR/index.html, DIR/results.json (merged) and DIR/junit.xml.")
    rep.add_argument("results", nargs="+", help="results files (JSON)")
    rep.add_argument("-o", "--output", metavar="DIR", default="reports", help="output folder (default: reports)")
    rep.add_argument("--baseline", metavar="RESULTS", help="an earlier results file: mark tests that passed then "
                                                            "and fail now (regressed), and the reverse (fixed)")
    rep.add_argument("--bench", metavar="FILE", help="a pytest-benchmark JSON file (`make bench`): a speed table")
    rep.set_defaults(func=cmd_report)
    from xfw_harness.tools.check import add_parser as add_check  # `check`: its parser beside it (this file's size)
    add_check(sub)
    lst = sub.add_parser("list", help="list the blocks, their parameters, defaults and meaning")
    lst.add_argument("block", nargs="*", help="only these blocks")
    lst.add_argument("--markdown", action="store_true",
                     help="print the blocks and their parameters as a Markdown table")
    lst.set_defaults(func=cmd_list)
    show = sub.add_parser(
        "show", help="print a case as the PyTorch code and the Keras code that compute it",
        description="Print one case (all its sweep points, or the one named) as two runnable Python programs, "
                    "generated from the objects the harness builds: the PyTorch modules and the Keras layers with "
                    "every constructor argument, the padding steps, the weight transfer and the layout "
                    "transposes. Exit status 2 when the case cannot be found or is invalid.")
    show.add_argument("spec", help="FILE::CASE or FILE::CASE[SWEEP-ID], as in test ids, e.g. "
                                   "cases/conv2d.yaml::stride_padding_grid[strides=2-padding=same-input.shape=2x3x28x28]")
    show.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="the device the code runs on "
                                                                                "(default: cpu)")
    show.add_argument("--keras-backend", metavar="BACKEND",
                      help="the Keras program's backend: tensorflow, jax or torch (default: $KERAS_BACKEND, else "
                           "tensorflow); generated and run on that backend")
    only = show.add_mutually_exclusive_group()
    only.add_argument("--torch-only", action="store_true", help="print only the PyTorch program")
    only.add_argument("--keras-only", action="store_true", help="print only the Keras program")
    show.set_defaults(func=cmd_show)
    new = sub.add_parser("new", help="print a commented YAML case skeleton for a block",
                         description="Print a YAML case for BLOCK with every parameter and its default, commented; "
                                     "required parameters carry an example value. Exit status 2 for an unknown "
                                     "block.")
    new.add_argument("block", help="a block name (xfw-harness list), or sequential")
    new.set_defaults(func=cmd_new)
    prt = sub.add_parser(
        "port", help="port a PyTorch nn.Sequential to Keras: write its case, verify it, save the .keras model",
        description="Read a PyTorch model made of supported layers (an nn.Sequential, nested ones flattened), write "
                    "the YAML case that describes it (its weights as .npz) into --out, run it like any case "
                    "(forward and backward, PyTorch against Keras) and check that the case computes what the model "
                    "itself computes. On success, save the equivalent Keras model (.keras, channels-last input) and "
                    "print how to load it. Exit status 0 when ported, 1 when the verification failed (the case is "
                    "written, with where it first diverged), 2 when the model cannot be ported (unsupported "
                    "layers are named with their place in the model).")
    prt.add_argument("spec", metavar="MODULE:FACTORY",
                     help="MODULE a dotted module or a .py file; FACTORY a callable returning the nn.Module, or an "
                          "attribute that is one")
    prt.add_argument("--weights", metavar="STATE_DICT", help="a saved state_dict (torch.save(model.state_dict()))")
    prt.add_argument("--input-shape", metavar="N,C,H,W", help="the input shape, channels-first with the batch "
                                                               "(needed unless the model starts with nn.Linear)")
    prt.add_argument("--out", metavar="DIR", help="where the case, its weights and the .keras model go (default "
                                                  "ported/FACTORY)")
    prt.add_argument("--no-calibrate", action="store_true",
                     help="keep batch-norm statistics at their initial values (by default a copy of a model whose "
                          "batch norms never tracked a batch gets statistics from a few random forward passes, so "
                          "that its activations do not vanish)")
    prt.add_argument("--tflite", action="store_true",
                     help="also export the verified Keras model to DIR/FACTORY.tflite and check it on LiteRT's "
                          "interpreter against the PyTorch model")
    prt.add_argument("--keras-backend", action="append", metavar="BACKEND",
                     help="check the saved .keras on this Keras backend too: tensorflow, jax or torch (repeatable; "
                          "default all: every installed one, each other than this process's in a process of its own)")
    prt.set_defaults(func=cmd_port)
    ver = sub.add_parser(
        "verify", help="check a model converted by other means (.keras, SavedModel, .tflite) against its PyTorch model",
        description="Run a PyTorch model and a model converted from it by other means (nobuco, onnx2tf, by hand: a "
                    ".keras file, a SavedModel folder, or a .tflite file on LiteRT's interpreter) on seeded inputs and "
                    "compare each output and, but for a .tflite, the input gradient. The input layout (NCHW or NHWC) "
                    "follows from the artefact's declared input; a functional .keras model is aligned layer by layer "
                    "to name the first layer that departs. Exit status 0 within tolerance, 1 on a mismatch, 2 on bad "
                    "input.")
    ver.add_argument("spec", metavar="MODULE:FACTORY", help="the PyTorch model, as for xfw-harness port")
    ver.add_argument("artefact", metavar="ARTEFACT", help="a .keras file, a SavedModel folder or a .tflite file")
    ver.add_argument("--input-shape", metavar="N,C,H,W", required=True, help="PyTorch's input shape, with the batch")
    ver.add_argument("--weights", metavar="STATE_DICT", help="a saved state_dict (torch.save(model.state_dict()))")
    ver.add_argument("--seeds", type=int, default=3, metavar="N", help="inputs from default_rng(0 .. N-1) (default 3)")
    ver.add_argument("--layout", choices=("auto", "nchw", "nhwc"), default="auto", help="the artefact's input layout")
    ver.add_argument("--tolerance-k", type=int, default=4096, metavar="K",
                     help="the reduction length of the tolerance rule for the whole model (default 4096)")
    ver.set_defaults(func=cmd_verify)
    fz = sub.add_parser(
        "fuzz", help="search for cases PyTorch and Keras disagree on, drawn from a block's parameter schema",
        description="Draw cases for BLOCK from its declared parameters and input ranks (or random small networks "
                    "of registered blocks: sequential) with hypothesis, and run each through the same loader and "
                    "runner as a case file. Cases the loader refuses count as invalid, not as divergences. The "
                    "first divergence (or framework error) is shrunk to a minimal case and written as a YAML case "
                    "file under --out, ready to be copied into cases/. Cases with a difference catalogued in "
                    "cases/known_differences.yaml (Block.known_difference) are counted as known and not run, unless "
                    "--include-known. The same seed draws the same examples. Exit status 1 when something was "
                    "found, 0 when not, 2 for an unknown block, a bad option, an --out that cannot be written, or a "
                    "run that could compare nothing (no GPU for --device gpu, every drawn case refused or known).")
    fz.add_argument("block", help="a registered block (xfw-harness list), or sequential")
    fz.add_argument("--examples", type=int, default=100, metavar="N",
                    help="valid examples to run (default 100; invalid and known draws do not count)")
    fz.add_argument("--seed", type=int, default=0, metavar="S", help="hypothesis's seed (default 0)")
    fz.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                    help="stop searching (or shrinking, keeping the smallest case so far) after this long")
    fz.add_argument("--out", default="reports/fuzz", metavar="DIR",
                    help="where the minimal case is written (default reports/fuzz; created before the search)")
    fz.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="the device to run on (default cpu)")
    fz.add_argument("--dtypes", metavar="LIST", help="comma-separated input dtypes to draw from (default "
                                                     "float32,float64)")
    fz.add_argument("--include-known", action="store_true",
                    help="also run the cases with a catalogued framework difference (cases/known_differences.yaml), "
                         "which are otherwise counted as known and not searched")
    fz.add_argument("--keras-backend", action="append", metavar="BACKEND",
                    help="search with Keras on this backend: tensorflow, jax or torch (repeatable; all: every "
                         "installed one; default: $KERAS_BACKEND, else tensorflow); each other than this process's "
                         "in a process of its own, its finding written as BLOCK-seedS-BACKEND.yaml")
    fz.set_defaults(func=cmd_fuzz)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.framework_logs:
        os.environ[ENV_FRAMEWORK_LOGS] = "1"  # before any framework loads (xfw_harness/core/native_logs.py)
    try:
        return args.func(args)
    except FrameworkMissing as e:  # what to install, in one line, not an import traceback
        print(f"harness: error: {e}", file=sys.stderr)
        return 2
