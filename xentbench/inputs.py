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


#: what ``make_linear`` returns, by name: the positional arguments of ``impls.linear_cross_entropy[_and_grad]``
LINEAR_ARGUMENTS = ("labels", "hidden", "weight")


def make_linear(batch: int, hidden: int, vocabulary: int):
    """``(labels, hidden, weight)`` of the fused linear + cross-entropy, float32: ``hidden`` ``N(0, 1)`` of
    shape ``(batch, hidden)``, ``weight`` ``(vocabulary, hidden)`` of ``N(0, 4 / hidden)`` (logits of a
    few units, as an LM head's), int64 labels uniform in ``[0, vocabulary)``. Drawn in float32: a
    float64 draw would set the peak that a memory measurement reads."""
    rng = np.random.default_rng([SEED, batch, hidden, vocabulary])
    weight = rng.standard_normal((vocabulary, hidden), dtype=np.float32)
    weight *= np.float32(2 / np.sqrt(hidden))
    return (rng.integers(0, vocabulary, size=batch, dtype=np.int64),
            rng.standard_normal((batch, hidden), dtype=np.float32), weight)

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


# --------------------------------------------------------------------------- loss options

#: PyTorch's default ``ignore_index``, outside ``[0, C)``: the range check must exempt it.
IGNORE_INDEX = -100


def class_weights(classes: int) -> np.ndarray:
    """Seeded class weights in ``[0, 2)``, one of them 0 (a class that does not count)."""
    w = np.random.default_rng([SEED, classes]).uniform(0, 2, classes)
    w[classes // 2] = 0.0
    return w


#: The loss options (``impls._options``) that the tests, ``xentbench verify`` and the
#: benchmarks use, by name: each option alone, and the combinations PyTorch got wrong,
#: smoothing with ignored rows (pytorch#73205) and weights with smoothing and ignored
#: rows (pytorch#69339). Each is a function of the number of classes.
LOSS_OPTIONS = {
    "smoothing": lambda c: dict(label_smoothing=0.1),
    "ignore": lambda c: dict(ignore_index=IGNORE_INDEX),
    "weights": lambda c: dict(class_weights=class_weights(c)),
    "sum": lambda c: dict(reduction="sum"),
    "mean": lambda c: dict(reduction="mean"),
    "z_loss": lambda c: dict(z_loss=1e-2),
    "smoothing+ignore+mean": lambda c: dict(label_smoothing=0.2, ignore_index=IGNORE_INDEX, reduction="mean"),
    "weights+smoothing+ignore+mean": lambda c: dict(class_weights=class_weights(c), label_smoothing=0.2,
                                                    ignore_index=IGNORE_INDEX, reduction="mean"),
    "weights+ignore+mean": lambda c: dict(class_weights=class_weights(c), ignore_index=IGNORE_INDEX,
                                          reduction="mean"),
    "all+sum": lambda c: dict(class_weights=class_weights(c), label_smoothing=1.0, ignore_index=IGNORE_INDEX,
                              z_loss=1e-3, reduction="sum"),
}


def loss_options(name: str, function: str, classes: int) -> dict:
    """The options ``name`` of ``LOSS_OPTIONS`` as ``function`` takes them: no ``ignore_index``
    for dense labels (it is the sparse losses' alone); possibly empty."""
    options = LOSS_OPTIONS[name](classes)
    if function not in accuracy.SPARSE:
        options.pop("ignore_index", None)
    return options


def ignoring(labels: np.ndarray, options: dict) -> np.ndarray:
    """Sparse ``labels`` with every third row from the second ignored, if ``options`` ignore one."""
    if "ignore_index" not in options:
        return labels
    labels = np.array(labels)
    labels.reshape(-1)[1::3] = options["ignore_index"]
    return labels


#: The sigmoid loss's options, by name, as ``LOSS_OPTIONS`` (``pos_weight`` per class broadcasts along the last axis).
SIGMOID_OPTIONS = {
    "smoothing": lambda c: dict(label_smoothing=0.1),
    "pos_weight": lambda c: dict(pos_weight=3.0),
    "pos_weight-per-class": lambda c: dict(pos_weight=class_weights(c)),
    "smoothing+pos_weight": lambda c: dict(label_smoothing=1.0, pos_weight=class_weights(c)),
}
