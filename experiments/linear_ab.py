"""The fused linear + cross-entropy's driver at another revision against this checkout's, paired.

    OPENBLAS_CORETYPE= python experiments/linear_ab.py REV NxDxV [NxDxV ...]

Loads ``impls/_linear.py`` of git revision ``REV`` beside this checkout's and
runs both drivers (``chunked``) on numba's sparse loss, with PyTorch's
``F.linear`` + ``F.cross_entropy``, forward and backward of the summed loss,
float32, in alternating turns in one process (7 turns, each an untimed call and
a timed one; medians); prints new/old, PyTorch's time over each, each one's
share of this machine's SGEMM rate (``linear_targets.sgemm_rate``), and how far
the results are apart (largest difference over the largest value: loss,
grad_hidden, grad_weight). ``benchmarks/NOTES.md`` entry 32.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from linear_targets import _timed, calls, sgemm_rate
from xentbench.inputs import make_linear
from impls import _linear, numba_parallel

ROOT = Path(__file__).resolve().parent.parent


def driver_at(rev: str):
    """``impls/_linear.py`` of ``rev``, as a module of the ``impls`` package (its relative imports this checkout's)."""
    source = subprocess.run(["git", "show", f"{rev}:impls/_linear.py"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    path = Path(tempfile.mkdtemp()) / "_linear_old.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("impls._linear_old", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(rev: str, shapes) -> None:
    old = driver_at(rev)
    loss, grad = (numba_parallel.sparse_softmax_cross_entropy_with_logits,
                  numba_parallel.sparse_softmax_cross_entropy_with_logits_and_grad)
    for n, d, v in shapes:
        labels, hidden, weight = make_linear(n, d, v)
        call = _linear.check(labels, hidden, weight, None, {}, "linear_cross_entropy_and_grad")
        args = (loss, call.labels, call.hidden, call.weight)
        forms = {"old": lambda: old.chunked(*args, grad_fn=grad), "new": lambda: _linear.chunked(*args, grad_fn=grad),
                 "torch": calls(labels, hidden, weight)["torch"]}
        apart = [float(np.abs(a - b).max() / np.abs(a).max()) for a, b in zip(forms["old"](), forms["new"]())]
        times = {k: [] for k in forms}
        for _ in range(7):
            for k, f in forms.items():
                f()  # the lead-in: the previous form's threads settle
                times[k].append(_timed(f))
        med = {k: float(np.median(t)) for k, t in times.items()}
        sgemm = sgemm_rate(hidden, weight)
        share = {k: 6 * n * d * v / med[k] / sgemm for k in ("old", "new")}
        print(f"{n}x{d}x{v}: old {med['old']:.3f} s, new {med['new']:.3f} s (new/old {med['new'] / med['old']:.3f}); "
              f"torch {med['torch']:.3f} s: torch/new {med['torch'] / med['new']:.2f}x (torch/old "
              f"{med['torch'] / med['old']:.2f}x); new {share['new']:.0%} of SGEMM {sgemm / 1e9:.0f} GFLOP/s (old "
              f"{share['old']:.0%}); results apart {', '.join(f'{x:.1e}' for x in apart)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], [tuple(map(int, s.split("x"))) for s in sys.argv[2:]])
