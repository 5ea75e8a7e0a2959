"""Pictures of one comparison, for the report: two named arrays in (a comparison's actual and expected: keras and
torch, or keras and the case's expected values, ...), small compressed PNGs (base64) and numbers out.

Made at run time, where the outputs exist, and kept in the results file, so that a report merged from shards
that ran on other machines still shows them. Only for the tests that ask (failed ones by default): a passing
suite of 2,000 tests carries no pictures at all.

- Heatmaps: for the sample that holds the worst element, the channels with the largest error (worst first,
  at most MAX_CHANNELS): the first array, the second (one colour scale for both, so equal looks equal) and
  |a - b| (its own scale from 0). Raw pixels, one per element, scaled up by the browser; planes
  larger than MAX_SIDE are reduced by block mean (values) and block max (errors, so no error is hidden).
- Histogram of log10 |a - b| over all elements, with the tolerance marked; exact zeros are counted
  apart (a log scale has no place for them). Kept as numbers; the page draws it.
"""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import numpy as np

MAX_CHANNELS = 8
MAX_SIDE = 96


def _png(plane: np.ndarray, vmin: float, vmax: float, cmap: str) -> str:
    import matplotlib.image

    buf = io.BytesIO()
    if not vmax > vmin:  # a constant plane: any colour will do, but imsave needs a range
        vmax = vmin + 1.0
    matplotlib.image.imsave(buf, np.nan_to_num(plane, nan=vmin, posinf=vmax, neginf=vmin), vmin=vmin, vmax=vmax,
                            cmap=cmap, format="png", pil_kwargs={"optimize": True})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _reduce(plane: np.ndarray, how: str) -> tuple[np.ndarray, int]:
    """`plane` with each side at most MAX_SIDE, by blocks of f x f cells (mean or max); returns f."""
    f = max(1, math.ceil(max(plane.shape) / MAX_SIDE))
    if f == 1:
        return plane, 1
    h, w = (-(-plane.shape[0] // f)) * f, (-(-plane.shape[1] // f)) * f
    padded = np.full((h, w), np.nan)
    padded[: plane.shape[0], : plane.shape[1]] = plane
    blocks = padded.reshape(h // f, f, w // f, f)
    return (np.nanmax(blocks, axis=(1, 3)) if how == "max" else np.nanmean(blocks, axis=(1, 3))), f


def heatmaps(a: np.ndarray, b: np.ndarray, names: tuple[str, str] = ("torch", "keras")) -> dict[str, Any]:
    """Per-channel heatmaps of both arrays and of their difference (channels-first arrays of equal shape), each
    channel's pictures under "a", "b" and "diff"; `names` says what a and b are (the page labels them so)."""
    t = np.asarray(a, np.float64)
    k = np.asarray(b, np.float64)
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, drawn as the bottom of the scale
        diff = np.abs(t - k)
    finite = np.isfinite(diff)
    worst = np.unravel_index(int(np.argmax(np.where(finite, diff, -1.0))), diff.shape) if diff.size else (0,)
    if t.ndim >= 3:
        sample = int(worst[0])
        t_s, k_s, d_s = t[sample], k[sample], diff[sample]
        spatial = t.shape[2:]
        if len(spatial) == 1:
            t_s, k_s, d_s = t_s[:, None, :], k_s[:, None, :], d_s[:, None, :]
        elif len(spatial) > 2:
            t_s, k_s, d_s = (a.reshape(a.shape[0], spatial[0], -1) for a in (t_s, k_s, d_s))
        label = "channel"
    else:  # (N, F): the whole batch as one plane, a row per sample
        sample = None
        t_s, k_s, d_s = (np.atleast_2d(a)[None] for a in (t, k, diff))
        label = "samples x features"
    per_channel = np.array([np.nanmax(np.where(np.isfinite(d), d, np.inf)) if d.size else 0.0 for d in d_s])
    order = np.argsort(-per_channel, kind="stable")[:MAX_CHANNELS]
    both = np.concatenate([t_s[np.isfinite(t_s)], k_s[np.isfinite(k_s)]])
    vmin, vmax = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
    channels = []
    for c in order:
        tp, f = _reduce(t_s[c], "mean")
        kp, _ = _reduce(k_s[c], "mean")
        dp, _ = _reduce(d_s[c], "max")
        dmax = float(per_channel[c])
        channels.append({"index": int(c), "max_abs": dmax, "reduced_by": f,
                         "rows": int(tp.shape[0]), "cols": int(tp.shape[1]),
                         "a": _png(tp, vmin, vmax, "viridis"), "b": _png(kp, vmin, vmax, "viridis"),
                         "diff": _png(dp, 0.0, dmax if math.isfinite(dmax) and dmax > 0 else 1.0, "magma")})
    return {"names": list(names), "label": label, "sample": sample, "n_channels": int(len(d_s)),
            "value_range": [vmin, vmax], "channels": channels}


def error_histogram(a: np.ndarray, b: np.ndarray, atol: float | None) -> dict[str, Any]:
    """Counts of log10 |a - b| in 40 bins, the exact zeros apart, and the tolerance: the page draws it
    (as SVG: a few hundred bytes of numbers instead of a picture of them)."""
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, dropped just below
        diff = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).ravel()
    diff = diff[np.isfinite(diff)]
    zeros = int((diff == 0).sum())
    logs = np.log10(diff[diff > 0])
    counts, edges = np.histogram(logs, bins=40) if logs.size else (np.zeros(0, int), np.zeros(0))
    return {"zeros": zeros, "nonzero": int(logs.size), "counts": counts.tolist(),
            "log10_edges": [round(float(e), 4) for e in edges],
            "log10_atol": round(math.log10(atol), 4) if atol else None}


def comparison_pictures(a: np.ndarray, b: np.ndarray, atol: float | None,
                        names: tuple[str, str] = ("torch", "keras"), what: str | None = None) -> dict[str, Any]:
    """Everything the report draws for the comparison `what` of `a` against `b` (named `names`); {} when the
    shapes differ (nothing to align)."""
    if np.shape(a) != np.shape(b) or np.size(a) == 0:
        return {}
    return {"what": what or f"{names[0]} vs {names[1]}", "heatmaps": heatmaps(a, b, names),
            "histogram": error_histogram(a, b, atol)}
