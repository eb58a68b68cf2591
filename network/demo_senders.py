"""Local demo cameras: real sender processes with the synthetic source, pushing to 127.0.0.1.

They serve ``make demo`` and the console's ``--demo``; they never send anything off the machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SENDER = Path(__file__).resolve().parent / "udp_sender.py"
# The frozen app has no Python interpreter to run udp_sender.py with: its own binary runs the
# sender through main.py's hidden ``sender`` subcommand instead.
FROZEN_SENDER_COMMAND = "sender"


def sender_command() -> list[str]:
    """The command line that starts a sender: this interpreter and the script, or the frozen app's passthrough."""
    if getattr(sys, "frozen", False):
        return [sys.executable, FROZEN_SENDER_COMMAND]
    return [sys.executable, str(SENDER)]


def start_demo_senders(
    station: tuple[str, int], key_file: Path, count: int, fps: float = 10
) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` demo senders named demo-1, demo-2, ... pushing to 127.0.0.1:station-port."""
    procs = []
    for i in range(count):
        cmd = [
            *sender_command(),
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
