"""The camera sender's systemd unit: it verifies, it is hardened, and its arguments come from the env file."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

UNIT = ROOT / "packaging" / "facestation-sender.service"
ENV = ROOT / "packaging" / "sender.env"


def _unit_with_real_binary(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's installed entry point, so verify can check it."""
    binary = Path(shutil.which("facestation-sender") or ROOT / ".venv" / "bin" / "facestation-sender")
    if not binary.exists():
        pytest.skip("the facestation-sender entry point is not installed")
    text = UNIT.read_text().replace("/opt/facestation-sender/bin/facestation-sender", str(binary))
    path = tmp_path / UNIT.name
    path.write_text(text)
    return path


def _systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed here")
    return tool


def test_sender_unit_verifies(tmp_path: Path) -> None:
    tool = _systemd_analyze()
    result = subprocess.run(
        [tool, "verify", "--man=no", str(_unit_with_real_binary(tmp_path))], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_sender_unit_is_hardened(tmp_path: Path) -> None:
    text = UNIT.read_text()
    for setting in (
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "Restart=on-failure",
        "User=facestation-sender",
        "CapabilityBoundingSet=\n",
    ):
        assert setting in text, setting
    tool = _systemd_analyze()
    result = subprocess.run(
        [tool, "security", "--offline=yes", str(_unit_with_real_binary(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert match, result.stdout[-2000:] + result.stderr
    assert float(match.group(1)) <= 2.5, f"exposure {match.group(1)} (0 is best, 10 is unprotected)"


def test_sender_arguments_come_from_the_env_file() -> None:
    unit = UNIT.read_text()
    assert "EnvironmentFile=/etc/facestation/sender.env" in unit
    assert "--key-file /etc/facestation/station.key" in unit
    env = dict(line.split("=", 1) for line in ENV.read_text().splitlines() if line.strip() and not line.startswith("#"))
    used = set(re.findall(r"\$\{?([A-Z_]+)\}?", unit.split("ExecStart=", 1)[1].splitlines()[0]))
    assert used == set(env), f"the unit uses {used}, the env file sets {set(env)}"


def test_desktop_entry_and_icon() -> None:
    """The station's desktop entry names the frozen binary and an icon that ships as SVG and 256 px PNG."""
    import cv2

    text = (ROOT / "packaging" / "facestation.desktop").read_text()
    assert text.startswith("[Desktop Entry]\n")
    entry = dict(line.split("=", 1) for line in text.splitlines()[1:] if line and not line.startswith("#"))
    assert entry["Type"] == "Application" and entry["Name"] == "FaceStation" and entry["Terminal"] == "false"
    assert entry["Exec"] == "/opt/facestation/facestation" and entry["Icon"] == "facestation"
    assert (ROOT / "packaging" / "facestation.svg").read_text().lstrip().startswith("<?xml")
    png = cv2.imread(str(ROOT / "packaging" / "facestation.png"), cv2.IMREAD_UNCHANGED)
    assert png is not None and png.shape == (256, 256, 4)
    validator = shutil.which("desktop-file-validate")
    if validator:
        result = subprocess.run(
            [validator, str(ROOT / "packaging" / "facestation.desktop")], capture_output=True, check=False
        )
        assert result.returncode == 0, result.stdout


def test_operators_guide_answers_each_question_and_is_linked() -> None:
    guide = (ROOT / "docs" / "operator-guide.md").read_text()
    for heading in (
        "## Installing the station",
        "## Pairing a camera",
        "## When a camera shows offline",
        "## Tuning the threshold",
        "## Backup and restore",
        "## Retention and erasure (privacy law)",
        "## Firewall ports",
    ):
        assert f"\n{heading}\n" in guide, heading
    for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", guide):
        if "://" not in link:
            assert (ROOT / "docs" / link).is_file(), link
    assert "47800" in guide and "47810" in guide and "5353" in guide and "224.0.0.251" in guide
    assert "(docs/operator-guide.md)" in (ROOT / "README.md").read_text()
