"""What the report and the targets compute from one run's results: throughputs, speed-ups, roofline fractions.

``run`` is the report's ``Run`` (one commit's results on one machine): these
functions read its ``timings`` (``(function, backend, batch, classes, dtype)
-> seconds``) and ``paired`` (``(function, baseline, batch, classes, dtype)
-> FOCUS's paired speed-up``) only.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from xentbench import roofline
from xentbench.suite import PEERS, REFERENCE


def throughput_gbs(key, seconds) -> float:
    """GB/s of logits of one timing: ``key`` is ``(function, backend, batch, classes, dtype)``."""
    _, _, batch, classes, dtype = key
    return batch * classes * np.dtype(dtype).itemsize / seconds / 1e9


def speedups(run, function: str, dtype: str) -> dict:
    """``{(backend, "tf"|"peer"): {(batch, classes): ratio}}``: time of the baseline / time of the backend."""
    by_shape = defaultdict(dict)
    for (f, b, batch, classes, dt), t in run.timings.items():
        if f == function and dt == dtype:
            by_shape[(batch, classes)][b] = t
    out = defaultdict(dict)
    for shape, times in by_shape.items():
        ref = times.get(REFERENCE)
        peers = [times[p] for p in PEERS if p in times]
        best_peer = min(peers) if peers else None
        for b, t in times.items():
            if ref is not None and b != REFERENCE:
                out[(b, "tf")][shape] = ref / t
            if best_peer is not None and b not in PEERS:
                out[(b, "peer")][shape] = best_peer / t
    return out


def paired_speedups(run, function: str, dtype: str) -> dict:
    """``{against: {(batch, classes): ratio}}``: numba's paired speed-ups over each
    baseline (``"tensorflow"``, ``"torch"``, ``"jax"``), and as ``speedups``
    names them, ``"tf"`` and ``"peer"``: over the faster peer, the smaller of
    the ratios over the peers measured at that shape."""
    out = defaultdict(dict)
    for (f, baseline, batch, classes, dt), ratio in run.paired.items():
        if f == function and dt == dtype:
            out[baseline][(batch, classes)] = ratio
    if REFERENCE in out:
        out["tf"] = dict(out[REFERENCE])
    for shape in {s for p in PEERS for s in out.get(p, {})}:
        out["peer"][shape] = min(out[p][shape] for p in PEERS if shape in out.get(p, {}))
    return dict(out)


def roofline_fraction(run, roof: dict | None) -> dict:
    """``key -> (fraction of the limit, bound, memory level, fraction of the bandwidth ceiling)``."""
    if roof is None:
        return {}
    out = {}
    for key, t in run.timings.items():
        function, _, batch, classes, dtype = key
        if function not in roofline.TRAFFIC:
            continue
        lim = roofline.limit(roof, function, batch, classes, dtype)
        rate = batch * classes / t
        bandwidth = roofline.ceilings(roof, function, batch * classes * roofline.TRAFFIC[function]
                                      * np.dtype(dtype).itemsize, dtype)[0]
        out[key] = (rate / lim["elements_per_s"], lim["bound"], lim["level"], rate / bandwidth)
    return out
