"""Reading the blocks and the case files loads no framework (issue 17: `xfw-harness check` and pytest's collection of
case files answer in well under a second): importing xfw_harness.cases, xfw_harness.blocks and
xfw_harness.tools.check, and loading and planning every shipped case file, imports none of PyTorch, Keras,
TensorFlow, JAX (nor ONNX, SciPy, matplotlib). The frameworks load at their first use, through xfw_harness.core.lazy,
after xfw_harness.core.frameworks. Only a fresh process shows it: pytest has long imported them in its own.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "keras", "tensorflow", "jax", "jaxlib", "onnx", "scipy", "matplotlib")

# A meta-path finder that refuses to import a heavy package and names the chain of harness modules that asked for it
# (innermost first). importlib.util.find_spec of a package (which xfw_harness.core.backend_choice uses to see what is
# installed) imports nothing and is let through: only a find_spec called by the import machinery is refused.
REFUSER = textwrap.dedent(f"""
    import sys, traceback

    HEAVY = {HEAVY!r}

    class RefuseFrameworks:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] not in HEAVY:
                return None
            frame, importing = sys._getframe(1), False
            while frame is not None and frame.f_code.co_filename.startswith("<frozen importlib"):
                importing |= frame.f_code.co_name == "_find_and_load"
                frame = frame.f_back
            if not importing:
                return None
            chain = [f"{{f.filename}}:{{f.lineno}}" for f in reversed(traceback.extract_stack()[:-1])
                     if "xfw_harness" in f.filename]
            raise ImportError(f"{{name}} imported by " + " <- ".join(chain))

    sys.meta_path.insert(0, RefuseFrameworks())
""")


def run_child(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", REFUSER + textwrap.dedent(code)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_checking_every_shipped_case_file_imports_no_framework() -> None:
    child = run_child("""
        import sys
        from pathlib import Path

        import xfw_harness.blocks
        import xfw_harness.cases
        import xfw_harness.tools.check
        from xfw_harness.cli import main

        files = sorted(Path("cases").rglob("*.yaml"))
        report = xfw_harness.tools.check.check_paths(files)  # the loader: every case validated, every point planned
        assert report.files == len(files) > 30 and report.points > 1000, report.summary()
        from xfw_harness.cases.json_schema import case_file_schema

        assert case_file_schema()["$defs"]  # the JSON Schema, from every block's parameters and docs
        assert main(["check", "cases/conv2d.yaml"]) == 0
        loaded = sorted(name for name in sys.modules if name.split(".")[0] in HEAVY)
        assert not loaded, f"loaded: {loaded}"
        print("no framework loaded")
    """)
    assert child.returncode == 0 and "no framework loaded" in child.stdout, child.stdout[-3000:] + child.stderr[-5000:]


def test_the_refuser_names_the_module_that_imports_a_framework() -> None:
    """The check above can fail: a module that imports the frameworks is refused, named with its importer."""
    child = run_child("""
        import xfw_harness.blocks
        import xfw_harness.core.autodiff  # imports xfw_harness.core.frameworks, which imports torch
    """)
    assert child.returncode != 0
    assert "ImportError: torch imported by" in child.stderr
    assert "xfw_harness/core/frameworks.py" in child.stderr and "xfw_harness/core/autodiff.py" in child.stderr


def test_the_frameworks_load_at_first_use_after_their_set_up() -> None:
    """A block builds its layers through the lazy proxies: the first build imports xfw_harness.core.frameworks (the
    Keras backend it chose, TF32 off), and a harness Keras layer keeps its registered name in its new module."""
    code = textwrap.dedent("""
        import sys
        from pathlib import Path

        from xfw_harness.blocks import get_block
        from xfw_harness.cases import load_case

        assert "torch" not in sys.modules and "keras" not in sys.modules
        raw = {"name": "p", "block": "log_softmax", "params": {"axis": 1}, "input": {"shape": [1, 8, 3, 3]}}
        point = load_case("p.yaml", 0, raw, Path("."), set()).points[0]
        site = point.sites[0]
        module, layer = get_block("log_softmax").torch_module(site), get_block("log_softmax").keras_layer(site)
        import keras
        import torch

        import xfw_harness.core.frameworks as frameworks
        assert keras.backend.backend() == frameworks.BACKEND and not torch.backends.cudnn.allow_tf32
        assert type(layer).__module__ == "xfw_harness.blocks.activation_layers", type(layer).__module__
        assert keras.saving.get_registered_name(type(layer)) == "harness>LogSoftmax"
        assert isinstance(module, torch.nn.Module)
        print("built")
    """)
    child = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0 and "built" in child.stdout, child.stdout[-3000:] + child.stderr[-5000:]


def test_a_proxy_reads_through_to_the_module() -> None:
    """Every attribute comes from the module, those named like a method of a proxy too (torch.load)."""
    from xfw_harness.core import lazy
    from xfw_harness.core.frameworks import keras, torch

    assert lazy.torch.load is torch.load and lazy.torch.nn.Conv2d is torch.nn.Conv2d
    assert lazy.keras.__version__ == keras.__version__ and lazy.keras.layers.Dense is keras.layers.Dense
    assert lazy.lazy_module("xfw_harness.blocks.axes_layers").TorchPermute.__qualname__ == "TorchPermute"
