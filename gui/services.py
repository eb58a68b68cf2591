"""The collaborators the console is handed: real ones in the app, real ones on loopback in tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from network.discovery import DiscoveredSender
from network.udp_receiver import UdpReceiver


@dataclass(frozen=True)
class ConsoleServices:
    """What the main window works with. ``advertised_address`` is the station's HOST:PORT as a
    camera on the LAN would reach it (for the pairing command), or None when unknown."""

    receiver: UdpReceiver
    discovered: Callable[[], list[DiscoveredSender]]
    key_hex: str
    key_file: Path
    advertised_address: tuple[str, int] | None
