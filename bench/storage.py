"""Benchmark the gallery on a generated database: 10,000 persons, 50,000 samples, 1,000,000 sightings, plain
and encrypted (SQLCipher) side by side.

    .venv/bin/python bench/storage.py                    # the issue's sizes (several minutes on 2 cores)
    .venv/bin/python bench/storage.py --sightings 200000 # a quicker run

Generation writes a plain gallery straight through sqlite3 (executemany in one transaction, after
``Gallery.open`` made the schema); the encrypted one is a copy of it converted by ``main.py encrypt``'s code
(storage.convert), which is timed too. Every measured figure goes through the public ``Gallery`` API, the
two galleries measured one after the other in one run. The files live in a temporary folder unless --path
is given. Prints a markdown table (plain, encrypted, and the encrypted/plain ratio), then the same history
queries with indexes dropped (plain).
"""

from __future__ import annotations

import argparse
import os
import shutil
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
from storage.convert import encrypt  # noqa: E402
from storage.gallery import Gallery  # noqa: E402
from storage.gallerykey import KeySpec  # noqa: E402
from storage.records import NewSighting  # noqa: E402

FACE = ROOT.parent / "shared" / "faces" / "identities" / "Andre_Agassi" / "Andre_Agassi_0001.jpg"
MODEL = "facenet-512"
DIM = 512
DAY = 86400.0
CAMERAS = [f"cam-{i:02d}" for i in range(16)]
PLAIN = KeySpec(plain=True)


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
    Gallery.open(path, key=PLAIN).close()  # schema and indexes, exactly as the station makes them
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


def history_figures(
    g: Gallery, rng: np.random.Generator, repeat: int, now: float, n_persons: int = 10_000
) -> dict[str, tuple[float, float]]:
    persons = rng.integers(2, n_persons + 1, repeat * 4).tolist()
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


def insert_rate(g: Gallery, args: argparse.Namespace, crop: bytes, rng: np.random.Generator, now: float) -> float:
    """Sightings per second through the writer thread, with crops and embeddings, as a live station records them."""
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
    assert g.writer_errors() == [], g.writer_errors()
    return float(args.insert) / (time.perf_counter() - t)


def measure(path: Path, key: KeySpec, args: argparse.Namespace, crop: bytes, seed: int) -> dict[str, Any]:
    """Every figure of one gallery (the same random draws for plain and encrypted: ``seed``)."""
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    t = time.perf_counter()
    with Gallery.open(path, actor="bench", key=key) as g:
        out["open_ms"] = (time.perf_counter() - t) * 1000
        now = time.time()
        out["insert"] = insert_rate(g, args, crop, rng, now)
        out["history"] = history_figures(g, rng, args.repeat, now, args.persons)
        out["offset"] = timed(lambda: g.history(camera="cam-03", limit=100, offset=10_000), max(5, args.repeat // 10))
        out["embedded"] = g.read(lambda c: c.execute("SELECT count(*) FROM sighting_embeddings").fetchone()[0])
        t = time.perf_counter()
        assert len(g.search_by_face(rng.standard_normal(DIM, dtype=np.float32), MODEL, limit=20)) == 20
        out["search_cold"] = (time.perf_counter() - t) * 1000
        queries = iter(rng.standard_normal((args.repeat, DIM), dtype=np.float32))
        out["search"] = timed(lambda: g.search_by_face(next(queries), MODEL, limit=20), args.repeat)
        g.flush(60)
        out["total"] = g.count_sightings()
    out["size"] = path.stat().st_size
    return out


def _ms(pair: tuple[float, ...]) -> str:
    return f"{pair[0]:.2f} ms (p95 {pair[1]:.2f})"


def _ratio(plain: float, enc: float) -> str:
    return f"x{enc / plain:.2f}" if plain > 0 else "-"


def table(p: dict[str, Any], e: dict[str, Any], args: argparse.Namespace, crop: bytes, gen: dict[str, float]) -> None:
    hp, he = p["history"], e["history"]
    rows = [
        ("insert throughput (batched, via the writer thread)", ">= 5,000 sightings/s",
         f"{p['insert']:,.0f}/s", f"{e['insert']:,.0f}/s", _ratio(p["insert"], e["insert"]),
         f"{args.insert:,} sightings with a {len(crop):,}-byte crop and a 512-D embedding, "
         f"{args.insert_batch} per call"),
        ("history by person and time range, page of 100", "< 50 ms", _ms(hp["person"]), _ms(he["person"]),
         _ratio(hp["person"][0], he["person"][0]), "a random person, 30-day range; incl. the audit entry (queued)"),
        ("history by person, frequent visitor, page of 100", "< 50 ms", _ms(hp["frequent"]), _ms(he["frequent"]),
         _ratio(hp["frequent"][0], he["frequent"][0]),
         f"person with ~{int(0.05 * args.sightings):,} sightings, 30-day range, full page"),
        ("history by camera and time range, page of 100", "< 50 ms", _ms(hp["camera"]), _ms(he["camera"]),
         _ratio(hp["camera"][0], he["camera"][0]), "1 of 16 cameras, 7-day range, full page"),
        ("history, page at offset 10,000", "-", _ms(p["offset"]), _ms(e["offset"]),
         _ratio(p["offset"][0], e["offset"][0]), "OFFSET paging cost"),
        (f"search by face over {p['embedded']:,} sightings (512-D)", "< 200 ms", _ms(p["search"]), _ms(e["search"]),
         _ratio(p["search"][0], e["search"][0]),
         f"top 20, in-memory matrix; the first query loads it: {p['search_cold']:,.0f} / {e['search_cold']:,.0f} ms"),
        ("open the gallery (Gallery.open)", "-", f"{p['open_ms']:.1f} ms", f"{e['open_ms']:.1f} ms",
         _ratio(p["open_ms"], e["open_ms"]), "raw key from the key file: no key derivation per connection"),
        ("file size", "reported", f"{p['size'] / 2**30:.2f} GiB", f"{e['size'] / 2**30:.2f} GiB",
         _ratio(p["size"], e["size"]), f"{p['total']:,} sightings; SQLCipher keeps an IV and HMAC in each 4 KiB page"),
        ("encrypt in place (main.py encrypt)", "reported", "-", f"{gen['encrypt_s']:.0f} s", "-",
         "export, check (quick_check and row counts), fsync, rename, of the whole generated gallery"),
    ]  # fmt: skip
    print("| figure | target | plain | encrypted | encrypted/plain | notes |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


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
    ap.add_argument("--path", type=Path, help="a folder to build the galleries in (default: a temporary one)")
    ap.add_argument("--no-ablation", action="store_true", help="skip the runs with indexes dropped")
    args = ap.parse_args()
    if args.persons < 2:
        ap.error("--persons must be at least 2")

    rng = np.random.default_rng(2026)
    crop = crop_jpeg(args.crop_px)
    tmp = None
    if args.path is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench-storage-")
        folder = Path(tmp.name)
    else:
        folder = args.path
        if folder.exists():
            ap.error(f"{folder} exists")
    plain, encrypted = folder / "plain" / "gallery.db", folder / "encrypted" / "gallery.db"
    plain.parent.mkdir(parents=True)
    encrypted.parent.mkdir(parents=True)
    print(
        f"generating {args.persons:,} persons, {args.samples:,} samples, {args.sightings:,} sightings "
        f"({args.embedded:,} with embeddings, crop {len(crop):,} bytes) in {plain} ...",
        file=sys.stderr,
    )
    gen = generate(plain, args, crop, rng)
    print(f"generated in {gen['total_s']:.1f} s ({args.sightings / gen['sightings_s']:,.0f}/s bulk)", file=sys.stderr)
    shutil.copyfile(plain, encrypted)
    t = time.perf_counter()
    encrypt(encrypted)  # the key file is made beside it, as main.py encrypt does
    gen["encrypt_s"] = time.perf_counter() - t
    print(f"encrypted a copy in place in {gen['encrypt_s']:.1f} s", file=sys.stderr)
    t_sync = time.perf_counter()
    os.sync()  # let the generator's gigabytes reach the disk, so its writeback does not slow what is measured
    print(f"synced in {time.perf_counter() - t_sync:.1f} s", file=sys.stderr)
    p = measure(plain, PLAIN, args, crop, seed=7)
    e = measure(encrypted, KeySpec(), args, crop, seed=7)
    table(p, e, args, crop, gen)
    parts = sighting_bytes(plain)
    total = p["total"]
    print(
        f"\nplain file per sighting: {sum(parts.values()) / total:,.0f} bytes in the sighting tables and indexes "
        f"(row+indexes {parts['rows'] / total:,.0f} B, crop {parts['crops'] / total:,.0f} B, embeddings "
        f"{parts['embeddings'] / total:,.0f} B with {args.embedded / args.sightings:.0%} embedded)"
    )
    if not args.no_ablation:
        ablation(plain, rng, max(5, args.repeat // 10))
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
        with Gallery.open(path, actor="bench", key=PLAIN) as g:
            h = history_figures(g, rng, repeat, time.time())
        print(f"| {label} | {h['person'][0]:.1f} | {h['frequent'][0]:.1f} | {h['camera'][0]:.1f} |")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE INDEX sightings_person_time ON sightings (person_id, started)")
    conn.execute("CREATE INDEX sightings_camera_time ON sightings (camera, started)")
    conn.execute("CREATE INDEX sightings_time ON sightings (started)")
    conn.close()


if __name__ == "__main__":
    sys.exit(main())
