"""Every code example of the manual (README.md and docs/*.md) runs here, as it is written.

The convention (docs/contributing.md, "Code examples in the manual"), per fenced block, by its language:

- `yaml`: a list of cases. Written into the page's folder (as the file its first line names, `# file: NAME.yaml`,
  else an invented name) and run with every other page's cases by one `xfw-harness run`: each must pass (passed or
  divergent; skipped tests, a GPU's, are allowed beside at least one that ran), or, after `<!-- example: fails -->`,
  each of its tests must fail.
- `python`: run with this venv's Python in the page's folder, or, with a first line `# file: NAME.py`, written there
  (and compiled) for later blocks to use.
- `sh`: its lines run as one bash script (`set -e`) in the page's folder; `console`: each `$ ` line runs, and every
  `PASS|FAIL|DIVERGENT|ERROR|SKIP <id>` line shown after it must be in what it printed (numbers are not compared).
  Both must exit 0, or non-zero after `<!-- example: fails -->`.
- `text`: output, formulas and diagrams: nothing to run.

`<!-- example: not run (WHY) -->` before a block skips it with that reason (the setup commands, the whole suite, a
GPU); `<!-- example: output (WHAT) -->` marks a `python` or `yaml` block that shows a program's output. Each page
gets its own folder, holding a copy of `cases/` and a `.venv` link to this venv, so that commands run as written
(`.venv/bin/xfw-harness run cases/seed_article.yaml`). Blocks of a page run in order: a later block sees the files of
earlier ones.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
VENV = Path(sys.prefix)
LANGUAGES = ("yaml", "python", "sh", "console", "text")
MARKER = re.compile(r"^<!-- example: (.*?) -->$")
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,})(?P<info>.*)$")
STATUS_LINE = re.compile(r"^(PASS|FAIL|DIVERGENT|ERROR|SKIP)\s+(\S+)")
TIMEOUT_S = 600
PASSING = ("passed", "divergent")


@dataclass(frozen=True)
class Example:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    body: str  # dedented by the fence's indentation
    marker: str  # the text of `<!-- example: ... -->` right before the fence, or ""

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT).as_posix()}:{self.line}:{self.language}"

    @property
    def file(self) -> str | None:
        """The file name a first line `# file: NAME` gives."""
        m = re.match(r"# file: (\S+)\s*$", self.body.split("\n", 1)[0])
        return m.group(1) if m else None

    @property
    def kind(self) -> str:
        """run | fails | not run | output | text"""
        if self.language == "text":
            return "text"
        for kind in ("not run", "output", "fails"):
            if self.marker.startswith(kind):
                return kind
        return "run"

    @property
    def reason(self) -> str:
        m = re.fullmatch(r"(?:not run|output) \((.+)\)", self.marker)
        return m.group(1) if m else ""


def examples(page: Path) -> list[Example]:
    """The fenced code blocks of a Markdown page, with the marker comment before each."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence = len(m.group("indent")), m.group("fence")
        end = i + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        before = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.match(before)
        body = "\n".join(line[indent:] for line in lines[i + 1:end])
        found.append(Example(page, i + 1, m.group("info").strip(), body + "\n", marker.group(1) if marker else ""))
        i = end + 1
    return found


ALL = [example for page in PAGES for example in examples(page)]
RUNNABLE = [e for e in ALL if e.kind in ("run", "fails", "not run")]


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S)


def _tail(proc: subprocess.CompletedProcess) -> str:
    """What a failed command said, without TensorFlow's start-up log lines."""
    stderr = "\n".join(line for line in proc.stderr.splitlines()
                       if not line.startswith(("I0000 ", "WARNING: All log messages before absl")))
    return f"exit status {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{stderr[-3000:]}"


def _console_commands(body: str) -> list[tuple[str, list[str]]]:
    """(command, the output lines shown after it) for each `$ ` line of a console block."""
    commands: list[tuple[str, list[str]]] = []
    lines = body.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("$ "):
            command = lines[i][2:]
            while command.endswith("\\") and i + 1 < len(lines):
                i += 1
                command = command[:-1] + " " + lines[i].strip()
            commands.append((command, []))
        elif commands:
            commands[-1][1].append(lines[i])
        i += 1
    return commands


def _check_exit(example: Example, proc: subprocess.CompletedProcess) -> str:
    if example.kind == "fails" and proc.returncode == 0:
        return f"marked `fails`, but it exited 0\n{_tail(proc)}"
    if example.kind != "fails" and proc.returncode != 0:
        return f"failed\n{_tail(proc)}"
    return ""


def _run_block(example: Example, folder: Path) -> str:
    """Runs one python/sh/console block in its page's folder (a yaml block is only written here): "" or what went
    wrong."""
    if example.language == "yaml":
        cases = yaml.safe_load(example.body)
        if not (isinstance(cases, list) and cases and all(isinstance(c, dict) and "name" in c for c in cases)):
            return "a yaml example must be a list of cases, or be marked <!-- example: not run (why) -->"
        (folder / (example.file or f"example_{example.line}.yaml")).write_text(example.body, encoding="utf-8")
        return ""
    if example.language == "python":
        if example.file:
            compile(example.body, example.file, "exec")
            (folder / example.file).write_text(example.body, encoding="utf-8")
            return ""
        script = folder / f"_example_{example.line}.py"
        script.write_text(example.body, encoding="utf-8")
        return _check_exit(example, _run([sys.executable, script.name], folder))
    if example.language == "sh":
        return _check_exit(example, _run(["bash", "-e", "-o", "pipefail", "-c", example.body], folder))
    if example.language == "console":
        commands = _console_commands(example.body)
        if not commands:
            return "a console example must have `$ ` command lines"
        for command, shown in commands:
            proc = _run(["bash", "-o", "pipefail", "-c", command], folder)
            if problem := _check_exit(example, proc):
                return f"`{command}`: {problem}"
            printed = proc.stdout.splitlines()
            for status, test_id in (m.groups() for m in map(STATUS_LINE.match, shown) if m):
                if not any(re.match(rf"{status}\s+{re.escape(test_id)}(\s|$)", line) for line in printed):
                    return f"`{command}` did not print `{status} {test_id}` as the page shows\n{_tail(proc)}"
        return ""
    return f"no example language {example.language!r}"


def _run_page(page: Path, folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True)
    shutil.copytree(ROOT / "cases", folder / "cases")
    (folder / ".venv").symlink_to(VENV, target_is_directory=True)
    outcomes = {}
    for example in examples(page):
        if example.kind in ("run", "fails"):
            outcomes[example.id] = _run_block(example, folder)
    return outcomes


def _judge_cases(example: Example, results: list[dict]) -> str:
    statuses = [r["status"] for r in results]
    if not results:
        return "its cases gave no test (see the harness's stderr above)"
    if example.kind == "fails":
        return "" if all(s == "failed" for s in statuses) else f"marked `fails`, but its tests are {statuses}"
    bad = [f"{r['id']}: {r['status']}: {r.get('message', '')[:2000]}" for r in results
           if r["status"] not in (*PASSING, "skipped")]
    if bad or not any(s in PASSING for s in statuses):
        return "its cases do not pass:\n" + "\n".join(bad or [str(statuses)])
    return ""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Runs every page's blocks (pages side by side, each page's blocks in order), then every yaml example of
    every page in one `xfw-harness run`; maps each example's id to "" (it did what it should) or what went wrong."""
    base = tmp_path_factory.mktemp("docs-examples")
    folders = {page: base / page.stem for page in PAGES}
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        done = list(pool.map(lambda page: _run_page(page, folders[page]), PAGES))
    found = {k: v for d in done for k, v in d.items()}
    files = {}
    for e in RUNNABLE:
        if e.language == "yaml" and e.kind in ("run", "fails") and not found.get(e.id):
            files[(folders[e.page] / (e.file or f"example_{e.line}.yaml")).relative_to(base).as_posix()] = e
    if files:
        proc = _run([str(VENV / "bin" / "xfw-harness"), "run", *files, "--quiet", "--json", "results.json"], base)
        try:
            results = json.loads((base / "results.json").read_text(encoding="utf-8"))["results"]
        except (OSError, ValueError, KeyError):
            pytest.fail(f"`xfw-harness run` over the yaml examples wrote no results file\n{_tail(proc)}")
        for file, example in files.items():
            found[example.id] = _judge_cases(example, [r for r in results if r.get("file") == file])
            if found[example.id] and not [r for r in results if r.get("file") == file]:
                found[example.id] += "\n" + _tail(proc)
    return found


@pytest.mark.parametrize("example", RUNNABLE, ids=lambda e: e.id)
def test_example(example: Example, outcomes: dict[str, str]) -> None:
    if example.kind == "not run":
        pytest.skip(f"not run: {example.reason} ({example.id})")
    problem = outcomes[example.id]
    assert not problem, f"{example.id}: {problem}"


def test_every_block_has_a_known_language_and_marker() -> None:
    """A block in another language, an unknown marker, or `not run`/`output` without a reason would escape the
    examples test silently."""
    wrong = []
    for e in ALL:
        if e.language not in LANGUAGES:
            wrong.append(f"{e.id}: fence language {e.language!r}; use one of {LANGUAGES}")
        if e.marker and e.kind == "run":
            wrong.append(f"{e.id}: unknown marker <!-- example: {e.marker} -->")
        if e.kind in ("not run", "output") and not e.reason:
            wrong.append(f"{e.id}: <!-- example: {e.marker} --> needs its reason in parentheses")
        if e.kind == "output" and e.language not in ("python", "yaml"):
            wrong.append(f"{e.id}: an output in {e.language!r}: write it as a `text` block")
        if e.language == "text" and e.marker:
            wrong.append(f"{e.id}: a text block is never run: drop its marker")
    assert not wrong, "\n".join(wrong)


def test_examples_are_counted() -> None:
    """How many examples run and which are not run, and why (shown with `pytest -rA`, or on failure)."""
    counts = {kind: sum(e.kind == kind for e in ALL) for kind in ("run", "fails", "not run", "output", "text")}
    not_run = [f"  {e.id}: {e.reason}" for e in ALL if e.kind == "not run"]
    print(f"manual examples: {counts['run'] + counts['fails']} run ({counts['fails']} of them must fail), "
          f"{counts['not run']} not run, {counts['output']} outputs, {counts['text']} text blocks")
    print("not run:\n" + "\n".join(not_run))
    assert counts["run"] + counts["fails"] >= counts["not run"], "most examples of the manual should run"
