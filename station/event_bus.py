"""One bus for the station's events (station/events.py): publishers never wait, subscribers never wait
on each other.

Each subscriber has its own bounded queue. :meth:`EventBus.publish` appends to each queue and returns
(a lock held for an append): a recognition thread, the gallery's writer or the receiver publishes
without ever blocking on a consumer. A full queue drops its oldest event, counts it and says so in a
log line (the first drop, then at most one line every ``DROP_LOG_EVERY_S``). A subscriber either pulls
(:meth:`Subscription.get`, :meth:`Subscription.drain`: the console's timer, headless's loop, the API's
event stream) or has a thread of its own calling it (:meth:`EventBus.listen`: MQTT, webhooks), so a
slow or failing one delays nobody else; an exception in a listener is logged and the next event
follows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from station.events import Event, EventKind

log = logging.getLogger(__name__)

DEFAULT_CAPACITY = 1000
DROP_LOG_EVERY_S = 10.0


class Subscription:
    """One subscriber's bounded queue of events (oldest dropped when full)."""

    def __init__(self, name: str, capacity: int = DEFAULT_CAPACITY, kinds: Iterable[EventKind] | None = None) -> None:
        if capacity < 1:
            raise ValueError("a subscription holds at least one event")
        self.name = name
        self.capacity = capacity
        self.kinds = None if kinds is None else frozenset(kinds)
        self._queue: deque[Event] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        self._dropped = 0
        self._logged_drops = 0
        self._next_log = 0.0

    def wants(self, event: Event) -> bool:
        return self.kinds is None or event.kind in self.kinds

    def offer(self, event: Event) -> None:
        """Queue ``event`` without waiting; a full queue drops its oldest."""
        with self._cond:
            if self._closed:
                return
            if len(self._queue) >= self.capacity:
                self._queue.popleft()
                self._dropped += 1
            self._queue.append(event)
            self._cond.notify()
            dropped = self._dropped
        if dropped != self._logged_drops:
            self._log_drops(dropped)

    def _log_drops(self, dropped: int) -> None:
        now = time.monotonic()
        if now < self._next_log:
            return
        self._next_log = now + DROP_LOG_EVERY_S
        new, self._logged_drops = dropped - self._logged_drops, dropped
        log.warning(
            "event subscriber %s is behind: %d events dropped (%d in all; it holds the newest %d)",
            self.name,
            new,
            dropped,
            self.capacity,
        )

    def get(self, timeout: float | None = None) -> Event | None:
        """The oldest queued event, waiting up to ``timeout`` for one; None on timeout or once closed and empty."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            return self._queue.popleft()

    def drain(self) -> list[Event]:
        """Every queued event, oldest first, without waiting."""
        with self._cond:
            events = list(self._queue)
            self._queue.clear()
            return events

    def close(self) -> None:
        """Take no more events; what is queued can still be read."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def dropped(self) -> int:
        """Events this subscriber lost because it was behind."""
        with self._cond:
            return self._dropped

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)


Listener = Callable[[Event], object]


class EventBus:
    """Publish events to every subscriber; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: tuple[Subscription, ...] = ()
        self._threads: dict[Subscription, threading.Thread] = {}

    def publish(self, event: Event) -> None:
        """Hand ``event`` to every subscriber that wants it; never blocks on a subscriber."""
        for sub in self._subs:  # a tuple replaced whole on (un)subscribe: no lock needed to read it
            if sub.wants(event):
                sub.offer(event)

    def subscribe(
        self, name: str, *, capacity: int = DEFAULT_CAPACITY, kinds: Iterable[EventKind] | None = None
    ) -> Subscription:
        """A queue that receives every event published from now on (of ``kinds``, all when None); pull from it."""
        sub = Subscription(name, capacity, kinds)
        with self._lock:
            self._subs = (*self._subs, sub)
        return sub

    def listen(
        self,
        name: str,
        listener: Listener,
        *,
        capacity: int = DEFAULT_CAPACITY,
        kinds: Iterable[EventKind] | None = None,
    ) -> Subscription:
        """Call ``listener(event)`` for each event, oldest first, on a thread of its own."""
        sub = self.subscribe(name, capacity=capacity, kinds=kinds)
        thread = threading.Thread(target=_pump, args=(sub, listener), name=f"events-{name}", daemon=True)
        with self._lock:
            self._threads[sub] = thread
        thread.start()
        return sub

    def unsubscribe(self, sub: Subscription, timeout: float = 5.0) -> None:
        """Stop delivering to ``sub``; a listener's thread finishes what is queued (up to ``timeout``)."""
        with self._lock:
            self._subs = tuple(s for s in self._subs if s is not sub)
            thread = self._threads.pop(sub, None)
        sub.close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("event subscriber %s did not finish within %.0f s", sub.name, timeout)

    def subscriptions(self) -> tuple[Subscription, ...]:
        return self._subs

    def close(self, timeout: float = 5.0) -> None:
        """Unsubscribe everyone; each listener first delivers what it has queued (up to ``timeout`` each)."""
        for sub in self._subs:
            self.unsubscribe(sub, timeout)


def _pump(sub: Subscription, listener: Listener) -> None:
    while True:
        event = sub.get(timeout=1.0)
        if event is None:
            if sub.closed:
                return
            continue
        try:
            listener(event)
        except Exception:
            log.exception("event subscriber %s failed on %s", sub.name, event.kind)
