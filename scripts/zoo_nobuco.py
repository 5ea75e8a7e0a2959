"""nobuco's conversion of some of the zoo's models, timed, for comparison with `xfw-harness port` (scripts/zoo.py).

    .venv-nobuco/bin/python scripts/zoo_nobuco.py [--models resnet18 ...] [--timeout 900] [--out reports/zoo]

nobuco 0.17 writes tf.keras (Keras 2) models, so it needs TensorFlow 2.15 and a venv of its own, .venv-nobuco:
torch 2.14.1 and torchvision 0.29.1 as in requirements-zoo.txt, tensorflow-cpu 2.15.1 (with numpy 1.26: TensorFlow
2.15 wants numpy < 2) and nobuco 0.17.0:

    python3 -m venv .venv-nobuco
    .venv-nobuco/bin/python -m pip install torch==2.14.1 torchvision==0.29.1 tensorflow-cpu==2.15.1 \\
        nobuco==0.17.0 "numpy<2"

Each model (random weights, seed 0, the same builders as scripts/zoo.py, batch-norm statistics calibrated as
`xfw-harness port` does, eval mode) is converted in a child process of its own with nobuco.pytorch_to_keras, inputs
and outputs channels-last (ChannelOrder.TENSORFLOW); the Keras model then runs on a new random input (seed 1, moved
to NHWC) and its output is compared with PyTorch's. Writes OUT/nobuco.json; each child's output goes to
OUT/nobuco/<model>.log.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from zoo import MODELS, ROOT, build, first_lines, main_output, peak_rss_mb  # scripts/zoo.py, beside this file

DEFAULT_MODELS = ["resnet18", "mobilenet_v2", "efficientnet_b0", "convnext_tiny"]


def calibrate(model: Any, shape: tuple[int, ...]) -> None:
    """Batch-norm statistics from 4 forward passes of random normal data, as `xfw-harness port` sets them on its copy
    of a model with initial statistics (xfw_harness/tools/port/calibrate.py; the harness itself does not import here,
    beside Keras 2), so that both convert the same model and its activations do not vanish (a random resnet's output
    is around 1e-9 without)."""
    import numpy as np
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    rng = np.random.default_rng(1234)
    for m in norms:
        m.train()
        m.momentum = None  # cumulative average over the passes
    with torch.no_grad():
        for _ in range(4):
            model(torch.from_numpy(rng.standard_normal((max(shape[0], 2), *shape[1:])).astype(np.float32)))
    for m in norms:
        m.momentum = 0.1
    model.eval()


def convert_child(name: str) -> dict[str, Any]:
    import numpy as np
    import torch

    model = build(name)  # torchvision, and so triton, before TensorFlow (xfw_harness/core/frameworks.py says why)
    calibrate(model, MODELS[name][1])
    import nobuco
    from nobuco import ChannelOrder

    shape = MODELS[name][1]
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    start = time.perf_counter()
    keras_model = nobuco.pytorch_to_keras(model, args=[x], inputs_channel_order=ChannelOrder.TENSORFLOW,
                                          outputs_channel_order=ChannelOrder.TENSORFLOW)
    record: dict[str, Any] = {"convert_seconds": round(time.perf_counter() - start, 2)}
    x1 = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        reference = main_output(model(torch.from_numpy(x1))).numpy()
    start = time.perf_counter()
    y = np.asarray(main_output(keras_model(np.ascontiguousarray(np.moveaxis(x1, 1, -1)))))
    record["predict_seconds"] = round(time.perf_counter() - start, 2)
    if reference.ndim == 4:
        reference = np.moveaxis(reference, 1, -1)  # outputs_channel_order=TENSORFLOW: a feature map is NHWC
    if y.shape != reference.shape:
        record.update(ok=False, why_not=f"shapes differ: keras {list(y.shape)}, torch {list(reference.shape)}")
        return record
    max_abs = float(np.max(np.abs(y.astype(np.float64) - reference)))
    scale = float(np.max(np.abs(reference)))
    record.update(ok=True, max_abs=max_abs, torch_scale=scale, relative=max_abs / scale if scale else None)
    return record


def run(name: str, out: Path, timeout: float) -> dict[str, Any]:
    result, log = out / f"{name}.json", out / f"{name}.log"
    result.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--out", str(out)]
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as stream:
        try:
            code = subprocess.run(command, cwd=ROOT, stdout=stream, stderr=subprocess.STDOUT, timeout=timeout,
                                  env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")).returncode
        except subprocess.TimeoutExpired:
            return {"ok": False, "why_not": f"killed after the time limit of {timeout:g} s"}
    seconds = round(time.perf_counter() - start, 1)
    if code != 0 or not result.exists():
        died = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited {code}"
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        return {"ok": False, "process_seconds": seconds, "why_not": f"the child process {died}", "log_tail": tail}
    return {"process_seconds": seconds, **json.loads(result.read_text(encoding="utf-8"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=DEFAULT_MODELS, metavar="MODEL")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--out", type=Path, default=Path("reports/zoo"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        try:
            record = convert_child(args.child)
        except Exception as e:  # noqa: BLE001 - a model nobuco cannot convert is a row too
            record = {"ok": False, "why_not": f"{type(e).__name__}: {first_lines(str(e), 6)}"}
        record["peak_rss_mb"] = round(peak_rss_mb())
        (args.out / f"{args.child}.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
        return 0

    out = args.out if args.out.is_absolute() else ROOT / args.out
    (out / "nobuco").mkdir(parents=True, exist_ok=True)
    versions = {}
    for package in ("nobuco", "torch", "torchvision", "tensorflow-cpu", "keras", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    doc: dict[str, Any] = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "packages": versions,
                           "models": {}}
    for name in args.models:
        doc["models"][name] = record = {"input_shape": list(MODELS[name][1]), **run(name, out / "nobuco",
                                                                                     args.timeout)}
        print(f"{name:20} {'ok' if record.get('ok') else 'FAIL':4} convert {record.get('convert_seconds', '-')} s  "
              f"max abs {record.get('max_abs', '-')}  {record.get('why_not') or ''}", flush=True)
        (out / "nobuco.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out / 'nobuco.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
