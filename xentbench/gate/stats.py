"""The gate's decision rule: per-round HEAD/BASE time ratios -> slower, faster, same or undecided.

Each round of ``xentbench gate`` times BASE and HEAD back to back (in
alternating order) and yields one ratio ``HEAD time / BASE time``. The rule
works on their logarithms ``x``, so that 1.25x slower and 1.25x faster are
symmetric. With the threshold ``t`` (``--threshold``, 5%), ``big = log(1 + t)``
and ``small = big / 2``, and a confidence interval ``[lo, hi]`` of the
centre of ``x`` at ``CONFIDENCE``:

* *slower* when ``lo > small``: HEAD is slower by more than half the threshold, confidently;
* *faster* when ``hi < -small``;
* *same* when ``-big < lo`` and ``hi < big``: whatever the change, it is under the threshold;
* *undecided* otherwise: the interval is too wide; more rounds narrow it.

So a change of the threshold or more is called once the interval is narrower
than half the threshold, a change under half the threshold is never called,
and one in between is called only when measured precisely.

The interval (``METHODS``; the gate uses ``DEFAULT_METHOD``, chosen by the
A/A and planted-slowdown experiments, ``experiments/gate_experiments.py``):

* ``median``: the distribution-free order-statistic interval of the median
  (the sign test's): ``[x_(k), x_(n+1-k)]`` with the largest ``k`` such that
  ``P(Binomial(n, 1/2) < k) <= (1 - CONFIDENCE) / 2``; needs no assumption on
  the shape of the noise, and a few rounds disturbed by another tenant move it
  by a rank, not by their size;
* ``mean``: the normal (Student) interval of the mean log-ratio;
* ``hodges-lehmann``: the Wilcoxon signed-rank interval of the
  Hodges-Lehmann estimate (median of the Walsh averages; assumes symmetry);
* ``bootstrap``: the percentile bootstrap interval of the median (seeded).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

VERDICTS = ("slower", "faster", "same", "undecided")
#: confidence of the interval at every look: the gate looks after each batch of
#: rounds, so the level is high enough for several looks at once
CONFIDENCE = 0.999
DEFAULT_THRESHOLD = 0.05


@dataclass(frozen=True)
class Decision:
    """The verdict on one combination's ratios: the centre and the interval as ratios."""

    verdict: str
    ratio: float  # exp(centre): HEAD / BASE
    low: float  # exp(lo)
    high: float  # exp(hi)
    rounds: int


def _z(confidence: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2)


def order_statistic_rank(n: int, confidence: float = CONFIDENCE) -> int:
    """The largest ``k`` (1-based) with ``P(Binomial(n, 1/2) < k) <= (1 - confidence) / 2``; 0 if none."""
    alpha, total, cdf, k = (1 - confidence) / 2, 2**n, 0, 0
    while k < n:
        cdf_next = cdf + math.comb(n, k)  # P(B <= k) * 2**n
        if cdf_next / total > alpha:
            break
        cdf, k = cdf_next, k + 1
    return k


def median_interval(x, confidence=CONFIDENCE):
    x = np.sort(np.asarray(x, float))
    k = order_statistic_rank(len(x), confidence)
    if k == 0:
        return float(np.median(x)), -math.inf, math.inf
    return float(np.median(x)), float(x[k - 1]), float(x[len(x) - k])


def mean_interval(x, confidence=CONFIDENCE):
    x = np.asarray(x, float)
    if len(x) < 2:
        return float(x.mean()), -math.inf, math.inf
    half = _z(confidence) * float(x.std(ddof=1)) / math.sqrt(len(x))
    return float(x.mean()), float(x.mean()) - half, float(x.mean()) + half


def hodges_lehmann_interval(x, confidence=CONFIDENCE):
    x = np.asarray(x, float)
    n = len(x)
    walsh = np.sort((x[:, None] + x[None, :])[np.triu_indices(n)] / 2)
    mean_rank, sd_rank = n * (n + 1) / 4, math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
    k = int(math.floor(mean_rank - _z(confidence) * sd_rank))  # normal approximation of the signed-rank law
    if k < 1:
        return float(np.median(walsh)), -math.inf, math.inf
    return float(np.median(walsh)), float(walsh[k - 1]), float(walsh[len(walsh) - k])


def bootstrap_interval(x, confidence=CONFIDENCE, resamples=2000, seed=0):
    x = np.asarray(x, float)
    rng = np.random.default_rng(seed)
    medians = np.median(x[rng.integers(0, len(x), (resamples, len(x)))], axis=1)
    tail = (1 - confidence) / 2 * 100
    return float(np.median(x)), float(np.percentile(medians, tail)), float(np.percentile(medians, 100 - tail))


METHODS = {"median": median_interval, "mean": mean_interval, "hodges-lehmann": hodges_lehmann_interval,
           "bootstrap": bootstrap_interval}
DEFAULT_METHOD = "median"


def decide(log_ratios, threshold: float = DEFAULT_THRESHOLD, method: str = DEFAULT_METHOD,
           confidence: float = CONFIDENCE) -> Decision:
    """The verdict on per-round ``log(HEAD time / BASE time)`` (see the module docstring)."""
    centre, lo, hi = METHODS[method](log_ratios, confidence)
    big = math.log1p(threshold)
    small = big / 2
    if lo > small:
        verdict = "slower"
    elif hi < -small:
        verdict = "faster"
    elif -big < lo and hi < big:
        verdict = "same"
    else:
        verdict = "undecided"
    return Decision(verdict, math.exp(centre), math.exp(lo), math.exp(hi), len(log_ratios))
