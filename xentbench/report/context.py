"""A report under construction (``Context``) and the drawing of its figures (``render``).

The sections write tables into ``ctx.doc`` and queue figures with
``ctx.plot``; ``render`` draws the queue at the end, in worker processes when
there are several, since matplotlib takes most of a report's time.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from xentbench.console import Steps
from xentbench.report.document import Doc
from xentbench.report.results import Run


@dataclass
class Context:
    run: Run
    old: Run | None
    roof: dict | None
    roof_source: str
    folder: Path
    dtype: str  # the dtype of the tables and heat maps
    doc: Doc
    progress: Steps  # ``[elapsed] what`` lines on stderr
    verify_rows: list | None = None  # the rows of ``xentbench verify --json``
    verify_tree: str = ""  # what code the verification ran, in words
    jobs: list = field(default_factory=list)

    def plot(self, function: str, filename: str, *args, **kwargs) -> None:
        """Queue ``xentbench.plots.<function>(folder / filename, *args)``; ``render`` draws them."""
        self.jobs.append((function, str(self.folder / filename), args, kwargs))


def _draw(job) -> str:
    from xentbench import plots
    function, path, args, kwargs = job
    getattr(plots, function)(path, *args, **kwargs)
    return Path(path).name


def render(jobs: list, workers: int, progress: Steps) -> None:
    """Draw the queued figures, in ``workers`` processes when more than one."""
    if workers <= 1 or len(jobs) <= 1:
        for i, job in enumerate(jobs, 1):
            progress(f"plot {i}/{len(jobs)}: {_draw(job)}")
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    import xentbench.plots  # noqa: F401  imported once, before the workers fork
    # fork is instant; but not once a library that runs threads of its own is loaded
    # (--verify, --measure): a forked child could inherit a lock held by one of them
    threaded = any(m in sys.modules for m in ("numba", "tensorflow", "torch", "jax"))
    method = "spawn" if threaded or "fork" not in multiprocessing.get_all_start_methods() else "fork"
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method)) as pool:
        futures = [pool.submit(_draw, job) for job in jobs]
        for i, done in enumerate(as_completed(futures), 1):
            progress(f"plot {i}/{len(jobs)}: {done.result()}")

