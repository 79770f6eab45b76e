"""The README's main job: the live demo shows findings and the trigger, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]


def _demo(kafka_bootstrap: str, home: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSLOOP_")}
    env.update(KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, OPSLOOP_HOME=str(home), PYTHONUNBUFFERED="1",
               OPSLOOP_WORKER_REFERENCE_SIZE="2000")
    return subprocess.Popen([sys.executable, "-m", "opsloop.cli", "demo", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_demo_shows_findings_and_trigger(kafka_bootstrap: str, tmp_path: Path) -> None:
    proc = _demo(kafka_bootstrap, tmp_path, "--rate", "2000")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert "FINDING" in out and "drift in 3 of 10 features" in out
    assert "TRIGGER on demo" in out and "retrain credit-risk" in out
    assert "done:" in out


def test_demo_stops_cleanly_on_ctrl_c(kafka_bootstrap: str, tmp_path: Path) -> None:
    proc = _demo(kafka_bootstrap, tmp_path, "--rate", "200")
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "simulated app sends" in line:
            break
    worker_pid = int(next(ln for ln in lines if "worker started (pid" in ln).split("pid ")[1].split(",")[0])
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(lines) + rest
    assert "stopped cleanly" in rest
    with pytest.raises(ProcessLookupError):
        os.kill(worker_pid, 0)  # the worker went with it
