"""The gate's error rates on this machine: A/A runs and planted slowdowns (benchmarks/NOTES.md entry 13).

    python experiments/gate_experiments.py OUT_DIR [--runs 20] [--aa-runs 10] [--full-runs 0]

* A/A: ``xentbench gate HEAD HEAD --quick`` (two materialised copies of the
  same commit): every judgement other than *same* or *undecided* is a false alarm.
* planted: HEAD is a copy of HEAD's ``impls/`` whose
  ``sparse_softmax_cross_entropy_with_logits`` busy-waits, after each call, a
  fraction (5% or 10%) of the call's own measured time; gated with
  ``--quick --function sparse_softmax_cross_entropy_with_logits``. Detected
  where called *slower*; never to be called *faster*.
* ``--full-runs``: A/A runs of the default grid.

Runs are interleaved (planted 10%, planted 5%, A/A, ...) so that a partial
run is balanced. Each gate's JSON goes to OUT_DIR; ``summarise`` prints the
rates from them:

    python experiments/gate_experiments.py summarise OUT_DIR      # and every interval method on the same ratios
    python experiments/gate_experiments.py modes OUT_DIR RUNS     # in-process vs two processes, A/A spread
    python experiments/gate_experiments.py oldpath OUT_DIR RUNS [FRACTION]  # A/A (or planted) through bench + compare
    python experiments/gate_experiments.py summarise-oldpath OUT_DIR          # their verdicts
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTION = "sparse_softmax_cross_entropy_with_logits"
PLANT = '''

# planted by experiments/gate_experiments.py: {function} {fraction:.0%} slower
import time as _planted_time


def _planted(method, fraction):
    def slower(self, *args, **kwargs):
        start = _planted_time.perf_counter()
        result = method(self, *args, **kwargs)
        end = start + (_planted_time.perf_counter() - start) * (1 + fraction)
        while _planted_time.perf_counter() < end:
            pass
        return result
    return slower


Backend.{function} = _planted(Backend.{function}, {fraction!r})
'''


#: the commit gated: HEAD when the experiment starts (later commits do not change what is measured)
COMMIT = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def plant(dest: Path, fraction: float, function: str = FUNCTION) -> Path:
    """A folder holding HEAD's ``impls/`` with ``function`` made ``fraction`` slower."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", COMMIT, "impls"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    with open(dest / "impls" / "__init__.py", "a") as f:
        f.write(PLANT.format(function=function, fraction=fraction))
    return dest


def gate(out: Path, name: str, base: str, head: str, *options) -> None:
    cmd = [sys.executable, "-m", "xentbench.cli", "gate", base, head, "--json", str(out / f"{name}.json"),
           *options]
    started = time.time()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    (out / f"{name}.log").write_text(done.stdout + done.stderr)
    print(f"{time.strftime('%H:%M:%S')} {name}: exit {done.returncode} in {time.time() - started:.0f}s",
          flush=True)


def experiment(out: Path, runs: int, aa_runs: int, full_runs: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    planted = {f: plant(out / f"planted-{round(f * 100)}", f) for f in (0.10, 0.05)}
    for i in range(max(runs, aa_runs, full_runs)):
        for fraction, folder in planted.items() if i < runs else ():
            gate(out, f"planted{round(fraction * 100):02d}-{i:02d}", COMMIT, str(folder), "--quick",
                 "--function", FUNCTION)
        if i < aa_runs:
            gate(out, f"aa-quick-{i:02d}", COMMIT, COMMIT, "--quick")
        if i < full_runs:
            gate(out, f"aa-full-{i:02d}", COMMIT, COMMIT)


def summarise(out: Path) -> None:
    groups: dict[str, list] = {}
    for path in sorted(glob.glob(str(out / "*.json"))):
        groups.setdefault(Path(path).stem.rsplit("-", 1)[0], []).append(json.load(open(path)))
    for group, runs in groups.items():
        verdicts: dict[str, int] = {}
        exits = [r["exit"] for r in runs]
        for r in runs:
            for c in r["combinations"]:
                verdicts[c["verdict"]] = verdicts.get(c["verdict"], 0) + 1
        seconds = [r["seconds"] for r in runs]
        print(f"{group}: {len(runs)} runs, exit codes {dict((e, exits.count(e)) for e in set(exits))}, "
              f"{sum(verdicts.values())} judgements {verdicts}, {min(seconds):.0f}-{max(seconds):.0f}s a run")
        confirmed = [c for r in runs for c in r["combinations"] if c.get("first")]
        if confirmed:  # the calls a fresh worker was asked to confirm, and what it said
            pairs = ["->".join([c["first"]["timing"]] + [k["timing"] for k in c["confirmations"]]) for c in confirmed]
            print(f"  confirmations: {dict((p, pairs.count(p)) for p in sorted(set(pairs)))}; the first worker "
                  f"alone would have called {len(confirmed)} slower or faster")
        if group.startswith("planted"):
            for shape in sorted({(c["batch"], c["classes"]) for r in runs for c in r["combinations"]}):
                cells = [c for r in runs for c in r["combinations"] if (c["batch"], c["classes"]) == shape]
                times = sorted(c["base_time"] for c in cells if c["base_time"])
                ratios = sorted(round(c["ratio"], 3) for c in cells if c["ratio"])
                got = {v: sum(c["verdict"] == v for c in cells) for v in ("slower", "same", "undecided", "faster")}
                print(f"  {shape[0]}x{shape[1]} (BASE {times[len(times) // 2] * 1e6:.0f} us): "
                      f"detected {got['slower']}/{len(cells)}, {got}, median ratio "
                      f"{ratios[len(ratios) // 2] if ratios else '-'}")
        else:
            alarms = verdicts.get("slower", 0) + verdicts.get("faster", 0)
            print(f"  false alarms: {alarms} of {sum(verdicts.values())} judgements "
                  f"({alarms / max(1, sum(verdicts.values())):.2%})")


def replay(out: Path) -> None:
    """Every interval method of ``xentbench.gate.stats`` on the recorded ratios of every combination.

    The rounds were chosen by the gate's own rule (it stops when the median's
    interval decides), so this compares the methods on the same samples, not
    as each would run sequentially.
    """
    from xentbench.gate.stats import METHODS, decide

    groups: dict[str, list] = {}
    for path in sorted(glob.glob(str(out / "*.json"))):
        data = json.load(open(path))
        group = Path(path).stem.rsplit("-", 1)[0]
        groups.setdefault(group, []).extend(c for c in data["combinations"] if c["log_ratios"])
    for group, cells in groups.items():
        if group.startswith("planted"):
            cells = [c for c in cells if c["function"] == FUNCTION and c["base_time"] >= 50e-6]
        for method in sorted(METHODS):
            got: dict[str, int] = {}
            for c in cells:
                verdict = decide(c["log_ratios"], method=method).verdict
                got[verdict] = got.get(verdict, 0) + 1
            print(f"replay {group} {'(calls >= 50 us) ' if group.startswith('planted') else ''}{method}: {got}")


def modes(out: Path, runs: int) -> None:
    """A/A with a fixed number of rounds in both designs: the spread of the per-round log-ratios."""
    out.mkdir(parents=True, exist_ok=True)
    for i in range(runs):
        for mode in ("inprocess", "processes"):
            gate(out, f"mode-{mode}-{i:02d}", COMMIT, COMMIT, "--quick", "--fixed-rounds", "40", "--mode", mode)
    import numpy as np

    for mode in ("inprocess", "processes"):
        cells: dict = {}
        for path in sorted(glob.glob(str(out / f"mode-{mode}-*.json"))):
            for c in json.load(open(path))["combinations"]:
                cells.setdefault((c["batch"], c["classes"]), []).append(c["log_ratios"])
        for shape, runs_ in sorted(cells.items()):
            x = np.array([v for r in runs_ for v in r])
            q25, q75 = np.percentile(x, [25, 75])
            print(f"{mode} {shape[0]}x{shape[1]}: {len(x)} rounds, IQR of log-ratio {q75 - q25:.4f}, "
                  f"5-95% {np.percentile(x, 5):+.3f}..{np.percentile(x, 95):+.3f}")


def old_path(out: Path, runs: int, fraction: float = 0.0) -> None:
    """The same A/A through ``bench`` + ``compare``: an empty commit on top of COMMIT in a clone; with
    ``fraction``, a commit that plants that slowdown in FUNCTION instead (as ``plant`` does)."""
    name = f"planted{round(fraction * 100):02d}" if fraction else "aa"
    for i in range(runs):
        clone = out / f"clone-{i}"
        shutil.rmtree(clone, ignore_errors=True)
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        subprocess.run(["git", "checkout", "-q", COMMIT], cwd=clone, check=True)
        if fraction:
            with open(clone / "impls" / "__init__.py", "a") as f:
                f.write(PLANT.format(function=FUNCTION, fraction=fraction))
        subprocess.run(["git", "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-q", "-a",
                        "--allow-empty", "-m", name], cwd=clone, check=True)
        env = dict(os.environ, PYTHONPATH=str(clone), ASV_PYTHONPATH=str(clone))
        log = []
        for rev in ("HEAD~1", "HEAD"):
            done = subprocess.run([sys.executable, "-m", "xentbench.cli", "bench", "--backend", "numba",
                                   "--function", "sparse", "--commit", rev], cwd=clone, env=env,
                                  capture_output=True, text=True)
            log.append(done.stdout[-2000:] + done.stderr[-2000:])
        done = subprocess.run([sys.executable, "-m", "xentbench.cli", "compare", "HEAD~1", "HEAD", "--factor",
                               "1.15"], cwd=clone, env=env, capture_output=True, text=True)
        (out / f"oldpath-{name}-{i:02d}.log").write_text("\n".join(log) + done.stdout + done.stderr)
        print(f"{time.strftime('%H:%M:%S')} old path {name} {i}: compare exit {done.returncode}; "
              + done.stdout.strip().splitlines()[-3], flush=True)


#: ``compare``'s section headings -> the verdict of the rows under them
OLD_SECTIONS = {"Slower": "slower", "Faster": "faster", "Beyond the factor": "noisy", "Less accurate": "less accurate",
                "More accurate": "more accurate", "Failing": "failed"}


def summarise_old_path(out: Path) -> None:
    """Per ``oldpath`` log: the planted function's float32 time rows by verdict, and every other row
    called slower or faster (code that did not change: a false alarm)."""
    for path in sorted(out.glob("oldpath-*.log")):
        section, planted, others = None, {}, {}
        for line in path.read_text().splitlines():
            heading = next((v for k, v in OLD_SECTIONS.items() if line.startswith(k)), None)
            if heading or not line.startswith("  "):
                section = heading
                continue
            if section is None or "bench_" not in line:
                continue
            ratio, name = line.split()[2], line.split()[3]
            target = planted if (".SparseLoss.time_forward('numba'" in line and "'float32'" in line) else others
            target.setdefault(section, []).append(f"{line.split('(')[-1].rstrip(')')} {ratio}x")
        print(f"{path.stem}: planted function (SparseLoss time, float32): "
              f"{ {k: len(v) for k, v in planted.items()} }; everything else: { {k: len(v) for k, v in others.items()} }")
        for verdict in ("slower", "faster"):
            print(f"  planted {verdict}: {', '.join(planted.get(verdict, [])) or '-'}")


def main(argv) -> int:
    if argv[:1] == ["summarise"]:
        summarise(Path(argv[1]))
        replay(Path(argv[1]))
        return 0
    if argv[:1] == ["summarise-oldpath"]:
        summarise_old_path(Path(argv[1]))
        return 0
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    if argv[:1] == ["modes"]:
        modes(Path(argv[1]), int(argv[2]))
        return 0
    if argv[:1] == ["oldpath"]:
        old_path(Path(argv[1]), int(argv[2]), float(argv[3]) if len(argv) > 3 else 0.0)
        return 0
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--aa-runs", type=int, default=10)
    parser.add_argument("--full-runs", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    experiment(args.out, args.runs, args.aa_runs, args.full_runs)
    summarise(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
