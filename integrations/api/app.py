"""The local HTTP API as a Starlette application (served by integrations/api/server.py).

Every route takes a bearer token (integrations/api/auth.py) and is audited under the token's name.
Handlers run on Starlette's thread pool (the gallery reads on a reader connection per thread; the
photo models one photo at a time), so the event loop only moves bytes. A refused request gets one
clear JSON error, ``{"error": "..."}``, with a 4xx status; nothing a request does can stop the
station. The routes and their shapes are in integrations/api/openapi.py, served at
``/api/openapi.json``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from integrations.api.auth import Caller, TokenAuth
from integrations.api.openapi import document
from station.event_bus import EventBus
from station.events import EventKind, crop_path, iso, snapshot_path
from storage.errors import GalleryError
from storage.export import sighting_dict
from storage.gallery import Gallery
from storage.timeutil import parse_iso
from storage.tokens import TokenStore

log = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_PAGE = 1000
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/bmp", "image/tiff"})
SSE_POLL_S = 0.1
SSE_KEEPALIVE_S = 15.0


class ApiError(Exception):
    """A request the API refuses: ``status`` and one line for ``{"error": ...}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


Identify = Callable[[np.ndarray], list[dict[str, Any]]]
Enrol = Callable[[str, np.ndarray, str], dict[str, Any]]  # (name, image, source) -> result; ValueError: refused


class Throttle:
    """At most ``rate`` requests a second are served, in arrival order; the others wait (without using the CPU)
    and past ``queue`` waiting the API answers 503. Recognition is the station's first job: clients that
    poll without pause must not take its CPU."""

    def __init__(self, rate: float, queue: int = 1000) -> None:
        self.rate = rate
        self.queue = queue
        self._next = 0.0
        self.waiting = 0

    async def admit(self) -> bool:
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = max(now, self._next)
        if slot - now > self.queue / self.rate:
            return False
        self._next = slot + 1.0 / self.rate
        if slot > now:
            self.waiting += 1
            try:
                await asyncio.sleep(slot - now)
            finally:
                self.waiting -= 1
        return True


@dataclass(frozen=True)
class ApiContext:
    """What the API serves from. ``identify``/``enrol`` are None where the station runs without recognition."""

    gallery: Gallery
    bus: EventBus
    auth: TokenAuth
    tokens: TokenStore
    identify: Identify | None
    enrol: Enrol | None
    cameras: Callable[[], list[dict[str, Any]]]
    health: Callable[[], dict[str, Any]]
    throttle: Throttle


@dataclass(frozen=True)
class Call:
    """One request as a handler sees it: the path's and query's parameters, the body, who called."""

    caller: Caller
    path: dict[str, Any]
    query: dict[str, str]
    body: bytes
    content_type: str


Handler = Callable[[ApiContext, Call], Response]


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


# ------------------------------------------------------------------ decoding


def decode_image(call: Call) -> np.ndarray:
    """The request's image: raw bytes of an image type, or JSON ``{"image": "<base64>"}``."""
    if call.content_type == "application/json":
        data = _json_image(call.body)
    elif call.content_type in IMAGE_TYPES or call.content_type == "application/octet-stream":
        data = call.body
    else:
        raise ApiError(415, f"send the image as {', '.join(sorted(IMAGE_TYPES))}, or JSON with a base64 image field")
    if not data:
        raise ApiError(400, "the request has no image")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise ApiError(422, "the image does not decode (not a JPEG, PNG, WebP, BMP or TIFF picture, or damaged)")
    return image


def _json_image(body: bytes) -> bytes:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"malformed JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("image"), str):
        raise ApiError(400, 'the JSON body must be an object with an "image" field (base64)')
    try:
        return base64.b64decode(doc["image"], validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, 'the "image" field is not valid base64') from None


def _number(query: dict[str, str], key: str, default: float | None, low: float, high: float) -> float | None:
    raw = query.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ApiError(400, f"{key} must be a number (it is {raw!r})") from None
    if not low <= value <= high:
        raise ApiError(400, f"{key} must be between {low:g} and {high:g} (it is {raw})")
    return value


def _time(query: dict[str, str], key: str) -> float | None:
    raw = query.get(key)
    if not raw:
        return None
    try:
        return parse_iso(raw, key)
    except GalleryError as exc:
        raise ApiError(400, str(exc)) from None


def _flag(query: dict[str, str], key: str) -> bool:
    raw = query.get(key, "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise ApiError(400, f"{key} must be true or false (it is {raw!r})")


# ------------------------------------------------------------------ handlers


def health(ctx: ApiContext, call: Call) -> Response:
    return JSONResponse({"status": "ok", **ctx.health()})


def openapi(ctx: ApiContext, call: Call) -> Response:
    return JSONResponse(document())


def sighting_json(s: Any) -> dict[str, Any]:
    out = sighting_dict(s)
    out["crop"] = crop_path(s.id) if s.has_crop else None
    out["snapshot"] = snapshot_path(s.id) if s.has_snapshot else None
    return out


def sightings(ctx: ApiContext, call: Call) -> Response:
    """``history``'s filters: person, camera, since, until, unknown, min_score; a page (limit, offset)."""
    q = call.query
    limit = int(_number(q, "limit", 100, 1, MAX_PAGE) or 100)
    offset = int(_number(q, "offset", 0, 0, 10**9) or 0)
    since, until = _time(q, "since"), _time(q, "until")
    if since is not None and until is not None and until <= since:
        raise ApiError(400, "until must be later than since")
    rows = ctx.gallery.history(
        person=q.get("person") or None,
        camera=q.get("camera") or None,
        since=since,
        until=until,
        unknown_only=_flag(q, "unknown"),
        min_score=_number(q, "min_score", None, -1.0, 1.0),
        limit=limit,
        offset=offset,
        audit=False,  # the call itself is audited, under the token's name
    )
    return JSONResponse({"sightings": [sighting_json(s) for s in rows], "limit": limit, "offset": offset})


def crop(ctx: ApiContext, call: Call) -> Response:
    data = ctx.gallery.crop(int(call.path["sighting"]))
    if data is None:
        raise ApiError(404, f"sighting {call.path['sighting']} has no crop (or does not exist)")
    return Response(data, media_type="image/jpeg")


def snapshot(ctx: ApiContext, call: Call) -> Response:
    found = ctx.gallery.snapshot(int(call.path["sighting"]))
    if found is None:
        raise ApiError(404, f"sighting {call.path['sighting']} has no snapshot (or does not exist)")
    x, y, w, h = (round(v, 1) for v in found.box)
    return Response(found.jpeg, media_type="image/jpeg", headers={"X-FaceStation-Box": f"{x},{y},{w},{h}"})


def persons(ctx: ApiContext, call: Call) -> Response:
    out = [
        {"id": p.id, "name": p.name, "watchlist": p.watchlist, "samples": p.samples, "created": iso(p.created)}
        for p in ctx.gallery.persons()
    ]
    return JSONResponse({"persons": out})


def cameras(ctx: ApiContext, call: Call) -> Response:
    return JSONResponse({"cameras": ctx.cameras()})


def identify(ctx: ApiContext, call: Call) -> Response:
    if ctx.identify is None:
        raise ApiError(503, "this station runs without recognition (no face models loaded)")
    image = decode_image(call)
    return JSONResponse({"faces": ctx.identify(image), "width": int(image.shape[1]), "height": int(image.shape[0])})


def samples(ctx: ApiContext, call: Call) -> Response:
    if ctx.enrol is None:
        raise ApiError(503, "this station runs without recognition (no face models loaded)")
    name = " ".join(str(call.path["name"]).split())
    if not name or len(name) > 200 or not name.isprintable():
        raise ApiError(400, "the person's name must be printable text, at most 200 characters")
    image = decode_image(call)
    try:
        result = ctx.enrol(name, image, f"api:{call.caller.name}")
    except ValueError as exc:  # enrol's refusals: no face, too small, blurred, turned away
        return JSONResponse({"person": name, "enrolled": False, "error": str(exc)}, status_code=422)
    return JSONResponse({"person": name, "enrolled": True, **result}, status_code=201)


# ------------------------------------------------------------------ plumbing


def _audit(ctx: ApiContext, call: Call, request: Request, status: int) -> None:
    details: dict[str, Any] = {"method": request.method, "path": request.url.path, "status": status}
    if call.query:
        details["query"] = dict(call.query)
    try:
        ctx.tokens.record_call(call.caller.name, details)
    except GalleryError as exc:
        log.warning("API call by %s not audited: %s", call.caller.name, exc)


async def _authorise(ctx: ApiContext, request: Request) -> Caller | JSONResponse:
    verdict = ctx.auth.check(request.headers.get("authorization"))  # a dict lookup (a re-read once a second)
    if isinstance(verdict, Caller):
        return verdict
    response = error(401, verdict)
    response.headers["WWW-Authenticate"] = 'Bearer realm="FaceStation"'
    return response


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_IMAGE_BYTES:
        raise ApiError(413, f"the body is over {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_IMAGE_BYTES:
            raise ApiError(413, f"the body is over {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
        chunks.append(chunk)
    return b"".join(chunks)


def route(ctx: ApiContext, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """``handler`` behind the token check, its errors as JSON, and the audit."""

    async def endpoint(request: Request) -> Response:
        who = await _authorise(ctx, request)
        if isinstance(who, JSONResponse):
            return who
        if not await ctx.throttle.admit():
            return error(503, "the station is busy: too many API requests are waiting; try again shortly")
        call = Call(who, dict(request.path_params), dict(request.query_params), b"", "")
        try:
            if request.method == "POST":
                kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
                call = Call(who, call.path, call.query, await _body(request), kind)
            response = await run_in_threadpool(handler, ctx, call)
        except ApiError as exc:
            response = error(exc.status, str(exc))
        except GalleryError as exc:
            response = error(404 if str(exc).startswith("no person") else 400, str(exc))
        except Exception:
            log.exception("API %s %s failed", request.method, request.url.path)
            response = error(500, "the station could not answer this request (see its log)")
        _audit(ctx, call, request, response.status_code)  # queued for the writer: no wait
        return response

    return endpoint


def _kinds(query: dict[str, str]) -> frozenset[EventKind] | None:
    raw = query.get("kinds", "")
    if not raw:
        return None
    names = [k.strip() for k in raw.split(",") if k.strip()]
    known = {k.value for k in EventKind}
    bad = [n for n in names if n not in known]
    if bad:
        raise ApiError(400, f"unknown event kind {bad[0]!r} (kinds are {', '.join(sorted(known))})")
    return frozenset(EventKind(n) for n in names)


def events_route(ctx: ApiContext) -> Callable[[Request], Awaitable[Response]]:
    """``GET /api/events``: server-sent events of the event model, optionally ``?kinds=a,b``."""

    async def endpoint(request: Request) -> Response:
        who = await _authorise(ctx, request)
        if isinstance(who, JSONResponse):
            return who
        call = Call(who, {}, dict(request.query_params), b"", "")
        try:
            kinds = _kinds(call.query)
        except ApiError as exc:
            _audit(ctx, call, request, exc.status)
            return error(exc.status, str(exc))
        _audit(ctx, call, request, 200)
        sub = ctx.bus.subscribe(f"api-events-{who.name}", capacity=1000, kinds=kinds)
        return StreamingResponse(_stream(ctx, request, sub), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})  # fmt: skip

    return endpoint


async def _stream(ctx: ApiContext, request: Request, sub: Any) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    quiet_since = loop.time()
    try:
        yield b": FaceStation events\n\n"
        while not sub.closed:
            events = sub.drain()
            for event in events:
                data = json.dumps(event.to_json(), separators=(",", ":"))
                yield f"id: {event.seq}\nevent: {event.kind}\ndata: {data}\n\n".encode()
            if events:
                quiet_since = loop.time()
            elif loop.time() - quiet_since > SSE_KEEPALIVE_S:
                quiet_since = loop.time()
                yield b": keep-alive\n\n"
            if await request.is_disconnected():
                return
            await asyncio.sleep(SSE_POLL_S)
    finally:
        ctx.bus.unsubscribe(sub)


def build_app(ctx: ApiContext) -> Starlette:
    routes = [
        Route("/api/health", route(ctx, health), methods=["GET"]),
        Route("/api/openapi.json", route(ctx, openapi), methods=["GET"]),
        Route("/api/sightings", route(ctx, sightings), methods=["GET"]),
        Route("/api/sightings/{sighting:int}/crop", route(ctx, crop), methods=["GET"]),
        Route("/api/sightings/{sighting:int}/snapshot", route(ctx, snapshot), methods=["GET"]),
        Route("/api/persons", route(ctx, persons), methods=["GET"]),
        Route("/api/persons/{name:str}/samples", route(ctx, samples), methods=["POST"]),
        Route("/api/cameras", route(ctx, cameras), methods=["GET"]),
        Route("/api/identify", route(ctx, identify), methods=["POST"]),
        Route("/api/events", events_route(ctx), methods=["GET"]),
    ]
    app = Starlette(routes=routes)

    async def not_found(request: Request, exc: Exception) -> Response:
        return error(404, f"no such endpoint: {request.method} {request.url.path} (see /api/openapi.json)")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return error(405, f"{request.method} is not allowed on {request.url.path}")

    app.add_exception_handler(404, not_found)
    app.add_exception_handler(405, not_allowed)
    return app
