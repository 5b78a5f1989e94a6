"""The history targets of issue 31, simulated from the gate's own recorded A/A runs.

    python experiments/gate_history.py [--histories 10] [--more 200] [--seed 0] [--plot PNG] [--penalty P]

A history is 30 merges gated against a fixed anchor (``gate --record``);
each merge's value per combination is one run's median log-ratio. Those are
drawn here from the A/A ``--quick`` gates committed under
``experiments/results/`` (the first worker's median of each combination, the
value ``--record`` keeps, and a whole gate at a time, so that the
combinations of one run stay as correlated as they were): the noise, its
tails and its disturbed runs are those this machine measured, not a model.

* planted: a 2% step added to every combination of
  ``sparse_softmax_cross_entropy_with_logits`` from runs 9, 17 and 25 (indices
  8, 16, 24): each step is located when a step of that function is found
  within one run of it (``xentbench.gate.history.change_points``, as
  ``xentbench history`` runs it);
* A/A: no step in any function of the quick grid.

Targets: each step located in at least 9 of 10 histories; no change point in
at least 9 of 10 A/A histories. ``--more`` histories estimate the rates more
finely. Also prints, from the same files, the per-gate false-fail rate of the
committed A/A gates (exit 1 on identical code) and the combinations
``history.unstable`` lists on these A/A runs. ``--plot``: one more planted
history, recorded as ``gate --record`` writes it and drawn as ``xentbench
history --plot`` draws it. ``--penalty``: another than ``history.PENALTY``,
to compare.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import tempfile
from pathlib import Path

import numpy as np

from xentbench.gate import history
from xentbench.suite import SHORT_NAMES

ROOT = Path(__file__).resolve().parents[1]
FUNCTION = "sparse_softmax_cross_entropy_with_logits"
STEPS = (8, 16, 24)
RUNS = 30


def recorded_gates(pattern="experiments/results/**/aa-quick-*.json"):
    """Each committed A/A quick gate: ``{(function, batch, classes): first worker's median log-ratio}``."""
    gates = []
    for path in sorted(glob.glob(str(ROOT / pattern), recursive=True)):
        data = json.loads(Path(path).read_text())
        gate = {}
        for c in data["combinations"]:
            if c["ratio"] is None:
                continue
            first = c["log_ratios"][:c["first"]["rounds"]] if c.get("first") else c["log_ratios"]
            gate[(c["function"], c["batch"], c["classes"])] = float(np.median(first))
        gates.append(gate)
    return gates


def simulate(gates, names, rng, plant: bool) -> dict:
    """``{combination: 30 log-ratios}``: whole recorded gates drawn with replacement, steps added."""
    pick = rng.integers(0, len(gates), RUNS)
    level = math.log1p(0.02) * np.searchsorted(STEPS, np.arange(RUNS), side="right")
    return {n: np.array([gates[i][n] for i in pick]) + (level if plant and n[0] == FUNCTION else 0.0)
            for n in names}


def steps_by_function(logs, penalty: float) -> dict:
    functions = sorted({n[0] for n in logs})
    return {f: history.change_points(np.column_stack([x for n, x in logs.items() if n[0] == f]), penalty)
            for f in functions}


def trial(gates, names, rng, penalty: float) -> tuple[list[bool], bool, list[int]]:
    """One planted and one A/A history: ``(each step located, any A/A change point, planted steps found)``."""
    found = steps_by_function(simulate(gates, names, rng, True), penalty)[FUNCTION]
    located = [any(abs(s.at - k) <= 1 and s.change > 0 for s in found) for k in STEPS]
    aa = steps_by_function(simulate(gates, names, rng, False), penalty)
    return located, any(aa.values()), [s.at for s in found]


def per_gate_false_fails() -> tuple[list[str], int]:
    """``(the A/A gates that exited 1, how many A/A gates)`` among the committed A/A gate JSONs."""
    codes = {p: json.loads(Path(p).read_text()).get("exit")
             for p in glob.glob(str(ROOT / "experiments/results/**/aa-*.json"), recursive=True)}
    codes = {p: c for p, c in codes.items() if c is not None}
    return sorted(str(Path(p).relative_to(ROOT)) for p, c in codes.items() if c == 1), len(codes)


def as_records(logs: dict, aa: bool) -> list[dict]:
    """The runs of ``logs`` as ``gate --record`` writes them (commit ``merge01``, ... against ``anchor``)."""
    runs = len(next(iter(logs.values())))
    return [{"backend": "numba", "dtype": "float32", "aa": aa, "anchor": "merge" if aa else "anchor",
             "head": f"merge{i + 1:02d}",
             "ratios": {f"{SHORT_NAMES[f]} {b}x{c}": {"ratio": math.exp(x[i])} for (f, b, c), x in logs.items()}}
            for i in range(runs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--histories", type=int, default=10)
    parser.add_argument("--more", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--penalty", type=float, default=history.PENALTY)
    args = parser.parse_args()
    gates = recorded_gates()
    names = sorted(set.intersection(*(set(g) for g in gates)))
    print(f"noise: {len(gates)} recorded A/A --quick gates, {len(names)} combinations each; "
          f"penalty {args.penalty}, min segment {history.MIN_SIZE} runs, min step {history.MIN_STEP:.0%}")
    rng = np.random.default_rng(args.seed)
    for label, count in (("target", args.histories), ("estimate", args.more)):
        located, false = np.zeros(len(STEPS), int), 0
        for i in range(count):
            hit, aa, at = trial(gates, names, rng, args.penalty)
            located += hit
            false += aa
            if label == "target":
                print(f"  history {i + 1}: planted steps found at runs {[a + 1 for a in at]} (planted at "
                      f"{[k + 1 for k in STEPS]}); A/A: {'a change point' if aa else 'no change point'}")
        print(f"{label}: {count} histories: each step located within one run in "
              f"{', '.join(f'{n}/{count}' for n in located)} (runs {', '.join(str(k + 1) for k in STEPS)}); "
              f"A/A histories without a change point: {count - false}/{count}")
    failed, total = per_gate_false_fails()
    print(f"committed A/A gates (experiments/results/**/aa-*.json): {len(failed)} of {total} exited 1: {failed}")
    records = as_records({n: np.array([g[n] for g in gates]) for n in names}, aa=True)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "aa.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        unstable = history.unstable(path, "numba", "float32", 0.05)
    print(f"unstable among them at the 5% threshold: {unstable or 'none'}")
    if args.plot:
        heads, logs, found = history.analyse(as_records(simulate(gates, names, rng, True), aa=False), "numba",
                                             "float32")
        history.plot(args.plot, heads, logs, found)
        print(f"{args.plot}: one more planted history; steps found: "
              f"{ {f: [(heads[s.at], f'{s.change:+.1%}') for s in st] for f, st in found.items() if st} }")


if __name__ == "__main__":
    main()
