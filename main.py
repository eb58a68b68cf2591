"""FaceStation entry point: the console by default, and the subcommands of DESIGN.md's CLI contract.

JSON output goes to stdout, one object per line; logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from storage import locations

ROOT = Path(__file__).resolve().parent
# The checkout's data/gallery.db from source; the user's data folder when installed (storage/locations.py).
DEFAULT_GALLERY = locations.default_gallery()
DEFAULT_LISTEN = "0.0.0.0:47800"
VERSION = "0.1.0"

log = logging.getLogger("facestation")


class CliError(Exception):
    """A problem the operator must fix: printed as one line, exit status 2."""


def emit(obj: dict[str, Any]) -> None:
    """Print one JSON line on stdout, now."""
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def default_key_path(gallery: Path) -> Path:
    """The station key lives beside the gallery: data/station.key by default."""
    return locations.default_key(gallery)


# ---------------------------------------------------------------- keygen


def cmd_keygen(args: argparse.Namespace) -> int:
    from network import keys

    try:
        keys.write_new_key(Path(args.file))
    except keys.KeyFileError as exc:
        raise CliError(str(exc)) from None
    emit({"event": "keygen", "file": str(args.file), "mode": "0600"})
    return 0


# -------------------------------------------------------------- headless


def _load_station_key(args: argparse.Namespace) -> tuple[bytes, Path | None]:
    """The station key, and the path of the key file when it was created just now (to be announced
    once the station is up, so a failing start still prints one line)."""
    from network import keys

    try:
        if args.key_file:
            return keys.read_key(Path(args.key_file)), None
        path = default_key_path(Path(args.gallery))
        key, created = keys.load_or_create(path)
        return key, path if created else None
    except keys.KeyFileError as exc:
        raise CliError(str(exc)) from None


def _announce_new_key(path: Path | None) -> None:
    if path is not None:
        log.info("created a new station key at %s (mode 0600); give it to your cameras", path)


def _hostport(text: str, flag: str) -> tuple[str, int]:
    from network.addresses import parse_hostport

    try:
        return parse_hostport(text)
    except ValueError as exc:
        raise CliError(f"{flag}: {exc}") from None


def _open_headless_gallery(args: argparse.Namespace) -> Any:
    """Open (or create) the gallery: a cheap check, done before any model loads."""
    from storage.errors import GalleryError
    from storage.gallery import Gallery

    path = Path(args.gallery)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return Gallery.open(path, actor="headless")
    except (GalleryError, OSError) as exc:
        raise CliError(str(exc)) from None


def _recognition_parts(args: argparse.Namespace, gallery: Any) -> tuple[Any, Any]:
    """Load the models (or start the Ray pool) and read the settings: the slow part, done after the
    socket, the key and the gallery have been checked."""
    from station.runtime import RecognitionSettings
    from storage.errors import GalleryError
    from vision.pipeline import FacePipeline
    from vision.types import VisionError

    pipeline: Any = None
    try:
        if args.ray_address:  # the models load on the cluster's actors, not here
            pipeline = _ray_pool(args)
        else:
            pipeline = FacePipeline()
            pipeline.warm_up()
        settings = RecognitionSettings.from_gallery(
            gallery, pipeline.model, threshold=args.threshold, max_rate_hz=args.max_rate
        )
    except (VisionError, ValueError, GalleryError, CliError) as exc:
        if args.ray_address and pipeline is not None:
            pipeline.stop()
        raise CliError(str(exc)) from None
    return pipeline, settings


def _ray_pool(args: argparse.Namespace) -> Any:
    """Connect to the Ray cluster and start the recognition actors (vision/ray_workers.py); one-line errors."""
    from vision.ray_workers import RayPoolConfig, RayRecognitionPool, RayUnavailable

    if args.ray_workers < 1:
        raise CliError("--ray-workers must be at least 1")
    try:
        return RayRecognitionPool(RayPoolConfig(address=args.ray_address, actors=args.ray_workers)).start()
    except RayUnavailable as exc:
        raise CliError(str(exc)) from None


def _print_sighting(record: Any) -> None:
    emit(
        {
            "event": "sighting",
            "camera": record.camera,
            "person": record.person,
            "score": round(float(record.score), 4),
            "start": _iso(record.start),
            "end": _iso(record.end),
            "track": record.track_id,
            "frames": record.frames,
        }
    )


def _recognition_stats(stats: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(stats).items()}


def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def cmd_headless(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from network.udp_receiver import ReceiverConfig, UdpReceiver, format_stats

    listen = _hostport(args.listen, "--listen")
    connects = [_hostport(c, "--connect") for c in args.connect or []]
    if args.stats_every <= 0:
        raise CliError("--stats-every must be positive")
    # Cheap checks first, each failing in a second with one line: the socket, the key, the gallery.
    # Only then the models, which take seconds to load; frames that arrive meanwhile wait in the
    # receiver's newest-frame slots.
    key, new_key = _load_station_key(args)
    receiver = UdpReceiver(key, listen[0], listen[1], config=ReceiverConfig(offline_after_s=args.offline_after))
    try:
        receiver.start()
    except OSError as exc:
        raise CliError(f"cannot listen on {args.listen}: {exc.strerror}") from None
    gallery: Any = None
    pipeline: Any = None
    settings: Any = None
    try:
        if args.recognition:
            gallery = _open_headless_gallery(args)
        _announce_new_key(new_key)
        if gallery is not None:
            pipeline, settings = _recognition_parts(args, gallery)
    except CliError:
        receiver.stop()
        if gallery is not None:
            gallery.close()
        raise
    ray_pool = pipeline if args.recognition and args.ray_address else None
    recogniser = None
    if gallery is not None and pipeline is not None and settings is not None:
        from station.runtime import Recogniser

        workers = args.workers
        if ray_pool is not None and workers is None:
            workers = ray_pool.config.station_workers  # actors × batch: every actor fed, nothing queued
        recogniser = Recogniser(receiver, gallery, pipeline, settings, workers=workers, frame_analyser=ray_pool)
        recogniser.add_sighting_listener(_print_sighting)
        recogniser.start()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    host, port = receiver.address
    emit({"event": "listening", "address": f"{host}:{port}"})
    browser = None
    demo: list[subprocess.Popen[bytes]] = []
    try:
        for h, p in connects:
            try:
                receiver.subscribe(h, p)
            except ValueError as exc:
                raise CliError(f"--connect {h}:{p}: {exc}") from None
        if args.discover or args.mdns_interface:
            from network.discovery import Browser, DiscoveredSender

            def found(sender: DiscoveredSender, present: bool) -> None:
                emit(
                    {
                        "event": "discovered",
                        "camera": sender.name,
                        "address": sender.address,
                        "present": present,
                        "width": sender.width,
                        "height": sender.height,
                        "fps": sender.fps,
                    }
                )
                if present:
                    receiver.subscribe(sender.host, sender.port)

            browser = Browser(interfaces=args.mdns_interface, on_change=found)
        if args.demo:
            from network.demo_senders import start_demo_senders

            key_file = Path(args.key_file) if args.key_file else default_key_path(Path(args.gallery))
            demo = start_demo_senders((host, port), key_file, args.demo)
        started = time.monotonic()
        next_stats = started + args.stats_every
        while not stop.is_set():
            now = time.monotonic()
            if args.duration is not None and now - started >= args.duration:
                break
            for ev in receiver.drain_events():
                line: dict[str, Any] = {
                    "event": "camera",
                    "camera": ev.camera,
                    "state": ev.state,
                    "address": ev.address,
                }
                if ev.reason:
                    line["reason"] = ev.reason
                emit(line)
            if now >= next_stats:
                next_stats += args.stats_every
                for st in receiver.stats():
                    emit(format_stats(st))
                if recogniser is not None:
                    for rs in recogniser.stats():
                        emit({"event": "recognition", **_recognition_stats(rs)})
                if ray_pool is not None:
                    emit({"event": "ray", **asdict(ray_pool.stats())})
                rejected = receiver.rejected()
                if rejected:
                    emit({"event": "rejected", "rejected": rejected, "total": sum(rejected.values())})
            stop.wait(0.1)
    finally:
        if demo:
            from network.demo_senders import stop_demo_senders

            stop_demo_senders(demo)
        if browser is not None:
            browser.close()
        if recogniser is not None:
            recogniser.stop()  # open tracks become sightings, printed and recorded
        if ray_pool is not None:
            ray_pool.stop()
        receiver.stop()
        if gallery is not None:
            gallery.close()
        for ev in receiver.drain_events():
            emit({"event": "camera", "camera": ev.camera, "state": ev.state, "address": ev.address})
    return 0


# --------------------------------------------------------------- history


# ------------------------------------------------------- enrol / identify

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def _image_paths(paths: Sequence[str]) -> list[tuple[Path, str | None]]:
    """Every image named or inside a named folder (sorted), with an error for what cannot be used."""
    out: list[tuple[Path, str | None]] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                out.append((path, "no image files in this folder"))
            out.extend((p, None) for p in found)
        elif path.exists():
            out.append((path, None))
        else:
            out.append((path, "no such file"))
    return out


def _read_image(path: Path) -> Any:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("not an image, or unreadable")
    return image


def _open_gallery(args: argparse.Namespace, actor: str) -> Any:
    from storage.errors import GalleryError
    from storage.gallery import Gallery

    path = Path(args.gallery)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return Gallery.open(path, actor=actor)
    except (GalleryError, OSError) as exc:
        raise CliError(str(exc)) from None


def _pipeline(model: str | None = None) -> Any:
    from vision.embedders import load_embedder
    from vision.pipeline import FacePipeline
    from vision.types import VisionError

    try:
        return FacePipeline(embedder=load_embedder(model) if model else None)
    except VisionError as exc:
        raise CliError(str(exc)) from None


def cmd_enrol(args: argparse.Namespace) -> int:
    """Enrol the largest face of each image as a sample of --name; JSON summary with what was refused."""
    from station.enrolment import enrol_observation
    from vision.quality import QualityLimits

    name = args.name.strip()
    if not name:
        raise CliError("--name must not be empty")
    images = _image_paths(args.paths)
    gallery = _open_gallery(args, "cli")
    try:
        pipeline = _pipeline(args.model)
        limits = QualityLimits(min_face=args.min_face)
        enrolled: list[str] = []
        rejected: list[dict[str, str]] = []
        for path, problem in images:
            if problem is not None:
                rejected.append({"path": str(path), "reason": problem})
                continue
            try:
                faces = pipeline.observe(_read_image(path))
                if not faces:
                    raise ValueError("no face found")
                face = max(faces, key=lambda o: o.detection.box[2] * o.detection.box[3])
                reason = face.quality.reject_reason(limits)
                if reason is not None:
                    raise ValueError(reason)
                enrol_observation(gallery, name, face, str(path))
                enrolled.append(str(path))
            except ValueError as exc:
                rejected.append({"path": str(path), "reason": str(exc)})
        samples = next((p.samples for p in gallery.persons() if p.name == name), 0)
        emit(
            {
                "event": "enrol",
                "person": name,
                "model": pipeline.model,
                "enrolled": len(enrolled),
                "samples": samples,
                "files": enrolled,
                "rejected": rejected,
            }
        )
        return 0 if enrolled else 1
    finally:
        gallery.close()


def cmd_identify(args: argparse.Namespace) -> int:
    """One JSON line per image: each face's box, person (or null) and score."""
    from station.runtime import RecognitionSettings
    from vision.matcher import Matcher

    gallery = _open_gallery(args, "cli")
    try:
        pipeline = _pipeline(args.model)
        settings = RecognitionSettings.from_gallery(gallery, pipeline.model, threshold=args.threshold)
        matcher = Matcher.from_matrices(
            pipeline.model,
            gallery.sample_matrix(pipeline.model),
            gallery.negative_matrix(pipeline.model),
            threshold=settings.threshold,
            margin=settings.margin,
        )
        failures = 0
        for path, problem in _image_paths(args.paths):
            try:
                if problem is not None:
                    raise ValueError(problem)
                faces = pipeline.observe(_read_image(path))
            except ValueError as exc:
                failures += 1
                emit({"path": str(path), "faces": [], "error": str(exc)})
                continue
            matches = matcher.match([f.embedding for f in faces], model=pipeline.model) if faces else []
            emit(
                {
                    "path": str(path),
                    "faces": [
                        {
                            "box": [round(float(v), 1) for v in f.detection.box],
                            "person": m.person,
                            "score": round(float(m.score), 4),
                        }
                        for f, m in zip(faces, matches, strict=True)
                    ],
                }
            )
        return 1 if failures else 0
    finally:
        gallery.close()


def cmd_history(args: argparse.Namespace) -> int:
    from storage.errors import GalleryError
    from storage.export import history_command

    try:
        return history_command(
            args.gallery,
            sys.stdout,
            person=args.person,
            camera=args.camera,
            since=args.since,
            until=args.until,
            unknown_only=args.unknown,
            min_score=args.min_score,
            fmt=args.format,
            limit=args.limit,
            offset=args.offset,
            busy_timeout_s=args.busy_timeout,
        )
    except GalleryError as exc:
        raise CliError(str(exc)) from None


# -------------------------------------------------------------- evaluate


def cmd_evaluate(args: argparse.Namespace) -> int:
    """LFW verification from the raw photos; prints one JSON object (vision/lfw.py has the protocol)."""
    pairs, images = Path(args.pairs), Path(args.images)
    if not pairs.is_file():
        raise CliError(f"--pairs: {pairs} is not a file")
    if not images.is_dir():
        raise CliError(f"--images: {images} is not a folder")
    try:
        from vision.lfw import PairsError, evaluate
        from vision.types import VisionError
    except ImportError as exc:
        raise CliError(f"evaluate needs the station extra (pip install '.[station]'): {exc}") from None
    try:
        result = evaluate(pairs, images, model=args.model)
    except (PairsError, VisionError) as exc:
        raise CliError(str(exc)) from None
    emit(result.as_json())
    return 0


# ---------------------------------------------------------- paths / backup


def cmd_paths(args: argparse.Namespace) -> int:
    """One JSON object: the gallery, key, logs and data folder this station uses, and whether it is frozen."""
    key = Path(args.key_file) if getattr(args, "key_file", None) else None
    emit(locations.locations(Path(args.gallery), key).as_json())
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    """Copy the gallery with SQLite's online backup API (safe while the console or headless writes)."""
    from datetime import datetime

    from storage.errors import GalleryError
    from storage.gallery import Gallery

    source = Path(args.gallery)
    if not source.is_file():
        raise CliError(f"no gallery at {source}: nothing to back up (use --gallery to name it)")
    dest = Path(args.dest)
    if dest.is_dir():
        dest = dest / f"{source.stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}{source.suffix or '.db'}"
    if dest.resolve() == source.resolve():
        raise CliError(f"{dest} is the gallery itself: back up to another file")
    started = time.monotonic()
    try:
        gallery = Gallery.open(source, actor="cli")
    except (GalleryError, OSError) as exc:
        raise CliError(str(exc)) from None
    try:
        written = gallery.backup(dest, overwrite=args.overwrite)
    except GalleryError as exc:
        raise CliError(str(exc)) from None
    finally:
        gallery.close()
    emit(
        {
            "event": "backup",
            "gallery": str(source),
            "file": str(written),
            "bytes": written.stat().st_size,
            "seconds": round(time.monotonic() - started, 3),
        }
    )
    return 0


# --------------------------------------------------------------- console


def cmd_console(args: argparse.Namespace) -> int:
    """The operator console. With --demo it listens on 127.0.0.1 and starts two local demo senders."""
    try:
        from gui.app import ConsoleError, ConsoleOptions, run_console
    except ImportError as exc:
        raise CliError(f"the console needs the station extra (pip install '.[station]'): {exc}") from None
    listen = _hostport(args.listen or ("127.0.0.1:0" if args.demo else DEFAULT_LISTEN), "--listen")
    interfaces = tuple(args.mdns_interface) if args.mdns_interface else (("127.0.0.1",) if args.demo else None)
    options = ConsoleOptions(
        gallery=Path(args.gallery),
        listen=listen,
        key_file=Path(args.key_file) if args.key_file else None,
        demo_cameras=2 if args.demo else 0,
        mdns_interfaces=interfaces,
        offscreen_quit_after_s=args.quit_after,
        ray_address=args.ray_address,
        ray_workers=args.ray_workers,
    )
    try:
        return run_console(options)
    except ConsoleError as exc:
        raise CliError(str(exc)) from None


# ------------------------------------------------------------------ main


def _common(defaults: bool) -> argparse.ArgumentParser:
    """Options every command takes, before or after its name. Subcommands use SUPPRESS so a
    value given before the subcommand is not overwritten by the subcommand's default."""
    common = argparse.ArgumentParser(add_help=False)
    default: dict[str, Any] = {} if defaults else {"default": argparse.SUPPRESS}
    common.add_argument(
        "--gallery",
        help=f"gallery database (default {DEFAULT_GALLERY})",
        **(default or {"default": str(DEFAULT_GALLERY)}),
    )
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr", **default)
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common(defaults=False)
    parser = argparse.ArgumentParser(
        prog="main.py", description="FaceStation face-recognition control station", parents=[_common(defaults=True)]
    )
    parser.add_argument("--version", action="version", version=f"FaceStation {VERSION}")
    parser.add_argument("--demo", action="store_true", help="also start two local demo cameras (127.0.0.1 only)")
    parser.add_argument("--listen", help=f"HOST:PORT the console receives on (default {DEFAULT_LISTEN})")
    parser.add_argument("--key-file", help="station key (default: station.key beside the gallery, created if missing)")
    parser.add_argument("--mdns-interface", action="append", metavar="IP", help="discover senders on this address only")
    parser.add_argument(
        "--ray-address", metavar="HOST:PORT", help="recognise on this Ray cluster (default: the console setting)"
    )
    parser.add_argument("--ray-workers", type=int, default=2, metavar="N", help="recognition actors on the cluster")
    parser.add_argument("--quit-after", type=float, metavar="S", help=argparse.SUPPRESS)  # smoke tests
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("keygen", parents=[common], help="write a new random station key (mode 0600)")
    p.add_argument("file")
    p.set_defaults(func=cmd_keygen)

    p = sub.add_parser("headless", parents=[common], help="receive without a GUI, printing JSON lines")
    p.add_argument("--listen", default=DEFAULT_LISTEN, help=f"HOST:PORT to receive on (default {DEFAULT_LISTEN})")
    p.add_argument("--key-file", help="station key (default: station.key beside the gallery, created if missing)")
    p.add_argument("--connect", action="append", metavar="HOST:PORT", help="subscribe to the sender at HOST:PORT")
    p.add_argument("--stats-every", type=float, default=5.0, metavar="S", help="print stats every S seconds")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--discover", action="store_true", help="find senders over mDNS on all interfaces")
    p.add_argument("--mdns-interface", action="append", metavar="IP", help="discover over mDNS on this address only")
    p.add_argument("--offline-after", type=float, default=3.0, metavar="S", help="silence before a camera is offline")
    p.add_argument("--demo", type=int, nargs="?", const=1, default=0, metavar="N", help="start N local demo senders")
    p.add_argument("--no-recognition", dest="recognition", action="store_false", help="receive only: load no models")
    p.add_argument("--workers", type=int, metavar="N", help="recognition threads (default: by CPU count)")
    p.add_argument("--threshold", type=float, help="recognition threshold (default: the gallery's setting)")
    p.add_argument("--max-rate", type=float, metavar="HZ", help="recognitions per second per camera, at most")
    p.add_argument("--ray-address", metavar="HOST:PORT", help="recognise on this Ray cluster (needs the ray extra)")
    p.add_argument("--ray-workers", type=int, default=2, metavar="N", help="recognition actors on the cluster")
    p.set_defaults(func=cmd_headless)

    p = sub.add_parser("enrol", parents=[common], help="enrol faces from image files or folders")
    p.add_argument("--name", required=True, help="the person's name (created if new)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders of images")
    p.add_argument("--model", help="embedding model (default facenet-512)")
    p.add_argument("--min-face", type=float, default=40.0, metavar="PX", help="refuse faces smaller than this")
    p.set_defaults(func=cmd_enrol)

    p = sub.add_parser("identify", parents=[common], help="who is in these images (JSON line per image)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders of images")
    p.add_argument("--model", help="embedding model (default facenet-512)")
    p.add_argument("--threshold", type=float, help="recognition threshold (default: the gallery's setting)")
    p.set_defaults(func=cmd_identify)

    p = sub.add_parser("history", parents=[common], help="print sightings from the gallery, newest first")
    p.add_argument("--person", metavar="NAME", help="only this person")
    p.add_argument("--camera", metavar="NAME", help="only this camera")
    p.add_argument(
        "--since", metavar="ISO", help="sightings starting at or after this time (UTC unless an offset is given)"
    )
    p.add_argument("--until", metavar="ISO", help="sightings starting before this time")
    p.add_argument("--unknown", action="store_true", help="only unknown faces")
    p.add_argument("--min-score", type=float, metavar="S", help="only sightings scoring at least S")
    p.add_argument("--format", choices=("json", "csv"), default="json", help="JSON lines (default) or CSV")
    p.add_argument("--limit", type=int, default=1000, metavar="N", help="at most N sightings (default 1000, max 10000)")
    p.add_argument("--offset", type=int, default=0, metavar="N", help="skip the N newest matches first")
    p.add_argument("--busy-timeout", type=float, default=5.0, metavar="S", help="wait S seconds for a locked gallery")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("evaluate", parents=[common], help="measure accuracy on a benchmark (lfw)")
    bench = p.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    q = bench.add_parser("lfw", parents=[common], help="LFW verification pairs, from the raw photos")
    q.add_argument("--pairs", required=True, metavar="FILE", help="LFW pairs.txt (10 folds, or one)")
    q.add_argument("--images", required=True, metavar="DIR", help="folder of NAME/NAME_NNNN.jpg photos")
    q.add_argument("--model", default="facenet-512", help="embedding model (facenet-512, dlib-128, vggface2-2048)")
    q.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("paths", parents=[common], help="where the gallery, the key and the logs are (JSON)")
    p.add_argument("--key-file", help="station key (default: station.key beside the gallery)")
    p.set_defaults(func=cmd_paths)

    p = sub.add_parser("backup", parents=[common], help="copy the gallery to DEST while the station runs (JSON)")
    p.add_argument("dest", metavar="DEST", help="the copy's file name, or a folder to put a dated copy in")
    p.add_argument("--overwrite", action="store_true", help="replace DEST if it exists")
    p.set_defaults(func=cmd_backup)
    return parser


def _sender_passthrough(argv: list[str]) -> int | None:
    """``main.py sender ARGS`` (hidden) runs network/udp_sender.py's main: the frozen app has no
    interpreter to run the script with, so its demo cameras start their own binary this way."""
    from network.demo_senders import FROZEN_SENDER_COMMAND

    if argv[:1] != [FROZEN_SENDER_COMMAND]:
        return None
    from network.udp_sender import main as sender_main

    return sender_main(argv[1:])


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    sender_status = _sender_passthrough(argv)
    if sender_status is not None:
        return sender_status
    parser = build_parser()
    args = parser.parse_args(argv)
    from vision.tf_runtime import quiet_native_logs

    quiet_native_logs(verbose=args.verbose)  # before anything can import TensorFlow
    level = logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log_file = None
    if args.command in (None, "headless"):  # the long-running ones: rotating files in the log folder too
        from storage.logfiles import file_only, start_file_logging

        log_file = start_file_logging(args.command or "console", level=level)
        file_only(
            log_file,
            logging.INFO,
            f"FaceStation {VERSION} {args.command or 'console'} starting, gallery {args.gallery}",
        )
    try:
        if args.command is None:
            return cmd_console(args)
        return int(args.func(args))
    except CliError as exc:
        print(f"main.py: error: {exc}", file=sys.stderr)
        from storage.logfiles import file_only

        file_only(log_file, logging.ERROR, f"error: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
