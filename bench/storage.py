"""Benchmark the gallery on a generated database: 10,000 persons, 50,000 samples, 1,000,000 sightings.

    .venv/bin/python bench/storage.py                    # the issue's sizes (about 2 minutes on 2 cores)
    .venv/bin/python bench/storage.py --sightings 200000 # a quicker run

Generation writes straight through sqlite3 (executemany in one transaction, after ``Gallery.open`` made the
schema); every measured figure goes through the public ``Gallery`` API. The file lives in a temporary folder
unless --path is given. Prints a markdown table, then the same history queries with indexes dropped.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage.codec import to_blob  # noqa: E402
from storage.gallery import Gallery  # noqa: E402
from storage.records import NewSighting  # noqa: E402

FACE = ROOT.parent / "shared" / "faces" / "identities" / "Andre_Agassi" / "Andre_Agassi_0001.jpg"
MODEL = "facenet-512"
DIM = 512
DAY = 86400.0
CAMERAS = [f"cam-{i:02d}" for i in range(16)]


def crop_jpeg(size: int) -> bytes:
    """A real face, cut and scaled to ``size`` px and encoded at q85, the size of a stored best crop."""
    img = cv2.imread(str(FACE)) if FACE.exists() else None
    if img is None:  # the shared data is missing: a synthetic picture keeps the bench runnable
        img = np.random.default_rng(0).integers(0, 255, (250, 250, 3), dtype=np.uint8)
    face = cv2.resize(img[60:190, 60:190], (size, size), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return bytes(buf.tobytes())


def generate(path: Path, args: argparse.Namespace, crop: bytes, rng: np.random.Generator) -> dict[str, float]:
    Gallery.open(path).close()  # schema and indexes, exactly as the station makes them
    conn = sqlite3.connect(path, isolation_level=None)
    # Generation only: no journal (each page is written once, not to the WAL and again at the checkpoint).
    # The measured figures below run with the station's own settings (WAL, synchronous NORMAL).
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -400000")
    t0 = time.perf_counter()
    conn.execute("BEGIN")
    now = time.time()
    conn.executemany(
        "INSERT INTO persons (id, name, watchlist, created) VALUES (?, ?, ?, ?)",
        ((i, f"person-{i:05d}", int(i % 10 == 0), now) for i in range(1, args.persons + 1)),
    )
    conn.execute("INSERT INTO models (name, dim) VALUES (?, ?)", (MODEL, DIM))
    chunk = 10_000
    for start in range(0, args.samples, chunk):
        n = min(chunk, args.samples - start)
        embs = rng.standard_normal((n, DIM), dtype=np.float32)
        conn.executemany(
            "INSERT INTO samples (person_id, model, embedding, crop, source, quality, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((1 + (start + i) % args.persons, MODEL, to_blob(embs[i]), crop, "bench", 0.9, now) for i in range(n)),
        )
    t_people = time.perf_counter() - t0

    # Sightings over 90 days, in time order like a live station writes them; 30% unknown, and person 1 is a
    # frequent visitor (5% of all sightings) so that one person's history is deep.
    t1 = time.perf_counter()
    first = now - 90 * DAY
    step = 90 * DAY / args.sightings
    every = max(1, args.sightings // max(1, args.embedded))
    chunk = 50_000
    for start in range(0, args.sightings, chunk):
        n = min(chunk, args.sightings - start)
        ids = np.arange(start + 1, start + n + 1)
        roll = rng.random(n)
        person = rng.integers(1, args.persons + 1, n)
        person[roll < 0.05] = 1
        known = roll < 0.70
        cams = rng.integers(0, len(CAMERAS), n)
        scores = rng.random(n)
        rows = [
            (
                int(ids[i]),
                CAMERAS[cams[i]],
                first + ids[i] * step,
                first + ids[i] * step + 3.0,
                int(person[i]) if known[i] else None,
                float(scores[i]),
                100.0,
                80.0,
                96.0,
                96.0,
                MODEL,
                f"t{ids[i]}",
            )
            for i in range(n)
        ]
        conn.executemany(
            "INSERT INTO sightings (id, camera, started, ended, person_id, score, box_x, box_y, box_w, box_h, "
            "model, track) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.executemany("INSERT INTO sighting_crops (sighting_id, jpeg) VALUES (?, ?)", ((int(i), crop) for i in ids))
        with_emb = ids[ids % every == 0]
        embs = rng.standard_normal((len(with_emb), DIM), dtype=np.float32)
        conn.executemany(
            "INSERT INTO sighting_embeddings (sighting_id, model, embedding) VALUES (?, ?, ?)",
            ((int(sid), MODEL, to_blob(embs[k])) for k, sid in enumerate(with_emb)),
        )
    conn.execute("COMMIT")
    t_sightings = time.perf_counter() - t1
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    return {"people_s": t_people, "sightings_s": t_sightings, "total_s": time.perf_counter() - t0}


def sighting_bytes(path: Path) -> dict[str, int]:
    """Bytes of pages held by the sighting rows and their indexes, their crops and their embeddings (dbstat)."""
    conn = sqlite3.connect(path)
    try:
        # Summed per page: the aggregate form of dbstat overflows past 2 GiB.
        sizes = dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
    finally:
        conn.close()
    rows = sum(v for k, v in sizes.items() if k == "sightings" or k.startswith("sightings_"))
    embeddings = sum(v for k, v in sizes.items() if k.startswith("sighting_embeddings"))
    return {"rows": rows, "crops": sizes.get("sighting_crops", 0), "embeddings": embeddings}


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Median and p95 in ms of ``repeat`` calls, and the last result."""
    times = []
    result = None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], result


def history_figures(g: Gallery, rng: np.random.Generator, repeat: int, now: float) -> dict[str, tuple[float, float]]:
    persons = rng.integers(2, 10_001, repeat * 4).tolist()
    it = iter(persons)
    out = {}
    week = 7 * DAY
    med, p95, _ = timed(lambda: g.history(person=next(it), since=now - 60 * DAY, until=now - 30 * DAY), repeat)
    out["person"] = (med, p95)
    med, p95, page = timed(lambda: g.history(person=1, since=now - 60 * DAY, until=now - 30 * DAY), repeat)
    assert len(page) == 100
    out["frequent"] = (med, p95)
    cams = iter(CAMERAS * repeat)
    med, p95, page = timed(
        lambda: g.history(camera=next(cams), since=now - 30 * DAY - week, until=now - 30 * DAY), repeat
    )
    assert len(page) == 100
    out["camera"] = (med, p95)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=10_000)
    ap.add_argument("--samples", type=int, default=50_000)
    ap.add_argument("--sightings", type=int, default=1_000_000)
    ap.add_argument("--embedded", type=int, default=100_000, help="sightings that carry a 512-D embedding")
    ap.add_argument("--crop-px", type=int, default=96, help="side of the stored crop (a real face, JPEG q85)")
    ap.add_argument("--insert", type=int, default=20_000, help="sightings inserted through the writer thread")
    ap.add_argument("--insert-batch", type=int, default=50, help="sightings per record_sightings call")
    ap.add_argument("--repeat", type=int, default=100, help="queries per history figure")
    ap.add_argument("--path", type=Path, help="where to build the gallery (default: a temporary folder)")
    ap.add_argument("--no-ablation", action="store_true", help="skip the runs with indexes dropped")
    args = ap.parse_args()
    if args.persons < 2:
        ap.error("--persons must be at least 2")

    rng = np.random.default_rng(2026)
    crop = crop_jpeg(args.crop_px)
    tmp = None
    if args.path is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench-storage-")
        path = Path(tmp.name) / "gallery.db"
    else:
        path = args.path
        if path.exists():
            ap.error(f"{path} exists")
    print(
        f"generating {args.persons:,} persons, {args.samples:,} samples, {args.sightings:,} sightings "
        f"({args.embedded:,} with embeddings, crop {len(crop):,} bytes) in {path} ...",
        file=sys.stderr,
    )
    gen = generate(path, args, crop, rng)
    t_sync = time.perf_counter()
    os.sync()  # let the generator's gigabytes reach the disk, so its writeback does not slow what is measured
    print(f"synced in {time.perf_counter() - t_sync:.1f} s", file=sys.stderr)
    gen_rate = args.sightings / gen["sightings_s"]
    size_before = path.stat().st_size
    print(f"generated in {gen['total_s']:.1f} s ({gen_rate:,.0f} sightings/s bulk)", file=sys.stderr)

    rows: list[tuple[str, str, str, str]] = []
    with Gallery.open(path, actor="bench") as g:
        now = time.time()
        # Insert throughput through the writer thread, with crops and embeddings, as a live station records them.
        embs = rng.standard_normal((args.insert, DIM), dtype=np.float32)
        items = [
            NewSighting(
                camera=CAMERAS[i % 16],
                start=now + i * 0.01,
                end=now + i * 0.01 + 3,
                person_id=(i % args.persons) + 1 if i % 3 else None,
                score=0.7,
                box=(1.0, 2.0, 96.0, 96.0),
                crop_jpeg=crop,
                embedding=embs[i],
                model=MODEL,
                track=f"live{i}",
            )
            for i in range(args.insert)
        ]
        t = time.perf_counter()
        for start in range(0, len(items), args.insert_batch):
            g.record_sightings(items[start : start + args.insert_batch])
        assert g.flush(600)
        insert_s = time.perf_counter() - t
        assert g.writer_errors() == [], g.writer_errors()
        rate = args.insert / insert_s
        rows.append(
            (
                "insert throughput (batched, via the writer thread)",
                ">= 5,000 sightings/s",
                f"{rate:,.0f} sightings/s",
                f"{args.insert:,} sightings with a {len(crop):,}-byte crop and a 512-D embedding, "
                f"{args.insert_batch} per call; bulk generation: {gen_rate:,.0f}/s",
            )
        )

        hist = history_figures(g, rng, args.repeat, now)
        rows.append(
            (
                "history by person and time range, page of 100",
                "< 50 ms",
                f"{hist['person'][0]:.2f} ms (p95 {hist['person'][1]:.2f})",
                "a random person, 30-day range; incl. the audit entry (queued)",
            )
        )
        rows.append(
            (
                "history by person, frequent visitor, page of 100",
                "< 50 ms",
                f"{hist['frequent'][0]:.2f} ms (p95 {hist['frequent'][1]:.2f})",
                f"person with ~{int(0.05 * args.sightings):,} sightings, 30-day range, full page",
            )
        )
        rows.append(
            (
                "history by camera and time range, page of 100",
                "< 50 ms",
                f"{hist['camera'][0]:.2f} ms (p95 {hist['camera'][1]:.2f})",
                "1 of 16 cameras, 7-day range, full page",
            )
        )
        med, p95, _ = timed(lambda: g.history(camera="cam-03", limit=100, offset=10_000), max(5, args.repeat // 10))
        rows.append(("history, page at offset 10,000", "-", f"{med:.1f} ms (p95 {p95:.1f})", "OFFSET paging cost"))

        n_emb = g.read(lambda c: c.execute("SELECT count(*) FROM sighting_embeddings").fetchone()[0])
        q = rng.standard_normal(DIM, dtype=np.float32)
        t = time.perf_counter()
        first_hits = g.search_by_face(q, MODEL, limit=20)
        cold = (time.perf_counter() - t) * 1000
        assert len(first_hits) == 20
        queries = iter(rng.standard_normal((args.repeat, DIM), dtype=np.float32))
        med, p95, _ = timed(lambda: g.search_by_face(next(queries), MODEL, limit=20), args.repeat)
        rows.append(
            (
                f"search by face over {n_emb:,} sightings (512-D)",
                "< 200 ms",
                f"{med:.1f} ms (p95 {p95:.1f})",
                f"top 20, in-memory matrix; the first query loads it: {cold:,.0f} ms",
            )
        )
        g.flush(60)
        total = g.count_sightings()
    size = path.stat().st_size
    parts = sighting_bytes(path)
    own = sum(parts.values())
    rows.append(
        (
            "file size per sighting",
            "reported",
            f"{own / total:,.0f} bytes",
            f"pages of the sighting tables and indexes / sightings (row+indexes {parts['rows'] / total:,.0f} B, "
            f"crop {parts['crops'] / total:,.0f} B for a {len(crop):,}-byte JPEG, embeddings "
            f"{parts['embeddings'] / total:,.0f} B with {args.embedded / args.sightings:.0%} embedded); "
            f"whole file {size / 2**30:.2f} GiB = {size / total:,.0f} B per sighting with the samples",
        )
    )
    _ = size_before

    print("| figure | target | measured | notes |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |")

    if not args.no_ablation:
        ablation(path, rng, max(5, args.repeat // 10))
    if tmp is not None:
        tmp.cleanup()
    return 0


def ablation(path: Path, rng: np.random.Generator, repeat: int) -> None:
    """The same history queries after dropping indexes, to show which ones matter."""
    print("\nhistory queries (median ms) with indexes dropped:\n")
    print("| indexes on sightings | by person + range | frequent visitor + range | by camera + range |")
    print("|---|---|---|---|")
    steps = [
        ("all: (person_id, started), (camera, started), (started)", []),
        ("without (person_id, started) and (camera, started)", ["sightings_person_time", "sightings_camera_time"]),
        ("none (only the rowid)", ["sightings_time"]),
    ]
    for label, drop in steps:
        conn = sqlite3.connect(path, isolation_level=None)
        for name in drop:
            conn.execute(f"DROP INDEX {name}")
        conn.close()
        with Gallery.open(path, actor="bench") as g:
            h = history_figures(g, rng, repeat, time.time())
        print(f"| {label} | {h['person'][0]:.1f} | {h['frequent'][0]:.1f} | {h['camera'][0]:.1f} |")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE INDEX sightings_person_time ON sightings (person_id, started)")
    conn.execute("CREATE INDEX sightings_camera_time ON sightings (camera, started)")
    conn.execute("CREATE INDEX sightings_time ON sightings (started)")
    conn.close()


if __name__ == "__main__":
    sys.exit(main())
