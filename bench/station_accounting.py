"""Where a process's CPU goes, by thread group: the accounting of bench/station.py (no project imports).

Every thread of the process is sampled (psutil: user + system seconds; the kernel's ``comm`` name) and
put in one group:

* **receiver**: the Python thread ``udp-receiver``;
* **recognition**: the Python threads whose names start with ``recognition`` (the workers, the feed);
* **writer**: the gallery's writer thread (``gallery-writer``);
* **inference runtime**: the threads that are not Python threads (no ``threading.Thread`` owns them)
  and were not there before the station started: OpenVINO's stream and TBB worker threads;
* **OpenCV workers**: OpenCV's own thread pool (``parallel_for_``), found by :func:`attribute` before the
  station starts: the native threads that one parallel OpenCV call creates;
* **other**: every other Python thread (the main thread, the schedule), the native threads that were
  there before (numpy's BLAS pool), plus the CPU of threads that ended between two samples (the
  process total minus the threads still there).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil

GROUPS = ("receiver", "recognition", "inference runtime", "OpenCV workers", "writer", "worker processes", "other")


@dataclass(frozen=True)
class Attribution:
    """Native threads known before the station starts: OpenCV's pool, and the rest (BLAS, ...)."""

    opencv: frozenset[int] = frozenset()
    before: frozenset[int] = frozenset()


def _native_now() -> set[int]:
    return {int(t) for t in os.listdir("/proc/self/task")}


def attribute() -> Attribution:
    """Call before the station starts: makes OpenCV start its thread pool now (one parallel resize), so
    the native threads that appear are OpenCV's, and those already there are someone else's."""
    import cv2

    before = _native_now()
    cv2.resize(np.zeros((1080, 1920, 3), np.uint8), (640, 360), interpolation=cv2.INTER_AREA)
    python = {t.native_id for t in threading.enumerate()}
    return Attribution(frozenset(_native_now() - before - python), frozenset(before - python))


@dataclass(frozen=True, slots=True)
class ThreadCpu:
    """One thread at one moment: its id, its name (Python's, else the kernel's), whether Python owns it,
    and the CPU seconds it has used."""

    tid: int
    name: str
    python: bool
    cpu_s: float


def group_of(thread: ThreadCpu, known: Attribution = Attribution()) -> str:
    """The group a thread's CPU counts in (see the module docstring)."""
    if thread.python:
        if thread.name.startswith("udp-receiver"):
            return "receiver"
        if thread.name.startswith("recognition"):
            return "recognition"
        if thread.name == "gallery-writer":
            return "writer"
        return "other"
    if thread.tid in known.opencv:
        return "OpenCV workers"
    if thread.tid in known.before:
        return "other"
    return "inference runtime"


def _comm(tid: int) -> str:
    try:
        return Path(f"/proc/self/task/{tid}/comm").read_text().strip()
    except OSError:
        return ""


def sample_threads(process: psutil.Process | None = None) -> dict[int, ThreadCpu]:
    """This process's threads now (call it from inside the process: Python's own threads are named)."""
    proc = process or psutil.Process()
    python = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
    out: dict[int, ThreadCpu] = {}
    for t in proc.threads():
        owned = t.id in python
        out[t.id] = ThreadCpu(t.id, python[t.id] if owned else _comm(t.id), owned, t.user_time + t.system_time)
    return out


def process_cpu(process: psutil.Process | None = None) -> float:
    times = (process or psutil.Process()).cpu_times()
    return float(times.user + times.system)


def children_cpu(process: psutil.Process | None = None, exclude: int | None = None) -> float:
    """CPU seconds so far of the process's live child processes (recognition worker processes), recursively,
    but for ``exclude`` (the replayed cameras' process)."""
    total = 0.0
    for child in (process or psutil.Process()).children(recursive=True):
        if child.pid == exclude:
            continue
        try:
            times = child.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def by_group(
    before: Mapping[int, ThreadCpu], after: Mapping[int, ThreadCpu], process_s: float, known: Attribution
) -> dict[str, float]:
    """CPU seconds per group between two samples; ``process_s`` is the process's own CPU over the same
    span, whose remainder (threads that ended in between) counts as "other"."""
    out = dict.fromkeys(GROUPS, 0.0)
    for tid, now in after.items():
        then = before.get(tid)
        spent = now.cpu_s - (then.cpu_s if then is not None and then.name == now.name else 0.0)
        out[group_of(now, known)] += max(0.0, spent)
    out["other"] += max(0.0, process_s - sum(out.values()))
    return out


def by_name(before: Mapping[int, ThreadCpu], after: Mapping[int, ThreadCpu]) -> dict[str, tuple[int, float]]:
    """Threads alive at the end, by name: how many, and their CPU seconds between the samples."""
    out: dict[str, tuple[int, float]] = {}
    for tid, now in after.items():
        then = before.get(tid)
        spent = now.cpu_s - (then.cpu_s if then is not None and then.name == now.name else 0.0)
        label = now.name if now.python else f"{now.name or '?'} (native)"
        count, total = out.get(label, (0, 0.0))
        out[label] = (count + 1, total + max(0.0, spent))
    return out


def per_frame_ms(cpu_s: float, frames: int) -> float | None:
    """CPU milliseconds per analysed frame, None when none was analysed."""
    return None if frames <= 0 else 1000.0 * cpu_s / frames


def growth_mib(samples: Iterable[tuple[float, int]], from_minute: float) -> float | None:
    """RSS growth (MiB) from the first sample at or after ``from_minute`` to the last sample; None if none."""
    kept = [(m, rss) for m, rss in samples if m >= from_minute]
    if len(kept) < 2:
        return None
    return (kept[-1][1] - kept[0][1]) / 2**20


def p95(values: Iterable[float]) -> float | None:
    data = list(values)
    return None if not data else float(np.percentile(np.asarray(data, dtype=np.float64), 95))
