"""A full disk, made on demand with SQLite's page limit (``Gallery.set_size_limit``, PRAGMA max_page_count):
sightings are kept without their snapshots (then crops) rather than lost, every loss is counted, the
free-space watch warns at its margin, raises an alarm, and lets snapshots back when room returns."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import cv2
import numpy as np

from station.storage_watch import StorageWatch
from storage.gallery import Gallery
from storage.records import NewSighting

RNG = np.random.default_rng(7)


def jpeg(side: int) -> bytes:
    """Noise, so the JPEG is about as large as it can be for its size (a snapshot that needs room)."""
    ok, buf = cv2.imencode(".jpg", RNG.integers(0, 255, (side, side, 3), dtype=np.uint8))
    assert ok
    return bytes(buf)


CROP, SNAPSHOT = jpeg(24), jpeg(160)


def sightings(n: int, first: int, *, snapshot: bool = True) -> list[NewSighting]:
    return [
        NewSighting(
            camera="lobby",
            start=1_700_000_000.0 + i,
            end=1_700_000_001.0 + i,
            person_id=None,
            score=0.3,
            box=(10.0, 10.0, 40.0, 40.0),
            crop_jpeg=CROP,
            embedding=RNG.standard_normal(512).astype(np.float32),
            model="facenet-512",
            track=f"lobby-{i}",
            snapshot_jpeg=SNAPSHOT if snapshot else b"",
            snapshot_box=(10.0, 10.0, 40.0, 40.0) if snapshot else None,
        )
        for i in range(first, first + n)
    ]


def used(gallery: Gallery) -> int:
    """The database's size in bytes as SQLite counts it (pages in the WAL too, unlike the file's size)."""

    def size(c: sqlite3.Connection) -> int:  # SQLCipher answers page_size as text
        return int(c.execute("PRAGMA page_count").fetchone()[0]) * int(c.execute("PRAGMA page_size").fetchone()[0])

    return gallery.read(size)


def snapshots_stored(gallery: Gallery) -> int:
    return int(gallery.read(lambda conn: conn.execute("SELECT count(*) FROM sighting_snapshots").fetchone()[0]))


def test_a_full_gallery_keeps_its_sightings_without_their_snapshots(gallery: Gallery) -> None:
    """59 of 107 sightings used to be lost on a full 6 MB disk, each one ERROR line and nothing else."""
    gallery.record_sightings(sightings(5, 0))
    assert gallery.flush(10)
    assert len(SNAPSHOT) > 20_000, "the snapshot must be large enough to fill the room"
    gallery.set_size_limit(used(gallery) + 200 * 1024)  # room for 20 rows (~120 kB), not 20 snapshots (600 kB)
    gallery.record_sightings(sightings(20, 5))
    assert gallery.flush(10)
    assert gallery.writer_errors() == [], "no sighting was lost"
    assert gallery.count_sightings() == 25
    snapshots, crops = gallery.dropped()
    assert snapshots > 0 and snapshots + snapshots_stored(gallery) == 25
    assert crops == 0, "crops are kept while snapshots make the room"
    assert len(gallery.history(camera="lobby", limit=30)) == 25
    assert gallery.integrity_check() == "ok"


def test_the_free_space_watch_warns_counts_losses_and_resumes_by_itself(tmp_path: Path) -> None:
    alarms: list[tuple[str, str]] = []
    with Gallery.open(tmp_path / "gallery.db") as gallery:
        watch = StorageWatch(gallery, lambda: 200_000, on_alarm=lambda s, t: alarms.append((s, t)), persist_s=0.0)
        status = watch.check()
        assert not status.low_space and status.room_bytes is not None and status.warning() == ""

        # Below the margin: one warning, one alarm, and new sightings come without their snapshots.
        gallery.set_size_limit(used(gallery) + 100_000)
        status = watch.check()
        assert status.low_space and status.room_bytes is not None and status.room_bytes < 200_000
        assert "nearly full" in status.warning() and status.as_json()["low_space"] is True
        assert [s for s, _ in alarms] == ["disk"] and "under the 0.2 MB margin" in alarms[0][1]
        assert not gallery.keeping_snapshots
        gallery.record_sightings(sightings(3, 0))
        assert gallery.flush(10)
        assert gallery.count_sightings() == 3 and snapshots_stored(gallery) == 0
        assert watch.check().low_space and len(alarms) == 1, "one alarm while it stays low"

        # No room at all: the losses are counted, shown, and raise an alarm (here at once: persist_s 0).
        gallery.set_size_limit(1)  # SQLite keeps the limit at the file's size: nothing more fits
        big = [s.__class__(**{**s.__dict__, "crop_jpeg": SNAPSHOT}) for s in sightings(40, 100, snapshot=False)]
        gallery.record_sightings(big)
        assert gallery.flush(10)
        status = watch.status()
        stored = gallery.count_sightings() - 3
        assert status.lost_sightings == 40 - stored > 0 and status.losing
        assert status.as_json()["lost_sightings"] == status.lost_sightings
        assert "write(s) lost" in status.warning() and "full" in status.last_error
        assert [s for s, _ in alarms] == ["disk", "writes"]

        # Room again: snapshots are kept again, with nothing for the operator to do.
        gallery.set_size_limit(None)
        status = watch.check()
        assert not status.low_space and gallery.keeping_snapshots
        gallery.record_sightings(sightings(2, 200))
        assert gallery.flush(10)
        assert snapshots_stored(gallery) == 2
        assert gallery.integrity_check() == "ok"
