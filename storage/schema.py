"""The gallery's schema as ordered migrations, and the code that brings a file up to date.

``PRAGMA user_version`` holds the schema version; ``schema_migrations`` records when each step ran.
A file whose version is newer than ``SCHEMA_VERSION`` was written by a newer FaceStation and is refused.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

import sqlite_utils

from storage.errors import GalleryError


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "tables",
        (
            """CREATE TABLE schema_migrations (
                version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied REAL NOT NULL)""",
            """CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)""",
            "INSERT INTO meta (key, value) VALUES ('revision', 0), ('sightings_epoch', 0)",
            """CREATE TABLE persons (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                notes TEXT NOT NULL DEFAULT '',
                watchlist INTEGER NOT NULL DEFAULT 0 CHECK (watchlist IN (0, 1)),
                created REAL NOT NULL)""",
            "CREATE UNIQUE INDEX persons_name ON persons (name COLLATE NOCASE)",
            """CREATE TABLE models (name TEXT PRIMARY KEY, dim INTEGER NOT NULL CHECK (dim > 0))""",
            """CREATE TABLE samples (
                id INTEGER PRIMARY KEY,
                person_id INTEGER NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
                model TEXT NOT NULL REFERENCES models (name),
                embedding BLOB NOT NULL,
                crop BLOB,
                source TEXT NOT NULL,
                quality REAL NOT NULL,
                created REAL NOT NULL)""",
            "CREATE INDEX samples_person ON samples (person_id)",
            "CREATE INDEX samples_model ON samples (model, id)",
            """CREATE TABLE negatives (
                id INTEGER PRIMARY KEY,
                person_id INTEGER NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
                model TEXT NOT NULL REFERENCES models (name),
                embedding BLOB NOT NULL,
                crop BLOB,
                source TEXT NOT NULL,
                created REAL NOT NULL)""",
            "CREATE INDEX negatives_person ON negatives (person_id)",
            "CREATE INDEX negatives_model ON negatives (model, id)",
            """CREATE TABLE cameras (
                name TEXT PRIMARY KEY,
                address TEXT NOT NULL DEFAULT '',
                first_seen REAL NOT NULL,
                last_seen REAL NOT NULL)""",
            """CREATE TABLE sightings (
                id INTEGER PRIMARY KEY,
                camera TEXT NOT NULL,
                started REAL NOT NULL,
                ended REAL NOT NULL,
                person_id INTEGER REFERENCES persons (id) ON DELETE SET NULL,
                score REAL NOT NULL,
                box_x REAL NOT NULL,
                box_y REAL NOT NULL,
                box_w REAL NOT NULL,
                box_h REAL NOT NULL,
                model TEXT NOT NULL,
                track TEXT NOT NULL)""",
            # Crops and embeddings live beside the sighting rows, not in them, so that a history scan
            # reads small rows and never walks overflow pages of JPEG bytes.
            """CREATE TABLE sighting_crops (
                sighting_id INTEGER PRIMARY KEY REFERENCES sightings (id) ON DELETE CASCADE,
                jpeg BLOB NOT NULL)""",
            """CREATE TABLE sighting_embeddings (
                sighting_id INTEGER PRIMARY KEY REFERENCES sightings (id) ON DELETE CASCADE,
                model TEXT NOT NULL,
                embedding BLOB NOT NULL)""",
            """CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
            """CREATE TABLE audit (
                id INTEGER PRIMARY KEY,
                time REAL NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                details TEXT NOT NULL)""",
            "CREATE INDEX audit_time ON audit (time)",
        ),
    ),
    Migration(
        2,
        "history indexes",
        (
            # Each history filter is an equality on one column plus a time range, newest first:
            # (column, started) answers both from the index, in order, and stops after one page.
            "CREATE INDEX sightings_person_time ON sightings (person_id, started)",
            "CREATE INDEX sightings_camera_time ON sightings (camera, started)",
            "CREATE INDEX sightings_time ON sightings (started)",
            "CREATE INDEX sighting_embeddings_model ON sighting_embeddings (model, sighting_id)",
        ),
    ),
    Migration(
        3,
        "sighting quality",
        (
            # The quality (vision/quality.py's score, 0..1) of the sighting's best crop, as measured when it
            # was recognised; a sample made from the sighting keeps it. NULL: recorded before version 3.
            "ALTER TABLE sightings ADD COLUMN quality REAL",
        ),
    ),
    Migration(
        4,
        "evidence snapshots",
        (
            # One full-frame JPEG per sighting, of the track's best moment (at most 960 px wide), with the
            # face's box in its pixels. Beside the rows like the crops; deleted with the sighting (cascade)
            # and by erasure (storage/erasure.py).
            """CREATE TABLE sighting_snapshots (
                sighting_id INTEGER PRIMARY KEY REFERENCES sightings (id) ON DELETE CASCADE,
                jpeg BLOB NOT NULL,
                box_x REAL NOT NULL,
                box_y REAL NOT NULL,
                box_w REAL NOT NULL,
                box_h REAL NOT NULL)""",
        ),
    ),
    Migration(
        5,
        "sighting decisions",
        (
            # A score is None where the face was compared with no one (it was -1.0, the lowest cosine, before);
            # the column becomes nullable by renaming the old one away, copying, and dropping it.
            "ALTER TABLE sightings RENAME COLUMN score TO score_before_5",
            "ALTER TABLE sightings ADD COLUMN score REAL",
            "UPDATE sightings SET score = CASE WHEN score_before_5 <= -1.0 THEN NULL ELSE score_before_5 END",
            "ALTER TABLE sightings DROP COLUMN score_before_5",
            # named / unknown / undecided (vision.faces.DecisionState): an undecided track had no look good
            # enough to decide on; it is neither a person nor an unknown face.
            """ALTER TABLE sightings ADD COLUMN state TEXT NOT NULL DEFAULT 'unknown'
                CHECK (state IN ('named', 'unknown', 'undecided'))""",
            "UPDATE sightings SET state = 'named' WHERE person_id IS NOT NULL",
            # The state follows the person: a sighting given a person (a relabel, a merge) is named; one whose
            # person is unlinked (a delete that keeps the sightings) is an unknown face again.
            """CREATE TRIGGER sightings_state_follows_person AFTER UPDATE OF person_id ON sightings
                WHEN NEW.person_id IS NOT OLD.person_id
                BEGIN
                    UPDATE sightings SET state = CASE
                        WHEN NEW.person_id IS NOT NULL THEN 'named'
                        WHEN OLD.state = 'named' THEN 'unknown'
                        ELSE OLD.state END
                    WHERE id = NEW.id;
                END""",
        ),
    ),
    Migration(
        6,
        "snapshot faces and erasure",
        (
            # When the snapshot's frame was taken (NULL: not recorded), and every face in it with the track it
            # belonged to, so that erasing a person blurs them in other sightings' snapshots (storage/redaction.py).
            "ALTER TABLE sighting_snapshots ADD COLUMN taken REAL",
            """CREATE TABLE snapshot_faces (
                sighting_id INTEGER NOT NULL REFERENCES sighting_snapshots (sighting_id) ON DELETE CASCADE,
                camera TEXT NOT NULL,
                track TEXT NOT NULL,
                box_x REAL NOT NULL,
                box_y REAL NOT NULL,
                box_w REAL NOT NULL,
                box_h REAL NOT NULL)""",
            "CREATE INDEX snapshot_faces_track ON snapshot_faces (camera, track)",
            "CREATE INDEX snapshot_faces_sighting ON snapshot_faces (sighting_id)",
            # The windows of erased tracks (no name, no face), kept a day to blur snapshots written after.
            """CREATE TABLE erased_tracks (
                camera TEXT NOT NULL,
                track TEXT NOT NULL,
                started REAL NOT NULL,
                ended REAL NOT NULL,
                erased REAL NOT NULL)""",
            "CREATE INDEX erased_tracks_track ON erased_tracks (camera, track)",
            # Persons erased (new_id NULL) or merged away: queued sightings naming them are dropped or moved,
            # and their ids are never given to a new person.
            """CREATE TABLE person_redirects (
                old_id INTEGER PRIMARY KEY,
                new_id INTEGER,
                time REAL NOT NULL)""",
        ),
    ),
    Migration(
        7,
        "integrations outbox and API tokens",
        (
            # What the station owes MQTT and each webhook, oldest first per destination ("mqtt",
            # "webhook:NAME"): kept until delivered, so a broker or endpoint outage or a restart loses
            # nothing within the bound (storage/outbox.py drops the oldest beyond it, counted below).
            # ``person`` names whom an entry is about, so a person's erasure erases what is still owed.
            """CREATE TABLE outbox (
                id INTEGER PRIMARY KEY,
                destination TEXT NOT NULL,
                camera TEXT NOT NULL DEFAULT '',
                person TEXT NOT NULL DEFAULT '',
                kind TEXT NOT NULL,
                topic TEXT NOT NULL DEFAULT '',
                payload BLOB NOT NULL,
                created REAL NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0)""",
            "CREATE INDEX outbox_destination ON outbox (destination, id)",
            """CREATE TABLE outbox_dropped (destination TEXT PRIMARY KEY, dropped INTEGER NOT NULL)""",
            # The local API's bearer tokens: a name and a keyed hash of the token (never the token).
            """CREATE TABLE api_tokens (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                digest TEXT NOT NULL UNIQUE,
                created REAL NOT NULL,
                last_used REAL)""",
            "CREATE UNIQUE INDEX api_tokens_name ON api_tokens (name COLLATE NOCASE)",
        ),
    ),
    Migration(
        8,
        "sample images",
        (
            # Every enrolment stores one sample per model (facenet-512 and fusion-640) of the same photo:
            # image_id groups them, so the Gallery page shows one entry per enrolled photo and removing it
            # removes its embeddings for every model. A new sample of a new photo takes its own id.
            "ALTER TABLE samples ADD COLUMN image_id INTEGER",
            # Existing galleries: the k-th sample of each model from one source of one person is the same
            # photo as the k-th sample of every other model from that source (enrolments store the models'
            # samples of one photo together, in the same order every time).
            """UPDATE samples SET image_id = (
                SELECT g.image FROM (
                    SELECT id, min(id) OVER (PARTITION BY person_id, source, nth) AS image FROM (
                        SELECT id, person_id, source,
                               row_number() OVER (PARTITION BY person_id, source, model ORDER BY id) AS nth
                        FROM samples)) g
                WHERE g.id = samples.id)""",
            "CREATE INDEX samples_image ON samples (image_id)",
        ),
    ),
    Migration(
        9,
        "watchlists",
        (
            # Named lists ("barred", "VIP", "staff"), each with its own strictness (a threshold in the live
            # model's units, NULL: the station's), the cameras it applies to (JSON list, empty: every camera),
            # a priority (1 critical .. 4 low), a sound, its actions (JSON list of storage.watchlists.ListAction)
            # and how long an alarm may wait unacknowledged before it escalates (0: never).
            """CREATE TABLE watchlists (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                threshold REAL,
                cameras TEXT NOT NULL DEFAULT '[]',
                priority INTEGER NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 4),
                sound TEXT NOT NULL DEFAULT 'bell',
                actions TEXT NOT NULL DEFAULT '["queue", "tray"]',
                escalate_after_s REAL NOT NULL DEFAULT 120 CHECK (escalate_after_s >= 0),
                created REAL NOT NULL)""",
            "CREATE UNIQUE INDEX watchlists_name ON watchlists (name COLLATE NOCASE)",
            """CREATE TABLE watchlist_members (
                watchlist_id INTEGER NOT NULL REFERENCES watchlists (id) ON DELETE CASCADE,
                person_id INTEGER NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
                added REAL NOT NULL,
                PRIMARY KEY (watchlist_id, person_id))""",
            "CREATE INDEX watchlist_members_person ON watchlist_members (person_id)",
            # persons.watchlist now means "on any list" (the tile's red box, retention's keep): the triggers keep
            # it so, whoever changes the memberships (a list deleted cascades its members' rows here too).
            """CREATE TRIGGER watchlist_member_added AFTER INSERT ON watchlist_members BEGIN
                UPDATE persons SET watchlist = 1 WHERE id = NEW.person_id; END""",
            """CREATE TRIGGER watchlist_member_removed AFTER DELETE ON watchlist_members BEGIN
                UPDATE persons SET watchlist = EXISTS (
                    SELECT 1 FROM watchlist_members m WHERE m.person_id = OLD.person_id)
                WHERE id = OLD.person_id; END""",
            # Today's one watchlist becomes the default list, with everyone who was on it.
            "INSERT INTO watchlists (id, name, created) VALUES (1, 'Watchlist', unixepoch())",
            """INSERT INTO watchlist_members (watchlist_id, person_id, added)
                SELECT 1, id, created FROM persons WHERE watchlist = 1""",
        ),
    ),
    Migration(
        10,
        "alarms",
        (
            # An alarm: a watchlist hit, a stranger, or the station's own trouble (a full disk, lost writes),
            # kept until closed. ``state`` new -> acknowledged (by whom, when, a note) -> closed. No names are
            # copied in: a watchlist alarm names its person through person_id (gone when they are erased);
            # ``watchlist`` keeps the list's name, which outlives the list. ``frame_id`` and ``box`` say where
            # the face was in its camera's frame (the console crops it from its recent frames until the
            # sighting, linked when it is recorded, has its own crop).
            """CREATE TABLE alarms (
                id INTEGER PRIMARY KEY,
                kind TEXT NOT NULL CHECK (kind IN ('watchlist', 'stranger', 'system')),
                state TEXT NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'acknowledged', 'closed')),
                priority INTEGER NOT NULL CHECK (priority BETWEEN 1 AND 4),
                raised REAL NOT NULL,
                last_seen REAL NOT NULL,
                hits INTEGER NOT NULL DEFAULT 1,
                camera TEXT NOT NULL DEFAULT '',
                track TEXT NOT NULL DEFAULT '',
                frame_id INTEGER,
                box TEXT,
                person_id INTEGER REFERENCES persons (id) ON DELETE SET NULL,
                watchlist_id INTEGER REFERENCES watchlists (id) ON DELETE SET NULL,
                watchlist TEXT NOT NULL DEFAULT '',
                score REAL,
                sighting_id INTEGER REFERENCES sightings (id) ON DELETE SET NULL,
                subject TEXT NOT NULL DEFAULT '',
                detail TEXT NOT NULL DEFAULT '',
                sound TEXT NOT NULL DEFAULT 'bell',
                actions TEXT NOT NULL DEFAULT '["queue", "tray"]',
                escalate_after_s REAL NOT NULL DEFAULT 0,
                escalations INTEGER NOT NULL DEFAULT 0,
                escalated_at REAL,
                acknowledged_by TEXT,
                acknowledged_at REAL,
                ack_note TEXT,
                closed_by TEXT,
                closed_at REAL,
                close_note TEXT)""",
            "CREATE INDEX alarms_queue ON alarms (state, priority, raised)",
            "CREATE INDEX alarms_track ON alarms (camera, track)",
            "CREATE INDEX alarms_sighting ON alarms (sighting_id)",
            # Grows on every change of an alarm: the consoles poll it (storage.counters) to reload their queue.
            "INSERT INTO meta (key, value) VALUES ('alarms', 0)",
        ),
    ),
    Migration(
        11,
        "relabels",
        (
            # A history that corrects itself: past unknown sightings that now match a person (once enrolled, or
            # once an unknown cluster was named) relabelled as theirs, in batches that can be undone. Each row
            # of relabel_sightings says what the sighting was before (NULL: unknown).
            """CREATE TABLE relabels (
                id INTEGER PRIMARY KEY,
                time REAL NOT NULL,
                actor TEXT NOT NULL,
                person_id INTEGER REFERENCES persons (id) ON DELETE CASCADE,
                reason TEXT NOT NULL DEFAULT '',
                undone REAL,
                undone_by TEXT)""",
            """CREATE TABLE relabel_sightings (
                relabel_id INTEGER NOT NULL REFERENCES relabels (id) ON DELETE CASCADE,
                sighting_id INTEGER NOT NULL REFERENCES sightings (id) ON DELETE CASCADE,
                from_person_id INTEGER,
                score REAL NOT NULL,
                PRIMARY KEY (relabel_id, sighting_id))""",
            "CREATE INDEX relabel_sightings_sighting ON relabel_sightings (sighting_id)",
        ),
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def check_version(conn: sqlite3.Connection, path: str) -> int:
    """The file's schema version, refusing a newer schema and a SQLite file that is not a gallery."""
    version = user_version(conn)
    if version > SCHEMA_VERSION:
        raise GalleryError(
            f"{path} was written by a newer FaceStation (schema version {version}; "
            f"this one reads up to {SCHEMA_VERSION}): upgrade FaceStation to open it"
        )
    if version == 0:
        tables = [
            t for t in sqlite_utils.Database(conn, execute_plugins=False).table_names() if not t.startswith("sqlite_")
        ]
        if tables:
            raise GalleryError(
                f"{path} is a SQLite database but not a FaceStation gallery (it holds tables {', '.join(tables[:5])})"
            )
    return version


def migrate(conn: sqlite3.Connection, path: str) -> int:
    """Apply every pending migration in order, in one write transaction; returns the version reached."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = check_version(conn, path)
        for step in MIGRATIONS:
            if step.version <= version:
                continue
            for sql in step.statements:
                conn.execute(sql)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)",
                (step.version, step.name, time.time()),
            )
            conn.execute(f"PRAGMA user_version = {int(step.version)}")
            version = step.version
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return version
