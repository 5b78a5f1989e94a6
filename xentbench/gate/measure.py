"""How ``xentbench gate`` measures: the grid, the two versions, the worker processes, one combination.

A combination is ``(function, batch, classes)`` for the seven functions of ``SUITE``, and
``(LINEAR_FUNCTION, batch, hidden, vocabulary)`` for the fused linear + cross-entropy (``--function
linear``): its forward and backward call on ``xentbench.inputs.make_linear``'s float32 inputs.

See the package's docstring for the method; ``stats`` decides, ``output`` shows.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xentbench import accuracy
from xentbench.asvresults import Result
from xentbench.compare import judge
from xentbench.gate.stats import decide
from xentbench.inputs import LINEAR_ARGUMENTS, arguments, make_linear, make_logits
from xentbench.suite import (
    ACCURACY_UNIT, BATCHES, CLASSES, LINEAR_FUNCTION, LINEAR_TIME, PARAM_NAMES, SHORT_NAMES, SUITE,
    accuracy_skip_reason, linear_grid, timing_skip_reason)
from xentbench.targets import shape_label
from xentbench.timing import MALLOC_TUNABLES, SAMPLE_TIME, SLOW_CALL, lead_in_calls

#: --quick: these (batch, classes) of the timing grid
QUICK_SHAPES = ((32, 10), (256, 1000), (4096, 1000))
#: the functions ``--function`` chooses from, by benchmark class: the seven (the default) and the fused
#: linear + cross-entropy's forward and backward, which only ``--function linear`` asks for
FUNCTIONS = {**SUITE, LINEAR_TIME: LINEAR_FUNCTION}
#: the fused linear's batch x hidden x vocabulary: the two smallest of ``linear_grid()``, 0.2 s and 0.4 s a
#: call on 2 cores of Zen 4, so that a gate of both takes a few minutes; --quick: the first; --shape: any
#: of ``linear_grid()`` (calls up to seconds); float32 only, as ``make_linear`` draws them
LINEAR_SHAPES = ((256, 512, 32000), (256, 1024, 32000))
#: a turn: after the lead-in, SAMPLES samples of about SAMPLE_TIME / SAMPLES seconds
#: of calls each; the turn's time is its fastest sample's
SAMPLES = 10
MIN_SAMPLES = 3  # for long calls: about ROUND_TIME of samples a round, at least this many
ROUND_TIME = 0.1
FIRST_ROUNDS = 20  # rounds before the first decision (and per extra batch)
SLOW_ROUNDS = 12  # the same for calls over SLOW_CALL / 10 seconds
#: default --budget: seconds of timing rounds per combination, spread over the grid (with --quick too)
BUDGET_PER_COMBINATION = 4.0
MIN_SHARE = 1.0  # seconds a combination may always use, whatever the budget left
#: and at most this many times its even share of the budget: budget left over by the quick decisions is not
#: all spent on the last, slowest combinations of the grid (a default-grid A/A gate under heavy
#: load once gave its last combination, log_softmax 65536x1000, 200 s, and it stayed undecided)
MAX_SHARE = 4
#: a combination whose median ratio already lies beyond half the threshold, and a confirmation
#: (``confirm``), may use this many times a combination's default share (beyond --budget): a call of
#: slower or faster is rare, and worth the rounds. With 2x for confirmations only, 3 of 60 planted 10%
#: slowdowns and 4 of 52 planted 5% ones called slower by the first worker stayed undecided in the
#: second under heavy load, and 3 of 5 planted 5% ones at 4096x1000 (2.5 ms calls sharing 2 busy
#: cores) ran out of rounds with a median of 1.026-1.049 (NOTES entry 15).
EXTRA_SHARE = 5
#: the fused linear's default share (``default_share``), seconds of rounds per combination: a batch of
#: ``SLOW_ROUNDS`` takes 8 calls a round, 20 s at 256x512x32000 and 40 s at 256x1024x32000 on a quiet
#: machine, and its interval is the batch's range; this lets an undecided one have a second batch (24
#: rounds, the 4th to the 21st) on a quiet machine, and a confirmation as many
LINEAR_BUDGET_PER_COMBINATION = 100.0
#: fresh workers that must each make a call of slower or faster again (``confirm``), the first loading
#: the copies the other way round: on a quiet machine one worker in 5-10 carries a steady bias of 6-9%
#: between two copies of identical code, so that two workers agreed on a false call in one A/A gate
#: of about ten, and three agreeing needs the bias thrice (NOTES entry 20)
CONFIRMATIONS = 2
MODES = ("processes", "inprocess")
DEFAULT_MODE = "inprocess"


class GateError(RuntimeError):
    """The gate cannot run: exit 2 with this message."""


class WorkerDied(GateError):
    """A worker process ended unasked: a version crashed it (``isolate`` tells which), or it was killed."""


@dataclass
class Outcome:
    """Everything the gate found about one combination."""

    function: str
    batch: int
    classes: int  # the fused linear's: the vocabulary
    dtype: str
    backend: str
    hidden: int | None = None  # the fused linear's hidden size; None for the seven functions
    timing: str = "n/a"  # slower, faster, same, undecided, n/a (not timed: a version failed)
    accuracy: str = "n/a"  # less accurate, more accurate, unchanged, n/a (off the accuracy grid)
    failure: str | None = None  # failed, fixed, still failing, not implemented (in either version)
    ratio: float | None = None
    low: float | None = None
    high: float | None = None
    rounds: int = 0
    seconds: float = 0.0  # all of it: inputs, first calls, accuracy, rounds
    compile_seconds: float = 0.0  # of which the first calls beyond a call's time: compilation, cache loading
    timing_seconds: float = 0.0  # the rounds only (what --budget counts)
    base_time: float | None = None
    head_time: float | None = None
    base_error: float | None = None
    head_error: float | None = None
    errors: tuple = (None, None)  # the exception each version raised
    log_ratios: list = field(default_factory=list)  # every round's, of every worker when confirmed
    first: dict | None = None  # the first worker's timing verdict, where ``confirm`` ran
    confirmations: list = field(default_factory=list)  # each confirming worker's, in order

    @classmethod
    def of(cls, combo, dtype: str, backend: str) -> Outcome:
        """The outcome of a combination: ``(function, batch, classes)`` or ``(function, batch, hidden,
        vocabulary)``."""
        function, batch, *rest = combo
        return cls(function, batch, rest[-1], dtype, backend, hidden=rest[0] if len(rest) == 2 else None)

    @property
    def shape(self) -> tuple:
        """``(batch, classes)``, or the fused linear's ``(batch, hidden, vocabulary)``."""
        return (self.batch, self.classes) if self.hidden is None else (self.batch, self.hidden, self.classes)

    @property
    def combo(self) -> tuple:
        return (self.function, *self.shape)

    @property
    def name(self) -> str:
        return f"{SHORT_NAMES.get(self.function, self.function)} {shape_label(self.shape)}"

    @property
    def verdict(self) -> str:
        """The one word of the tables: a failure, else a regression, else the timing verdict."""
        if self.failure:
            return self.failure
        if self.accuracy == "less accurate":
            return "less accurate"
        return self.timing

    @property
    def regression(self) -> bool:
        return self.failure == "failed" or self.accuracy == "less accurate" or self.timing == "slower"


# --------------------------------------------------------------------------- the grid

def select_functions(names) -> list[str]:
    """The ``impls`` functions ``--function`` names (all seven of ``SUITE`` without any), in the order of
    ``FUNCTIONS``; ``linear`` (``linear_grad``, ``LinearLossGrad``) is ``LINEAR_FUNCTION``, as in ``bench``."""
    if not names:
        return list(SUITE.values())
    chosen = set()
    for name in names:
        key = name.strip().lower()
        found = {f for cls, f in FUNCTIONS.items()
                 if key in (cls.lower(), f, SHORT_NAMES[f], SHORT_NAMES[f].removesuffix("_grad"))
                 or (key == "grad" and cls in SUITE and f.endswith("_and_grad"))}
        if not found:
            words = {SHORT_NAMES[f] for f in FUNCTIONS.values()} | {"grad", "linear"}
            raise GateError(f"unknown function {name!r}; expected one of: {', '.join(sorted(words))}, "
                            "a class or function name")
        chosen |= found
    return [f for f in FUNCTIONS.values() if f in chosen]


def combinations(functions, dtype: str, quick: bool, only=()) -> list[tuple]:
    """``(function, batch, classes)`` of the timing grid (or ``QUICK_SHAPES``; or ``only``) for ``dtype``;
    for ``LINEAR_FUNCTION``, ``(function, batch, hidden, vocabulary)`` of ``_linear_shapes``."""
    shapes = [(b, c) for b in BATCHES for c in CLASSES if timing_skip_reason(b, c, dtype) is None]
    if quick:
        shapes = [s for s in shapes if s in QUICK_SHAPES]
    if only:
        shapes = [s for s in shapes if s in only]
    linear = _linear_shapes(dtype, quick, only)
    return [(f, *s) for f in functions for s in (linear if f == LINEAR_FUNCTION else shapes)]


def _linear_shapes(dtype: str, quick: bool, only) -> list[tuple[int, int, int]]:
    """The fused linear's ``(batch, hidden, vocabulary)``: ``LINEAR_SHAPES``, or those of ``only`` on
    ``linear_grid()``; with ``quick`` only the first of ``LINEAR_SHAPES``; none but for float32."""
    if dtype != "float32":
        return []
    shapes = [s for s in linear_grid() if s in only] if only else list(LINEAR_SHAPES)
    return [s for s in shapes if s == LINEAR_SHAPES[0]] if quick else shapes


def default_share(combo) -> float:
    """A combination's seconds of timing rounds in the default ``--budget``: ``BUDGET_PER_COMBINATION``, or
    the fused linear's ``LINEAR_BUDGET_PER_COMBINATION``."""
    return LINEAR_BUDGET_PER_COMBINATION if combo[0] == LINEAR_FUNCTION else BUDGET_PER_COMBINATION


def extra_share(combo) -> float:
    """The seconds of rounds a combination whose change is likely, or a confirmation, may use (beyond
    ``--budget``): ``EXTRA_SHARE`` default shares of the seven functions, at least its own default share."""
    return max(EXTRA_SHARE * BUDGET_PER_COMBINATION, default_share(combo))


# --------------------------------------------------------------------------- the versions

class Worker:
    """A ``xentbench.gate.worker`` process and its JSON pipe; ``module``: the backend module the folders
    hold (``--repo``), else they hold ``impls/``."""

    def __init__(self, folders, env, module: str | None = None):
        where = ["--module", module] if module else []
        self.proc = subprocess.Popen([sys.executable, "-m", "xentbench.gate.worker", *where, *map(str, folders)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        ready = self.read()
        if not ready.get("ready"):
            raise GateError(f"the worker for {', '.join(map(str, folders))} did not start: {ready.get('error')}")

    def read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise WorkerDied(f"a worker process ended (exit status {self.proc.wait()})")
        return json.loads(line)

    def send(self, **request) -> None:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()

    def ask(self, **request) -> dict:
        self.send(**request)
        answer = self.read()
        if "error" in answer and len(answer) == 1:
            raise RuntimeError(answer["error"])
        return answer

    def close(self) -> None:
        try:
            self.send(op="quit")
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            self.proc.kill()


def _worker_env() -> dict:
    env = dict(os.environ)
    env.setdefault("GLIBC_TUNABLES", MALLOC_TUNABLES)
    env["PYTHONPATH"] = os.pathsep.join(  # the worker imports this checkout's xentbench
        [str(Path(__file__).resolve().parents[2])] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


class Pair:
    """BASE (version 0) and HEAD (version 1) behind one interface: two worker processes, or one holding both.

    ``swapped``: the worker loads HEAD first and BASE second (the first
    confirmation's fresh worker, ``confirm``); callers still speak of BASE as 0 and HEAD as 1.
    ``module``: the folders hold this backend module (``--repo``) rather than ``impls/``.
    """

    def __init__(self, folders, mode: str, swapped: bool = False, module: str | None = None):
        env = _worker_env()
        self.mode = mode
        self.slot = (1, 0) if swapped else (0, 1)  # the worker's index of BASE and of HEAD
        folders = [folders[i] for i in self.slot]
        self.workers: list[Worker] = []
        try:
            if mode == "inprocess":
                self.workers = [Worker(folders, env, module)]
            else:
                self.workers = [Worker([f], env, module) for f in folders]
        except BaseException:
            self.close()
            raise

    def load(self, function, backend, dtype, inputs, outputs) -> list[dict]:
        """Load the function in both versions (see the worker's ``load``); the answers of BASE and HEAD."""
        if self.mode == "inprocess":
            answers = self.workers[0].ask(op="load", function=function, backend=backend, dtype=dtype,
                                          inputs=inputs, outputs=outputs and f"{outputs}.w")["versions"]
        else:
            for i, w in enumerate(self.workers):  # both load at once: compilation runs in parallel
                w.send(op="load", function=function, backend=backend, dtype=dtype, inputs=inputs,
                       outputs=outputs and f"{outputs}.w{i}")
            answers = [w.read()["versions"][0] for w in self.workers]
        for v in (0, 1) if outputs else ():
            saved = f"{outputs}.w.v{self.slot[v]}.npz" if self.mode == "inprocess" else \
                f"{outputs}.w{self.slot[v]}.v0.npz"
            if os.path.exists(saved):
                os.replace(saved, f"{outputs}.v{v}.npz")
        return [answers[i] for i in self.slot]

    def round(self, order, number: int, lead_in: int, samples: int = SAMPLES) -> list[float]:
        """One round: per-call seconds of BASE and HEAD (fastest sample of each turn), timed in ``order``."""
        order = [self.slot[v] for v in order]
        if self.mode == "inprocess":
            times = self.workers[0].ask(op="interleaved", order=order, number=number, lead_in=lead_in,
                                        samples=samples)["times"]
        else:
            times = [0.0, 0.0]
            for w in order:
                times[w] = self.workers[w].ask(op="turns", turns=[[0, number, lead_in, samples]])["times"][0]
        return [times[i] for i in self.slot]

    def close(self) -> None:
        for w in self.workers:
            w.close()


# --------------------------------------------------------------------------- one combination

def _errors(function, args, outputs) -> list[float | None]:
    """Each version's error against the truth (``None`` where it saved no result). A result
    NumPy saved as raw 2-byte records (bfloat16) is read back as the logits' dtype."""
    labels, logits = (None, args[0]) if len(args) == 1 else args
    truth = accuracy.truth(function, labels, logits)
    errors = []
    for i in range(2):
        path = f"{outputs}.v{i}.npz"
        if not os.path.exists(path):
            errors.append(None)
            continue
        with np.load(path) as f:
            got = tuple(v.view(logits.dtype) if v.dtype.kind == "V" else v
                        for v in (f[f"value{j}"] for j in range(len(f.files))))
        errors.append(truth.error(got if len(got) > 1 else got[0]))
        os.remove(path)
    return errors


def _result(outcome: Outcome, value) -> Result:
    """An accuracy figure as ``compare.judge`` reads it (``None``: failed)."""
    params = (repr(outcome.backend), str(outcome.batch), str(outcome.classes), repr(outcome.dtype))
    return Result(f"gate.{outcome.function}.track_error", params, PARAM_NAMES, value, "track", ACCURACY_UNIT)


def _failure(ok) -> str:
    """The failure word for whether BASE and HEAD ran (``ok``, not both True)."""
    return {(True, False): "failed", (False, True): "fixed"}.get(tuple(ok), "still failing")


def _inputs(outcome: Outcome, workdir: Path) -> tuple[str, tuple]:
    """The combination's inputs (``xentbench.inputs``), saved for the worker as ``<stem>.<name>.npy``: the
    logits and sparse labels of ``make_logits``, or the fused linear's arguments (``make_linear``);
    ``(stem, arrays)``."""
    if outcome.hidden is None:
        names, arrays = ("logits", "labels"), make_logits(outcome.batch, outcome.classes, outcome.dtype)
    else:
        names, arrays = LINEAR_ARGUMENTS, make_linear(*outcome.shape)
    stem = str(workdir / "inputs")
    for name, array in zip(names, arrays):
        np.save(f"{stem}.{name}.npy", array)
    return stem, arrays


def _compile_seconds(versions) -> float:
    """The first calls' time beyond a call's: compilation or loading the kernels from the cache."""
    return sum(max(0.0, v["first"] - v["estimate"]) for v in versions if v["ok"])


def measure(pair: Pair, outcome: Outcome, workdir: Path, share: float, threshold: float, method: str,
            first_rounds: int = FIRST_ROUNDS, fixed_rounds: int | None = None,
            extra_share: float | None = None) -> Outcome:
    """Judge one combination: failures, accuracy, then timing rounds until decided or ``share`` is spent
    (``extra_share`` while the median ratio lies beyond half the threshold: a change is likely).

    ``fixed_rounds`` (experiments): exactly that many rounds, decided once at the end.
    """
    started = time.perf_counter()
    f, b, c, d = outcome.function, outcome.batch, outcome.classes, outcome.dtype
    stem, arrays = _inputs(outcome, workdir)
    # the fused linear's truth (extended precision, N D V products) would take minutes: ``verify`` checks it
    on_accuracy_grid = outcome.hidden is None and accuracy_skip_reason(b, c, d) is None
    outputs = str(workdir / "outputs") if on_accuracy_grid else None
    versions = pair.load(f, outcome.backend, d, stem, outputs)
    outcome.errors = tuple(v["error"] for v in versions)
    outcome.compile_seconds = _compile_seconds(versions)
    ok = [v["ok"] for v in versions]
    if not all(ok):
        outcome.failure = _failure(ok)
        if not any(ok) and all(e.startswith("NotImplementedByBackend") for e in outcome.errors):
            outcome.failure = "not implemented"  # a plugin that offers a subset of the functions
    if on_accuracy_grid:
        errors = _errors(f, arguments(f, *arrays), outputs)
        outcome.base_error, outcome.head_error = errors
        if all(ok):
            outcome.accuracy = judge(_result(outcome, errors[0]), _result(outcome, errors[1])).verdict
    if all(ok):
        _rounds(pair, outcome, versions, share, threshold, method, first_rounds, fixed_rounds, extra_share)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _rounds(pair: Pair, outcome: Outcome, versions, share: float, threshold: float, method: str,
            first_rounds: int, fixed_rounds: int | None, extra_share: float | None = None) -> None:
    """Timing rounds in batches until the decision is made or ``share`` seconds are spent (``extra_share``
    while the median lies beyond half the threshold); into ``outcome``."""
    estimate = max(v["estimate"] for v in versions)
    number = max(1, min(1000, round(SAMPLE_TIME / SAMPLES / max(estimate, 1e-9))))
    lead_in = lead_in_calls(estimate)
    samples = max(MIN_SAMPLES, min(SAMPLES, round(ROUND_TIME / (2 * number * estimate))))
    batch = fixed_rounds or (SLOW_ROUNDS if estimate > SLOW_CALL / 10 else first_rounds)
    times: list[list[float]] = []
    timing_started = time.perf_counter()
    while True:
        for _ in range(batch):
            order = (0, 1) if len(times) % 2 == 0 else (1, 0)
            times.append(pair.round(order, number, lead_in, samples))
        x = [math.log(h / b_) for b_, h in times]
        decision = decide(x, threshold, method)
        spent = time.perf_counter() - timing_started
        per_round = spent / len(times)
        leaning = abs(math.log(decision.ratio)) > math.log1p(threshold) / 2
        allowed = max(share, extra_share or 0.0) if leaning else share
        if fixed_rounds or decision.verdict != "undecided" or spent + batch * per_round > allowed:
            break
    outcome.timing, outcome.ratio, outcome.low, outcome.high = (
        decision.verdict, decision.ratio, decision.low, decision.high)
    outcome.rounds, outcome.log_ratios = decision.rounds, x
    outcome.base_time = float(np.median([t[0] for t in times]))
    outcome.head_time = float(np.median([t[1] for t in times]))
    outcome.timing_seconds = time.perf_counter() - timing_started


def confirm(pair: Pair, outcome: Outcome, workdir: Path, share: float, threshold: float, method: str,
            first_rounds: int = FIRST_ROUNDS) -> Outcome:
    """Time a combination called slower or faster again in ``pair``, a fresh worker; keep the call if it agrees.

    The first worker's rounds share a bias that lives as long as the process
    (where each copy's code and buffers landed), which more rounds do not
    average out (``benchmarks/NOTES.md`` entries 13 and 20). ``pair`` is a new
    process, so such a bias is drawn afresh; a change in the code shows in
    every one. The call stands while each fresh worker's own sequential
    decision is the same word (the gate asks ``CONFIRMATIONS`` of them, one
    after the other); otherwise the combination is *undecided*. The interval
    shown is the hull of the workers' intervals, the ratio the median of all
    their rounds.
    """
    started = time.perf_counter()
    if outcome.first is None:
        outcome.first = _verdict(outcome)
    again = Outcome.of(outcome.combo, outcome.dtype, outcome.backend)
    stem, _ = _inputs(again, workdir)
    versions = pair.load(again.function, again.backend, again.dtype, stem, None)
    if all(v["ok"] for v in versions):
        _rounds(pair, again, versions, share, threshold, method, first_rounds, None)
    outcome.confirmations.append(_verdict(again))
    if again.timing != outcome.timing:
        outcome.timing = "undecided"
    x = outcome.log_ratios + again.log_ratios
    outcome.ratio = math.exp(float(np.median(x)))
    outcome.low = min(v for v in (outcome.low, again.low) if v is not None)
    outcome.high = max(v for v in (outcome.high, again.high) if v is not None)
    outcome.rounds, outcome.log_ratios = len(x), x
    outcome.timing_seconds += again.timing_seconds
    outcome.compile_seconds += _compile_seconds(versions)
    outcome.seconds += time.perf_counter() - started
    return outcome


def _verdict(outcome: Outcome) -> dict:
    """One worker's timing verdict on a combination, as the JSON keeps it."""
    return {k: getattr(outcome, k) for k in ("timing", "ratio", "low", "high", "rounds")}


def isolate(folders, outcome: Outcome, workdir: Path, module: str | None = None) -> Outcome:
    """After a worker died in a combination: its first call in each version alone, each in a worker of its own.

    A version whose worker dies again (a crash in its code: a segfault, an
    abort) *failed* in that combination, as one that raises does. When both
    versions load alone, the crash cannot be put on either: ``WorkerDied``.
    """
    started = time.perf_counter()
    stem, _ = _inputs(outcome, workdir)
    errors = []
    for folder in folders:
        worker = Worker([folder], _worker_env(), module)
        try:
            errors.append(worker.ask(op="load", function=outcome.function, backend=outcome.backend,
                                     dtype=outcome.dtype, inputs=stem, outputs=None)["versions"][0]["error"])
        except WorkerDied as exc:
            errors.append(f"crashed: {exc}")
        finally:
            worker.close()
    ok = tuple(e is None for e in errors)
    if all(ok):
        raise WorkerDied(f"a worker died in {outcome.name}, though each version loads it alone")
    outcome.errors = tuple(errors)
    outcome.failure = _failure(ok)
    outcome.seconds = time.perf_counter() - started
    return outcome
