"""The Settings dialog's Integrations page: the integration settings of the one table, checked by it,
stored in the gallery (read by headless and the console at their next start), and an API token made
there and shown once; a real gallery, the real job pool, offscreen Qt."""

from __future__ import annotations

import os

import pytest
from pytestqt.qtbot import QtBot

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QInputDialog, QPlainTextEdit

from gui.jobs import Jobs
from gui.widgets.settings_dialog import SettingsDialog
from integrations.api.auth import Caller, TokenAuth
from station import settings as table
from storage.gallery import Gallery
from storage.tokens import TokenStore

KEY = bytes(range(32))


def test_the_integrations_page_checks_stores_and_makes_tokens(
    qtbot: QtBot, gallery: Gallery, jobs: Jobs, monkeypatch: pytest.MonkeyPatch, warnings: list[str]
) -> None:
    dialog = SettingsDialog(gallery, jobs, model="facenet-512", key_hex=KEY.hex() + "\n")
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.busy == 0, timeout=30_000)
    pages = [dialog.form_box.tabText(i) for i in range(dialog.form_box.count())]
    assert pages == ["Recognition", "Integrations"]
    assert isinstance(dialog.widgets["webhooks"], QPlainTextEdit)
    assert dialog.values()["mqtt_prefix"] == "facestation" and dialog.values()["api_listen"] == ""

    dialog.set_value("webhooks", '[{"url": "ftp://example/x"}]')
    dialog.set_value("mqtt_prefix", "site/#")
    problems = dialog.problems()
    assert any("webhooks are not valid: webhook 1: the url must be http://" in p for p in problems), problems
    assert any("MQTT topic prefix must be a topic" in p for p in problems), problems
    assert dialog.save() is False and gallery.get_setting(table.WEBHOOKS) is None

    hooks = '[{"url": "http://127.0.0.1:8123/api/webhook/fs", "events": ["watchlist_hit"], "secret": "s"}]'
    dialog.set_value("webhooks", hooks)
    dialog.set_value("mqtt_prefix", "site/facestation")
    dialog.set_value("mqtt_broker", "127.0.0.1:1883")
    dialog.set_value("api_listen", "127.0.0.1:8765")
    with qtbot.waitSignal(dialog.settings_changed, timeout=30_000) as saved:
        assert dialog.save() is True
    assert saved.args == [
        {
            table.WEBHOOKS: hooks,
            table.MQTT_PREFIX: "site/facestation",
            table.MQTT_BROKER: "127.0.0.1:1883",
            table.API_LISTEN: "127.0.0.1:8765",
        }
    ]  # what changed; the recognition settings were not touched
    assert gallery.get_setting(table.MQTT_BROKER) == "127.0.0.1:1883" and gallery.get_setting(table.WEBHOOKS) == hooks

    again = SettingsDialog(gallery, jobs, model="facenet-512", key_hex=KEY.hex())
    qtbot.addWidget(again)
    qtbot.waitUntil(lambda: again.busy == 0, timeout=30_000)
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("home assistant", True))
    again.make_token()
    qtbot.waitUntil(lambda: bool(again.token_shown), timeout=30_000)
    assert isinstance(TokenAuth(TokenStore(gallery), KEY).check(f"Bearer {again.token_shown}"), Caller)
    assert [t.name for t in TokenStore(gallery).all()] == ["home assistant"]
    assert warnings == []
