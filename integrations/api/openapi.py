"""The OpenAPI 3.1 document of the local HTTP API, served at ``/api/openapi.json``."""

from __future__ import annotations

from typing import Any

from station.events import EventKind

VERSION = "0.1.0"


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


ERRORS = {
    "400": _error("Bad input (a filter, malformed JSON)"),
    "401": _error("Missing, unknown, revoked or another station's token"),
}
IMAGE_BODY = {
    "required": True,
    "description": 'A photo (at most 10 MB): the raw bytes with its image type, or JSON {"image": base64}.',
    "content": {
        "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        "image/png": {"schema": {"type": "string", "format": "binary"}},
        "application/json": {
            "schema": {"type": "object", "required": ["image"], "properties": {"image": {"type": "string"}}}
        },
    },
}
IMAGE_ERRORS = {
    **ERRORS,
    "413": _error("The image is over 10 MB"),
    "415": _error("Not an image type, nor JSON"),
    "422": _error("The image does not decode"),
    "503": _error("The station runs without recognition"),
}


def _query(name: str, description: str, kind: str = "string", **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": kind, **more},
    }


def _ok(description: str, schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema}}}


SIGHTING = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "camera": {"type": "string"},
        "start": {"type": "string", "format": "date-time"},
        "end": {"type": "string", "format": "date-time"},
        "person": {"type": ["string", "null"]},
        "person_id": {"type": ["integer", "null"]},
        "score": {"type": ["number", "null"], "description": "null: compared with no one"},
        "track": {"type": "string"},
        "crop": {"type": ["string", "null"], "description": "the API path of its face crop"},
        "snapshot": {"type": ["string", "null"], "description": "the API path of its evidence snapshot"},
    },
}
FACE = {
    "type": "object",
    "properties": {
        "box": {"type": "array", "items": {"type": "number"}, "description": "x, y, w, h in pixels"},
        "person": {"type": ["string", "null"]},
        "score": {"type": ["number", "null"]},
    },
}
SIGHTING_ID = {"name": "sighting", "in": "path", "required": True, "schema": {"type": "integer"}}
JPEG = {"type": "string", "format": "binary"}


def paths() -> dict[str, Any]:
    history = [
        _query("person", "only this person (by name)"),
        _query("camera", "only this camera"),
        _query("since", "sightings starting at or after this ISO 8601 time (UTC unless an offset is given)"),
        _query("until", "sightings starting before this time"),
        _query("unknown", "only unknown faces", "boolean"),
        _query("min_score", "only sightings scoring at least this", "number"),
        _query("limit", "at most this many (default 100, at most 1000)", "integer"),
        _query("offset", "skip this many of the newest first", "integer"),
    ]
    return {
        "/api/health": {
            "get": {"summary": "Is the station up", "responses": {"200": _ok("Up", {"type": "object"}), **ERRORS}}
        },
        "/api/sightings": {
            "get": {
                "summary": "Sightings, newest first, with the filters of `main.py history`",
                "parameters": history,
                "responses": {
                    "200": _ok(
                        "A page", {"type": "object", "properties": {"sightings": {"type": "array", "items": SIGHTING}}}
                    ),
                    **ERRORS,
                },
            }
        },
        "/api/sightings/{sighting}/crop": {
            "get": {
                "summary": "A sighting's best face crop",
                "parameters": [SIGHTING_ID],
                "responses": {"200": _ok("JPEG", JPEG, "image/jpeg"), "404": _error("No such crop"), **ERRORS},
            }
        },
        "/api/sightings/{sighting}/snapshot": {
            "get": {
                "summary": "A sighting's evidence snapshot (the whole frame; the face's box in X-FaceStation-Box)",
                "parameters": [SIGHTING_ID],
                "responses": {"200": _ok("JPEG", JPEG, "image/jpeg"), "404": _error("No such snapshot"), **ERRORS},
            }
        },
        "/api/persons": {
            "get": {"summary": "Enrolled people", "responses": {"200": _ok("People", {"type": "object"}), **ERRORS}}
        },
        "/api/persons/{name}/samples": {
            "post": {
                "summary": "Enrol a photo's largest face as a sample of this person (created if new), as `enrol` does",
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                "requestBody": IMAGE_BODY,
                "responses": {
                    "201": _ok("Enrolled", {"type": "object"}),
                    **IMAGE_ERRORS,
                    "422": _error(
                        "Refused with enrol's reason (no face, too small, blurred, turned away), or does not decode"
                    ),
                },
            }
        },
        "/api/cameras": {
            "get": {
                "summary": "Cameras seen, with whether each is online now",
                "responses": {"200": _ok("Cameras", {"type": "object"}), **ERRORS},
            }
        },
        "/api/identify": {
            "post": {
                "summary": "Who is in a photo, as `main.py identify` prints it",
                "requestBody": IMAGE_BODY,
                "responses": {
                    "200": _ok("Faces", {"type": "object", "properties": {"faces": {"type": "array", "items": FACE}}}),
                    **IMAGE_ERRORS,
                },
            }
        },
        "/api/events": {
            "get": {
                "summary": "Server-sent events: every event of the station as it happens (`event:` is its kind)",
                "parameters": [
                    _query("kinds", "only these kinds, comma-separated: " + ", ".join(k.value for k in EventKind))
                ],
                "responses": {"200": _ok("An event stream", {"type": "string"}, "text/event-stream"), **ERRORS},
            }
        },
        "/api/openapi.json": {
            "get": {"summary": "This document", "responses": {"200": _ok("OpenAPI", {"type": "object"}), **ERRORS}}
        },
    }


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "FaceStation local API",
            "version": VERSION,
            "description": "Off by default; every call needs a bearer token of this station, audited under its name.",
        },
        "paths": paths(),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
            },
        },
        "security": [{"bearer": []}],
    }
