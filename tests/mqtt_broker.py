"""Real MQTT brokers on loopback for the tests: amqtt (pip-installable, always there) and Debian's
mosquitto where it is installed; and a subscriber that records what it receives."""

from __future__ import annotations

import getpass
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Broker:
    """``kind`` "amqtt" or "mosquitto" on 127.0.0.1:``port``; ``users`` (name: password) turns logins on."""

    def __init__(self, kind: str, folder: Path, port: int | None = None, users: dict[str, str] | None = None) -> None:
        self.kind = kind
        self.folder = folder
        self.port = port or free_port()
        self.users = users
        self.process: subprocess.Popen[bytes] | None = None

    def _amqtt_config(self) -> list[str]:
        lines = ["listeners:", "  default:", "    type: tcp", f"    bind: 127.0.0.1:{self.port}", "plugins:"]
        lines += ["  amqtt.plugins.authentication.AnonymousAuthPlugin:", f"    allow_anonymous: {not self.users}"]
        if self.users:
            from pwdlib import PasswordHash
            from pwdlib.hashers.argon2 import Argon2Hasher

            hasher = PasswordHash((Argon2Hasher(),))
            passwords = self.folder / "amqtt.passwd"
            passwords.write_text("".join(f"{u}:{hasher.hash(p)}\n" for u, p in self.users.items()))
            lines += ["  amqtt.plugins.authentication.FileAuthPlugin:", f"    password_file: {passwords}"]
        config = self.folder / "amqtt.yaml"
        config.write_text("\n".join(lines) + "\n")
        return [str(Path(sys.executable).parent / "amqtt"), "-c", str(config)]

    def _mosquitto_config(self) -> list[str]:
        assert MOSQUITTO is not None
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence false",
            f"allow_anonymous {str(not self.users).lower()}",
            # As root, mosquitto drops to its own user, who cannot read the test's owner-only folder: stay us.
            f"user {getpass.getuser()}",
        ]
        if self.users:
            passwords = self.folder / "mosquitto.passwd"
            passwords.write_text("")
            for user, password in self.users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwords), user, password], check=True)
            lines.append(f"password_file {passwords}")
        config = self.folder / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n")
        return [MOSQUITTO, "-c", str(config)]

    def start(self, timeout: float = 20.0) -> Broker:
        command = self._amqtt_config() if self.kind == "amqtt" else self._mosquitto_config()
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not _accepts(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the {self.kind} broker did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool
    at: float

    def json(self) -> Any:
        return json.loads(self.payload)


class Subscriber:
    """A paho client subscribed to ``topic`` that keeps every message it receives."""

    def __init__(self, port: int, topic: str = "#", username: str = "", password: str = "") -> None:
        self.messages: list[Message] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"test-sub-{time.monotonic_ns()}")
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_message = self._message
        self.client.on_subscribe = lambda c, u, mid, rc, p: self._subscribed.set()
        self.client.connect("127.0.0.1", port, 30)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("the test subscriber could not subscribe")

    def _message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(Message(msg.topic, bytes(msg.payload), bool(msg.retain), time.time()))
            self._cond.notify_all()

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> list[Message]:
        """Block until ``predicate(messages)`` holds (or the timeout); returns the messages."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"not received in {timeout} s: {[m.topic for m in self.messages][-20:]}")
                self._cond.wait(left)
            return list(self.messages)

    def on(self, topic: str) -> list[Message]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
