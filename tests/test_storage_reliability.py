"""The gallery never loses or corrupts what was committed: a writer killed mid-burst, unusable files, readers
during a flood of inserts, and physical erasure. Real files, real processes, real JPEG crops."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from storage.errors import GalleryError
from storage.gallery import Gallery
from storage.gallerykey import KeySpec
from storage.schema import SCHEMA_VERSION
from tests.conftest import FACES, ROOT, need, raw_connect
from tests.test_storage import MODEL, T0, face_jpegs, sighting, unit

BATCH = 200

CHILD = r"""
import sys, threading, time
sys.path.insert(0, sys.argv[2])
from storage.gallery import Gallery
from storage.records import NewSighting

crop = open(sys.argv[3], "rb").read()
g = Gallery.open(sys.argv[1], queue_capacity=2000)
produced = 0

def produce():
    global produced
    b = 0
    while True:
        now = time.time()
        g.record_sightings([
            NewSighting("cam", now, now + 1, None, 0.5, (0.0, 0.0, 1.0, 1.0), crop, None, "m", f"b{b}:{i}")
            for i in range(BATCH)
        ])
        b += 1
        produced = b

threading.Thread(target=produce, daemon=True).start()
while True:
    n = produced
    g.flush()
    print(n, flush=True)
""".replace("BATCH", str(BATCH))


def run_child_until(path: Path, crop_file: Path, reports: int) -> int:
    """Start a writer process, SIGKILL it once it has reported ``reports`` flushes; returns the number of
    batches it had confirmed committed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(ROOT), str(crop_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    confirmed = 0
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        seen = 0
        while seen < reports and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            confirmed = int(line)
            seen += 1
        assert seen == reports, f"writer child stopped early: {proc.stderr.read() if proc.stderr else ''}"
        time.sleep(0.3)  # let it write on, so the kill lands in the middle of later bursts
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    return confirmed


@pytest.mark.slow
def test_sigkill_mid_burst_keeps_every_committed_batch(tmp_path: Path) -> None:
    crop_file = need(FACES / "identities" / "Andre_Agassi" / "Andre_Agassi_0001.jpg")
    path = tmp_path / "gallery.db"
    beyond = 0
    for reports in (3, 12, 25):
        confirmed = run_child_until(path, crop_file, reports)
        conn = raw_connect(path)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            counts: dict[str, int] = {}
            for (track,) in conn.execute("SELECT track FROM sightings WHERE track LIKE 'b%'"):
                batch = track.split(":")[0]
                counts[batch] = counts.get(batch, 0) + 1
            crops = conn.execute("SELECT count(*) FROM sighting_crops").fetchone()[0]
            total = conn.execute("SELECT count(*) FROM sightings").fetchone()[0]
        finally:
            conn.close()
        # Every batch the child saw committed is there in full; no batch is there in part.
        assert all(counts.get(f"b{b}") == BATCH for b in range(confirmed))
        assert set(counts.values()) <= {BATCH}
        assert crops == total
        beyond += len(counts) - confirmed  # committed after the last confirmation: the kill hit a burst
        # The next writer run appends with the same track names; start each round from a clean count.
        with Gallery.open(path) as g:
            assert g.count_sightings() == total
        conn = raw_connect(path)
        conn.execute("DELETE FROM sighting_crops")
        conn.execute("DELETE FROM sightings")
        conn.commit()
        conn.close()
    assert beyond > 0


# ---------------------------------------------------------- unusable files


def _digest(path: Path) -> str:
    if path.is_dir():
        return "dir:" + ",".join(sorted(p.name for p in path.iterdir()))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _good_gallery(path: Path) -> None:
    with Gallery.open(path) as g:
        g.enrol_sample(
            "Ann", model=MODEL, embedding=unit(np.random.default_rng(0)), crop_jpeg=b"", source="", quality=1
        )
        g.record_sightings([sighting(start=T0 + i, crop=face_jpegs(1)[0]) for i in range(200)])


def make_corrupt(path: Path) -> None:
    _good_gallery(path)
    data = bytearray(path.read_bytes())
    data[100:4096] = os.urandom(3996)  # page 1 after the header: the schema's root page
    path.write_bytes(bytes(data))


def make_truncated(path: Path) -> None:
    _good_gallery(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def make_not_sqlite(path: Path) -> None:
    path.write_bytes(face_jpegs(1)[0])


def make_text(path: Path) -> None:
    path.write_text("name,score\nann,0.9\n" * 20)


def make_read_only(path: Path) -> None:
    _good_gallery(path)
    path.chmod(0o444)


def make_directory(path: Path) -> None:
    path.mkdir()
    (path / "keep.txt").write_text("not a gallery")


def make_newer(path: Path) -> None:
    _good_gallery(path)
    conn = raw_connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()


UNUSABLE: dict[str, tuple[Callable[[Path], None], str]] = {
    "corrupt": (make_corrupt, "corrupt|not a usable SQLite"),
    "truncated": (make_truncated, "corrupt|not a usable SQLite"),
    "not-sqlite": (make_not_sqlite, "not a SQLite database"),
    "text": (make_text, "not a SQLite database"),
    "read-only": (make_read_only, "read-only"),
    "directory": (make_directory, "is a directory"),
    "newer": (make_newer, "newer FaceStation"),
}


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], pattern: str) -> None:
    import re

    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("main.py: error: ") and re.search(pattern, lines[0]), lines[0]
    assert proc.stdout == ""


@pytest.mark.parametrize("kind", sorted(UNUSABLE))
def test_unusable_file_gives_one_clear_error_and_is_left_as_it_was(kind: str, tmp_path: Path) -> None:
    make, pattern = UNUSABLE[kind]
    path = tmp_path / "gallery.db"
    make(path)
    before = _digest(path)
    others = sorted(p.name for p in tmp_path.iterdir())
    # A corruption deeper than the schema shows on the first read.
    with pytest.raises(GalleryError, match=pattern) as err, Gallery.open(path) as g:
        g.history(limit=1000)
        g.search_by_face(unit(np.random.default_rng(0)), MODEL)
    assert "\n" not in str(err.value)
    assert_one_line_error(cli("history", "--gallery", str(path)), pattern)
    assert_one_line_error(cli("--gallery", str(path), "history", "--format", "csv"), pattern)
    assert _digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == others


def test_a_gallery_locked_by_another_writer_past_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "gallery.db"
    _good_gallery(path)
    holder = raw_connect(path)
    try:
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO settings (key, value) VALUES ('held', '1')")
        started = time.monotonic()
        with pytest.raises(GalleryError, match="locked by another process"):
            Gallery.open(path, busy_timeout_s=0.3)
        assert time.monotonic() - started >= 0.3
        proc = cli("history", "--gallery", str(path), "--busy-timeout", "0.5")
        assert_one_line_error(proc, r"locked by another process \(waited 0.5 s\)")
        holder.execute("COMMIT")
    finally:
        holder.close()
    with Gallery.open(path) as g:  # the other writer's work and ours are intact
        assert g.get_setting("held") == 1 and g.count_sightings() == 200
        assert g.integrity_check() == "ok"


def test_a_lock_that_ends_within_the_timeout_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "gallery.db"
    _good_gallery(path)
    holder = raw_connect(path)
    holder.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    timer.start()
    try:
        with Gallery.open(path, busy_timeout_s=5) as g:
            g.set_setting("after", True)
            assert g.get_setting("after") is True
    finally:
        timer.join()
        holder.close()


# ------------------------------------------------------------- concurrency


def test_readers_stay_unblocked_while_the_writer_inserts_thousands(tmp_path: Path) -> None:
    crops = face_jpegs(4)
    rng = np.random.default_rng(5)
    with Gallery.open(tmp_path / "gallery.db") as g:
        g.enrol_sample("Ann", model=MODEL, embedding=unit(rng), crop_jpeg=crops[0], source="", quality=1)
        ann = g.person("Ann").id
        total = 6000
        done = threading.Event()
        latencies: list[list[float]] = [[], [], []]
        counts_seen: list[int] = []

        def reader(k: int) -> None:
            deadline = time.monotonic() + 60
            while not done.is_set() and time.monotonic() < deadline:
                t = time.perf_counter()
                if k == 0:
                    page = g.history(person="Ann", limit=100, audit=False)
                    counts_seen.append(len(page))
                elif k == 1:
                    g.history(camera="yard", since=T0, limit=100, audit=False)
                else:
                    counts_seen.append(g.count_sightings())
                latencies[k].append(time.perf_counter() - t)
                time.sleep(0.01)  # a GUI repaints at display rate, it does not spin

        threads = [threading.Thread(target=reader, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        started = time.monotonic()
        for b in range(total // 50):
            g.record_sightings(
                [
                    sighting(
                        camera=("door", "yard")[i % 2],
                        start=T0 + b * 50 + i,
                        person_id=ann if i % 3 == 0 else None,
                        crop=crops[i % 4],
                        embedding=unit(rng),
                    )
                    for i in range(50)
                ]
            )
            time.sleep(0.002)
        assert g.flush(60)
        writing = time.monotonic() - started
        done.set()
        for t in threads:
            t.join(10)
        assert g.count_sightings() == total and g.writer_errors() == []
    all_lat = sorted(x for lat in latencies for x in lat)
    assert all(len(lat) >= 10 for lat in latencies), [len(lat) for lat in latencies]
    # Readers saw the table grow while the writer worked: they ran during the inserts, not after them.
    growth = sorted(set(c for c in counts_seen if c > 100))
    assert len(growth) >= 5, (growth[:10], writing)
    p95 = all_lat[int(0.95 * (len(all_lat) - 1))]
    assert p95 < 0.1 and all_lat[-1] < 1.0, (p95, all_lat[-1])


# ---------------------------------------------------------------- erasure


# These read the file's own bytes for what secure_delete must have zeroed, so the gallery is a plain one:
# in an encrypted gallery no crop shows in the bytes at all (tests/test_gallery_cipher.py checks that).
PLAIN = KeySpec(plain=True)


def _raw(path: Path) -> bytes:
    data = path.read_bytes()
    wal = path.with_name(path.name + "-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def _distinctive(secret: bytes, others: bytes, size: int = 48) -> list[bytes]:
    """Slices of ``secret`` that appear nowhere in ``others`` (JPEG headers and tables are shared)."""
    return [secret[i : i + size] for i in range(0, len(secret) - size, 97) if secret[i : i + size] not in others]


def test_delete_person_with_vacuum_leaves_no_byte_of_their_crops(tmp_path: Path) -> None:
    crops = face_jpegs(4)
    erin_sample, erin_seen, keep_sample, unknown = crops
    rng = np.random.default_rng(9)
    path = tmp_path / "gallery.db"
    with Gallery.open(path, key=PLAIN) as g:
        g.enrol_sample("Erin", model=MODEL, embedding=unit(rng), crop_jpeg=erin_sample, source="", quality=1)
        g.enrol_sample("Keep", model=MODEL, embedding=unit(rng), crop_jpeg=keep_sample, source="", quality=1)
        erin, keep = g.person("Erin").id, g.person("Keep").id
        g.record_sightings(
            [sighting(start=T0 + i, person_id=erin, crop=erin_seen, embedding=unit(rng)) for i in range(5)]
            + [sighting(start=T0 + 10 + i, person_id=keep, crop=keep_sample) for i in range(5)]
            + [sighting(start=T0 + 20, crop=unknown)]
        )
        g.flush()
        kept = keep_sample + unknown
        raw = _raw(path)
        # Crops span overflow pages (each starts with a 4-byte link), so a few slices straddle a page
        # boundary: check the ones the raw bytes show while they are there, and most of them must show.
        candidates = _distinctive(erin_sample, kept) + _distinctive(erin_seen, kept)
        secrets = [s for s in candidates if s in raw]
        assert len(secrets) > 100 and len(secrets) >= 0.8 * len(candidates)

        g.delete_person("Erin", vacuum=True)
        raw = _raw(path)
        assert [s for s in secrets if s in raw] == []
        assert {g.crop(x.id) for x in g.history(limit=100)} == {keep_sample, unknown}
        assert g.integrity_check() == "ok" and g.count_sightings() == 6
        assert "Erin" not in [p.name for p in g.persons()]
    raw = _raw(path)
    assert [s for s in secrets if s in raw] == []


def _blob(v: np.ndarray) -> bytes:
    return v.astype("<f4").tobytes()


def test_delete_person_without_vacuum_leaves_no_byte_of_their_faces(tmp_path: Path) -> None:
    """Crops and embeddings of samples, negatives and sightings are zeroed in the file and gone from the WAL
    without a VACUUM (secure_delete and a WAL truncation after the delete)."""
    crops = face_jpegs(5)
    erin_sample, erin_seen, not_erin, keep_sample, unknown = crops
    rng = np.random.default_rng(11)
    erin_emb, neg_emb, seen_embs = unit(rng), unit(rng), [unit(rng) for _ in range(3)]
    path = tmp_path / "gallery.db"
    with Gallery.open(path, key=PLAIN) as g:
        g.enrol_sample("Erin", model=MODEL, embedding=erin_emb, crop_jpeg=erin_sample, source="", quality=1)
        g.add_negative("Erin", model=MODEL, embedding=neg_emb, crop_jpeg=not_erin, source="marked wrong")
        g.enrol_sample("Keep", model=MODEL, embedding=unit(rng), crop_jpeg=keep_sample, source="", quality=1)
        erin, keep = g.person("Erin").id, g.person("Keep").id
        g.record_sightings(
            [sighting(start=T0 + i, person_id=erin, crop=erin_seen, embedding=e) for i, e in enumerate(seen_embs)]
            + [sighting(start=T0 + 10, person_id=keep, crop=keep_sample), sighting(start=T0 + 20, crop=unknown)]
        )
        g.flush()
        kept = keep_sample + unknown
        raw = _raw(path)
        secrets = [
            s
            for s in _distinctive(erin_sample, kept)
            + _distinctive(erin_seen, kept)
            + _distinctive(not_erin, kept)
            + [_blob(e)[i : i + 48] for e in (erin_emb, neg_emb, *seen_embs) for i in range(0, 2000, 200)]
            if s in raw
        ]
        assert len(secrets) > 150

        g.delete_person("Erin", erase_sightings=False)
        raw = _raw(path)
        assert [s for s in secrets if s in raw] == []
        left = g.history(limit=100)
        assert len(left) == 5 and {g.crop(x.id) for x in left} == {keep_sample, unknown, None}
        assert g.sighting_embedding(left[-1].id) is None, "an unlinked sighting keeps no embedding"
        assert g.integrity_check() == "ok"
    assert [s for s in secrets if s in _raw(path)] == []


def test_retention_leaves_no_byte_of_expired_crops_or_embeddings(tmp_path: Path) -> None:
    old_crop, new_crop = face_jpegs(2)
    rng = np.random.default_rng(12)
    old_embs, new_emb = [unit(rng) for _ in range(4)], unit(rng)
    now = T0 + 100 * 86400
    path = tmp_path / "gallery.db"
    with Gallery.open(path, key=PLAIN) as g:
        g.record_sightings(
            [sighting(start=now - 60 * 86400 + i, crop=old_crop, embedding=e) for i, e in enumerate(old_embs)]
            + [sighting(start=now - 3600, crop=new_crop, embedding=new_emb)]
        )
        g.flush()
        raw = _raw(path)
        secrets = [
            s
            for s in _distinctive(old_crop, new_crop)
            + [_blob(e)[i : i + 48] for e in old_embs for i in range(0, 2000, 200)]
            if s in raw
        ]
        assert len(secrets) > 60
        assert g.apply_retention(30, now=now).sightings_deleted == 4
        raw = _raw(path)
        assert [s for s in secrets if s in raw] == []
        assert _blob(new_emb)[:48] in raw and _distinctive(new_crop, old_crop)[0] in raw
        assert g.count_sightings() == 1 and g.stats()["sighting_crops"] == 1
