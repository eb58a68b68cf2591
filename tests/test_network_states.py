"""The network's states are StrEnums whose values are the CLI contract's strings (JSON output unchanged)."""

from __future__ import annotations

import json

from network.camera_state import CameraState, camera_stats, format_stats
from network.frames import CameraEvent, CameraPresence, DetectAt, OfflineReason
from network.pairing import CameraFaces


def test_camera_event_states_serialise_as_the_contract_strings() -> None:
    online = CameraEvent("gate", CameraPresence.ONLINE, "127.0.0.1:5000", 1.0)
    offline = CameraEvent("gate", CameraPresence.OFFLINE, "127.0.0.1:5000", 2.0, OfflineReason.SILENT)
    assert json.loads(json.dumps({"state": online.state, "reason": online.reason})) == {"state": "online", "reason": ""}
    assert json.loads(json.dumps({"state": offline.state, "reason": offline.reason})) == {
        "state": "offline",
        "reason": "silent",
    }
    assert str(offline.state) == "offline" and str(OfflineReason.BYE) == "bye"
    assert [str(s) for s in CameraPresence] == ["online", "offline"]


def test_stats_line_says_where_faces_are_found() -> None:
    cam = CameraState(1, "gate", ("127.0.0.1", 5000))
    assert json.loads(json.dumps(format_stats(camera_stats(cam, 0.0, 2.0))))["detect"] == "station"
    cam.faces = CameraFaces("gate")
    cam.faces.paired_now(1.0)
    stats = camera_stats(cam, 1.0, 2.0)
    assert stats.detect is DetectAt.EDGE and json.dumps(format_stats(stats)["detect"]) == '"edge"'
