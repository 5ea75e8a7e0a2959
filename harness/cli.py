"""Command line: `python -m harness run PATH...`, `python -m harness list`. A thin shell over harness.runner."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _metrics_text(result) -> str:  # noqa: ANN001
    m = result.metrics
    if "max_abs" in m:
        return f"max abs {m['max_abs']:.2e}  max rel {m['max_rel']:.2e}"
    if "zero_fraction" in m:
        return f"zero fraction {m['zero_fraction']:.4f}"
    return ""


def cmd_run(args: argparse.Namespace) -> int:
    from harness.results import results_document, summarise, write_results
    from harness.runner import error_result, iter_results, load_paths

    start = time.perf_counter()
    entries, file_errors = load_paths(args.paths)
    results = []
    for error in file_errors:
        print(f"INVALID  {error}")
    for result in iter_results(entries, device=args.device, match=args.k):
        results.append(result)
        tag = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "skipped": "SKIP"}[result.status]
        if not (args.quiet and result.status == "passed"):
            print(f"{tag:5}  {result.id}  {_metrics_text(result)}".rstrip(), flush=True)
        if result.status in ("failed", "error", "skipped") and result.message:
            print("       " + result.message.replace("\n", "\n       "))
    dicts = [r.to_dict() for r in results] + [
        error_result(str(e.file), "<file>", "?", e).to_dict() for e in file_errors]
    doc = write_results(Path(args.json), dicts) if args.json else results_document(dicts)
    if args.html:
        from harness.report import write_report

        write_report(Path(args.html), doc)
    counts = summarise(dicts)
    elapsed = time.perf_counter() - start
    print(f"\n{counts['passed']} passed, {counts['failed']} failed, {counts['error']} errors, "
          f"{counts['skipped']} skipped in {elapsed:.1f}s")
    if args.json:
        print(f"results: {args.json}")
    if args.html:
        print(f"report: {args.html}")
    return 1 if counts["failed"] or counts["error"] or not dicts else 0


def cmd_list(args: argparse.Namespace) -> int:
    from harness.registry import all_blocks

    blocks = all_blocks()
    if args.block:
        unknown = [b for b in args.block if b not in blocks]
        if unknown:
            from harness.registry import get_block

            for name in unknown:
                try:
                    get_block(name)
                except Exception as e:  # noqa: BLE001 - the CaseError carries the suggestion
                    print(getattr(e, "message", e), file=sys.stderr)
            return 2
        blocks = {b: blocks[b] for b in args.block}
    if args.markdown:
        print(markdown_block_table(blocks))
        return 0
    for name, block in blocks.items():
        print(f"{name}  ({block.family})  {block.doc}")
        for p in block.params:
            print(f"    {p.name:18} default {p.describe_default():10} {p.doc}")
            print(f"    {'':18} {'':18} allowed: {p.allowed()}")
    if not args.block:
        print("sequential  (networks)  A list of `layers`, each {block, params, weights}, applied in order.")
    return 0


def markdown_block_table(blocks: dict) -> str:
    """The README's block table, generated from the registry so that the two cannot drift apart."""
    lines = ["| block | family | parameter | default | meaning |", "| --- | --- | --- | --- | --- |"]
    for name, block in blocks.items():
        lines.append(f"| `{name}` | {block.family} | | | {block.doc} |")
        for p in block.params:
            lines.append(f"| | | `{p.name}` | {p.describe_default()} | {p.doc}; {p.allowed()} |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Does this layer compute the same thing in PyTorch and in Keras? Runs YAML cases that "
                    "describe blocks (conv2d, pooling, dense, ...) in both frameworks and compares the outputs.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run case files or folders of them, print one line per test and a summary")
    run.add_argument("paths", nargs="+", help="YAML case files or folders (searched recursively)")
    run.add_argument("--json", metavar="FILE", help="write machine-readable results (for the report)")
    run.add_argument("--html", metavar="FILE", help="write the HTML report")
    run.add_argument("--device", choices=("cpu", "gpu"), help="run only on this device")
    run.add_argument("-k", metavar="TEXT", help="run only tests whose id contains TEXT")
    run.add_argument("-q", "--quiet", action="store_true", help="print failures, errors and the summary only")
    run.set_defaults(func=cmd_run)
    lst = sub.add_parser("list", help="list the blocks, their parameters, defaults and meaning")
    lst.add_argument("block", nargs="*", help="only these blocks")
    lst.add_argument("--markdown", action="store_true", help="print the README's block table")
    lst.set_defaults(func=cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
