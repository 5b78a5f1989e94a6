"""The bisection target of issue 31: 8 commits, one of which plants a 10% slowdown; is it named?

    python experiments/gate_bisect.py OUT_DIR [--runs 20] [--backend numpy]

Each run makes 8 commits on a throwaway clone of this repository (under
OUT_DIR): 7 that change only a comment in README.md, and at a position that
cycles over the 8 (3, 6, 1, 4, 7, 2, 5, 8, ...) one that also appends
``gate_experiments.PLANT`` to ``impls/__init__.py``: a busy-wait of 10% of
each call of ``sparse_softmax_cross_entropy_with_logits``, which the later
commits keep. Then, in the clone,

    xentbench gate GOOD BAD --bisect --quick --function sparse_softmax_cross_entropy_with_logits

(``--backend numpy`` by default: the plant sits in the front door, every backend
has it, and numpy compiles nothing, so each step measures rather than
compiles). The gate runs in the clone, so its instruments are the clone's
own: this repository's HEAD when the clone was made (the log's first line
names it). A run succeeds when the culprit printed is the planted commit; the
JSON and log of each run (every step's gate) go to OUT_DIR. Target: the culprit in
at least 19 of 20 runs, in at most 4 gate steps.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from gate_experiments import FUNCTION, PLANT

ROOT = Path(__file__).resolve().parents[1]
COMMITS = 8
POSITIONS = (3, 6, 1, 4, 7, 2, 5, 8)  # the planted commit of run i: POSITIONS[i % 8] (1-based)


def git(repo, *args) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "bisect", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "bisect",
           "GIT_COMMITTER_EMAIL": "b@b"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def commits(repo: Path, good: str, run: int, planted: int) -> list[str]:
    """8 commits after ``good`` on a branch of their own; the ``planted``-th (1-based) plants the slowdown."""
    git(repo, "checkout", "-q", "-B", f"bisect-{run}", good)
    made = []
    for k in range(1, COMMITS + 1):
        with open(repo / "README.md", "a") as f:
            f.write(f"\n<!-- bisect run {run}, commit {k} -->\n")
        if k == planted:
            with open(repo / "impls" / "__init__.py", "a") as f:
                f.write(PLANT.format(function=FUNCTION, fraction=0.10))
        git(repo, "commit", "-qam", f"run {run} commit {k}" + (" (planted)" if k == planted else ""))
        made.append(git(repo, "rev-parse", "HEAD"))
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--backend", default="numpy")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    repo = args.out / "repo"
    if not repo.exists():
        subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    good = git(repo, "rev-parse", "HEAD")
    named = 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    for run in range(args.runs):
        planted = POSITIONS[run % len(POSITIONS)]
        made = commits(repo, good, run, planted)
        js = args.out / f"bisect-{run:02d}.json"
        started = time.time()
        done = subprocess.run([sys.executable, "-m", "xentbench.cli", "gate", good, made[-1], "--bisect", "--quick",
                               "--function", FUNCTION, "--backend", args.backend, "--json", str(js),
                               "--cache-dir", str(args.out / "cache")], cwd=repo, env=env, capture_output=True,
                              text=True)
        (args.out / f"bisect-{run:02d}.log").write_text(done.stdout + done.stderr)
        data = json.loads(js.read_text()) if js.exists() else {}
        ok = data.get("culprit") == made[planted - 1]
        named += ok
        print(f"{time.strftime('%H:%M:%S')} run {run + 1}: planted at commit {planted}, exit {done.returncode}, "
              f"culprit {'named' if ok else 'NOT named: ' + str(data.get('culprit'))}, "
              f"{len(data.get('steps', []))} steps {[s['verdict'] for s in data.get('steps', [])]}, "
              f"{time.time() - started:.0f}s; {named}/{run + 1} named so far", flush=True)


if __name__ == "__main__":
    main()
