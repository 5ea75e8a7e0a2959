"""`xfw-harness list` and `xfw-harness new` answer from the shipped block catalogue (xfw_harness/data/blocks.json)
without importing a framework (issue 17: 12-14 s to print text; 4-5 s before the catalogue), and say exactly what the
registry says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
from xfw_harness.cli import main
from xfw_harness.tools import catalogue

HEAVY = ("torch", "keras", "tensorflow", "jax", "onnx")


def test_the_shipped_catalogue_is_rendered_from_the_registry_as_it_is() -> None:
    assert catalogue.CATALOGUE_FILE.read_text(encoding="utf-8") == catalogue.catalogue_text(), (
        f"{catalogue.CATALOGUE_FILE} is stale: regenerate it with `make schema` "
        "(python -m xfw_harness.tools.catalogue)")


@pytest.mark.parametrize("argv", [["list"], ["list", "conv2d", "dense"], ["list", "--markdown"], ["new", "conv2d"],
                                  ["new", "sequential"]], ids=" ".join)
def test_list_and_new_import_no_framework(argv: list[str]) -> None:
    script = (f"import sys\nfrom xfw_harness.cli import main\ncode = main({argv!r})\n"
              f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
              "assert code == 0 and not loaded, (code, loaded)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()


@pytest.mark.parametrize("argv", [["list"], ["list", "relu", "conv2d"], ["list", "--markdown"], ["new", "conv2d"],
                                  ["new", "residual"], ["list", "conv2"], ["new", "conv2"]], ids=" ".join)
def test_the_catalogue_says_what_the_registry_says(argv: list[str], monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The same output from the shipped file and from the registry (a catalogue file that does not exist), unknown
    names included (their message comes from the registry either way)."""
    from_file = (main(argv), *capsys.readouterr())
    monkeypatch.setattr(catalogue, "CATALOGUE_FILE", tmp_path / "missing.json")
    from_registry = (main(argv), *capsys.readouterr())
    assert from_file == from_registry
    assert from_file[0] == (2 if argv[-1] == "conv2" else 0)


def test_a_stale_catalogue_is_what_the_commands_print(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The commands print the file, so the staleness test above is what keeps them true (planted: a changed doc)."""
    stale = tmp_path / "blocks.json"
    stale.write_text(catalogue.CATALOGUE_FILE.read_text(encoding="utf-8").replace("2-D convolution", "PLANTED"))
    monkeypatch.setattr(catalogue, "CATALOGUE_FILE", stale)
    main(["list", "conv2d"])
    assert "PLANTED" in capsys.readouterr().out
    assert stale.read_text(encoding="utf-8") != catalogue.catalogue_text()
