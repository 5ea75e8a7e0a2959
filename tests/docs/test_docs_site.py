"""The documentation site (mkdocs.yml, docs/): it builds strictly, its generated pages cover the registry and the
catalogue of known differences, and what its pages name (source files, modules, shipped cases) exists."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from xfw_harness.blocks.registry import all_blocks
from xfw_harness.tools.manual import catalogue_entries, generated, known_differences

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
CATALOGUE = ROOT / "cases" / "known_differences.yaml"
PAGES = [README, *sorted(DOCS.glob("*.md"))]


def _plain(markdown: str) -> str:
    """Markdown with the escapes `xfw_harness.tools.manual` adds undone, to find a source text in it."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("&lt;", "<").replace("&amp;", "&")


# --- the generated pages ----------------------------------------------------------------------------------------

def test_the_catalogue_page_has_every_entry_with_its_source_and_correct_comments() -> None:
    cases = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))
    entries = catalogue_entries(CATALOGUE)
    assert [e.name for e in entries] == [c["name"] for c in cases]
    page = known_differences(CATALOGUE)
    text = _plain(page)
    for case in cases:
        name = case["name"]
        assert f"#### `{name}` {{#{name}}}" in page, f"no section for entry {name}"
        assert case["description"] in text
        if "divergent" in case.get("expect", {}):
            assert case["expect"]["divergent"] in text, f"{name}: its expect.divergent text"
    # every `# source:` / `# correct:` line of the file is some entry's, read whole (continuation lines joined)
    raw = CATALOGUE.read_text(encoding="utf-8").splitlines()
    for key in ("source", "correct"):
        lines = [line.split(":", 1)[1].strip() for line in raw if line.startswith(f"# {key}:")]
        read = [getattr(e, key) for e in entries]
        assert len(lines) == len(entries) and all(r.startswith(line) for r, line in zip(read, lines)), key
    for e in entries:
        assert e.source and e.correct, f"{e.name}: every entry says its source and its correct translation"
        assert _plain(e.source) in text.replace("\n", " ")
        assert f"`{e.correct.split(' ', 1)[0]}`" in page
    multi_line = next(e for e in entries if e.name == "leaky_relu_default_slope")
    assert multi_line.source.endswith("keras/src/layers/activations/leaky_relu.py (LeakyReLU(negative_slope=0.3))")


def test_the_catalogue_reader_keeps_comments_apart(tmp_path: Path) -> None:
    """A note above a case, a continued `# source:` and the next case's comments each land where they belong."""
    text = """# --- first ---

# source: a.py (one)
#   continued
# correct: cases/x.yaml::one
- name: one
  block: relu
  input: {shape: [1, 2]}

# A note that runs
# over two lines.
# source: b.py
# correct: cases/x.yaml::two (with words after)
- {name: two, block: tanh, input: {shape: [1, 2]}, expect: {divergent: "why"}}
"""
    path = tmp_path / "catalogue.yaml"
    path.write_text(text, encoding="utf-8")
    one, two = catalogue_entries(path)
    page = known_differences(path)
    assert (one.section, one.source, one.correct) == ("first", "a.py (one) continued", "cases/x.yaml::one")
    assert one.notes == []
    assert one.yaml_text == "- name: one\n  block: relu\n  input: {shape: [1, 2]}"
    assert (two.source, two.notes) == ("b.py", ["A note that runs over two lines."])
    assert "`cases/x.yaml::two` (with words after)" in page and "why" in page


def test_pages_ask_for_the_generated_parts_and_nothing_unknown() -> None:
    markers = {p.name: re.findall(r"^<!-- generated: ([\w-]+) -->$", p.read_text(encoding="utf-8"), flags=re.M)
               for p in DOCS.glob("*.md")}
    assert markers["blocks.md"] == ["block-reference"]
    assert markers["known-differences.md"] == ["known-differences", "backend-differences"]
    assert markers["guarantees.md"] == ["emulations"]
    assert {m for found in markers.values() for m in found} == {"block-reference", "known-differences",
                                                                 "backend-differences", "emulations"}
    with pytest.raises(KeyError):
        generated("no-such-part", ROOT)


def test_no_generated_markdown_is_committed() -> None:
    """The block reference is made at build time: a copy pasted into docs/ would go stale."""
    for page in DOCS.glob("*.md"):
        text = page.read_text(encoding="utf-8")
        assert "{#family-" not in text, f"{page.name} holds generated block reference text"


# --- the site builds --------------------------------------------------------------------------------------------

def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """`make docs` is `mkdocs build --strict`: a broken link or anchor, or a page left out of the nav, fails here."""
    for module in ("mkdocs", "material", "pymdownx"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed in this venv: pip install -r requirements.lock")
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=ROOT,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    for page in DOCS.glob("*.md"):
        built = site / ("index.html" if page.stem == "index" else f"{page.stem}/index.html")
        assert built.exists(), f"{page.name} was not built"
    blocks = (site / "blocks" / "index.html").read_text(encoding="utf-8")
    for name in all_blocks():
        assert f'id="{name}"' in blocks, f"the built block reference lacks {name}"
    assert "<table>" in blocks and 'class="docstring highlight"' in blocks
    catalogue = (site / "known-differences" / "index.html").read_text(encoding="utf-8")
    for path in (CATALOGUE, ROOT / "cases" / "backend_differences.yaml"):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")):
            assert f'id="{case["name"]}"' in catalogue, f"the built catalogue lacks {path.name}'s {case['name']}"
    assert not list(site.rglob("hooks.py")), "docs/hooks.py is build code, not a page"


# --- what the pages name exists ---------------------------------------------------------------------------------

def _code_spans(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"^ *```.*?^ *```", "", text, flags=re.S | re.M)  # examples run in test_docs_examples.py
    return re.findall(r"`([^`\n]+)`", text)


def _module_exists(dotted: list[str]) -> tuple[Path | None, list[str]]:
    """The source file of the longest module prefix of a dotted name, and the attribute names after it."""
    for i in range(len(dotted), 0, -1):
        base = ROOT.joinpath(*dotted[:i])
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate, dotted[i:]
    return None, dotted


def test_the_files_modules_and_cases_the_pages_name_exist() -> None:
    """Paths (`xfw_harness/engine/localize.py`, `tests/tools/test_fuzz.py`), dotted names (`xfw_harness.core.layout`,
    `xfw_harness.blocks.reference.onnx_op`) and shipped cases (`cases/conv2d.yaml::dilation`) named in code spans: a
    module moved or a case renamed must take the manual with it."""
    wrong = []
    for page in PAGES:
        for span in _code_spans(page):
            for path in re.findall(r"\b((?:xfw_harness|tests|scripts|benchmarks|cases|docs)/[\w/.-]*\w)", span):
                if not (ROOT / path).exists() and not (ROOT / "cases" / path).exists():
                    wrong.append(f"{page.name}: `{span}`: no {path}")
            for file, case in re.findall(r"\b((?:cases/)?[\w/-]+\.yaml)::(\w+)", span):
                path = ROOT / file if (ROOT / file).exists() else ROOT / "cases" / file
                if path.is_file() and not re.search(rf"name: {case}\b", path.read_text(encoding="utf-8")):
                    wrong.append(f"{page.name}: `{span}`: {file} has no case {case}")
            for dotted in re.findall(r"\bxfw_harness(?:\.\w+)+", span):
                source, rest = _module_exists(dotted.split("."))
                if source is None or (rest and not re.search(rf"\b{rest[0]}\b", source.read_text(encoding="utf-8"))):
                    wrong.append(f"{page.name}: `{span}`: no {dotted}")
    assert not wrong, "the manual names what does not exist:\n" + "\n".join(wrong)
