"""Turn recorded asv results into a report: Markdown, PNGs and one self-contained HTML.

Reads the results of one commit on one machine (``xentbench bench`` records
them; ``xentbench.asvresults`` reads them) and writes
``<out>/<machine>-<commit>/`` with ``report.md``, its PNGs, ``report.html``
(the same report with the PNGs embedded, nothing else needed to view it),
``roofline.json`` (the machine's measured limits) and ``meta.json``; then
rewrites ``<out>/index.md``, the list of every report there. ``<out>`` is
``.asv/reports`` beside the results by default, which git ignores: a user's
reports never dirty the tree. The committed sample is made deliberately,
with ``--out reports``.

Sections: the machine; headline; the numba backend's targets met or missed
(``xentbench.targets``); throughput per function (GB/s of logits and
elements/s against classes, a panel per batch size, a line per backend, the
roofline dashed); speed-up over TensorFlow and over the fastest peer (PyTorch,
JAX) as tables and heat maps; numba's paired speed-ups (numba and each
baseline timed in turns in one process, ``benchmarks/bench_paired.py``), on
which the targets are judged when the run has them; the loss options
(``benchmarks/bench_options.py``: numba's paired cost with them, its paired
speed-up over PyTorch with the same options, each backend's time with them,
per option set and shape); the roofline (each
backend's throughput as a fraction of the limit of its shape, see
``xentbench.roofline``); accuracy
(max relative error against the float64 truth, next to TensorFlow's on the same
inputs); peak memory against the input's size; Numba first-call latency;
with ``--compare COMMIT`` another commit's numbers beside these; with
``--verify`` the table of ``xentbench verify``, run now on the working tree.

A report never overwrites another: an existing folder gets a ``-2``, ``-3``
sibling. It is built in a hidden temporary folder under ``<out>`` and
renamed into place only when complete, so an interrupted or failed report
leaves nothing behind, in the folder or in the index.

The machine's limits are measured once (about 10 s) and kept in
``.asv/roofline/<machine>.json`` beside the results (``--measure`` measures
again); a report for another machine without such a file has no roofline.

The package, its arrows running one way (each module imports only those
above it): ``results`` (loading a commit's results as a ``Run``),
``formatting`` and ``document`` (numbers, and the Markdown/HTML document),
``context`` (a report under construction; drawing its figures), ``sections``
and ``speed`` (the sections), ``folders`` (a report's folder and the index),
``command`` (the arguments and ``make_report``). The analysis they share with
other tools is in ``xentbench.analysis`` and ``xentbench.targets``.
"""

from xentbench.report.command import add_arguments, make_report, run
from xentbench.report.results import ReportError

__all__ = ["add_arguments", "make_report", "run", "ReportError"]
