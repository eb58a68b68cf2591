"""The gallery at rest: encrypted by default with SQLCipher, opened by a key file or a passphrase, refused with
one line (and left untouched) for a wrong, missing or too-open key, told apart from an encrypted file that is
damaged, and converted in place by ``main.py encrypt`` / ``decrypt``, which survive a SIGKILL at every step.
Real files, real processes, real face crops."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from storage import cipher
from storage.cipher import FileState, WrongKeyError
from storage.convert import CRASH_ENV
from storage.errors import GalleryError
from storage.gallery import Gallery
from storage.gallerykey import GalleryKey, KeySpec, needs_passphrase
from storage.secretfiles import MissingSecretError, SecretFileError
from tests.conftest import ROOT, raw_connect
from tests.test_storage import MODEL, T0, face_jpegs, sighting, unit
from tests.test_storage_reliability import _distinctive, _raw, assert_one_line_error, cli

PLAIN = KeySpec(plain=True)


# A name long enough that ciphertext cannot hold it by chance (a 3-letter name turns up in about 1 file in 100).
NAME = "Annunziata Quirke-Baptiste"


def _fill(g: Gallery, crops: list[bytes]) -> None:
    rng = np.random.default_rng(3)
    g.enrol_sample(NAME, model=MODEL, embedding=unit(rng), crop_jpeg=crops[0], source="a.jpg", quality=1)
    ann = g.person(NAME).id
    g.record_sightings([sighting(start=T0 + i, person_id=ann, crop=crops[1], embedding=unit(rng)) for i in range(30)])
    assert g.flush()


def _dump(path: Path, **options: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, for comparing a gallery before and after a conversion."""
    conn = raw_connect(path, **options)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        out = {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall() for t in tables}
        out["user_version"] = conn.execute("PRAGMA user_version").fetchall()
        return out
    finally:
        conn.close()


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_new_gallery_is_encrypted_with_a_key_file_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "gallery.db"
    crops = face_jpegs(2)
    with Gallery.open(path) as g:
        _fill(g, crops)
        assert g.key is not None and g.key.salt is None
        raw = _raw(path)  # the file and its WAL, while the station runs
    key_file = tmp_path / "gallery.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert re.fullmatch(rb"[0-9a-f]{64}\n", key_file.read_bytes())
    assert cipher.read_state(path) is FileState.ENCRYPTED and not path.read_bytes().startswith(b"SQLite")
    # Not one slice of a face crop or a name shows in the file or its WAL.
    secrets = _distinctive(crops[0], crops[1]) + _distinctive(crops[1], crops[0])
    assert len(secrets) > 50 and not [s for s in secrets if s in raw] and NAME.encode() not in raw
    with Gallery.open(path) as g:
        assert [p.name for p in g.persons()] == [NAME] and g.count_sightings() == 30
        assert g.integrity_check() == "ok"
        # A second process (a recognition worker) opens it with the key the first one resolved.
        assert isinstance(g.key, GalleryKey)
        with Gallery.open(path, key=g.key, create=False) as worker:
            assert worker.count_sightings() == 30


def test_a_passphrase_key_is_stretched_once_with_the_files_own_salt(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    secret = tmp_path / "pass.txt"
    secret.write_text("correct horse battery staple\n")
    secret.chmod(0o600)
    with Gallery.open(path, key=KeySpec(passphrase_file=secret)) as g:
        g.set_setting("x", 1)
        assert g.key is not None and g.key.salt == path.read_bytes()[:16]
    assert not (tmp_path / "gallery.key").exists(), "a passphrase gallery makes no key file"
    with Gallery.open(path, key=KeySpec(passphrase="correct horse battery staple")) as g:
        assert g.get_setting("x") == 1
    before = _digest(tmp_path)
    with pytest.raises(WrongKeyError, match="wrong key"):
        Gallery.open(path, key=KeySpec(passphrase="wrong horse"))
    with pytest.raises(MissingSecretError, match="is missing: restore the key"):
        Gallery.open(path)  # no passphrase, no key file
    assert _digest(tmp_path) == before
    # The console asks for the passphrase exactly when the gallery needs one.
    assert needs_passphrase(path, KeySpec())
    assert not needs_passphrase(path, KeySpec(passphrase="correct horse battery staple"))
    with Gallery.open(tmp_path / "k.db") as g:  # a key-file gallery (its gallery.key beside it)
        assert not needs_passphrase(g.path, KeySpec())


def test_a_plain_gallery_opens_with_one_warning_saying_how_to_encrypt_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with Gallery.open(path, key=PLAIN) as g:
        g.set_setting("x", 1)
    assert path.read_bytes().startswith(b"SQLite format 3\x00")
    proc = cli("history", "--gallery", str(path))
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and f"main.py encrypt --gallery {path}" in warnings[0], proc.stderr


def _corrupt_first_page(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[100:4000] = os.urandom(3900)
    path.write_bytes(bytes(data))


def test_wrong_missing_and_too_open_keys_are_one_line_and_touch_nothing(tmp_path: Path) -> None:
    path = tmp_path / "gallery.db"
    with Gallery.open(path) as g:
        _fill(g, face_jpegs(2))
    key_file = tmp_path / "gallery.key"
    wrong = tmp_path / "wrong.key"
    wrong.write_text(os.urandom(32).hex())
    wrong.chmod(0o600)
    before = _digest(tmp_path)
    started = time.monotonic()
    with pytest.raises(WrongKeyError, match="wrong key") as err:
        Gallery.open(path, key=KeySpec(key_file=wrong))
    assert time.monotonic() - started < 2.0 and "\n" not in str(err.value)
    cases = [
        (("--gallery-key", str(wrong)), r"cannot decrypt .* wrong key"),
        (("--gallery-key", str(tmp_path / "nowhere.key")), r"is encrypted and its gallery key file .* is missing"),
    ]
    for extra, pattern in cases:
        started = time.monotonic()
        proc = cli("history", "--gallery", str(path), *extra)
        took = time.monotonic() - started
        assert_one_line_error(proc, pattern)
        assert took < 10, took  # the interpreter's start; the refusal itself is measured above
    key_file.chmod(0o644)
    assert_one_line_error(cli("history", "--gallery", str(path)), r"readable by others \(mode 0644\).*chmod 600")
    with pytest.raises(SecretFileError, match="readable by others"):
        Gallery.open(path)
    key_file.chmod(0o600)
    assert _digest(tmp_path) == before, "a refused key must leave every file as it was"
    with Gallery.open(path) as g:
        assert g.count_sightings() == 30


def test_an_encrypted_gallery_that_is_damaged_is_told_apart_from_a_wrong_key(tmp_path: Path) -> None:
    path = tmp_path / "gallery.db"
    with Gallery.open(path) as g:
        _fill(g, face_jpegs(2))
    _corrupt_first_page(path)
    before = _digest(tmp_path)
    with pytest.raises(GalleryError, match=r"the key is right, but 1 of \d+ pages fail their check: it is corrupt"):
        Gallery.open(path)
    with pytest.raises(WrongKeyError, match="wrong key"):
        Gallery.open(path, key=GalleryKey(os.urandom(32)))
    assert _digest(tmp_path) == before


# ------------------------------------------------------------------ encrypt / decrypt


def _plain_gallery(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with Gallery.open(path, key=PLAIN) as g:
        _fill(g, face_jpegs(2))
        g.set_setting("crash", "test")
    return _dump(path)


def test_encrypt_and_decrypt_in_place_keep_every_row(tmp_path: Path) -> None:
    path = tmp_path / "gallery.db"
    rows = _plain_gallery(path)
    proc = cli("encrypt", "--gallery", str(path))
    assert proc.returncode == 0, proc.stderr
    assert '"event":"encrypt"' in proc.stdout and '"already":false' in proc.stdout
    assert cipher.read_state(path) is FileState.ENCRYPTED and _dump(path) == rows
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gallery.db", "gallery.key"]
    again = cli("encrypt", "--gallery", str(path))
    assert again.returncode == 0 and '"already":true' in again.stdout
    with Gallery.open(path) as g:  # the station opens it, WAL and all, and writes on
        g.set_setting("after", 1)
        rows = _dump(path)
    back = cli("decrypt", "--gallery", str(path))
    assert back.returncode == 0, back.stderr
    assert cipher.read_state(path) is FileState.PLAIN and _dump(path) == rows
    # With a passphrase file instead of a key file.
    secret = tmp_path / "pass.txt"
    secret.write_text("s3cret phrase")
    secret.chmod(0o600)
    assert cli("encrypt", "--gallery", str(path), "--passphrase-file", str(secret)).returncode == 0
    assert _dump(path, key=KeySpec(passphrase_file=secret)) == rows
    assert_one_line_error(cli("decrypt", "--gallery", str(path)), "is missing|wrong key")


def test_encrypt_refuses_a_gallery_a_station_has_open(tmp_path: Path) -> None:
    path = tmp_path / "gallery.db"
    rows = _plain_gallery(path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(ROOT), str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        assert_one_line_error(cli("encrypt", "--gallery", str(path), "--busy-timeout", "0.3"), "stop the station")
    finally:
        holder.kill()
        holder.wait(10)
    assert cipher.read_state(path) is FileState.PLAIN and _dump(path) == rows
    assert not list(tmp_path.glob(".gallery.db.*"))


HOLDER = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from storage.gallery import Gallery
g = Gallery.open(sys.argv[2])
g.count_sightings()
print("open", flush=True)
time.sleep(60)
"""


@pytest.mark.slow
@pytest.mark.parametrize("direction", ["encrypt", "decrypt"])
def test_a_conversion_killed_at_any_step_leaves_the_gallery_whole_and_a_rerun_finishes(
    direction: str, tmp_path: Path
) -> None:
    path = tmp_path / "gallery.db"
    rows = _plain_gallery(path)
    if direction == "decrypt":
        assert cli("encrypt", "--gallery", str(path)).returncode == 0
    start_state = cipher.read_state(path)
    for step in ("locked", "exported", "verified", "renamed"):
        proc = subprocess.run(
            [sys.executable, str(ROOT / "main.py"), direction, "--gallery", str(path)],
            env={**os.environ, CRASH_ENV: step},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == -signal.SIGKILL, (step, proc.stderr)
        # The gallery is whole: the original before the rename, the converted copy after it.
        assert cipher.read_state(path) is (start_state if step != "renamed" else _other(start_state)), step
        assert _dump(path) == rows, step
        with Gallery.open(path, create=False) as g:
            assert g.integrity_check() == "ok" and g.count_sightings() == 30
        rerun = cli(direction, "--gallery", str(path))
        assert rerun.returncode == 0, (step, rerun.stderr)
        assert cipher.read_state(path) is _other(start_state) and _dump(path) == rows
        assert not list(tmp_path.glob(".gallery.db.*")), "a rerun clears what the killed run left"
        back = "decrypt" if direction == "encrypt" else "encrypt"
        assert cli(back, "--gallery", str(path)).returncode == 0  # and round again for the next step
        assert cipher.read_state(path) is start_state


def _other(state: FileState) -> FileState:
    return FileState.PLAIN if state is FileState.ENCRYPTED else FileState.ENCRYPTED


def test_storage_connects_and_catches_errors_only_through_the_sqlcipher_driver() -> None:
    """sqlcipher3's errors are not sqlite3's: an ``except sqlite3.Error`` in storage/ would miss them all."""
    offenders = []
    for path in sorted((ROOT / "storage").glob("*.py")):
        if path.name == "sql.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"sqlite3\.(connect|\w*Error|Warning)\b", line):
                offenders.append(f"{path.name}:{n}: {line.strip()}")
    assert offenders == []
