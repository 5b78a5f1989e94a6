"""What the commands write to stderr: progress that suits a log, and TensorFlow's start-up quieted."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from xentbench import console

ROOT = Path(__file__).resolve().parents[1]
#: ``xentbench verify`` over two of its shapes, without the options and the fused linear functions (the progress,
#: not the numbers, is under test)
SHORT_VERIFY = """
import sys
from xentbench import cli, verify
verify.SHAPES, verify.OPTION_SHAPES, verify.LINEAR_SHAPES = verify.SHAPES[:2], (), ()
sys.exit(cli.main(["verify", "--backend", "numpy", *sys.argv[1:]]))
"""
ONEDNN_NOTE = "oneDNN custom operations are on"


def verify_stderr(tmp_path: Path, *args: str) -> str:
    """Run the short verify with stderr to a file, as in a CI log; TensorFlow's oneDNN on, so it has a note."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", console.TF_LOGS)}
    env.update(TF_ENABLE_ONEDNN_OPTS="1", PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
    log = tmp_path / "stderr.log"
    with open(log, "w") as err:
        done = subprocess.run([sys.executable, "-c", SHORT_VERIFY, *args], cwd=ROOT, env=env, stderr=err,
                              stdout=subprocess.PIPE, text=True, timeout=300)
    assert done.returncode == 0, log.read_text()[-2000:]
    return log.read_text()


def test_verify_progress_in_a_log_is_plain_lines_without_tensorflow_start_up(tmp_path):
    err = verify_stderr(tmp_path)
    assert "\r" not in err
    lines = err.splitlines()  # 7 functions x 2 shapes x 4 dtypes x 2 regimes
    assert lines[0].startswith("verify: 1/112 ") and lines[-1].startswith("verify: 112/112 "), err
    assert ONEDNN_NOTE not in err and "absl::InitializeLog" not in err, err


def test_verify_verbose_shows_tensorflow_start_up(tmp_path):
    pytest.importorskip("tensorflow")
    err = verify_stderr(tmp_path, "--verbose")
    if ONEDNN_NOTE not in err:
        pytest.skip("this TensorFlow prints no oneDNN note on import (nothing to quiet)")
    assert err.count(ONEDNN_NOTE) >= 1 and "\r" not in err


def test_bar_on_a_terminal_redraws_in_place():
    out = io.StringIO()
    with console.Bar(3, "verify", console=Console(file=out, force_terminal=True, width=80)) as bar:
        for i in range(3):
            bar.advance(f"step {i}")
    assert "\r" in out.getvalue() and "3/3" in out.getvalue()


def test_filtered_stderr_passes_on_other_lines(capfd):
    import re
    with console.filtered_stderr(re.compile("noise")):
        os.write(2, b"noise: start-up\nreal problem\n")
    assert capfd.readouterr().err == "real problem\n"
