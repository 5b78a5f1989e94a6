"""How the report writes numbers and orders its rows: significant digits, units, ratios, errors."""

from __future__ import annotations

import math

import numpy as np

from xentbench.suite import BACKENDS, NONFINITE_ERROR

#: the issue's order: the losses first, the building blocks last
FUNCTION_ORDER = ("sparse_softmax_cross_entropy_with_logits", "softmax_cross_entropy_with_logits",
                  "sparse_softmax_cross_entropy_with_logits_and_grad",
                  "softmax_cross_entropy_with_logits_and_grad", "softmax", "log_softmax",
                  "sigmoid_cross_entropy_with_logits")


def fmt(v, digits: int = 3) -> str:
    """A number in ``digits`` significant digits; ``-`` for missing."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    v = float(v)
    if v == 0:
        return "0"
    if 1e-3 <= abs(v) < 1e5:
        decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(v)))))
        return f"{v:.{decimals}f}"
    return f"{v:.{digits - 1}e}"


def fmt_bytes(n) -> str:
    if n is None:
        return "-"
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= div:  # 1000-1023 of a unit in full, not as 1e+03
            return f"{n / div:.3g} {unit}" if abs(n) < 1000 * div else f"{n / div:.0f} {unit}"
    return f"{n:.0f} B"


def fmt_seconds(s) -> str:
    if s is None:
        return "-"
    for unit, mult in (("s", 1), ("ms", 1e3), ("us", 1e6), ("ns", 1e9)):
        if abs(s) * mult >= 1:
            return f"{s * mult:.3g} {unit}"
    return f"{s * 1e9:.3g} ns"


def fmt_error(e) -> str:
    return "inf (NaN/inf out)" if e >= NONFINITE_ERROR else f"{e:.2e}"


def fmt_ratio(r) -> str:
    return "-" if r is None or not math.isfinite(r) else f"{r:.2f}x"


def geomean(values) -> float | None:
    values = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def backends_in_order(backends) -> list[str]:
    """The report's order of backends: the suite's, then any other by name."""
    backends = set(backends)
    return [b for b in BACKENDS if b in backends] + sorted(backends - set(BACKENDS))


def functions_in_order(names) -> list[str]:
    """The report's order of functions (``FUNCTION_ORDER``), then any other by name."""
    names = set(names)
    return [f for f in FUNCTION_ORDER if f in names] + sorted(names - set(FUNCTION_ORDER))



def dtype_key(primary: str):
    """The report's dtype order: the primary dtype first, then the wider ones first."""
    return lambda d: (d != primary, -np.dtype(d).itemsize, d)


def dtypes_timed(run, function: str, primary: str = "float32") -> list[str]:
    """The dtypes ``run`` timed ``function`` at, in the report's order."""
    found = {k[4] for k in run.timings if k[0] == function}
    return sorted(found, key=dtype_key(primary))


def shapes_by_dtype(shapes, primary: str) -> list:
    """``(batch, classes, dtype)`` grouped by dtype in the report's order, then by shape."""
    key = dtype_key(primary)
    return sorted(shapes, key=lambda s: (key(s[2]), s[0], s[1]))
