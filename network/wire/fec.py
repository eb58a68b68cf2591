"""Chunking with XOR parity (FEC), and the bounded reassembly of one chunked message.

A frame (or a faces message) is cut into chunks spread over ``groups`` parity groups: chunk ``i``
belongs to group ``i % groups``, so a burst of consecutive losses hits different groups. Each group
has one XOR parity chunk, so a message survives the loss of one datagram per group.
"""

from __future__ import annotations

import numpy as np

from network.wire.header import MAX_FRAME_BYTES, PARITY_TYPES, Header, chunk_length

DEFAULT_GROUP_SIZE = 8


def split_frame(
    data: bytes, chunk_size: int, group_size: int, *, ceiling: int = MAX_FRAME_BYTES
) -> tuple[list[bytes], list[bytes], int]:
    """Split ``data`` into chunks and one XOR parity chunk per interleaved group."""
    if not data:
        raise ValueError("cannot send an empty frame")
    if len(data) > ceiling:
        raise ValueError(f"frame of {len(data)} bytes exceeds the {ceiling}-byte ceiling")
    count = -(-len(data) // chunk_size)
    chunks = [data[i * chunk_size : (i + 1) * chunk_size] for i in range(count)]
    if group_size <= 0:
        return chunks, [], 0
    groups = -(-count // group_size)
    rows = -(-count // groups)
    padded = np.zeros(rows * groups * chunk_size, dtype=np.uint8)
    padded[: len(data)] = np.frombuffer(data, dtype=np.uint8)
    parity = np.bitwise_xor.reduce(padded.reshape(rows, groups, chunk_size), axis=0)
    return chunks, [parity[g].tobytes() for g in range(groups)], groups


class FrameAssembly:
    """Collects one message's chunks and parity; recovers one loss per group.

    Its buffer is sized from a header that :func:`~network.wire.header.parse_header` bounded.
    """

    __slots__ = (
        "_buf",
        "_group_missing",
        "_have",
        "_missing",
        "_parity",
        "chunk_size",
        "count",
        "datagrams",
        "frame_id",
        "frame_len",
        "groups",
        "recovered",
        "started",
        "timestamp_us",
    )

    def __init__(self, header: Header, started: float) -> None:
        self.frame_id = header.frame_id
        self.count = header.count
        self.groups = header.groups
        self.chunk_size = header.chunk_size
        self.frame_len = header.frame_len
        self.timestamp_us = header.timestamp_us
        self.started = started
        self._buf = bytearray(self.count * self.chunk_size)
        self._have = bytearray(self.count)
        self._missing = self.count
        groups = max(self.groups, 1)
        self._group_missing = [len(range(g, self.count, groups)) for g in range(groups)]
        self._parity: dict[int, bytes] = {}
        self.datagrams = 0
        self.recovered = False

    def matches(self, header: Header) -> bool:
        return (
            header.count == self.count
            and header.groups == self.groups
            and header.chunk_size == self.chunk_size
            and header.frame_len == self.frame_len
        )

    def add(self, header: Header, payload: bytes) -> bytes | None:
        """Add a chunk; return the whole message once it is complete or recoverable."""
        self.datagrams += 1
        if header.type in PARITY_TYPES:
            self._parity.setdefault(header.index, payload)
        elif not self._have[header.index]:
            start = header.index * self.chunk_size
            self._buf[start : start + len(payload)] = payload
            self._have[header.index] = 1
            self._missing -= 1
            if self.groups:
                self._group_missing[header.index % self.groups] -= 1
        return self._complete()

    def _complete(self) -> bytes | None:
        if self._missing == 0:
            return bytes(self._buf[: self.frame_len])
        if not self.groups or self._missing > self.groups:
            return None
        for g, missing in enumerate(self._group_missing):
            if missing > 1 or (missing == 1 and g not in self._parity):
                return None
        for g, missing in enumerate(self._group_missing):
            if missing == 1:
                self._recover(g)
        return bytes(self._buf[: self.frame_len])

    def _recover(self, group: int) -> None:
        size = self.chunk_size
        acc = np.frombuffer(self._parity[group], dtype=np.uint8).copy()
        lost = -1
        for i in range(group, self.count, self.groups):
            if self._have[i]:
                acc ^= np.frombuffer(self._buf, dtype=np.uint8, count=size, offset=i * size)
            else:
                lost = i
        length = chunk_length(lost, self.count, size, self.frame_len)
        self._buf[lost * size : lost * size + length] = acc[:length].tobytes()
        self._have[lost] = 1
        self._missing -= 1
        self._group_missing[group] = 0
        self.recovered = True
