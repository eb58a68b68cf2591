"""One table of settings (station/settings.py): the recogniser, the Settings dialog and the command line
accept exactly the same values, and refuse the others naming the setting and its range."""

from __future__ import annotations

import argparse
import os

import pytest
from pytestqt.qtbot import QtBot

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from gui.jobs import Jobs
from gui.widgets.settings_dialog import SettingsDialog
from station import settings as table
from station.runtime import RecognitionSettings, calibrated_threshold
from station.settings import SettingError
from storage.gallery import Gallery

MODEL = "facenet-512"
# Values to try per setting: inside, on and just beyond each end, and well outside.
TRIALS: dict[str, list[object]] = {
    "threshold": [0.02, 0.049, 0.05, 0.3, 0.639, 0.99, 0.995, 1.0, 1.5],
    "min_face_px": [0, 4, 11, 12, 40, 1000, 1001, 1500, 2000],
    "max_rate_hz": [0.0, 0.05, 0.1, 5.0, 60.0, 60.5, 80.0, 100.0],
    "retention_days": [0, 1, 90, 36500, 36501, 50000],
}


def table_accepts(name: str, value: object) -> bool:
    try:
        table.parse(name, value)
    except SettingError:
        return False
    return True


def recogniser_accepts(name: str, value: object) -> bool:
    base = RecognitionSettings(threshold=calibrated_threshold(MODEL))
    try:
        RecognitionSettings(**{**base.__dict__, name: value})
    except ValueError:
        return False
    return True


def cli_accepts(name: str, value: object) -> bool:
    parser = argparse.ArgumentParser(exit_on_error=False)
    table.add_arguments(parser, name)
    flag = table.setting(name).flag
    assert flag is not None
    try:
        args = parser.parse_args([flag, str(value)])
    except argparse.ArgumentError:
        return False
    return table.cli_overrides(args) == {name: table.parse(name, value)}


def test_the_recogniser_refuses_what_the_dialog_refuses() -> None:
    # Before the one table: the recogniser took any threshold in 0..1 and faces up to 2000 px, the
    # dialog only 0.05..0.99 and 12..1000 px, so a value stored one way was refused the other.
    with pytest.raises(ValueError, match=r"minimum face size must be between 12 and 1000 px \(it is 1500\)"):
        RecognitionSettings(threshold=0.6, min_face_px=1500)
    with pytest.raises(ValueError, match=r"recognition threshold must be between 0.05 and 0.99 \(it is 0.02\)"):
        RecognitionSettings(threshold=0.02)
    assert RecognitionSettings(threshold=0.6, max_rate_hz=0).max_rate_hz is None  # 0: no limit, as in the dialog


def test_recogniser_and_command_line_accept_exactly_what_the_table_accepts() -> None:
    for name, values in TRIALS.items():
        for value in values:
            accepted = table_accepts(name, value)
            if name in ("threshold", "min_face_px", "max_rate_hz"):
                assert recogniser_accepts(name, value) == accepted, (name, value)
            if table.setting(name).flag is not None:
                assert cli_accepts(name, value) == accepted, (name, value)


def test_the_dialog_accepts_exactly_what_the_table_accepts(qtbot: QtBot, gallery: Gallery, jobs: Jobs) -> None:
    dialog = SettingsDialog(gallery, jobs, model=MODEL)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.busy == 0, timeout=30_000)
    assert set(dialog.widgets) == {s.name for s in table.SETTINGS}, "every setting of the table has its row"
    assert dialog.values()["threshold"] == calibrated_threshold(MODEL)
    for name, values in TRIALS.items():
        good = dialog.raw_values()[name]
        for value in values:
            dialog.set_value(name, value)
            assert dialog.raw_values()[name] == value, (name, value, "the form can hold it")
            assert (dialog.problems() == []) == table_accepts(name, value), (name, value)
            if name in ("threshold", "min_face_px", "max_rate_hz"):
                assert recogniser_accepts(name, value) == (dialog.problems() == []), (name, value)
        dialog.set_value(name, good)
    dialog.set_value("min_face_px", 1500)
    assert dialog.save() is False
    assert dialog.problems_label.text() == "The minimum face size must be between 12 and 1000 px (it is 1500)."
    assert gallery.get_setting(table.MIN_FACE) is None, "nothing stored"


def test_errors_name_the_setting_and_its_range() -> None:
    parser = argparse.ArgumentParser(prog="headless", exit_on_error=False)
    table.add_arguments(parser)
    with pytest.raises(argparse.ArgumentError, match=r"--threshold: The recognition threshold must be between"):
        parser.parse_args(["--threshold", "0.02"])
    with pytest.raises(argparse.ArgumentError, match=r"must be 0 \(no limit\) or between 0.1 and 60 Hz \(it is 90\)"):
        parser.parse_args(["--max-rate", "90"])
    with pytest.raises(argparse.ArgumentError, match="Ray cluster address must be HOST:PORT"):
        parser.parse_args(["--ray-address", "no port"])
    args = parser.parse_args(["--max-rate", "0", "--ray-address", "10.0.0.5:6379"])
    assert (args.threshold, args.max_rate, args.ray_address) == (None, 0.0, "10.0.0.5:6379")
    assert table.cli_overrides(args) == {"max_rate_hz": 0.0, "ray_address": "10.0.0.5:6379"}
    assert "Accepts between 0.05 and 0.99" in parser.format_help()
    with pytest.raises(SettingError, match="must be a whole number"):
        table.parse("min_face_px", 40.5)
    with pytest.raises(SettingError, match="must be on or off"):
        table.parse("alerts_unknown", "maybe")


def test_stored_values_are_checked_by_the_same_rule(gallery: Gallery) -> None:
    assert RecognitionSettings.from_gallery(gallery, MODEL).threshold == calibrated_threshold(MODEL)
    gallery.set_setting(table.MAX_RATE, 0)
    gallery.set_setting(table.MIN_FACE, 60)
    got = RecognitionSettings.from_gallery(gallery, MODEL, threshold=0.7, max_rate_hz=None)
    assert (got.threshold, got.min_face_px, got.max_rate_hz) == (0.7, 60, None)
    gallery.set_setting(table.MIN_FACE, 1500)  # e.g. written by an older version
    with pytest.raises(SettingError, match=r"stored setting recognition.min_face_px: The minimum face size must be"):
        RecognitionSettings.from_gallery(gallery, MODEL)
    lenient = table.load(gallery.get_setting, MODEL, strict=False)
    assert lenient["min_face_px"] == 40 and "recognition.min_face_px" in lenient.problems[0]


def test_the_threshold_says_what_it_means_from_the_calibration(qtbot: QtBot, gallery: Gallery, jobs: Jobs) -> None:
    """Strictness made legible: the shipped threshold names about 1 stranger in 100 (the calibration's
    95% bound) and says how many enrolled faces it misses; a stricter one names fewer and misses more."""
    from vision.embedders.calibrated import FACENET_512, expected_at, in_words

    shipped = expected_at("facenet-512", FACENET_512.identification_threshold)
    assert shipped is not None and shipped.fpir_upper == pytest.approx(0.0098)
    assert in_words(shipped).startswith("about 1 stranger in 100 named; about 10 in 100 enrolled faces missed")
    stricter, looser = expected_at("facenet-512", 0.70), expected_at("facenet-512", 0.60)
    assert stricter is not None and looser is not None
    assert stricter.fpir_upper < shipped.fpir_upper < looser.fpir_upper
    assert stricter.fnir > shipped.fnir > looser.fnir
    assert expected_at("vggface2-2048", 0.5) is None, "an uncalibrated model says nothing rather than guess"

    dialog = SettingsDialog(gallery, jobs, model="facenet-512")
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.busy == 0, timeout=10_000)
    dialog.set_value("threshold", FACENET_512.identification_threshold)
    assert dialog.meaning.text().startswith(f"At {FACENET_512.identification_threshold:.3f}: about 1 stranger in 100")
    dialog.set_value("threshold", 0.70)
    assert "1 stranger in 500" in dialog.meaning.text()
