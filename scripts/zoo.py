"""The model zoo as a benchmark: torchvision's models, with random weights, through `xfw-harness port`.

    .venv-zoo/bin/python scripts/zoo.py [--models resnet18 alexnet] [--timeout 900] [--out reports/zoo]
    .venv-zoo/bin/python scripts/zoo.py --fx-census [--models ...]      (or: make zoo [ZOO_ARGS=...])

Needs .venv-zoo (requirements-zoo.txt: torch 2.14.1 and torchvision 0.29.1; torchvision does not import beside
requirements.lock's torch 2.13.0). Each model is ported in a child process of its own, so that a crash, a memory
blow-up or a hang (--timeout seconds, then killed) costs one row and not the table. For each: whether it ported
(port_model returned and its verdicts passed), why not (the PortError's first lines, or the first failing verdict),
its node count, the worst error over tolerance of the model-vs-case checks, the seconds to port and verify, the peak
memory of its process; and where a .keras was saved, the reload: a fresh process runs the load lines
`load_instructions` prints, feeds the Keras model a new random input (seed 1, NCHW moved to NHWC) and compares its
output with the PyTorch model's on the same input (the model port_model verified: its batch-norm-calibrated copy
where it made one). The reload passes when max |keras - torch| <= --reload-rtol x max |torch| (default 1e-3): a
bound relative to the output's own size, loose enough for float32 summation-order differences through a deep
network and far below what a wrong weight or layout gives. Writes OUT/zoo.json and OUT/zoo.md; each child's output
goes to OUT/<model>/zoo-<stage>.log.

--fx-census instead measures what the two graph capturers make of each model, without the harness:
torch.fx.symbolic_trace and torch.export.export, whether each succeeds, its seconds, whether the captured graph
computes the model's output, and its nodes by kind (call_module by class, call_function and call_method by target
name; export's aten operators by name). Writes OUT/census.json and OUT/census.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from collections import Counter
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# name: (the builder's keyword arguments besides weights=None, the input shape NCHW)
MODELS: dict[str, tuple[dict[str, Any], tuple[int, ...]]] = {
    "resnet18": ({}, (1, 3, 224, 224)),
    "resnet50": ({}, (1, 3, 224, 224)),
    "mobilenet_v2": ({}, (1, 3, 224, 224)),
    "mobilenet_v3_small": ({}, (1, 3, 224, 224)),
    "mnasnet0_5": ({}, (1, 3, 224, 224)),
    "efficientnet_b0": ({}, (1, 3, 224, 224)),
    "regnet_y_400mf": ({}, (1, 3, 224, 224)),
    "squeezenet1_0": ({}, (1, 3, 224, 224)),
    "densenet121": ({}, (1, 3, 224, 224)),
    "shufflenet_v2_x0_5": ({}, (1, 3, 224, 224)),
    # init_weights=False: PyTorch's default initialisation instead of the truncated normal (slow where it goes
    # through scipy); random weights either way. No auxiliary heads: they only run in training mode.
    "googlenet": ({"aux_logits": False, "init_weights": False}, (1, 3, 224, 224)),
    "inception_v3": ({"aux_logits": False, "init_weights": False}, (1, 3, 299, 299)),
    "alexnet": ({}, (1, 3, 224, 224)),
    "vgg11": ({}, (1, 3, 224, 224)),
    "convnext_tiny": ({}, (1, 3, 224, 224)),
    "lraspp_mobilenet_v3_large": ({"weights_backbone": None}, (1, 3, 224, 224)),  # segmentation: {"out": NCHW}
}
WHY_LINES = 6  # of a PortError's message in the table's JSON (the whole message is kept too)


# ---------------------------------------------------------------------------------------------------- children


def build(name: str):
    """The torchvision model `name` with random weights (seed 0), in eval mode."""
    import torch
    import torchvision

    torch.manual_seed(0)
    kwargs, _ = MODELS[name]
    builder = getattr(torchvision.models, name, None) or getattr(torchvision.models.segmentation, name)
    return builder(weights=None, **kwargs).eval()


def main_output(y: Any) -> Any:
    """The tensor a model's output stands for: a segmentation model's {"out": ...}, a tuple's first element."""
    if isinstance(y, dict):
        return y["out"] if "out" in y else next(iter(y.values()))
    if isinstance(y, (tuple, list)):
        return y[0]
    return y


def first_lines(text: str, n: int) -> str:
    lines = [line for line in str(text).splitlines() if line.strip()]
    return "\n".join(lines[:n] + ([f"... ({len(lines) - n} more lines)"] if len(lines) > n else []))


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def failing_reason(ported: Any) -> str:
    """Why a port that returned did not pass: the case's first failing verdict, where the model and the case
    part, or why the Keras model could not be saved."""
    result = getattr(ported, "result", None)
    if result is not None and str(result.status) != "passed":
        verdict = next((v for v in getattr(result, "verdicts", []) if not v.passed), None)
        if verdict is None:
            return f"case {result.status}: {first_lines(getattr(result, 'message', ''), 3)}"
        return f"case {result.status}, {verdict.what}: {first_lines(verdict.message, 3)}"
    if getattr(ported, "diverged", None):
        return f"model vs case: {first_lines(ported.diverged, 3)}"
    if getattr(ported, "keras_error", None):
        return first_lines(ported.keras_error, 3)
    failing = [v for v in getattr(ported, "model_verdicts", []) if not v.passed]
    return first_lines(failing[0].message, 3) if failing else "not passed (no failing verdict found)"


def distinct_lines(text: str, n: int) -> str:
    """A PortError's message with each repeated line once, counted (a model refused for one call in each of its 16
    blocks says so 16 times), the first n of them."""
    counts = Counter(line for line in str(text).splitlines() if line.strip())
    lines = [f"{line} (x{count})" if count > 1 else line for line, count in counts.items()]
    return "\n".join(lines[:n] + ([f"... ({len(lines) - n} more kinds)"] if len(lines) > n else []))


def headroom_by_kind(result: Any) -> dict[str, float]:
    """For each kind of the case's verdicts that holds PyTorch against Keras (forward, gradient ...), the worst
    error over its tolerance, |keras - torch| / (atol + rtol |torch|), at each verdict's element of largest error
    (the comparator keeps that one; 1 is the tolerance's edge). How Keras's model compares, which
    Ported.worst_headroom (the model against the case's own PyTorch modules) does not say."""
    worst: dict[str, float] = {}
    for verdict in getattr(result, "verdicts", None) or []:
        metrics = verdict.metrics or {}
        if not getattr(verdict, "compares_frameworks", lambda: True)() or metrics.get("max_abs") is None:
            continue
        if getattr(verdict, "check", "") == "kinks":  # an end-to-end gradient that node by node decided (counted)
            continue
        bound = metrics.get("atol", 0.0) + metrics.get("rtol", 0.0) * abs(metrics.get("worst_expected") or 0.0)
        if bound > 0:
            kind = str(getattr(verdict, "kind", "forward"))
            worst[kind] = max(worst.get(kind, 0.0), metrics["max_abs"] / bound)
    return worst


def port_child(name: str, out: Path) -> dict[str, Any]:
    # The harness first, torchvision (build) after it: the order a user's script has, which the frameworks module's
    # import order keeps alive (torchvision loads triton; after TensorFlow, a SIGSEGV: xfw_harness/core/frameworks.py).
    import numpy as np
    import torch

    import xfw_harness.tools.port as hp

    model = build(name)
    _, shape = MODELS[name]
    record: dict[str, Any] = {"parameters": sum(p.numel() for p in model.parameters())}
    start = time.perf_counter()
    try:
        ported = hp.port_model(model, shape, out=out, name=name)
    except hp.PortError as e:
        record.update(status="refused", why_not=distinct_lines(str(e), WHY_LINES), port_error=str(e))
        return record
    except Exception as e:  # noqa: BLE001 - a bug of the port's is a row of the table too
        record.update(status="error", why_not=f"{type(e).__name__}: {first_lines(str(e), 3)}",
                      traceback=traceback.format_exc()[-4000:])
        return record
    finally:
        record["port_seconds"] = round(time.perf_counter() - start, 2)
    blocks = getattr(ported, "blocks", None)
    keras_path = getattr(ported, "keras_path", None)
    record.update(status="passed" if ported.passed else "failed", nodes=len(blocks) if blocks is not None else None,
                  worst_headroom=getattr(ported, "worst_headroom", None),
                  keras_vs_torch=headroom_by_kind(getattr(ported, "result", None)),
                  kinks=sum(getattr(v, "check", "") == "kinks"
                            for v in getattr(getattr(ported, "result", None), "verdicts", None) or []),
                  failing_verdicts=[f"{v.what}: {v.message.splitlines()[0]}"
                                    for v in getattr(getattr(ported, "result", None), "verdicts", None) or []
                                    if not v.passed],
                  case_status=str(getattr(getattr(ported, "result", None), "status", None)),
                  keras_path=str(keras_path) if keras_path else None,
                  why_not=None if ported.passed else failing_reason(ported))
    if keras_path:
        # The reload's check data: a new input (seed 1) and the verified PyTorch model's output on it.
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        reference = getattr(ported, "model", None) or model
        with torch.no_grad():
            y = main_output(reference(torch.from_numpy(x)))
        np.savez(out / "zoo-reload-check.npz", x=x, y=y.numpy())
        record["load_instructions"] = hp.load_instructions(ported)
    return record


def reload_child(name: str, out: Path, rtol: float) -> dict[str, Any]:
    import numpy as np

    import xfw_harness.core.frameworks  # noqa: F401  (before the load lines' keras: triton before TensorFlow)

    check = np.load(out / "zoo-reload-check.npz")
    lines = json.loads((out / "zoo-port.json").read_text(encoding="utf-8"))["load_instructions"]
    from xfw_harness.core.layout import to_channels_last

    x = to_channels_last(check["x"])  # NCHW -> NHWC
    namespace: dict[str, Any] = {"x": x}
    start = time.perf_counter()
    load = [line for line in lines if not line.startswith("y = ")]
    exec("\n".join(load), namespace)  # the lines `xfw-harness port` prints, as a user would run them
    loaded = time.perf_counter()
    y = namespace["keras"].ops.convert_to_numpy(main_output(namespace["model"](x)))
    record: dict[str, Any] = {"load_seconds": round(loaded - start, 2),
                              "predict_seconds": round(time.perf_counter() - loaded, 2)}
    reference = check["y"]
    if y.shape != reference.shape and reference.ndim == 4:
        reference = to_channels_last(reference)  # a feature map: Keras's is channels-last
    if y.shape != reference.shape:
        record.update(passed=False, why_not=f"shapes differ: keras {list(y.shape)}, torch {list(check['y'].shape)}")
        return record
    max_abs = float(np.max(np.abs(y.astype(np.float64) - reference.astype(np.float64))))
    scale = float(np.max(np.abs(reference)))
    record.update(max_abs=max_abs, torch_scale=scale, relative=max_abs / scale if scale else None,
                  passed=bool(max_abs <= rtol * scale), rtol=rtol)
    return record


def count_fx_nodes(gm: Any) -> dict[str, dict[str, int]]:
    """A symbolic_trace graph's nodes by op, and within each op by module class or target name."""
    kinds: dict[str, Counter] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            key = type(gm.get_submodule(node.target)).__name__
        elif node.op == "call_function":
            key = getattr(node.target, "__name__", str(node.target))
        elif node.op == "call_method":
            key = str(node.target)
        else:
            key = node.op
        kinds.setdefault(node.op, Counter())[key] += 1
    return {op: dict(counter.most_common()) for op, counter in kinds.items()}


def count_export_ops(gm: Any) -> dict[str, int]:
    """An exported graph's call_function nodes by operator (aten.conv2d.default ...)."""
    return dict(Counter(str(n.target) for n in gm.graph.nodes if n.op == "call_function").most_common())


def max_difference(a: Any, b: Any) -> float:
    return float((main_output(a).double() - main_output(b).double()).abs().max())


def census_child(name: str) -> dict[str, Any]:
    import torch

    model = build(name)
    x = torch.randn(MODELS[name][1], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x)
    record: dict[str, Any] = {}
    start = time.perf_counter()
    try:
        gm = torch.fx.symbolic_trace(model)
        record["fx"] = {"ok": True, "seconds": round(time.perf_counter() - start, 3), "nodes": len(gm.graph.nodes),
                        "kinds": count_fx_nodes(gm)}
        with torch.no_grad():
            record["fx"]["max_abs_vs_model"] = max_difference(gm(x), expected)
    except Exception as e:  # noqa: BLE001 - a failure is the measurement
        record["fx"] = {"ok": False, "seconds": round(time.perf_counter() - start, 3),
                        "error": f"{type(e).__name__}: {first_lines(str(e), 4)}"}
    start = time.perf_counter()
    try:
        exported = torch.export.export(model, (x,))
        record["export"] = {"ok": True, "seconds": round(time.perf_counter() - start, 3),
                            "nodes": len(exported.graph_module.graph.nodes),
                            "ops": count_export_ops(exported.graph_module)}
        with torch.no_grad():
            record["export"]["max_abs_vs_model"] = max_difference(exported.module()(x), expected)
    except Exception as e:  # noqa: BLE001 - a failure is the measurement
        record["export"] = {"ok": False, "seconds": round(time.perf_counter() - start, 3),
                            "error": f"{type(e).__name__}: {first_lines(str(e), 4)}"}
    both = {k: record[k]["ok"] for k in ("fx", "export")}
    record["status"] = "both" if all(both.values()) else "+".join(k for k, ok in both.items() if ok) or "neither"
    return record


def child_main(stage: str, name: str, out: Path, result: Path, rtol: float) -> int:
    out.mkdir(parents=True, exist_ok=True)
    if stage == "port":
        record = port_child(name, out)
    elif stage == "reload":
        record = reload_child(name, out, rtol)
    else:
        record = census_child(name)
    record["peak_rss_mb"] = round(peak_rss_mb())
    result.write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
    return 0


# ---------------------------------------------------------------------------------------------------- the parent


def run_child(stage: str, name: str, out: Path, timeout: float, rtol: float) -> dict[str, Any]:
    """One stage for one model in a child process; its JSON record, or why there is none (a crash, the time
    limit). The child's peak memory comes from wait4, so a child that dies has one too."""
    result = out / f"zoo-{stage}.json"
    out.mkdir(parents=True, exist_ok=True)
    result.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", stage, name, "--out", str(out),
               "--reload-rtol", str(rtol)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    start = time.perf_counter()
    with open(out / f"zoo-{stage}.log", "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
        timed_out = False
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > timeout:
                process.kill()
                timed_out = True
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.2)
    process.returncode = code = os.waitstatus_to_exitcode(status)
    seconds = round(time.perf_counter() - start, 1)
    base = {"process_seconds": seconds, "process_peak_rss_mb": round(usage.ru_maxrss / 1024)}
    if timed_out:
        return {**base, "status": "timeout", "why_not": f"killed after the time limit of {timeout:g} s"}
    if code != 0 or not result.exists():
        died = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited {code}"
        tail = (out / f"zoo-{stage}.log").read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        return {**base, "status": "crashed", "exit_code": code, "why_not": f"the child process {died}",
                "log_tail": tail}
    return {**base, **json.loads(result.read_text(encoding="utf-8"))}


def environment() -> dict[str, Any]:
    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "commit": git("rev-parse", "HEAD"),
            "harness_modified": bool(git("status", "--porcelain", "--", "xfw_harness")),
            "packages": {p: version(p) for p in ("torch", "torchvision", "triton", "tensorflow-cpu", "keras",
                                                 "numpy")}}


def cell(text: Any) -> str:
    return " / ".join(str(text).splitlines()).replace("|", "\\|") if text is not None else ""


def number(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "–"


def zoo_markdown(doc: dict[str, Any]) -> str:
    env = doc["environment"]
    rows = ["# The model zoo through `xfw-harness port`", "",
            f"{env['date']}, commit {env['commit'][:10]}{' (xfw_harness/ modified)' if env['harness_modified'] else ''}"
            f", {env['machine']}; " + ", ".join(f"{p} {v}" for p, v in env["packages"].items() if v) + ".",
            f"Random weights (seed 0), eval mode; reload passes at max abs <= {doc['reload_rtol']:g} x max |torch|.",
            "err/tol (1: the tolerance's edge): model, the worst max-abs error over atol of the model against the "
            "case's PyTorch modules (Ported.worst_headroom); forward and gradient, Keras against PyTorch in the "
            "case's checks, |keras - torch| / (atol + rtol |torch|) at each check's element of largest error; kinks: "
            "the end-to-end gradient verdicts that differed and that every node's gradient, both frameworks fed the "
            "same values, explained (xfw_harness/engine/node_gradients.py).",
            "", "| model | input | ported | nodes | err/tol model | err/tol forward | err/tol gradient | kinks | "
            "port s | peak MB | reload max abs | reload | why not |", "|---" * 13 + "|"]
    for name, r in doc["models"].items():
        reload = r.get("reload") or {}
        verdict = "" if not reload else ("pass" if reload.get("passed") else f"FAIL {cell(reload.get('why_not', ''))}")
        rows.append(f"| {name} | {'x'.join(map(str, r['input_shape']))} | "
                    f"{'yes' if r['status'] == 'passed' else 'no (' + r['status'] + ')'} | "
                    f"{number(r.get('nodes'), 'd')} | {number(r.get('worst_headroom'), '.3g')} | "
                    f"{number((r.get('keras_vs_torch') or {}).get('forward'), '.3g')} | "
                    f"{number((r.get('keras_vs_torch') or {}).get('gradient'), '.3g')} | "
                    f"{number(r.get('kinks'), 'd')} | "
                    f"{number(r.get('port_seconds'), '.1f')} | {number(r.get('process_peak_rss_mb'), 'd')} | "
                    f"{number(reload.get('max_abs'), '.2e')} | {verdict} | {cell(r.get('why_not'))} |")
    passed = sum(r["status"] == "passed" for r in doc["models"].values())
    return "\n".join([*rows, "", f"{passed} of {len(doc['models'])} ported.", ""])


def census_markdown(doc: dict[str, Any]) -> str:
    rows = ["# torch.fx.symbolic_trace vs torch.export.export on the zoo", "",
            f"{doc['environment']['date']}, {doc['environment']['machine']}; torch "
            f"{doc['environment']['packages']['torch']}, torchvision {doc['environment']['packages']['torchvision']}.",
            "", "| model | fx | fx s | fx nodes | fx max abs vs model | export | export s | export nodes | "
            "export max abs vs model | error |", "|---|---|---|---|---|---|---|---|---|---|"]
    totals: dict[str, Counter] = {}
    for name, r in doc["models"].items():
        fx, ex = r.get("fx") or {}, r.get("export") or {}
        errors = [f"{k}: {d['error']}" for k, d in (("fx", fx), ("export", ex)) if d.get("error")]
        if r.get("status") in ("timeout", "crashed"):
            errors.append(r["why_not"])
        rows.append(f"| {name} | {'ok' if fx.get('ok') else 'FAIL'} | {number(fx.get('seconds'), '.2f')} | "
                    f"{number(fx.get('nodes'), 'd')} | {number(fx.get('max_abs_vs_model'), '.1e')} | "
                    f"{'ok' if ex.get('ok') else 'FAIL'} | {number(ex.get('seconds'), '.2f')} | "
                    f"{number(ex.get('nodes'), 'd')} | {number(ex.get('max_abs_vs_model'), '.1e')} | "
                    f"{cell(' ; '.join(errors))} |")
        for op, kinds in (fx.get("kinds") or {}).items():
            totals.setdefault(op, Counter()).update(kinds)
        totals.setdefault("export aten ops", Counter()).update(ex.get("ops") or {})
    rows += ["", "## Node kinds over all models (count)", ""]
    for op, counter in totals.items():
        rows.append(f"- **{op}**: " + ", ".join(f"{k} {n}" for k, n in counter.most_common()))
    return "\n".join([*rows, ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS), metavar="MODEL",
                        help=f"a subset of: {' '.join(MODELS)}")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per model and stage (default 900)")
    parser.add_argument("--out", type=Path, default=Path("reports/zoo"))
    parser.add_argument("--reload-rtol", type=float, default=1e-3,
                        help="the reload passes at max abs <= this x max |torch output| (default 1e-3)")
    parser.add_argument("--fx-census", action="store_true",
                        help="measure torch.fx.symbolic_trace and torch.export.export instead of porting")
    parser.add_argument("--child", nargs=2, metavar=("STAGE", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        stage, name = args.child
        return child_main(stage, name, args.out, args.out / f"zoo-{stage}.json", args.reload_rtol)

    out = args.out if args.out.is_absolute() else ROOT / args.out
    doc: dict[str, Any] = {"environment": environment(), "timeout_s": args.timeout, "models": {}}
    if not args.fx_census:
        doc["reload_rtol"] = args.reload_rtol
    stage, stem = ("census", "census") if args.fx_census else ("port", "zoo")
    for name in args.models:
        record = {"input_shape": list(MODELS[name][1]), **run_child(stage, name, out / name, args.timeout,
                                                                     args.reload_rtol)}
        if record.get("keras_path") and record.get("load_instructions"):
            record["reload"] = run_child("reload", name, out / name, args.timeout, args.reload_rtol)
        doc["models"][name] = record
        reload = record.get("reload", {})
        print(f"{name:28} {record['status']:8} {record['process_seconds']:7.1f} s"
              + (f"  reload {'pass' if reload.get('passed') else 'FAIL'}" if reload else "")
              + (f"  {record['why_not'].splitlines()[0][:110]}" if record.get("why_not") else ""), flush=True)
        # Written after each model: a run stopped half-way still leaves its rows.
        (out / f"{stem}.json").write_text(json.dumps(doc, indent=1, default=str) + "\n", encoding="utf-8")
        (out / f"{stem}.md").write_text((census_markdown if args.fx_census else zoo_markdown)(doc), encoding="utf-8")
    print(f"wrote {out / stem}.json and {out / stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
