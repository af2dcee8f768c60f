"""Where the real weights and data live for every test: ../shared beside the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WEIGHTS = SHARED / "weights"
DATA = SHARED / "data"
COVID = DATA / "covid-qu-ex-sample"
KVASIR = DATA / "kvasir-seg"


def require(path: Path) -> Path:
    """Skip the test, saying what is missing, when a shared file is absent."""
    if not path.exists():
        pytest.skip(f"{path} is absent: this test needs the real weights/data in {SHARED}")
    return path


def stop_process_group(proc, timeout: float = 30) -> None:
    """SIGTERM a process started with ``start_new_session=True`` and its children (a server
    and its local worker); SIGKILL them if they have not stopped within ``timeout``."""
    import os
    import signal
    import subprocess

    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
