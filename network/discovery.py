"""LAN discovery over mDNS/DNS-SD (python-zeroconf): senders announce, stations browse.

A sender registers ``<name>._facestation._udp.local.`` with its control port and
a few TXT properties. TXT records come off the network, so they are treated as
data: every value is length-bounded and parsed defensively.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import ifaddr
from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, ServiceStateChange, Zeroconf

from network import protocol

log = logging.getLogger(__name__)

SERVICE_TYPE = "_facestation._udp.local."
_MAX_TXT_VALUE = 64


@dataclass(frozen=True)
class DiscoveredSender:
    """A sender seen on the LAN."""

    name: str
    host: str
    port: int
    width: int
    height: int
    fps: float
    protocol: int
    service: str

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def _zeroconf(interfaces: Sequence[str] | None) -> Zeroconf:
    if interfaces:
        return Zeroconf(interfaces=list(interfaces), ip_version=IPVersion.V4Only)
    return Zeroconf(ip_version=IPVersion.V4Only)


def local_ipv4_addresses() -> list[str]:
    """This host's IPv4 addresses, loopback last."""
    found: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and ip.ip not in found:
                found.append(ip.ip)
    return sorted(found, key=lambda a: a.startswith("127."))


def _service_label(name: str) -> str:
    """A DNS-SD instance label: printable, at most 63 bytes."""
    label = "".join(c if c.isprintable() and c != "." else "-" for c in name)
    return label.encode("utf-8")[:63].decode("utf-8", "ignore") or "camera"


class Announcer:
    """Registers one sender on the LAN until :meth:`close`."""

    def __init__(
        self,
        name: str,
        port: int,
        *,
        width: int,
        height: int,
        fps: float,
        interfaces: Sequence[str] | None = None,
    ) -> None:
        addresses = list(interfaces) if interfaces else local_ipv4_addresses()
        self._zc = _zeroconf(interfaces)
        self.info = ServiceInfo(
            SERVICE_TYPE,
            f"{_service_label(name)}.{SERVICE_TYPE}",
            addresses=[socket.inet_aton(a) for a in addresses],
            port=port,
            properties={
                "name": name,
                "w": str(width),
                "h": str(height),
                "fps": f"{fps:g}",
                "proto": str(protocol.VERSION),
            },
            server=f"{socket.gethostname().split('.')[0] or 'facestation'}.local.",
        )
        self._zc.register_service(self.info, allow_name_change=True)

    def close(self) -> None:
        try:
            self._zc.unregister_service(self.info)
        finally:
            self._zc.close()


def parse_service(info: ServiceInfo) -> DiscoveredSender | None:
    """Turn a resolved service into a :class:`DiscoveredSender`, or None if unusable."""
    props: dict[str, str] = {}
    for raw_key, raw_value in (info.properties or {}).items():
        if not isinstance(raw_key, bytes) or raw_value is None or len(raw_value) > _MAX_TXT_VALUE:
            continue
        try:
            props[raw_key.decode("ascii")] = raw_value.decode("utf-8")
        except UnicodeDecodeError:
            continue
    addresses = info.parsed_addresses(IPVersion.V4Only)
    if not addresses or not info.port:
        return None
    name = props.get("name", "")
    if not name or len(name.encode("utf-8")) > protocol.MAX_NAME_BYTES:
        return None
    try:
        width, height = int(props.get("w", "0")), int(props.get("h", "0"))
        fps = float(props.get("fps", "0"))
        proto = int(props.get("proto", "0"))
    except ValueError:
        return None
    if not (0 <= width <= 16384 and 0 <= height <= 16384 and 0 <= fps <= 1000):
        return None
    return DiscoveredSender(name, addresses[0], int(info.port), width, height, fps, proto, info.name)


class Browser:
    """Keeps the set of senders currently announced on the LAN."""

    def __init__(
        self,
        *,
        interfaces: Sequence[str] | None = None,
        on_change: Callable[[DiscoveredSender, bool], None] | None = None,
    ) -> None:
        self._zc = _zeroconf(interfaces)
        self._lock = threading.Lock()
        self._senders: dict[str, DiscoveredSender] = {}
        self._on_change = on_change
        self._browser = ServiceBrowser(self._zc, SERVICE_TYPE, handlers=[self._changed])

    def _changed(self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Removed:
            with self._lock:
                gone = self._senders.pop(name, None)
            if gone is not None and self._on_change:
                self._on_change(gone, False)
            return
        # Resolving blocks on the network, so it runs off zeroconf's event loop.
        threading.Thread(target=self._resolve, args=(service_type, name), daemon=True).start()

    def _resolve(self, service_type: str, name: str) -> None:
        try:
            info = self._zc.get_service_info(service_type, name, timeout=3000)
        except Exception as exc:  # zeroconf closed underneath us, or a bad record
            log.debug("resolve %s: %s", name, exc)
            return
        sender = parse_service(info) if info is not None else None
        if sender is None:
            log.warning("ignoring unusable FaceStation announcement %r", name)
            return
        with self._lock:
            changed = self._senders.get(name) != sender
            self._senders[name] = sender
        if changed and self._on_change:
            self._on_change(sender, True)

    def senders(self) -> list[DiscoveredSender]:
        with self._lock:
            return sorted(self._senders.values(), key=lambda s: s.name)

    def close(self) -> None:
        self._browser.cancel()
        self._zc.close()
