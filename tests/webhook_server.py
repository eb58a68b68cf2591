"""A real HTTP server on loopback that receives webhooks (tests and bench/integrations.py): it records
each POST (headers and body) and answers as told: 200, 500, or slowly (past the sender's timeout)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    def header(self, name: str) -> str:
        """A header's value, whatever its case (HTTP header names are case-insensitive)."""
        return next(v for k, v in self.headers.items() if k.lower() == name.lower())

    @property
    def event(self) -> dict[str, Any]:
        data = json.loads(self.body)
        assert isinstance(data, dict)
        return data


class WebhookServer:
    """``mode``: "ok" (200), "fail" (500), "refuse" (400), "slow" (answers after ``slow_s``)."""

    def __init__(self, port: int = 0, mode: str = "ok", slow_s: float = 3.0) -> None:
        self.mode = mode
        self.slow_s = slow_s
        self.received: list[Received] = []
        self.attempts = 0
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with outer._lock:
                    outer.attempts += 1
                    mode = outer.mode
                if mode == "slow":
                    time.sleep(outer.slow_s)
                status = {"ok": 200, "fail": 500, "refuse": 400, "slow": 200}[mode]
                if status == 200 and mode == "ok":
                    with outer._arrived:
                        outer.received.append(Received(dict(self.headers.items()), body, time.time()))
                        outer._arrived.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> WebhookServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float) -> list[Received]:
        """Block until ``count`` requests were received (or ``timeout``); returns what arrived."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._arrived.wait(left)
            return list(self.received)

    def __enter__(self) -> WebhookServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
