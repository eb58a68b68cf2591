"""``main.py export-evidence``, ``verify-evidence`` and ``export-person``: signed evidence of sightings, its
check, and everything held on one person (a data-protection request). JSON lines on stdout."""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path

from cli.common import VERSION, CliError, emit, open_gallery


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("export-evidence", parents=[common], help="sightings as a signed evidence zip")
    p.add_argument("--sighting", type=int, action="append", required=True, metavar="ID", help="a sighting (repeat)")
    p.add_argument("--case", default="", metavar="TEXT", help="the case number or reference")
    p.add_argument("--note", default="", metavar="TEXT", help="the operator's note")
    p.add_argument("--out", required=True, metavar="ZIP", help="the zip to write")
    p.add_argument("--operator", default=_login(), help="who exports (default: the login name)")
    p.add_argument("--signing-key", metavar="FILE", help="the signing key (default: signing.key beside the gallery)")
    p.add_argument("--overwrite", action="store_true", help="replace ZIP if it exists")
    p.set_defaults(func=run_export)

    p = sub.add_parser("verify-evidence", parents=[common], help="check an evidence zip: one line per file")
    p.add_argument("zip", metavar="ZIP")
    p.add_argument(
        "--public-key",
        metavar="HEX|FILE",
        help="the signer's public key as keygen --show-public prints it (default: this station's own)",
    )
    p.add_argument("--signing-key", metavar="FILE", help="this station's signing key, whose public half is trusted")
    p.set_defaults(func=run_verify)

    p = sub.add_parser("export-person", parents=[common], help="everything held on one person, as a zip")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--out", required=True, metavar="ZIP", help="the zip to write")
    p.add_argument("--operator", default=_login(), help="who exports (default: the login name)")
    p.add_argument("--overwrite", action="store_true", help="replace ZIP if it exists")
    p.set_defaults(func=run_person)


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def run_export(args: argparse.Namespace) -> int:
    from station.evidence import export
    from storage.errors import GalleryError

    gallery = open_gallery(args, "cli")
    try:
        summary = export(
            gallery,
            args.sighting,
            Path(args.out),
            operator=args.operator,
            version=VERSION,
            case=args.case,
            note=args.note,
            key_file=Path(args.signing_key) if args.signing_key else None,
            overwrite=args.overwrite,
        )
    except GalleryError as exc:
        raise CliError(str(exc)) from None
    finally:
        gallery.close()
    emit(
        {
            "event": "evidence",
            "file": summary.path,
            "sightings": summary.sightings,
            "files": summary.files,
            "manifest_sha256": summary.manifest_sha256,
            "signer": summary.signer,
        }
    )
    return 0


def _trusted(args: argparse.Namespace) -> bytes:
    """The public key to verify against: the one given, else this station's own."""
    from station.evidence import signing_key_path
    from storage import signing

    if args.public_key:
        given = Path(args.public_key)
        return signing.parse_public(given.read_text() if given.is_file() else args.public_key)
    path = signing_key_path(Path(args.gallery), Path(args.signing_key) if args.signing_key else None)
    if not path.exists():
        raise CliError(
            f"no trusted public key: give --public-key (main.py keygen --show-public prints the station's); "
            f"{path} does not exist"
        )
    return signing.load(path).public


def run_verify(args: argparse.Namespace) -> int:
    from storage.errors import GalleryError
    from storage.evidence_check import verify

    try:
        result = verify(Path(args.zip), _trusted(args))
    except GalleryError as exc:
        raise CliError(str(exc)) from None
    for f in result.files:
        emit({"file": f.path, "status": f.status.value, "sha256": f.sha256})
    emit(
        {
            "event": "verify",
            "result": "intact" if result.intact else "failed",
            "signature": result.signature.value,
            "signer": result.signer,
            "case": result.case,
            "sightings": result.sightings,
            "files": len(result.files),
            "problems": sum(f.status.value != "ok" for f in result.files),
        }
    )
    return 0 if result.intact else 1


def run_person(args: argparse.Namespace) -> int:
    from storage.errors import GalleryError
    from storage.person_export import export_person

    gallery = open_gallery(args, "cli")
    try:
        summary = export_person(gallery, args.name, Path(args.out), operator=args.operator, overwrite=args.overwrite)
    except GalleryError as exc:
        raise CliError(str(exc)) from None
    finally:
        gallery.close()
    emit({"event": "person_export", **summary.as_json()})
    return 0
