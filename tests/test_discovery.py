"""mDNS/DNS-SD discovery and subscription on the loopback interface (real zeroconf, real sender)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from zeroconf import ServiceInfo

from network.discovery import SERVICE_TYPE, Browser, DiscoveredSender, parse_service
from network.udp_receiver import ReceiverConfig, UdpReceiver
from tests.conftest import ROOT, FrameLog, SenderFactory, wait_until
from tests.test_resilience import free_udp_port

LOOPBACK = ["127.0.0.1"]


@pytest.mark.slow
def test_station_discovers_a_sender_and_subscribes(key: bytes, start_sender: SenderFactory) -> None:
    port = free_udp_port()
    changes: list[tuple[str, bool]] = []
    browser = Browser(interfaces=LOOPBACK, on_change=lambda s, present: changes.append((s.name, present)))
    rx = UdpReceiver(key, "127.0.0.1", 0, config=ReceiverConfig(lease_s=3))
    log = FrameLog()
    rx.add_listener(log)
    rx.start()
    try:
        proc = start_sender(
            "--source",
            "demo",
            "--name",
            "porch",
            "--port",
            str(port),
            "--fps",
            "10",
            "--mdns-interface",
            "127.0.0.1",
            "--max-width",
            "320",
        )
        assert wait_until(lambda: any(s.name == "porch" for s in browser.senders()), 20), "sender not discovered"
        found = next(s for s in browser.senders() if s.name == "porch")
        assert (found.host, found.port) == ("127.0.0.1", port)
        assert (found.width, found.height, found.fps, found.protocol) == (320, 240, 10.0, 1)
        assert log.count() == 0, "nothing streams before a subscription"
        rx.subscribe(found.host, found.port)
        assert wait_until(lambda: log.count("porch") >= 5, 15), "no frames after subscribing"
        assert log.of("porch")[-1].image.shape == (240, 320, 3)
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        assert wait_until(lambda: ("porch", False) in changes, 10), "the sender's goodbye was not seen"
        assert wait_until(lambda: not rx.stats()[0].online, 5)
    finally:
        rx.stop()
        browser.close()


@pytest.mark.slow
def test_headless_discovers_and_prints_json_lines(key_file: Path, start_sender: SenderFactory) -> None:
    port = free_udp_port()
    start_sender(
        "--source",
        "demo",
        "--name",
        "garage",
        "--port",
        str(port),
        "--fps",
        "10",
        "--mdns-interface",
        "127.0.0.1",
        "--max-width",
        "320",
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "main.py"),
            "headless",
            "--no-recognition",
            "--listen",
            "127.0.0.1:0",
            "--key-file",
            str(key_file),
            "--mdns-interface",
            "127.0.0.1",
            "--stats-every",
            "1",
            "--duration",
            "12",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[dict[str, object]] = []

    def read() -> None:
        assert proc.stdout is not None
        lines.extend(json.loads(line) for line in proc.stdout)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert proc.wait(timeout=40) == 0
    reader.join(timeout=5)
    events = [line["event"] for line in lines]
    assert "discovered" in events
    online = [line for line in lines if line["event"] == "camera" and line["state"] == "online"]
    assert online and online[0]["camera"] == "garage"
    stats = [line for line in lines if line["event"] == "stats" and line["camera"] == "garage"]
    assert stats, lines
    last = stats[-1]
    for field in ("fps", "kbps", "loss", "incomplete", "rejected", "latency_ms_p50", "latency_ms_p95"):
        assert field in last
    assert float(last["fps"]) > 5  # type: ignore[arg-type]


def test_hostile_announcements_are_ignored() -> None:
    """TXT records come off the network: wrong types, huge values and nonsense give None, not errors."""

    def info(props: dict[str, str | bytes], port: int = 5000, addresses: list[bytes] | None = None) -> ServiceInfo:
        return ServiceInfo(
            SERVICE_TYPE,
            f"x.{SERVICE_TYPE}",
            port=port,
            properties=props,
            addresses=addresses if addresses is not None else [bytes([127, 0, 0, 1])],
        )

    good = parse_service(info({"name": "cam", "w": "640", "h": "480", "fps": "15", "proto": "1"}))
    assert good == DiscoveredSender("cam", "127.0.0.1", 5000, 640, 480, 15.0, 1, f"x.{SERVICE_TYPE}")
    assert parse_service(info({"name": "cam", "w": "wide"})) is None
    assert parse_service(info({"name": "cam", "w": "99999999"})) is None
    assert parse_service(info({"name": "x" * 200})) is None
    assert parse_service(info({"name": ""})) is None
    assert parse_service(info({"name": "cam", "fps": "nan"})) is None
    assert parse_service(info({"name": "cam"}, addresses=[])) is None
    assert parse_service(info({"name": "cam", "w": b"\xff\xfe"})) is not None  # undecodable value is dropped


def test_browser_closes_cleanly_with_nothing_found() -> None:
    browser = Browser(interfaces=LOOPBACK)
    time.sleep(0.3)
    assert browser.senders() == [] or all(isinstance(s, DiscoveredSender) for s in browser.senders())
    browser.close()
