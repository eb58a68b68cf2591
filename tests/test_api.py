"""The local HTTP API, with real HTTP requests to uvicorn on loopback, a real gallery and the real face
models: tokens (hashed, 0600 file, refused from another station), the endpoints, the server-sent
events, the audit of every call, and bad input answered with one clear 4xx JSON error."""

from __future__ import annotations

import base64
import http.client
import json
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from integrations.api.auth import TokenAuth
from integrations.config import ApiConfig, IntegrationConfig
from integrations.service import Integrations, StationServices, enroller
from station.event_bus import EventBus
from station.events import CameraEvent, EventKind
from station.photos import PhotoIdentifier
from storage.gallery import Gallery
from storage.records import NewSighting
from storage.tokens import TokenStore
from tests.conftest import FACES, need
from vision.pipeline import FacePipeline

KEY = bytes(range(32))
PEOPLE = FACES / "identities"


class Api:
    """Real HTTP requests to the API on loopback."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token

    def call(
        self, method: str, path: str, body: bytes | None = None, content_type: str = "", token: str | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Content-Type": content_type} if content_type else {}
        chosen = self.token if token is None else token
        if chosen:
            headers["Authorization"] = f"Bearer {chosen}"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        kind = response.getheader("Content-Type", "")
        parsed: Any = json.loads(data) if kind.startswith("application/json") else data
        return response.status, parsed, {k.lower(): v for k, v in response.getheaders()}


@pytest.fixture
def station(tmp_path: Path, pipeline: FacePipeline) -> Iterator[tuple[Integrations, Api, Gallery, EventBus]]:
    gallery = Gallery.open(tmp_path / "gallery.db", actor="tester")
    bus = EventBus()
    services = StationServices(
        gallery=gallery,
        bus=bus,
        key=KEY,
        identify=PhotoIdentifier(gallery, pipeline, None).identify,
        enrol=enroller(gallery, pipeline, ()),
        cameras=lambda: [{"name": "door", "online": True}],
    )
    token_file = tmp_path / "keys" / "api.token"
    config = IntegrationConfig(api=ApiConfig("127.0.0.1", 0, token_file=token_file))
    integrations = Integrations(config, services).start()
    assert integrations.api is not None
    api = Api(integrations.api.port, token_file.read_text().strip())
    try:
        yield integrations, api, gallery, bus
    finally:
        integrations.stop()
        gallery.close()


def until(condition: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the timeout"
        time.sleep(0.1)


def jpeg(path: Path) -> bytes:
    return path.read_bytes()


def test_tokens_are_required_hashed_in_a_0600_file_and_bound_to_their_station(
    station: tuple[Integrations, Api, Gallery, EventBus], tmp_path: Path
) -> None:
    _, api, gallery, _ = station
    token_file = tmp_path / "keys" / "api.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert api.call("GET", "/api/health")[0] == 200
    for token, why in [
        ("", "Bearer token is required"),
        ("nonsense", "not a FaceStation API token"),
        (api.token[:-3] + "xyz", "unknown or revoked"),
    ]:
        status, body, headers = api.call("GET", "/api/health", token=token)
        assert status == 401 and why in body["error"] and "Bearer" in headers["www-authenticate"]
    # Another station (another key) makes a token with the same name on its own gallery: refused here.
    with Gallery.open(tmp_path / "other.db") as other:
        foreign = TokenAuth(TokenStore(other), bytes(32)).create("api.token")
    status, body, _ = api.call("GET", "/api/health", token=foreign)
    assert status == 401 and body["error"] == "this token belongs to another station"
    gallery.flush()
    stored = TokenStore(gallery).all()
    assert [t.name for t in stored] == ["api.token"] and api.token not in stored[0].digest
    assert api.token.encode() not in (tmp_path / "gallery.db").read_bytes()
    # A token made elsewhere (the console, another process) works within a second; a revoked one stops so.
    second = TokenAuth(TokenStore(gallery), KEY).create("ha")
    until(lambda: api.call("GET", "/api/persons", token=second)[0] == 200)
    TokenStore(gallery).revoke("ha")
    until(lambda: api.call("GET", "/api/persons", token=second)[0] == 401)


def test_every_call_is_audited_under_its_token_name(station: tuple[Integrations, Api, Gallery, EventBus]) -> None:
    _, api, gallery, _ = station
    api.call("GET", "/api/sightings?camera=door&limit=5")
    api.call("GET", "/api/openapi.json")
    gallery.flush()
    calls = [e for e in gallery.audit_log(action="api_call") if e.actor == "api:api.token"]
    paths = [json.loads(e.details)["path"] for e in calls]
    assert "/api/sightings" in paths and "/api/openapi.json" in paths
    assert json.loads(calls[-1].details)["query"] == {"camera": "door", "limit": "5"}


def test_sightings_with_history_filters_and_their_crops(station: tuple[Integrations, Api, Gallery, EventBus]) -> None:
    _, api, gallery, _ = station
    crop = jpeg(sorted(need(PEOPLE / "Tony_Blair").glob("*.jpg"))[0])
    t0 = 1_790_000_000.0
    gallery.record_sightings(
        [
            NewSighting(
                "door",
                t0 + i,
                t0 + i + 1,
                None,
                0.3,
                (1.0, 2.0, 3.0, 4.0),
                crop if i == 0 else b"",
                None,
                "m",
                f"t{i}",
                snapshot_jpeg=crop if i == 0 else b"",
                snapshot_box=(1.0, 2.0, 3.0, 4.0),
            )
            for i in range(3)
        ]
    )
    gallery.flush()
    status, body, _ = api.call("GET", "/api/sightings?camera=door&unknown=true&since=2026-09-21T00:00:00Z&limit=2")
    assert status == 200 and [s["track"] for s in body["sightings"]] == ["t2", "t1"]
    oldest = api.call("GET", "/api/sightings?offset=2")[1]["sightings"][0]
    assert oldest["crop"] == f"/api/sightings/{oldest['id']}/crop" and oldest["score"] == 0.3
    status, data, headers = api.call("GET", oldest["crop"])
    assert status == 200 and data == crop and headers["content-type"] == "image/jpeg"
    status, data, headers = api.call("GET", oldest["snapshot"])
    assert status == 200 and data == crop and headers["x-facestation-box"] == "1.0,2.0,3.0,4.0"
    assert api.call("GET", f"/api/sightings/{oldest['id'] + 1}/crop")[0] == 404
    for query, why in [
        ("since=yesterday", "not an ISO 8601 time"),
        ("limit=0", "limit must be between 1 and 1000"),
        ("min_score=abc", "min_score must be a number"),
        ("unknown=maybe", "unknown must be true or false"),
        ("since=2026-10-01&until=2026-09-01", "until must be later than since"),
    ]:
        status, body, _ = api.call("GET", f"/api/sightings?{query}")
        assert status == 400 and why in body["error"], (query, body)
    status, body, _ = api.call("GET", "/api/sightings?person=Nobody")
    assert status == 404 and "Nobody" in body["error"]
    assert api.call("GET", "/api/nothing")[0] == 404 and api.call("DELETE", "/api/persons")[0] == 405
    assert api.call("GET", "/api/cameras")[1] == {"cameras": [{"name": "door", "online": True}]}


def test_identify_and_enrol_through_the_same_code_as_the_cli(
    station: tuple[Integrations, Api, Gallery, EventBus],
) -> None:
    _, api, gallery, _ = station
    powell = sorted(need(PEOPLE / "Colin_Powell").glob("*.jpg"))
    for photo in powell[:2]:
        status, body, _ = api.call("POST", "/api/persons/Colin%20Powell/samples", jpeg(photo), "image/jpeg")
        assert status == 201 and body["enrolled"] and body["person"] == "Colin Powell", body
    assert body["samples"] == 2
    blank = cv2.imencode(".png", np.full((200, 200, 3), 127, np.uint8))[1].tobytes()
    status, body, _ = api.call("POST", "/api/persons/Colin%20Powell/samples", blank, "image/png")
    assert status == 422 and body == {"person": "Colin Powell", "enrolled": False, "error": "no face found"}
    status, body, _ = api.call("POST", "/api/identify", jpeg(powell[5]), "image/jpeg")
    assert status == 200 and body["width"] == 250
    central = min(body["faces"], key=lambda f: abs(f["box"][0] + f["box"][2] / 2 - 125))
    assert central["person"] == "Colin Powell" and central["score"] > 0.5
    as_json = json.dumps({"image": base64.b64encode(jpeg(powell[5])).decode()}).encode()
    assert api.call("POST", "/api/identify", as_json, "application/json")[1]["faces"] == body["faces"]
    for payload, kind, status_wanted, why in [
        (b"{not json", "application/json", 400, "malformed JSON"),
        (b'{"image": "%%%"}', "application/json", 400, "not valid base64"),
        (b"hello", "text/plain", 415, "send the image as"),
        (b"\xff\xd8 not really a jpeg", "image/jpeg", 422, "does not decode"),
        (b"", "image/jpeg", 400, "no image"),
        (b"\0" * (10 * 1024 * 1024 + 1), "image/jpeg", 413, "over 10 MB"),
    ]:
        status, body, _ = api.call("POST", "/api/identify", payload, kind)
        assert status == status_wanted and why in body["error"], (kind, body)
    assert api.call("GET", "/api/health")[0] == 200  # the station carries on
    assert [p.name for p in gallery.persons()] == ["Colin Powell"]


def test_events_stream_as_server_sent_events(station: tuple[Integrations, Api, Gallery, EventBus]) -> None:
    _, api, _, bus = station
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=20)
    conn.request("GET", "/api/events?kinds=camera_offline", headers={"Authorization": f"Bearer {api.token}"})
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("Content-Type", "").startswith("text/event-stream")
    assert response.readline().startswith(b": FaceStation")

    def publish() -> None:
        for kind in (EventKind.CAMERA_ONLINE, EventKind.CAMERA_OFFLINE):
            bus.publish(CameraEvent(kind=kind, at=time.time(), camera="door", reason="bye"))

    deadline = time.monotonic() + 10
    while not any(s.name.startswith("api-events") for s in bus.subscriptions()):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    threading.Thread(target=publish).start()
    lines: list[bytes] = []
    while not lines or lines[-1] != b"\n":
        line = response.readline()
        if line.startswith(b":") or (line == b"\n" and not lines):
            continue
        lines.append(line)
    conn.close()
    fields = dict(line.decode().rstrip("\n").split(": ", 1) for line in lines[:-1])
    assert fields["event"] == "camera_offline" and json.loads(fields["data"])["reason"] == "bye"
    assert api.call("GET", "/api/events?kinds=nope")[0] == 400


def test_openapi_names_every_endpoint(station: tuple[Integrations, Api, Gallery, EventBus]) -> None:
    _, api, _, _ = station
    status, doc, _ = api.call("GET", "/api/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    assert {"/api/sightings", "/api/identify", "/api/events", "/api/persons/{name}/samples"} <= set(doc["paths"])


def test_the_throttle_serves_in_turn_and_refuses_past_its_queue() -> None:
    import asyncio

    from integrations.api.app import Throttle

    async def burst() -> tuple[list[bool], float]:
        throttle = Throttle(rate=20, queue=5)  # 20 a second; at most 5 waiting (a quarter of a second)
        began = asyncio.get_running_loop().time()
        admitted = await asyncio.gather(*(throttle.admit() for _ in range(10)))
        return list(admitted), asyncio.get_running_loop().time() - began

    admitted, took = asyncio.run(burst())
    assert admitted == [True] * 6 + [False] * 4  # one now, five in turn, the rest refused (503)
    assert 0.2 <= took < 1.0  # the waiting ones waited their turn, without spinning
