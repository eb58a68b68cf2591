"""Serves the API (integrations/api/app.py) with uvicorn on a thread of its own.

The socket is bound here first, so a port in use or an address that is not this machine's is one
clear error at start (and port 0 picks a free one, for the tests); TLS when a certificate and key are
given. uvicorn's own logging configuration is not applied: the station's logging stays as it is.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

log = logging.getLogger(__name__)


class ApiServerError(Exception):
    """The API cannot start: one line."""


class ApiServer:
    def __init__(
        self, app: Starlette, host: str, port: int, *, cert: Path | None = None, key: Path | None = None
    ) -> None:
        if (cert is None) != (key is None):
            raise ApiServerError("the API's TLS needs both a certificate and its key (--api-tls-cert, --api-tls-key)")
        for path in (cert, key):
            if path is not None and not path.is_file():
                raise ApiServerError(f"the API's TLS file {path} does not exist")
        self.host = host
        self.tls = cert is not None
        self._sock = self._bind(host, port)
        self.port = int(self._sock.getsockname()[1])
        config = uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            loop="asyncio",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=2,
            timeout_keep_alive=5,
            limit_concurrency=200,
            ssl_certfile=str(cert) if cert is not None else None,
            ssl_keyfile=str(key) if key is not None else None,
            server_header=False,
        )
        if cert is not None:
            try:
                config.load()  # reads the certificate and key now: a bad pair is refused at start
            except (ssl.SSLError, OSError) as exc:
                self._sock.close()
                raise ApiServerError(f"the API's TLS certificate or key cannot be used: {exc}") from None
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="api", daemon=True)

    @staticmethod
    def _bind(host: str, port: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise ApiServerError(f"the API cannot listen on {host}:{port}: {exc.strerror}") from None
        sock.listen(256)
        return sock

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def _serve(self) -> None:
        try:
            self.server.run(sockets=[self._sock])
        except BaseException:
            log.exception("the API server stopped")

    def start(self, timeout: float = 10.0) -> ApiServer:
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout / 0.05)):
            if self.server.started or not self._thread.is_alive():
                break
            deadline.wait(0.05)
        if not self.server.started:
            raise ApiServerError(f"the API did not start on {self.host}:{self.port}")
        log.info("the local API listens on %s", self.url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()
