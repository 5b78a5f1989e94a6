"""The example plugin with a planted error: the sparse loss 1e-4 too large (relative).

``xentbench verify --backend logaddexp-wrong`` must fail it, naming the
function, the case and the error against the tolerance; the other functions
are the correct ones.
"""

from xentbench_logaddexp import log_softmax, softmax, softmax_cross_entropy_with_logits  # noqa: F401
from xentbench_logaddexp import sparse_softmax_cross_entropy_with_logits as _right

name = "logaddexp-wrong"
dtypes = ("float32", "float64")


def sparse_softmax_cross_entropy_with_logits(labels, logits):
    return (_right(labels, logits) * (1 + 1e-4)).astype(logits.dtype)
