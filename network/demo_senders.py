"""Local demo cameras: real sender processes streaming the project's demo clip, pushing to 127.0.0.1.

They serve ``make demo``, the console's ``--demo`` and ``headless --demo``; they never send anything
off the machine. Two cameras show the same public-domain clip (demo/README.md) at different moments,
so the grid shows real, moving faces. Without the clip (a build that left demo/ out) they fall back
to the sender's synthetic ``demo`` source, with a warning.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)

SENDER = Path(__file__).resolve().parent / "udp_sender.py"
# The frozen app has no Python interpreter to run udp_sender.py with: its own binary runs the
# sender through main.py's hidden ``sender`` subcommand instead.
FROZEN_SENDER_COMMAND = "sender"
DEMO_CLIP = "short_hamilton_clip.mp4"
# Where each demo camera starts in the 9.2 s clip: demo-2 is half a clip ahead of demo-1.
DEMO_STARTS_S = (0.0, 4.5)


def demo_media_dir() -> Path:
    """The project's demo/ folder (inside the frozen app, its bundled copy)."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    root = Path(frozen_root) if frozen_root else Path(__file__).resolve().parent.parent
    return root / "demo"


def sender_command() -> list[str]:
    """The command line that starts a sender: this interpreter and the script, or the frozen app's passthrough."""
    if getattr(sys, "frozen", False):
        return [sys.executable, FROZEN_SENDER_COMMAND]
    return [sys.executable, str(SENDER)]


def demo_source_args(index: int) -> list[str]:
    """``--source`` (and ``--start``/``--loop``) for demo camera ``index`` (0-based)."""
    clip = demo_media_dir() / DEMO_CLIP
    if not clip.is_file():
        return ["--source", "demo"]
    start = DEMO_STARTS_S[index % len(DEMO_STARTS_S)] + 0.7 * (index // len(DEMO_STARTS_S))
    return ["--source", str(clip), "--loop", "--start", f"{start:g}"]


def start_demo_senders(
    station: tuple[str, int], key_file: Path, count: int, fps: float = 15
) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` demo senders named demo-1, demo-2, ... pushing to 127.0.0.1:station-port."""
    if count and not (demo_media_dir() / DEMO_CLIP).is_file():
        log.warning("demo clip %s is missing: the demo cameras show a synthetic picture", demo_media_dir() / DEMO_CLIP)
    procs = []
    for i in range(count):
        cmd = [
            *sender_command(),
            *demo_source_args(i),
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
