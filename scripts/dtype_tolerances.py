"""Measure PyTorch-vs-Keras differences of every shipped case point re-run in reduced precision.

    .venv/bin/python scripts/dtype_tolerances.py [DTYPE ...] [--cases DIR]

Each point of every case under cases/ is loaded again with `input.dtype` set to each DTYPE (default: float16
bfloat16 float32), without its own tolerance and golden values (those are written for float32), and run on the CPU.
Printed per block family (a network counts as `sequential`) and dtype: how many points ran, how many failed or
were refused, and the worst of

    ratio = max over elements of |keras - torch| / (atol + rtol * |torch|)

under xfw_harness.core.tolerance.default_tolerance (the current formula), and of the raw error in units of the formula's
terms: |keras - torch| / (eps * max(1, scale)) ("ulps of the scale") together with sqrt(K). The per-dtype numbers of
the manual (docs/tolerances.md) and of xfw_harness/core/tolerance.py come from this script.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import xfw_harness.core.frameworks  # noqa: E402,F401  (first: fixes the Keras backend)
from xfw_harness.cases import Point, RefusedPoint, find_case_files, load_case, load_file  # noqa: E402
from xfw_harness.core.tolerance import EPS, default_tolerance  # noqa: E402
from xfw_harness.engine import build_keras, build_torch, forward_keras, forward_torch  # noqa: E402


def retyped(point: Point, dtype: str) -> Point | RefusedPoint | None:
    """The point again with input.dtype = `dtype`, no tolerance and no golden expectations; None: not comparable."""
    raw = copy.deepcopy(point.raw)
    if raw.get("compare", "frameworks") != "frameworks" or raw.get("expect", {}).get("fails"):
        return None
    raw.pop("tolerance", None)
    raw.pop("expect", None)
    raw.pop("sweep", None)
    raw["input"] = {**raw["input"], "dtype": dtype}
    entry = load_case(point.file, 0, raw, Path(point.file).parent, set())
    if entry.error is not None:
        return RefusedPoint({}, entry.error)
    return entry.points[0]


def family(point: Point) -> str:
    return "sequential" if point.sequential else point.layers[0].block.family + ":" + point.layers[0].block.name


def measure(point: Point) -> dict:
    x = point.input.make()
    modules = build_torch(point, "cpu")
    layers = build_keras(point, modules, "cpu")
    t = forward_torch(point, modules, x, "cpu")
    k = forward_keras(point, layers, x, "cpu")
    stochastic = point.mode == "train" and point.layers[-1].block.stochastic
    if stochastic:
        if len(t) < 2:
            return {}
        t, k = t[:-1], k[:-1]
    a, b = k[-1].astype(np.float64), t[-1].astype(np.float64)
    finite = np.isfinite(a) & np.isfinite(b)
    kk = max(layer.block.reduction_length(site) for layer, site in zip(point.layers, point.sites))
    scale = float(np.abs(b[finite]).max()) if finite.any() else 1.0
    tol = default_tolerance(point.input.dtype, kk, scale)
    d = np.where(finite, np.abs(a - b), 0.0)
    ratio = float((d / (tol.atol + tol.rtol * np.abs(np.where(finite, b, 0.0)))).max()) if d.size else 0.0
    ulps = float(d.max() / (EPS[point.input.dtype] * max(1.0, scale))) if d.size else 0.0
    return {"ratio": ratio, "ulps": ulps, "k": kk, "scale": scale, "max_abs": float(d.max()) if d.size else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dtypes", nargs="*", default=["float16", "bfloat16", "float32"])
    parser.add_argument("--cases", default=str(Path(__file__).resolve().parents[1] / "cases"))
    parser.add_argument("--top", type=int, default=3, help="worst points listed per dtype")
    args = parser.parse_args()
    points = []
    for path in find_case_files([args.cases]):
        entries, _ = load_file(path)
        points += [p for e in entries for p in e.points if isinstance(p, Point)]
    for dtype in args.dtypes:
        rows: dict[str, list] = defaultdict(list)
        refused: dict[str, list[str]] = defaultdict(list)
        worst = []
        for point in points:
            p = retyped(point, dtype)
            if p is None:
                continue
            if isinstance(p, RefusedPoint):
                refused[family(point)].append(f"{point.test_id('cpu')}: {p.error}")
                continue
            try:
                m = measure(p)
            except Exception as e:  # noqa: BLE001 - a framework refusing the dtype is what this looks for
                refused[family(point)].append(f"{point.test_id('cpu')}: {type(e).__name__}: {str(e)[:200]}")
                continue
            if m:
                rows[family(point)].append(m)
                worst.append((m["ratio"], point.test_id("cpu"), m))
        print(f"\n== {dtype}: eps {EPS[dtype]:.3g} ==")
        print(f"{'family':34s} {'n':>4s} {'worst ratio':>11s} {'worst ulps/sqrt(K)':>18s} {'worst ulps':>10s} "
              f"{'max K':>6s} refused")
        for fam in sorted(set(rows) | set(refused)):
            ms = rows.get(fam, [])
            r = max((m["ratio"] for m in ms), default=float("nan"))
            u = max((m["ulps"] / math.sqrt(m["k"]) for m in ms), default=float("nan"))
            uu = max((m["ulps"] for m in ms), default=float("nan"))
            kk = max((m["k"] for m in ms), default=0)
            print(f"{fam:34s} {len(ms):4d} {r:11.4f} {u:18.4f} {uu:10.3f} {kk:6d} {len(refused.get(fam, []))}")
        for ratio, tid, m in sorted(worst, reverse=True)[:args.top]:
            print(f"  worst: {ratio:.4f} {tid} K={m['k']} scale={m['scale']:.3g} max_abs={m['max_abs']:.3g}")
        for fam, msgs in sorted(refused.items()):
            for msg in msgs[:2]:
                print(f"  refused [{fam}] {msg}")


if __name__ == "__main__":
    main()
