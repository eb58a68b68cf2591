"""Local demo cameras: real sender processes with the synthetic source, pushing to 127.0.0.1.

They serve ``make demo`` and the console's ``--demo``; they never send anything off the machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SENDER = Path(__file__).resolve().parent / "udp_sender.py"


def start_demo_senders(
    station: tuple[str, int], key_file: Path, count: int, fps: float = 10
) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` demo senders named demo-1, demo-2, ... pushing to 127.0.0.1:station-port."""
    procs = []
    for i in range(count):
        cmd = [
            sys.executable,
            str(SENDER),
            "--source",
            "demo",
            "--name",
            f"demo-{i + 1}",
            "--station",
            f"127.0.0.1:{station[1]}",
            "--key-file",
            str(key_file),
            "--fps",
            f"{fps:g}",
            "--no-announce",
        ]
        procs.append(subprocess.Popen(cmd))
    return procs


def stop_demo_senders(procs: list[subprocess.Popen[bytes]], timeout: float = 5.0) -> None:
    """SIGTERM each (they say BYE), then kill what has not exited within ``timeout``."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
