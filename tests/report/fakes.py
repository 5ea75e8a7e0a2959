"""Results as the runner writes them (their dicts), made up for the report's tests."""

from __future__ import annotations


def result(rid: str, status: str, device: str = "cpu", file: str = "cases/x.yaml", case: str = "c",
           message: str = "", backend: str = "tensorflow", block: str = "relu") -> dict:
    return {"id": rid, "file": file, "case": case, "blocks": [block], "sweep": {}, "device": device,
            "backend": backend, "status": status, "message": message, "shapes": {}, "placement": {}, "verdicts": [],
            "duration_s": 0.5, "case_yaml": f"name: {case}\n"}


def on(point: str, backend: str, status: str, **kw: object) -> dict:
    """A result of the point `FILE::CASE[SWEEP-DEVICE]` on `backend`, its id ending in the backend as run ids do."""
    return result(point[:-1] + f"-{backend}]", status, backend=backend, **kw)
