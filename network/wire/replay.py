"""Replay protection: a sliding window per session, and the rules for a peer's changing sessions."""

from __future__ import annotations

from collections import OrderedDict

from network.wire.header import Header, session_start_us

REPLAY_WINDOW = 2048


class ReplayWindow:
    """A sliding window over one session's sequence numbers (RFC 4303 style)."""

    def __init__(self, size: int = REPLAY_WINDOW) -> None:
        self.size = size
        self.highest = -1
        self._bits = 0  # bit i set: highest - i was seen

    def check(self, seq: int) -> bool:
        """True if ``seq`` is new; does not record it."""
        if seq > self.highest:
            return True
        offset = self.highest - seq
        if offset >= self.size:
            return False
        return not (self._bits >> offset) & 1

    def accept(self, seq: int) -> bool:
        """Record ``seq``; False (and nothing recorded) if it is a replay."""
        if not self.check(seq):
            return False
        if seq > self.highest:
            shift = seq - self.highest
            self._bits = ((self._bits << shift) | 1) & ((1 << self.size) - 1) if shift < self.size else 1
            self.highest = seq
        else:
            self._bits |= 1 << (self.highest - seq)
        return True


class SessionGuard:
    """Replay protection for one peer across its sessions.

    A peer (a camera, or a station seen by a sender) has one current session.
    A datagram from another session is accepted only if that session started
    later, or if the current session has gone quiet (``stale``) and the new
    one was never seen before: a recorded old session cannot be replayed over
    a live one. Retired session ids are remembered, bounded.
    """

    def __init__(self, *, retired_limit: int = 64) -> None:
        self.session: bytes | None = None
        self.window = ReplayWindow()
        self._retired: OrderedDict[bytes, None] = OrderedDict()
        self._retired_limit = retired_limit

    def check(self, header: Header, *, stale: bool) -> bool | None:
        """True: same session and fresh. None: acceptable new session. False: replay."""
        if header.session == self.session:
            return self.window.check(header.seq)
        if header.session in self._retired:
            return False
        if self.session is None or stale or header.session_start_us > session_start_us(self.session):
            return None
        return False

    def accept(self, header: Header, *, stale: bool) -> tuple[bool, bool]:
        """Record the datagram. Returns (accepted, started a new session)."""
        verdict = self.check(header, stale=stale)
        if verdict is False:
            return False, False
        new = verdict is None
        if new:
            if self.session is not None:
                self._retired[self.session] = None
                if len(self._retired) > self._retired_limit:
                    self._retired.popitem(last=False)
            self.session = header.session
            self.window = ReplayWindow()
        self.window.accept(header.seq)
        return True, new
