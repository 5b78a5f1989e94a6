"""The benchmark inputs, defined once: the asv suite (``benchmarks/common.py``) and ``xentbench gate`` make them here.

Made from a seed derived from the shape, the same for every backend and every
commit: logits ``3 * N(0, 1)`` plus a per-row offset ``N(0, 2)`` plus a bump
of ``+5`` at the label (a classifier that has learnt something; never zeros,
never constant). Sparse labels are uniform in ``[0, classes)``; dense labels
are the same labels one-hot with label smoothing 0.1 (every row sums to 1);
sigmoid labels are the one-hot rows.
"""

from __future__ import annotations

import numpy as np

from xentbench import accuracy

LOGIT_STD = 3.0
ROW_OFFSET_STD = 2.0
LABEL_BUMP = 5.0
LABEL_SMOOTHING = 0.1
SEED = 20240611


def make_logits(batch: int, classes: int, dtype: str):
    """``(logits, sparse_labels)`` of one shape: ``(batch, classes)`` of ``dtype`` and int64 ``(batch,)``."""
    rng = np.random.default_rng([SEED, batch, classes])
    gen = np.float64 if dtype == "float64" else np.float32
    logits = rng.standard_normal((batch, classes), dtype=gen)
    logits *= LOGIT_STD
    logits += (rng.standard_normal((batch, 1)) * ROW_OFFSET_STD).astype(gen)
    labels = rng.integers(0, classes, size=batch, dtype=np.int64)
    logits[np.arange(batch), labels] += LABEL_BUMP
    return logits.astype(dtype, copy=False), labels


def arguments(function: str, logits, sparse) -> tuple:
    """The positional arguments of ``function``: ``(logits,)`` or ``(labels, logits)``."""
    if function in ("softmax", "log_softmax"):
        return (logits,)
    if function in accuracy.SPARSE:
        return sparse, logits
    batch, classes = logits.shape
    rows = np.arange(batch)
    if function in accuracy.DENSE:
        labels = np.full((batch, classes), LABEL_SMOOTHING / classes, dtype=logits.dtype)
        labels[rows, sparse] += 1 - LABEL_SMOOTHING
        return labels, logits
    labels = np.zeros((batch, classes), dtype=logits.dtype)  # sigmoid: multi-label targets
    labels[rows, sparse] = 1
    return labels, logits
