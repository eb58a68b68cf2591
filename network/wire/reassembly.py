"""One camera's chunked messages being reassembled, bounded: the one window frames and FACES messages share.

A message (a frame, or the FACES of a frame) arrives as chunks that may interleave with the next
message's, arrive late, or never arrive. :class:`ReassemblyWindow` keeps at most ``max_in_flight``
messages in reassembly, ordered by id (the oldest is dropped, and counted, to make room); completing one
drops every older one still in flight (counted: they can no longer be delivered in order); a chunk of a
message at or below the last one completed is ignored; a reassembly older than the timeout is dropped
(counted). So its memory is bounded by ``max_in_flight`` times the largest message a header may announce
(network/wire/header.py bounds those), and a lost datagram costs one message, never a backlog.

Pure and single-threaded: the receive thread owns it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from network.wire.fec import FrameAssembly
from network.wire.header import Header, Reason, Rejection


@dataclass(frozen=True, slots=True)
class Reassembled:
    """A complete message: its id, its bytes, its capture time and whether parity restored a lost chunk."""

    frame_id: int
    data: bytes
    timestamp_us: int
    recovered: bool


class ReassemblyWindow:
    """The messages of one kind from one camera session being reassembled; see the module docstring."""

    def __init__(self, max_in_flight: int, what: str = "frame") -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        self.max_in_flight = max_in_flight
        self.what = what  # names the message in a rejection: "frame", "FACES"
        self.assemblies: OrderedDict[int, FrameAssembly] = OrderedDict()
        self.last_complete = -1
        self.incomplete = 0  # messages dropped before they were complete

    def __len__(self) -> int:
        return len(self.assemblies)

    def late(self, frame_id: int) -> bool:
        """A chunk of a message already complete (or given up for a newer one)."""
        return frame_id <= self.last_complete

    def add(self, header: Header, payload: bytes, now: float) -> Reassembled | Rejection | None:
        """Add one chunk or parity chunk: the message once complete, a rejection, or None (not yet, or late)."""
        fid = header.frame_id
        if self.late(fid):
            return None
        assembly = self.assemblies.get(fid)
        if assembly is None:
            assembly = self._open(header, now)
        elif not assembly.matches(header):
            return Rejection(Reason.MALFORMED, f"{self.what} chunk disagrees with its message", header.camera_id)
        data = assembly.add(header, payload)
        if data is None:
            return None
        self._complete(fid)
        return Reassembled(fid, data, assembly.timestamp_us, assembly.recovered)

    def _open(self, header: Header, now: float) -> FrameAssembly:
        while len(self.assemblies) >= self.max_in_flight:
            self.assemblies.popitem(last=False)
            self.incomplete += 1
        # A message older than the newest in flight (datagrams reordered) goes in its place, so the
        # eviction above drops the oldest id. (The two windows this one replaced compared the id with
        # itself, after inserting it, and never re-sorted: they evicted the first to arrive instead.)
        out_of_order = bool(self.assemblies) and header.frame_id < next(reversed(self.assemblies))
        assembly = self.assemblies[header.frame_id] = FrameAssembly(header, now)
        if out_of_order:
            self.assemblies = OrderedDict(sorted(self.assemblies.items()))
        return assembly

    def _complete(self, frame_id: int) -> None:
        for older in [k for k in self.assemblies if k <= frame_id]:
            if older != frame_id:
                self.incomplete += 1
            del self.assemblies[older]
        self.last_complete = frame_id

    def expire(self, now: float, timeout_s: float) -> None:
        """Drop (and count) the reassemblies started more than ``timeout_s`` ago."""
        for fid, assembly in list(self.assemblies.items()):
            if now - assembly.started > timeout_s:
                del self.assemblies[fid]
                self.incomplete += 1

    def drop_all(self) -> None:
        """Drop (and count) every reassembly in flight; ids already completed stay ignored (camera offline)."""
        self.incomplete += len(self.assemblies)
        self.assemblies.clear()

    def reset(self) -> None:
        """:meth:`drop_all`, and forget the last id completed: a new sender session numbers from 0 again."""
        self.drop_all()
        self.last_complete = -1
