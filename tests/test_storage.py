"""The gallery's operations through its API, on real SQLite files in tmp_path, with real JPEG crops from
../shared/faces. Embeddings are synthetic: storage stores what the recogniser hands it, it never embeds."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from storage.errors import GalleryError, QueueFullError
from storage.export import export_history
from storage.gallery import Gallery
from storage.records import NewSighting, WriterError
from storage.schema import MIGRATIONS, SCHEMA_VERSION
from tests.conftest import FACES, need, raw_connect

MODEL = "facenet-512"
DIM = 512
T0 = 1_790_000_000.0  # 2026-09-21, a fixed epoch so tests do not depend on the clock


def face_jpegs(count: int) -> list[bytes]:
    """Real JPEG files from the LFW identities set, one per person."""
    root = need(FACES / "identities")
    people = sorted(p for p in root.iterdir() if p.is_dir())[:count]
    return [sorted(p.glob("*.jpg"))[0].read_bytes() for p in people]


def unit(rng: np.random.Generator, dim: int = DIM) -> npt.NDArray[np.float32]:
    v = rng.standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def near(rng: np.random.Generator, centre: npt.NDArray[np.float32], noise: float = 0.02) -> npt.NDArray[np.float32]:
    v: npt.NDArray[np.float32] = centre + np.float32(noise) * rng.standard_normal(centre.shape[0], dtype=np.float32)
    out: npt.NDArray[np.float32] = (v / np.linalg.norm(v)).astype(np.float32)
    return out


def sighting(
    camera: str = "door",
    start: float = T0,
    person_id: int | None = None,
    score: float = 0.8,
    crop: bytes = b"",
    embedding: npt.NDArray[np.float32] | None = None,
    track: str = "t",
) -> NewSighting:
    return NewSighting(
        camera=camera,
        start=start,
        end=start + 2.0,
        person_id=person_id,
        score=score,
        box=(10.0, 20.0, 80.0, 90.0),
        crop_jpeg=crop,
        embedding=embedding,
        model=MODEL,
        track=track,
    )


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def actions(g: Gallery) -> list[str]:
    g.flush()
    return [a.action for a in reversed(g.audit_log(limit=1000))]


# ---------------------------------------------------------------- schema


def test_new_gallery_has_schema_version_wal_and_foreign_keys(gallery: Gallery) -> None:
    def probe(conn: sqlite3.Connection) -> tuple[int, str, int, int, list[int]]:
        return (
            conn.execute("PRAGMA user_version").fetchone()[0],
            conn.execute("PRAGMA journal_mode").fetchone()[0],
            conn.execute("PRAGMA foreign_keys").fetchone()[0],
            conn.execute("PRAGMA busy_timeout").fetchone()[0],
            [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")],
        )

    version, mode, fk, busy, applied = gallery.read(probe)
    assert version == SCHEMA_VERSION
    assert mode == "wal"
    assert fk == 1
    assert busy == 5000
    assert applied == [m.version for m in MIGRATIONS]


def test_older_schema_is_migrated_in_order_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for sql in MIGRATIONS[0].statements:  # a gallery written by the first release
        conn.execute(sql)
    conn.execute("INSERT INTO schema_migrations VALUES (1, 'tables', 0)")
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO persons (name, created) VALUES ('Ada', 0)")
    conn.close()
    with Gallery.open(path) as g:
        assert [p.name for p in g.persons()] == ["Ada"]
        indexes = g.read(lambda c: {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='index'")})
        assert {"sightings_person_time", "sightings_camera_time", "sightings_time"} <= indexes
        assert g.read(lambda c: c.execute("PRAGMA user_version").fetchone()[0]) == SCHEMA_VERSION


def test_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    Gallery.open(path).close()
    conn = raw_connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(GalleryError, match="newer FaceStation"):
        Gallery.open(path)
    assert path.read_bytes() == before


def test_a_sqlite_file_that_is_not_a_gallery_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE recipes (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(GalleryError, match="not a FaceStation gallery"):
        Gallery.open(path)


def test_open_without_create_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(GalleryError, match="no gallery at"):
        Gallery.open(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()


# --------------------------------------------------------------- persons


def test_enrol_list_rename_merge_watchlist_and_revision(gallery: Gallery, rng: np.random.Generator) -> None:
    crops = face_jpegs(3)
    a1, a2, b1 = unit(rng), unit(rng), unit(rng)
    revisions = [gallery.revision()]
    s1 = gallery.enrol_sample("Alice", model=MODEL, embedding=a1, crop_jpeg=crops[0], source="a1.jpg", quality=0.9)
    revisions.append(gallery.revision())
    s2 = gallery.enrol_sample("alice", model=MODEL, embedding=a2, crop_jpeg=crops[1], source="a2.jpg", quality=0.8)
    s3 = gallery.enrol_sample("Bob", model=MODEL, embedding=b1, crop_jpeg=crops[2], source="b1.jpg", quality=0.7)
    revisions.append(gallery.revision())
    assert [(p.name, p.samples) for p in gallery.persons()] == [("Alice", 2), ("Bob", 1)]
    assert gallery.sample_crop(s1) == crops[0]
    assert [s.source for s in gallery.samples("Alice")] == ["a1.jpg", "a2.jpg"]

    m = gallery.sample_matrix(MODEL)
    assert m.names == ("Alice", "Alice", "Bob")
    assert m.embeddings.dtype == np.float32 and m.embeddings.shape == (3, DIM)
    np.testing.assert_array_equal(m.embeddings, np.stack([a1, a2, b1]))
    assert m.person_ids.dtype == np.int64 and list(m.watchlist) == [False, False, False]
    assert m.revision == gallery.revision()

    gallery.set_watchlist("Bob", True)
    revisions.append(gallery.revision())
    assert list(gallery.sample_matrix(MODEL).watchlist) == [False, False, True]

    bob = gallery.person("Bob").id
    gallery.record_sightings([sighting(person_id=bob, track="seen-bob")])
    gallery.flush()
    with pytest.raises(GalleryError, match="already exists"):
        gallery.rename("Bob", "ALICE")
    gallery.rename("Bob", "Robert")
    revisions.append(gallery.revision())
    gallery.add_negative("Alice", model=MODEL, embedding=unit(rng), source="not alice")
    revisions.append(gallery.revision())
    neg = gallery.negative_matrix(MODEL)
    assert neg.names == ("Alice",) and neg.embeddings.shape == (1, DIM)

    survivor = gallery.merge("Robert", "Alice")
    revisions.append(gallery.revision())
    alice = gallery.person("Alice")
    assert survivor == alice.id and alice.samples == 3 and alice.negatives == 1 and alice.watchlist
    assert [p.name for p in gallery.persons()] == ["Alice"]
    assert gallery.history(person="Alice")[0].track == "seen-bob"
    assert {s3, s2, s1} == {s.id for s in gallery.samples("Alice")}
    assert revisions == sorted(revisions) and len(set(revisions)) == len(revisions)
    assert actions(gallery) == [
        "enrol",
        "enrol",
        "enrol",
        "watchlist",
        "rename",
        "negative",
        "merge",
        "history_search",
    ]
    entry = gallery.audit_log(action="merge")[0]
    assert entry.actor == "tester" and json.loads(entry.details)["from"] == "Robert"


def test_bad_enrolments_are_refused_with_a_message(gallery: Gallery, rng: np.random.Generator) -> None:
    jpeg = face_jpegs(1)[0]
    gallery.enrol_sample("Ada", model=MODEL, embedding=unit(rng), crop_jpeg=jpeg, source="x", quality=1.0)
    cases: list[tuple[dict[str, object], str]] = [
        ({"embedding": unit(rng, 128)}, "512 values; this one has 128"),
        ({"embedding": np.full(DIM, np.nan, np.float32)}, "NaN"),
        ({"embedding": np.zeros((2, DIM), np.float32)}, "1-D"),
        ({"embedding": np.zeros(DIM, np.float32)}, "all zeros"),
        ({"crop_jpeg": b"GIF89a"}, "not a JPEG"),
        ({"quality": float("inf")}, "not finite"),
    ]
    for override, message in cases:
        kwargs: dict[str, object] = {
            "model": MODEL,
            "embedding": unit(rng),
            "crop_jpeg": jpeg,
            "source": "x",
            "quality": 1.0,
            **override,
        }
        with pytest.raises(GalleryError, match=message):
            gallery.enrol_sample("Ada", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(GalleryError, match="empty"):
        gallery.enrol_sample(" ", model=MODEL, embedding=unit(rng), crop_jpeg=jpeg, source="x", quality=1.0)
    with pytest.raises(GalleryError, match="no person named 'Nobody'"):
        gallery.rename("Nobody", "Somebody")
    assert gallery.person("Ada").samples == 1
    assert gallery.models() == {MODEL: DIM}


def test_revision_is_seen_from_another_thread(gallery: Gallery, rng: np.random.Generator) -> None:
    seen: list[int] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set() and len(seen) < 100_000:
            rev = gallery.revision()
            if not seen or seen[-1] != rev:
                seen.append(rev)
            time.sleep(0.002)

    t = threading.Thread(target=poll)
    t.start()
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    for i in range(3):
        gallery.enrol_sample(f"P{i}", model=MODEL, embedding=unit(rng), crop_jpeg=b"", source="", quality=0)
        time.sleep(0.05)
    stop.set()
    t.join(5)
    assert seen[0] == 0 and seen[-1] == 3


def test_delete_person_erases_or_unlinks_sightings(gallery: Gallery, rng: np.random.Generator) -> None:
    crops = face_jpegs(2)
    for name in ("Erased", "Unlinked", "Kept"):
        gallery.enrol_sample(name, model=MODEL, embedding=unit(rng), crop_jpeg=crops[0], source="", quality=1)
    ids = {p.name: p.id for p in gallery.persons()}
    gallery.record_sightings(
        [sighting(person_id=ids[n], crop=crops[1], embedding=unit(rng), track=n) for n in ids for _ in range(3)]
    )
    gallery.flush()
    gallery.delete_person("Erased")
    gallery.delete_person("Unlinked", erase_sightings=False)
    assert [p.name for p in gallery.persons()] == ["Kept"]
    assert {s.track for s in gallery.history(limit=100)} == {"Unlinked", "Kept"}
    unlinked = gallery.history(unknown_only=True)
    assert len(unlinked) == 3 and all(s.person is None and not s.has_crop for s in unlinked)
    assert gallery.sample_matrix(MODEL).names == ("Kept",)
    assert gallery.stats()["samples"] == 1
    with pytest.raises(GalleryError, match="no person named"):
        gallery.delete_person("Erased")
    details = [json.loads(a.details) for a in gallery.audit_log(action="delete")]
    assert {d["person"]: d["sightings"] for d in details} == {"Erased": 3, "Unlinked": 3}


# ------------------------------------------------------------- sightings


def test_history_filters_and_pages_newest_first(gallery: Gallery, rng: np.random.Generator) -> None:
    for name in ("Ann", "Ben"):
        gallery.enrol_sample(name, model=MODEL, embedding=unit(rng), crop_jpeg=b"", source="", quality=1)
    ids = {p.name: p.id for p in gallery.persons()}
    people: list[int | None] = [ids["Ann"], ids["Ben"], None]
    items = [
        sighting(camera=("door", "yard")[i % 2], start=T0 + 60 * i, person_id=people[i % 3], score=(i % 10) / 10)
        for i in range(300)
    ]
    gallery.record_sightings(items)
    assert gallery.flush()

    def expect(pred: object, since: float = -1e18, until: float = 1e18) -> list[float]:
        chosen = [s for s in items if s.start >= since and s.start < until and pred(s)]  # type: ignore[operator]
        return sorted((s.start for s in chosen), reverse=True)

    t_from, t_to = T0 + 60 * 50, T0 + 60 * 250
    cases = [
        ({"person": "Ann"}, expect(lambda s: s.person_id == ids["Ann"])),
        ({"person": "ben", "since": t_from, "until": t_to}, expect(lambda s: s.person_id == ids["Ben"], t_from, t_to)),
        ({"camera": "yard", "since": t_from}, expect(lambda s: s.camera == "yard", t_from)),
        ({"unknown_only": True, "camera": "door"}, expect(lambda s: s.person_id is None and s.camera == "door")),
        ({"min_score": 0.75}, expect(lambda s: s.score >= 0.75)),
    ]
    for filters, starts in cases:
        got = gallery.history(limit=1000, **filters)  # type: ignore[arg-type]
        assert [s.start for s in got] == starts, filters
    assert {s.person for s in gallery.history(person=ids["Ann"], limit=5)} == {"Ann"}

    pages = [gallery.history(camera="door", limit=40, offset=off) for off in range(0, 200, 40)]
    flat = [s.id for page in pages for s in page]
    assert len(flat) == 150 and len(set(flat)) == 150
    assert [s.start for page in pages for s in page] == expect(lambda s: s.camera == "door")
    with pytest.raises(GalleryError, match="not both"):
        gallery.history(person="Ann", unknown_only=True)
    with pytest.raises(GalleryError, match="limit"):
        gallery.history(limit=0)
    searches = gallery.flush() and gallery.audit_log(action="history_search", limit=100)
    assert searches and len(searches) == len(cases) + 1 + len(pages)


def test_history_queries_walk_an_index_in_order(gallery: Gallery) -> None:
    """The page of 100 comes straight off (column, started) in reverse: no table scan, no sort."""

    def plan(sql: str, params: tuple[object, ...]) -> str:
        rows = gallery.read(lambda c: c.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall())
        return " | ".join(str(r[3]) for r in rows)

    base = "SELECT s.id FROM sightings s LEFT JOIN persons p ON p.id = s.person_id WHERE {} "
    order = "ORDER BY s.started DESC, s.id DESC LIMIT 100"
    by_person = plan(base.format("s.person_id = ? AND s.started >= ? AND s.started < ?") + order, (1, 0, 1))
    by_camera = plan(base.format("s.camera = ? AND s.started >= ? AND s.started < ?") + order, ("door", 0, 1))
    assert "sightings_person_time" in by_person and "TEMP B-TREE" not in by_person
    assert "sightings_camera_time" in by_camera and "TEMP B-TREE" not in by_camera


def test_invalid_sightings_are_refused_before_queueing(gallery: Gallery) -> None:
    good = sighting()
    bad = [
        (NewSighting(**{**good.__dict__, "camera": ""}), "camera is empty"),
        (NewSighting(**{**good.__dict__, "end": good.start - 1}), "ends before it starts"),
        (NewSighting(**{**good.__dict__, "box": (1.0, 2.0, 3.0)}), "box"),
        (NewSighting(**{**good.__dict__, "score": float("nan")}), "not finite"),
        (NewSighting(**{**good.__dict__, "crop_jpeg": b"PNG"}), "not a JPEG"),
    ]
    for item, message in bad:
        with pytest.raises(GalleryError, match=message):
            gallery.record_sightings([good, item])
    gallery.flush()
    assert gallery.count_sightings() == 0


def test_a_failing_sighting_is_reported_and_the_rest_of_its_batch_kept(gallery: Gallery) -> None:
    reported: list[WriterError] = []
    gallery.on_writer_error(reported.append)
    batch = [sighting(track=f"ok{i}") for i in range(10)]
    batch[4] = sighting(person_id=999, track="ghost")  # no such person: the foreign key refuses it
    gallery.record_sightings(batch)
    assert gallery.flush()
    assert gallery.count_sightings() == 9
    assert len(reported) == 1 and reported[0].count == 1 and "FOREIGN KEY" in reported[0].message
    assert gallery.writer_errors() == reported
    gallery.record_sightings([sighting(track="after")])
    assert gallery.flush() and gallery.count_sightings() == 10


def test_a_full_writer_queue_refuses_loudly_and_loses_nothing_accepted(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    with Gallery.open(path, busy_timeout_s=10, queue_capacity=300, queue_wait_s=0.3) as g:
        blocker = raw_connect(path)
        blocker.execute("BEGIN IMMEDIATE")  # the writer now waits on the file lock
        accepted = 0
        with pytest.raises(QueueFullError, match="100 sightings were not recorded"):
            for _ in range(10):
                g.record_sightings([sighting() for _ in range(100)])
                accepted += 100
        blocker.execute("ROLLBACK")
        blocker.close()
        assert g.flush(20)
        assert accepted >= 300 and g.count_sightings() == accepted
        assert g.writer_errors() == []


def test_search_by_face_finds_the_same_face_and_follows_changes(gallery: Gallery, rng: np.random.Generator) -> None:
    faces = [unit(rng) for _ in range(4)]
    gallery.enrol_sample("Cleo", model=MODEL, embedding=faces[0], crop_jpeg=b"", source="", quality=1)
    cleo = gallery.person("Cleo").id
    items = [
        sighting(start=T0 + i, person_id=cleo if f == 0 else None, embedding=near(rng, faces[f]), track=f"face{f}")
        for i in range(80)
        for f in [i % 4]
    ]
    items.append(sighting(track="no-embedding"))
    gallery.record_sightings(items)
    gallery.flush()
    hits = gallery.search_by_face(faces[2], MODEL, limit=20)
    assert len(hits) == 20 and {s.track for s, _ in hits} == {"face2"}
    assert [score for _, score in hits] == sorted((score for _, score in hits), reverse=True)
    assert hits[0][1] > 0.9
    # New sightings become searchable; a deleted person's sightings vanish.
    gallery.record_sightings([sighting(start=T0 + 500, embedding=near(rng, faces[3]), track="late")])
    gallery.flush()
    assert "late" in {s.track for s, _ in gallery.search_by_face(faces[3], MODEL, limit=25)}
    assert {s.track for s, _ in gallery.search_by_face(faces[0], MODEL, limit=20)} == {"face0"}
    gallery.delete_person("Cleo")
    assert "face0" not in {s.track for s, _ in gallery.search_by_face(faces[0], MODEL, limit=100)}
    assert gallery.search_by_face(faces[0], "other-model") == []
    with pytest.raises(GalleryError, match="512 values"):
        gallery.search_by_face(unit(rng, 128), MODEL)


def test_unknown_faces_cluster_and_a_cluster_becomes_a_person(gallery: Gallery, rng: np.random.Generator) -> None:
    crops = face_jpegs(3)
    centres = [unit(rng) for _ in range(3)]
    sizes = [6, 4, 3]
    items = [
        sighting(start=T0 + 10 * i + k, crop=crops[k], embedding=near(rng, centres[k], 0.015), track=f"c{k}")
        for k, n in enumerate(sizes)
        for i in range(n)
    ]
    items += [sighting(start=T0 + 1000 + i, embedding=unit(rng), track="single") for i in range(5)]
    gallery.record_sightings(items)
    gallery.flush()
    clusters = gallery.unknown_clusters(MODEL, threshold=0.7)
    assert [c.size for c in clusters] == sizes
    tracks = [{s.track for s in gallery.sightings_by_id(c.sighting_ids)} for c in clusters]
    assert tracks == [{"c0"}, {"c1"}, {"c2"}]
    assert clusters[0].representative in clusters[0].sighting_ids and clusters[0].cohesion > 0.85

    rev = gallery.revision()
    pid = gallery.promote_cluster(clusters[0], "Visitor 1", samples=4)
    person = gallery.person("Visitor 1")
    assert person.id == pid and person.samples == 4 and gallery.revision() > rev
    assert {s.id for s in gallery.history(person="Visitor 1")} == set(clusters[0].sighting_ids)
    sample = gallery.samples("Visitor 1")[0]
    assert gallery.sample_crop(sample.id) == crops[0] and sample.source.startswith("sighting ")
    assert [c.size for c in gallery.unknown_clusters(MODEL, threshold=0.7)] == sizes[1:]
    with pytest.raises(GalleryError, match="no longer unknown"):
        gallery.promote_cluster(clusters[0].sighting_ids, "Visitor 2")
    with pytest.raises(GalleryError, match="already exists"):
        gallery.promote_cluster(clusters[1], "visitor 1")
    assert "promote" in actions(gallery)


def test_retention_drops_old_sightings_and_keeps_watchlist_hits_on_request(
    gallery: Gallery, rng: np.random.Generator
) -> None:
    jpeg = face_jpegs(1)[0]
    for name in ("Watched", "Plain"):
        gallery.enrol_sample(name, model=MODEL, embedding=unit(rng), crop_jpeg=jpeg, source="", quality=1)
    gallery.set_watchlist("Watched", True)
    ids = {p.name: p.id for p in gallery.persons()}
    now = T0 + 100 * 86400
    items = [
        sighting(start=now - days * 86400, person_id=pid, crop=jpeg, track=f"{who}-{days}")
        for days in (1, 40, 90)
        for who, pid in (("w", ids["Watched"]), ("p", ids["Plain"]), ("u", None))
    ]
    gallery.record_sightings(items)
    gallery.flush()
    result = gallery.apply_retention(30, keep_watchlist=True, now=now)
    assert result.sightings_deleted == 4 and result.watchlist_kept == 2
    left = {s.track: s for s in gallery.history(limit=100)}
    assert set(left) == {"w-1", "p-1", "u-1", "w-40", "w-90"}
    assert gallery.crop(left["w-90"].id) == jpeg
    assert gallery.apply_retention(30, keep_watchlist=False, now=now).sightings_deleted == 2
    assert gallery.stats()["samples"] == 2  # enrolments are kept
    assert gallery.stats()["sighting_crops"] == 3


def test_export_zip_holds_the_range_as_csv_or_json_with_the_crops(
    gallery: Gallery, rng: np.random.Generator, tmp_path: Path
) -> None:
    crops = face_jpegs(4)
    gallery.enrol_sample("Dee", model=MODEL, embedding=unit(rng), crop_jpeg=b"", source="", quality=1)
    dee = gallery.person("Dee").id
    gallery.record_sightings(
        [sighting(start=T0 + 3600 * i, person_id=dee if i % 2 else None, crop=crops[i % 4]) for i in range(10)]
    )
    gallery.flush()
    since, until = T0 + 3600 * 2, T0 + 3600 * 7
    summary = export_history(gallery, tmp_path / "out.zip", fmt="csv", since=since, until=until)
    assert (summary.sightings, summary.crops) == (5, 5)
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        lines = zf.read("history.csv").decode().splitlines()
        assert lines[0].startswith("id,camera,start,end,person")
        rows = [dict(zip(lines[0].split(","), line.split(","), strict=True)) for line in lines[1:]]
        assert [r["person"] for r in rows] == ["", "Dee", "", "Dee", ""]
        for r in rows:
            sid = int(r["id"])
            assert zf.read(r["crop"]) == gallery.crop(sid)
    export_history(gallery, tmp_path / "out2.zip", fmt="json", person="Dee", crops=False)
    with zipfile.ZipFile(tmp_path / "out2.zip") as zf:
        doc = json.loads(zf.read("history.json"))
        assert len(doc["sightings"]) == 5 and doc["filters"] == {"person": "Dee"}
        assert all(s["person"] == "Dee" and s["crop"] == "" for s in doc["sightings"])
        assert [n for n in zf.namelist() if n.startswith("crops/")] == []
    with pytest.raises(GalleryError, match="exists"):
        export_history(gallery, tmp_path / "out.zip")
    assert actions(gallery).count("export") == 2


def test_backup_while_the_writer_runs(gallery: Gallery, tmp_path: Path) -> None:
    jpeg = face_jpegs(1)[0]
    gallery.record_sightings([sighting(crop=jpeg, track="before") for _ in range(500)])
    gallery.flush()
    stop = threading.Event()

    def keep_writing() -> None:
        for i in range(200):
            if stop.is_set():
                return
            gallery.record_sightings([sighting(crop=jpeg, track=f"during{i}") for _ in range(20)])
            time.sleep(0.005)

    t = threading.Thread(target=keep_writing)
    t.start()
    try:
        dest = gallery.backup(tmp_path / "backup.db", pages=16)
    finally:
        stop.set()
        t.join(10)
    with Gallery.open(dest) as copy:
        assert copy.integrity_check() == "ok"
        assert copy.count_sightings() >= 500
        assert copy.history(limit=1, since=0)[0].has_crop
    with pytest.raises(GalleryError, match="exists"):
        gallery.backup(dest)


def test_settings_and_cameras(gallery: Gallery) -> None:
    assert gallery.get_setting("threshold", 0.5) == 0.5
    gallery.set_setting("threshold", 0.62)
    gallery.set_setting("grid", {"columns": 4, "cameras": ["door"]})
    gallery.set_setting("threshold", 0.64)
    assert gallery.get_setting("threshold") == 0.64
    assert gallery.get_setting("grid") == {"columns": 4, "cameras": ["door"]}
    with pytest.raises(GalleryError, match="not JSON"):
        gallery.set_setting("bad", object())
    gallery.note_camera("door", "10.0.0.7:47810")
    gallery.note_camera("door", "10.0.0.8:47810")
    gallery.flush()
    (cam,) = gallery.cameras()
    assert cam.address == "10.0.0.8:47810" and cam.first_seen <= cam.last_seen
