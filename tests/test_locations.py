"""Where the station keeps its files (source vs frozen), the rotating logs, `main.py paths` and `main.py backup`."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from network.demo_senders import FROZEN_SENDER_COMMAND, SENDER, sender_command
from storage import locations
from storage.gallery import Gallery
from storage.gallerykey import KeySpec
from storage.logfiles import start_file_logging, stop_file_logging
from tests.conftest import ROOT, raw_connect


def main_py(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert needle in lines[0], lines[0]


# ------------------------------------------------------------- locations


def test_user_data_dir_follows_each_platforms_convention(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    linux = locations.user_data_dir("linux", {"HOME": home})
    assert linux == Path(home) / ".local" / "share" / "facestation"
    xdg = locations.user_data_dir("linux", {"HOME": home, "XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert xdg == tmp_path / "xdg" / "facestation"
    # The XDG spec: a relative $XDG_DATA_HOME is invalid and ignored.
    assert locations.user_data_dir("linux", {"HOME": home, "XDG_DATA_HOME": "rel/dir"}) == linux
    win = locations.user_data_dir("win32", {"HOME": home, "LOCALAPPDATA": r"C:\Users\op\AppData\Local"})
    assert win == Path(r"C:\Users\op\AppData\Local") / "FaceStation"
    mac = locations.user_data_dir("darwin", {"HOME": home})
    assert mac == Path(home) / "Library" / "Application Support" / "FaceStation"


def test_from_source_everything_stays_in_the_checkouts_data_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(locations.LOG_DIR_ENV, raising=False)
    assert not locations.is_frozen() and locations.in_checkout()
    assert locations.data_dir() == ROOT / "data"
    assert locations.default_gallery() == ROOT / "data" / "gallery.db"
    assert locations.default_key() == ROOT / "data" / "station.key"
    assert locations.log_dir() == ROOT / "data" / "logs"


def test_frozen_the_files_live_in_the_users_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # PyInstaller's bootloader sets sys.frozen; set it here the same way to see the frozen layout.
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(locations.LOG_DIR_ENV, raising=False)
    expected = locations.user_data_dir()
    assert locations.data_dir() == expected
    if sys.platform.startswith("linux"):
        assert expected == tmp_path / "xdg" / "facestation"
    assert locations.default_gallery() == expected / "gallery.db"
    assert locations.default_key() == expected / "station.key"
    assert locations.log_dir() == expected / "logs"
    shown = locations.describe()
    assert shown["Gallery"] == str(expected / "gallery.db") and shown["Frozen app"] == "yes"
    monkeypatch.setenv(locations.LOG_DIR_ENV, str(tmp_path / "elsewhere"))
    assert locations.log_dir() == tmp_path / "elsewhere"
    # The frozen app's demo cameras run the app's own binary through the hidden sender subcommand.
    assert sender_command() == [sys.executable, FROZEN_SENDER_COMMAND]


def test_paths_prints_the_gallery_key_logs_and_data_folder(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    result = main_py("paths", env={locations.LOG_DIR_ENV: str(logs)})
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown == {
        "gallery": str(ROOT / "data" / "gallery.db"),
        "key": str(ROOT / "data" / "station.key"),
        "logs": str(logs),
        "data_dir": str(ROOT / "data"),
        "frozen": False,
    }
    named = json.loads(main_py("paths", "--gallery", str(tmp_path / "g" / "x.db")).stdout)
    assert named["gallery"] == str(tmp_path / "g" / "x.db") and named["key"] == str(tmp_path / "g" / "station.key")
    keyed = json.loads(main_py("paths", "--key-file", str(tmp_path / "k.key")).stdout)
    assert keyed["key"] == str(tmp_path / "k.key")
    assert not (tmp_path / "g").exists(), "paths only reports; it creates nothing"


def test_the_sender_runs_through_the_hidden_subcommand() -> None:
    assert sender_command() == [sys.executable, str(SENDER)]
    result = main_py(FROZEN_SENDER_COMMAND, "--fps", "0", "--source", "demo", "--station", "127.0.0.1:9")
    assert result.returncode != 0 and "--fps" in result.stderr and "Traceback" not in result.stderr
    listed = [line.split()[0] for line in main_py("--help").stdout.splitlines() if line.startswith("    ")]
    assert "headless" in listed and FROZEN_SENDER_COMMAND not in listed, "the passthrough stays hidden"


# ------------------------------------------------------------------ logs


def test_log_files_rotate_and_stay_bounded(tmp_path: Path) -> None:
    handler = start_file_logging("unit", tmp_path / "logs", max_bytes=2_000, backups=2)
    assert handler is not None
    try:
        for i in range(200):
            logging.getLogger("facestation.test").info("line %d %s", i, "x" * 40)
    finally:
        stop_file_logging(handler)
    files = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert files == ["unit.log", "unit.log.1", "unit.log.2"]
    assert all((tmp_path / "logs" / f).stat().st_size <= 2_000 for f in files)
    assert "line 199 " in (tmp_path / "logs" / "unit.log").read_text()


def test_an_unwritable_log_folder_is_one_warning_not_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert start_file_logging("unit", blocker / "logs") is None
    assert "no log file" in capsys.readouterr().err


@pytest.mark.slow
def test_headless_logs_camera_state_changes_and_errors_to_its_file(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    env = {locations.LOG_DIR_ENV: str(logs), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    gallery = str(tmp_path / "data" / "gallery.db")
    args = ("headless", "--no-recognition", "--gallery", gallery, "--listen", "127.0.0.1:0")
    result = main_py(*args, "--demo", "1", "--duration", "4", env=env)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["state"] for e in events if e["event"] == "camera"] == ["online", "offline"]
    text = (logs / "headless.log").read_text()
    assert "camera demo-1 online at 127.0.0.1:" in text
    assert "camera demo-1 offline (bye)" in text
    # An error the operator must fix: one line on stderr, and the same line in the log file.
    bad = main_py(*args[:-2], "--listen", "nonsense", env=env)
    one_error_line(bad, "--listen")
    assert "ERROR error: --listen" in (logs / "headless.log").read_text()
    assert not (tmp_path / "xdg").exists(), "from source nothing goes to the user's data folder"


# ---------------------------------------------------------------- backup


def _gallery_with_one_person(path: Path) -> None:
    ok, jpeg = cv2.imencode(".jpg", np.full((32, 32, 3), 128, np.uint8))
    assert ok
    gallery = Gallery.open(path, actor="test")
    try:
        emb = np.random.default_rng(0).standard_normal(512).astype(np.float32)
        gallery.enrol_sample("Ada", model="facenet-512", embedding=emb, crop_jpeg=bytes(jpeg), source="t", quality=0.9)
    finally:
        gallery.close()


def test_backup_copies_the_gallery_and_refuses_to_overwrite(tmp_path: Path) -> None:
    source = tmp_path / "data" / "gallery.db"
    source.parent.mkdir()
    _gallery_with_one_person(source)
    dest = tmp_path / "copy.db"
    result = main_py("backup", str(dest), "--gallery", str(source))
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout)
    assert line["event"] == "backup" and line["file"] == str(dest) and line["bytes"] == dest.stat().st_size
    with raw_connect(dest, key=KeySpec(key_file=source.parent / "gallery.key")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert [r[0] for r in conn.execute("SELECT name FROM persons")] == ["Ada"]
    before = dest.read_bytes()
    one_error_line(main_py("backup", str(dest), "--gallery", str(source)), "exists")
    assert dest.read_bytes() == before
    again = main_py("backup", str(dest), "--overwrite", "--gallery", str(source))
    assert again.returncode == 0, again.stderr
    # A folder as DEST gets a dated copy inside it.
    folder = tmp_path / "backups"
    folder.mkdir()
    dated = json.loads(main_py("backup", str(folder), "--gallery", str(source)).stdout)
    assert Path(dated["file"]).parent == folder and Path(dated["file"]).name.startswith("gallery-")
    # Restoring is copying the file back while the station is stopped: the copy opens as a gallery, with the
    # gallery's key (a backup is encrypted like the gallery, and its key is not put beside it).
    restored = Gallery.open(Path(dated["file"]), actor="test", key=KeySpec(key_file=source.parent / "gallery.key"))
    try:
        assert [p.name for p in restored.persons()] == ["Ada"]
    finally:
        restored.close()


def test_backup_errors_are_one_clear_line(tmp_path: Path) -> None:
    source = tmp_path / "gallery.db"
    one_error_line(main_py("backup", str(tmp_path / "c.db"), "--gallery", str(source)), "no gallery at")
    assert not source.exists(), "a backup never creates the gallery it was asked to copy"
    _gallery_with_one_person(source)
    one_error_line(main_py("backup", str(tmp_path / "no" / "c.db"), "--gallery", str(source)), "does not exist")
    one_error_line(main_py("backup", str(source), "--gallery", str(source)), "the gallery itself")
