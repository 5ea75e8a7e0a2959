"""The manual's screenshots of the report (docs/report.png, docs/report-failure.png, docs/report-backends.png): a
run of the shipped suite (or the case files given) on the Keras backends given, plus two cases run against an
adapter with a planted mistake (the usual hand-port of `same` padding as a symmetric k//2, which shifts the whole
grid at stride 2), so that the report has real failures to show. The planted mistake is patched into this process,
so its cases run on this process's backend only (a worker process for another backend would not see the patch).

    .venv/bin/python scripts/report_screenshots.py [PATH ...] [--keras-backend B ...]
    # PATH: case files or folders (default cases/); B: tensorflow, jax, torch or all (default every installed one;
    # the whole shipped suite on JAX takes many times TensorFlow's time)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
from pathlib import Path

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend)
from xfw_harness.blocks import convolution_geometry
from xfw_harness.cases import load_paths
from xfw_harness.core.frameworks import BACKEND
from xfw_harness.core.spatial import resolve_padding
from xfw_harness.report.browser import browser_unavailable_reason, chromium, open_report
from xfw_harness.report.html import write_report
from xfw_harness.suite.backends import select_backends
from xfw_harness.suite.collect import plan_tests
from xfw_harness.suite.results import results_document

PLANTED = """\
- name: readme_same_stride2
  block: conv2d
  params: {filters: 4, kernel_size: 3, strides: 2, padding: same}
  input: {shape: [1, 3, 28, 28]}
  devices: [cpu]
- name: readme_same_stride1_odd_kernel      # k//2 is right here: this one still passes
  block: conv2d
  params: {filters: 4, kernel_size: 3, padding: same}
  input: {shape: [1, 3, 28, 28]}
  devices: [cpu]
"""


def naive_same(padding, size, kernel, stride, dilation=(1, 1)):  # noqa: ANN001, ANN201
    """The planted mistake: `same` as k//2 on both sides, whatever the stride."""
    if padding == "same":
        return tuple((k // 2, k // 2) for k in kernel)
    return resolve_padding(padding, size, kernel, stride, dilation)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=["cases"])
    parser.add_argument("--keras-backend", action="append", metavar="BACKEND")
    args = parser.parse_args(argv)
    reason = browser_unavailable_reason()
    if reason:
        print(f"cannot take screenshots: {reason}", file=sys.stderr)
        return 2
    backends = select_backends(args.keras_backend)
    results = [t.run("failed").to_dict() for t in plan_tests(load_paths(args.paths)[0], device="cpu",
                                                             backends=backends)]
    with tempfile.TemporaryDirectory() as tmp:
        demo = Path(tmp) / "planted_mistake.yaml"
        demo.write_text(textwrap.dedent(PLANTED), encoding="utf-8")
        convolution_geometry.resolve_padding = naive_same
        try:
            results += [t.run("failed").to_dict() for t in plan_tests(load_paths([demo])[0], backends=(BACKEND,))]
        finally:
            convolution_geometry.resolve_padding = resolve_padding
        for r in results:  # a stable path in the pictures, not the temporary folder's
            r["id"] = r["id"].replace(str(demo), "planted_mistake.yaml")
            r["file"] = r["file"].replace(str(demo), "planted_mistake.yaml")
        out = Path(tmp) / "index.html"
        write_report(out, results_document(results, label="shipped suite + a planted mistake"))
        docs = Path("docs")
        docs.mkdir(exist_ok=True)
        with chromium() as browser:
            page, problems = open_report(browser, out, width=1280, height=760)
            page.screenshot(path=str(docs / "report.png"))
            failure = page.locator("details.failure").first
            failure.scroll_into_view_if_needed()
            page.evaluate("window.scrollBy(0, -10)")
            page.set_viewport_size({"width": 1280, "height": 1350})
            failure.screenshot(path=str(docs / "report-failure.png"))
            # Each point's backends side by side, the points where they disagree first.
            page.set_viewport_size({"width": 1280, "height": 760})
            page.check("#f-disagree")
            if page.inner_text("#shown").startswith("0 of"):  # every backend agreed: show them all
                page.uncheck("#f-disagree")
            page.evaluate("document.getElementById('all-tests').scrollIntoView()")
            page.screenshot(path=str(docs / "report-backends.png"))
        if problems:
            print("\n".join(problems), file=sys.stderr)
            return 1
    print("wrote docs/report.png, docs/report-failure.png and docs/report-backends.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
