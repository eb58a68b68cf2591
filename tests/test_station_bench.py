"""Smoke test of bench/station.py's helpers: the replay (real sealed datagrams into a real receiver on
loopback), its schedule, the frames file, the thread accounting and the tables' arithmetic. Nothing timed."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench import station as bench
from bench.station_accounting import (
    Attribution,
    ThreadCpu,
    attribute,
    by_group,
    by_name,
    group_of,
    growth_mib,
    sample_threads,
)
from bench.station_replay import Replay, Schedule, camera_name, read_frames, write_frames
from bench.station_run import parts_plan
from network import keys
from network.udp_receiver import UdpReceiver


def jpegs(count: int) -> list[bytes]:
    out = []
    for i in range(count):
        image = np.full((48, 64, 3), 20 * i, np.uint8)
        ok, buf = cv2.imencode(".jpg", image)
        assert ok
        out.append(buf.tobytes())
    return out


def test_schedule_takes_turns_from_each_cameras_offset() -> None:
    schedule = Schedule(cameras=4, frames=100, fps=10.0, start=0.0)
    sends = list(schedule.until(0.2))
    assert [s.camera for s in sends] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert [s.clip_index for s in sends[:4]] == [0, 25, 50, 75]  # each camera from its own offset
    assert [s.frame_id for s in sends] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert sends[1].due == pytest.approx(0.025) and sends[4].due == pytest.approx(0.1)


def test_schedule_skips_rather_than_catches_up() -> None:
    schedule = Schedule(cameras=1, frames=10, fps=10.0, start=0.0)
    schedule.pop(now=0.0)
    late = schedule.pop(now=5.0)  # five seconds behind: this frame goes, the next is due from now
    assert late.frame_id == 1 and schedule.peek() == pytest.approx(5.0)
    with pytest.raises(ValueError):
        Schedule(cameras=0, frames=10, fps=10.0, start=0.0)


def test_frames_file_round_trip_and_truncation(tmp_path: Path) -> None:
    frames = jpegs(3)
    path = tmp_path / "frames.bin"
    write_frames(path, frames)
    assert read_frames(path) == frames
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match="truncated"):
        read_frames(path)


def test_one_replay_process_feeds_a_real_receiver(tmp_path: Path) -> None:
    key = keys.write_new_key(tmp_path / "station.key")
    with UdpReceiver(key, "127.0.0.1", 0) as rx:
        replay = Replay(key, rx.address, jpegs(4), cameras=3, fps=30.0)
        runner = threading.Thread(target=replay.run, args=(os.getppid(),), daemon=True)
        try:
            runner.start()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len({s.camera for s in rx.stats() if s.frames >= 3}) < 3:
                time.sleep(0.05)
        finally:
            replay.stop()
            runner.join(5)
            replay.close()
        stats = {s.camera: s for s in rx.stats()}
        assert sorted(stats) == [camera_name(i) for i in range(3)]
        assert all(s.frames >= 3 and s.width == 64 and s.height == 48 for s in stats.values())
        assert rx.rejected() == {}
        assert replay.sent_frames >= 9


def test_thread_groups_and_the_remainder() -> None:
    known = Attribution(opencv=frozenset({30}), before=frozenset({31}))
    before = {
        1: ThreadCpu(1, "udp-receiver", True, 1.0),
        2: ThreadCpu(2, "recognition-0", True, 2.0),
        3: ThreadCpu(3, "python", False, 5.0),
        30: ThreadCpu(30, "python", False, 1.0),
    }
    after = {
        1: ThreadCpu(1, "udp-receiver", True, 1.5),
        2: ThreadCpu(2, "recognition-0", True, 4.0),
        3: ThreadCpu(3, "python", False, 6.0),
        4: ThreadCpu(4, "gallery-writer", True, 0.25),  # new since the first sample: all of it counts
        30: ThreadCpu(30, "python", False, 1.5),
        31: ThreadCpu(31, "python", False, 0.0),
    }
    groups = by_group(before, after, process_s=5.0, known=known)
    assert groups == {
        "receiver": 0.5,
        "recognition": 2.0,
        "inference runtime": 1.0,
        "OpenCV workers": 0.5,
        "writer": 0.25,
        "worker processes": 0.0,  # headless --worker-processes only (their CPU, counted from /proc)
        "other": 0.75,  # the process's CPU the threads still there do not account for (ended threads)
    }
    assert group_of(after[31], known) == "other" and group_of(after[3]) == "inference runtime"
    assert by_name(before, after)["python (native)"] == (3, 1.5)


def test_sampling_this_process() -> None:
    known = attribute()
    threads = sample_threads()
    assert threading.get_native_id() in threads and threads[threading.get_native_id()].python
    assert known.opencv <= set(threads) | known.opencv  # OpenCV's pool, if it made one, is native
    assert growth_mib([(0.0, 100 * 2**20), (3.0, 200 * 2**20), (5.0, 230 * 2**20)], 3.0) == 30.0
    assert growth_mib([(0.0, 1)], 3.0) is None


def test_the_stages_alone_follow_the_measured_rate() -> None:
    assert parts_plan(frames=138, cameras=2, rate=15.0, fps=15.0) == (1, [0, 69])
    stride, starts = parts_plan(frames=138, cameras=16, rate=2.0, fps=15.0)
    assert stride == 8 and len(starts) == 9 and starts[1] == 8  # 18 frames a pass, 150 frames in all


def test_summary_and_configurations(tmp_path: Path) -> None:
    result = {
        "seconds": 10.0,
        "cameras": 2,
        "analysed": {"cam-01": 100, "cam-02": 50},
        "process_s": 3.0,
        "groups_s": {"recognition": 1.5},
        "first_decision_p95": {"cam-01": 120.0, "cam-02": None},
        "replay_s": 0.1,
        "errors": {"cam-01": 0, "cam-02": 1},
        "parts": {"process_s": 1.0, "frames": 100},
    }
    s = bench.summary(result)
    assert (s["mean"], s["min"], s["ms"], s["parts_ms"], s["ratio"]) == (7.5, 5.0, 20.0, 10.0, 2.0)
    assert s["group_ms"]["recognition"] == 10.0 and s["first_decision"] == 120.0 and s["errors"] == 1
    args = bench.build_parser().parse_args(["--cameras", "2,16", "--variant", "cv1:OPENCV_FOR_THREADS_NUM=1"])
    todo = bench.configs(args)
    assert [(c.cameras, c.env) for c in todo] == [
        (2, {}),
        (2, {"OPENCV_FOR_THREADS_NUM": "1"}),
        (16, {}),
        (16, {"OPENCV_FOR_THREADS_NUM": "1"}),
    ]
    with pytest.raises(SystemExit):
        bench.parse_variant("bad:NOEQUALS")
    with pytest.raises(SystemExit):
        bench.parse_tree(str(tmp_path))  # no station there
