"""The faces it holds stay private: the gallery with its WAL and SHM, backups, exports and log files are
created owner-only (files 0600, folders the station creates 0700) under a permissive umask, and an existing
gallery readable by others is tightened when it is opened, with one INFO line saying so.

Everything runs in a child process with ``os.umask(0)``, so the umask of the other tests is untouched."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FACES, ROOT, need

CHILD = r"""
import json, logging, os, sqlite3, stat, sys, time
from pathlib import Path

sys.path.insert(0, sys.argv[1])
tmp = Path(sys.argv[2])
crop = Path(sys.argv[3]).read_bytes()
os.umask(0)
os.environ["XDG_DATA_HOME"] = str(tmp / "xdg")

from storage.connection import open_raw
from storage.export import export_history
from storage.gallery import Gallery
from storage.logfiles import start_file_logging, stop_file_logging
from storage.records import NewSighting

lines = []


class Keep(logging.Handler):
    def emit(self, record):
        lines.append((record.levelname, record.name, record.getMessage()))


logging.getLogger().addHandler(Keep())
logging.getLogger().setLevel(logging.INFO)


def mode(p):
    return oct(stat.S_IMODE(os.stat(p).st_mode))


def modes(*paths):
    return {str(Path(p).relative_to(tmp)): mode(p) for p in paths}


out = {}
made = tmp / "new" / "deep"
db = made / "gallery.db"
t = time.time()
g = Gallery.open(db)
g.record_sightings([NewSighting("door", t, t + 1, None, 0.9, (0.0, 0.0, 9.0, 9.0), crop, None, "m", "t1")])
assert g.flush()
out["new"] = modes(db, f"{db}-wal", f"{db}-shm", tmp / "new", made)
g.backup(tmp / "backup.db")
export_history(g, tmp / "history.csv", min_score=0.5)
export_history(g, tmp / "history.json", fmt="json")
export_history(g, tmp / "history.zip")
out["written"] = modes(tmp / "backup.db", tmp / "history.csv", tmp / "history.json", tmp / "history.zip")
out["new_lines"] = [m for _, name, m in lines if name.startswith("storage")]
g.close()

logs = tmp / "logs" / "station"
handler = start_file_logging("console", logs, max_bytes=2000, backups=2)
for i in range(200):
    logging.getLogger("station").info("camera door: Ann Lee seen (%d)", i)
stop_file_logging(handler)
out["logs"] = modes(tmp / "logs", logs, logs / "console.log", logs / "console.log.1", logs / "console.log.2")

for key, folder in (("own", tmp / "xdg" / "facestation"), ("named", tmp / "mine")):
    p = folder / "gallery.db"
    Gallery.open(p).close()
    os.chmod(folder, 0o755)
    os.chmod(p, 0o644)
    other = open_raw(p)  # an older station: its WAL and SHM take the 0644
    other.execute("INSERT INTO settings (key, value) VALUES ('x', '1')")
    before = modes(p, f"{p}-wal", f"{p}-shm", folder)
    del lines[:]
    g = Gallery.open(p)
    out[key] = {"before": before, "after": modes(p, f"{p}-wal", f"{p}-shm", folder), "lines": list(lines)}
    g.close()
    other.close()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def child(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("private")
    crop = need(FACES / "identities" / "Andre_Agassi" / "Andre_Agassi_0001.jpg")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT), str(tmp), str(crop)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout.splitlines()[-1])
    return result


def test_a_new_gallery_its_wal_and_shm_and_its_folders_are_owner_only(child: dict[str, object]) -> None:
    assert child["new"] == {
        "new/deep/gallery.db": "0o600",
        "new/deep/gallery.db-wal": "0o600",
        "new/deep/gallery.db-shm": "0o600",
        "new": "0o700",
        "new/deep": "0o700",
    }
    assert child["new_lines"] == [], "a new gallery has nothing to tighten"


def test_backups_and_exports_are_owner_only(child: dict[str, object]) -> None:
    assert child["written"] == {
        "backup.db": "0o600",
        "history.csv": "0o600",
        "history.json": "0o600",
        "history.zip": "0o600",
    }


def test_log_files_and_their_rotations_are_owner_only(child: dict[str, object]) -> None:
    assert child["logs"] == {
        "logs": "0o700",
        "logs/station": "0o700",
        "logs/station/console.log": "0o600",
        "logs/station/console.log.1": "0o600",
        "logs/station/console.log.2": "0o600",
    }


def test_an_existing_gallery_is_tightened_on_open_and_says_so(child: dict[str, object]) -> None:
    own = child["own"]
    assert isinstance(own, dict)
    assert own["before"] == {
        "xdg/facestation/gallery.db": "0o644",
        "xdg/facestation/gallery.db-wal": "0o644",
        "xdg/facestation/gallery.db-shm": "0o644",
        "xdg/facestation": "0o755",
    }
    assert set(own["after"].values()) == {"0o600", "0o700"} and own["after"]["xdg/facestation"] == "0o700"
    (line,) = [m for level, name, m in own["lines"] if name.startswith("storage")]
    assert own["lines"][0][0] == "INFO" and "owner-only" in line
    assert all(f"gallery.db{s}" in line for s in ("", "-wal", "-shm")) and line.rstrip().endswith("facestation")


def test_a_folder_the_operator_named_keeps_its_mode(child: dict[str, object]) -> None:
    named = child["named"]
    assert isinstance(named, dict)
    assert named["after"] == {
        "mine/gallery.db": "0o600",
        "mine/gallery.db-wal": "0o600",
        "mine/gallery.db-shm": "0o600",
        "mine": "0o755",
    }
    (line,) = [m for _, name, m in named["lines"] if name.startswith("storage")]
    assert "gallery.db-wal" in line and not line.rstrip().endswith("mine")


def _main_under_umask_0(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=lambda: os.umask(0),  # the child's umask only
    )


def test_the_station_creates_its_folders_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    """Under umask 0, into folders that do not exist yet: headless writes its key first, into the
    gallery's folder (a new gallery's own folders: the test above); every folder it made is 0700."""
    gallery = tmp_path / "site" / "data" / "gallery.db"
    done = _main_under_umask_0(
        "headless", "--gallery", str(gallery), "--listen", "127.0.0.1:0", "--no-recognition", "--duration", "0.5"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for folder in (tmp_path / "site", tmp_path / "site" / "data"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert stat.S_IMODE((gallery.parent / "station.key").stat().st_mode) == 0o600
