"""requirements-zoo.txt (`make zoo`'s .venv-zoo) is requirements.lock with torch 2.14.1 and torchvision beside it:
every other pin the same, so that the zoo measures the harness CI tests, and a package the lock gains (the venv
installs the harness with --no-deps) is not missing there."""

from pathlib import Path

from tests.project.test_requirements import _pins

ROOT = Path(__file__).resolve().parents[2]


def test_the_zoo_pins_what_the_lock_pins_but_torch() -> None:
    lock, zoo = _pins(ROOT / "requirements.lock"), _pins(ROOT / "requirements-zoo.txt")
    assert "torch" in zoo and "torchvision" in zoo, "the zoo needs torchvision, and the torch it was built for"
    differ = {name: (version, zoo.get(name)) for name, version in lock.items()
              if name != "torch" and zoo.get(name) != version}
    assert not differ, f"requirements-zoo.txt should pin these as requirements.lock does (lock, zoo): {differ}"
