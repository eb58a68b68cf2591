"""The whole station in its ecosystem: ``main.py headless`` with MQTT (amqtt on loopback), a webhook (a
real HTTP server) and the API turned on by its flags, a real sender streaming the demo clip of an
enrolled, watchlisted person; every consumer sees the same events, the contract's lines stay as
they were, and the API serves the recorded sighting's crop."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from integrations.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from storage.gallery import Gallery
from tests.conftest import CLIP, ROOT, SENDER, need
from tests.mqtt_broker import Broker, Subscriber, free_port
from tests.test_station_cli import REFERENCE, main_py
from tests.webhook_server import WebhookServer

pytestmark = pytest.mark.slow


def get(port: int, path: str, token: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    return response.status, response.read()


def test_headless_feeds_mqtt_a_webhook_and_the_api_from_one_event_stream(tmp_path: Path) -> None:
    need(CLIP)
    gallery = tmp_path / "gallery.db"
    key = tmp_path / "station.key"
    secret = tmp_path / "hook.secret"
    secret.write_text("hook-secret\n")
    token_file = tmp_path / "api.token"
    assert main_py("keygen", str(key)).returncode == 0
    person = "Lin-Manuel Miranda"
    enrolled = main_py("enrol", "--gallery", str(gallery), "--name", person, str(REFERENCE / "lin-manuel-miranda.png"))
    assert enrolled.returncode == 0, enrolled.stderr
    with Gallery.open(gallery) as g:
        g.set_watchlist(person, True)
    api_port = free_port()
    with Broker("amqtt", tmp_path) as broker, WebhookServer() as hook:
        sub = Subscriber(broker.port, "facestation/events/#")
        station = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "headless", "--gallery", str(gallery), "--listen", "127.0.0.1:0",
             "--key-file", str(key), "--stats-every", "2", "--max-rate", "10",
             "--mqtt", f"127.0.0.1:{broker.port}", "--webhook", hook.url, "--webhook-secret-file", str(secret),
             "--webhook-event", "watchlist_hit", "--webhook-event", "sighting_ended",
             "--api", f"127.0.0.1:{api_port}", "--api-token-file", str(token_file)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert station.stdout is not None
            first = json.loads(station.stdout.readline())
            assert first["event"] == "listening", first
            sender = subprocess.run(
                [sys.executable, str(SENDER), "--source", str(CLIP), "--name", "stage", "--station",
                 str(first["address"]), "--key-file", str(key), "--fps", "15"],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert sender.returncode == 0, sender.stderr
            mqtt_hits = sub.wait_for(lambda ms: any(m.topic.endswith("/watchlist_hit") for m in ms), timeout=30)
            deadline = time.monotonic() + 30  # the hit, then the recorded sighting once the track ended
            while not [r for r in hook.received if r.event["event"] == "sighting_ended" and r.event["person"]]:
                assert time.monotonic() < deadline, [r.event["event"] for r in hook.received]
                time.sleep(0.1)
            hooks = list(hook.received)
            ended = next(r.event for r in hooks if r.event["event"] == "sighting_ended" and r.event["person"])
            token = token_file.read_text().strip()
            status, body = get(api_port, f"/api/sightings?person={person.replace(' ', '%20')}", token)
            assert status == 200, body
            assert ended["sighting"] in {row["id"] for row in json.loads(body)["sightings"]}
            status, crop = get(api_port, ended["crop"], token)
            assert status == 200 and crop.startswith(b"\xff\xd8")
        finally:
            station.terminate()
            out, err = station.communicate(timeout=60)
            sub.close()
    assert station.returncode == 0, err[-3000:]
    lines: list[dict[str, Any]] = [json.loads(line) for line in out.splitlines() if line.strip()]
    kinds = {line["event"] for line in lines}
    assert {"camera", "sighting", "sighting_started", "watchlist_hit"} <= kinds
    camera = next(line for line in lines if line["event"] == "camera")
    assert set(camera) <= {"event", "camera", "state", "address", "reason"} and camera["state"] == "online"
    sighting = next(line for line in lines if line["event"] == "sighting" and line["person"] == person)
    assert set(sighting) == {"event", "camera", "person", "state", "score", "start", "end", "track", "frames"}
    hit = next(line for line in lines if line["event"] == "watchlist_hit")
    (mqtt_hit,) = [m.json() for m in mqtt_hits if m.topic.endswith("/watchlist_hit")][:1]
    assert mqtt_hit["seq"] == hit["seq"] and mqtt_hit["track"] == hit["track"]  # one event, every consumer
    sent = [(r.event["event"], r.event["person"]) for r in hooks]
    assert sent.index(("watchlist_hit", person)) < sent.index(("sighting_ended", person))  # in order
    assert {kind for kind, _ in sent} == {"watchlist_hit", "sighting_ended"}  # the filter held
    for r in hooks:
        assert verify(b"hook-secret", r.header(TIMESTAMP_HEADER), r.body, r.header(SIGNATURE_HEADER))
    assert token_file.stat().st_mode & 0o077 == 0
