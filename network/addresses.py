"""HOST:PORT, parsed in one place for the sender, the receiver, the CLI and the console."""

from __future__ import annotations

import socket

Address = tuple[str, int]


def parse_hostport(text: str, *, default_host: str | None = None, allow_zero: bool = True) -> Address:
    """Parse ``HOST:PORT`` (or ``:PORT`` with ``default_host``, ``[v6]:PORT`` too), with a clear ValueError.

    ``allow_zero`` admits port 0 (bind to any free port); a peer's address needs a real port.
    """
    host, sep, port_text = text.strip().rpartition(":")
    if not sep:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    host = host.strip("[]") or (default_host or "")
    if not host:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"port in {text!r} is not a number") from None
    if not (0 if allow_zero else 1) <= port < 65536:
        raise ValueError(f"port {port} is out of range")
    return host, port


def resolve_ipv4(address: Address) -> Address:
    """The IPv4 address a host name resolves to (a literal address is returned as it is)."""
    host, port = address
    try:
        resolved = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)[0][4]
    except socket.gaierror as exc:
        raise ValueError(f"cannot resolve host {host!r}: {exc.strerror}") from None
    return str(resolved[0]), int(resolved[1])
