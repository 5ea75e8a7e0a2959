"""The terminal's summary of a run (`xfw-harness run`): per block, each Keras backend's counts side by side."""

from __future__ import annotations

from xfw_harness.core.verdicts import STATUS_ORDER, Status

COLOURS = {Status.PASSED: "green", Status.FAILED: "bold red", Status.ERROR: "bold red", Status.SKIPPED: "dim",
           Status.DIVERGENT: "yellow"}


def summary_table(results: list[dict]):  # noqa: ANN201 - a rich Table
    """Per block, each Keras backend's counts in a column of its own (`38 passed  1 failed`, coloured on a terminal):
    a block failing on one backend only shows as such; then every block, and each backend's seconds."""
    from rich.table import Table
    from rich.text import Text

    from xfw_harness.suite.results import NOT_RUN, backend_of, backend_order, by_backend, by_block, summarise

    words = {Status.DIVERGENT: "known-divergent", Status.ERROR: "errors"}

    def counts(rs: list[dict]) -> Text:
        c, text = summarise(rs), Text()
        for s in STATUS_ORDER:
            if c[s]:
                word = "error" if s == Status.ERROR and c[s] == 1 else words.get(s, s)
                text.append(("  " if text else "") + f"{c[s]} {word}", style=COLOURS[s])
        return text

    backends = backend_order(backend_of(r) for r in results)
    table = Table(title="harness: results per block and Keras backend", title_justify="left")
    table.add_column("block")
    for b in backends:
        table.add_column("not run (invalid)" if b == NOT_RUN else b)
    for block, rs in by_block(results).items():
        table.add_row(block, *(counts(by_backend(rs).get(b, [])) for b in backends))
    per = by_backend(results)
    table.add_section()
    table.add_row("all", *(counts(per[b]) for b in backends), style="bold")
    table.add_row("time (s)", *(f"{sum(float(r.get('duration_s') or 0) for r in per[b]):.1f}" for b in backends),
                  style="dim")
    return table
