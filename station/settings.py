"""Every setting the operator changes, defined once: key, type, default, range, label, help, CLI flag.

The recogniser (:class:`station.runtime.RecognitionSettings`), the console's Settings dialog and
the command-line flags all read this table, so a value accepted one way is accepted every way, and
a refusal names the setting and its range the same way everywhere. The values are stored in the
gallery under their keys, so they survive restarts. No Qt here. (Modelled on vorta's
``store/settings.py``: one list of dicts with key, value, type, label and group.)

Parsing and validation::

    parse("threshold", "0.6")            # 0.6, or SettingError naming the threshold and its range
    load(gallery.get_setting, model)     # every stored value (the defaults where none), checked
    add_arguments(parser, "threshold")   # --threshold, checked by argparse with the same rule
    cli_overrides(args)                  # {"threshold": 0.6} for the flags given

The threshold's default is the model's calibrated one (:data:`CALIBRATED`), resolved per model by
:func:`default_for`.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from station import integration_keys as keys
from station.integration_keys import API_LISTEN as API_LISTEN
from station.integration_keys import API_MAX_RATE as API_MAX_RATE
from station.integration_keys import API_TLS_CERT as API_TLS_CERT
from station.integration_keys import API_TLS_KEY as API_TLS_KEY
from station.integration_keys import MQTT_BROKER as MQTT_BROKER
from station.integration_keys import MQTT_CREDENTIALS as MQTT_CREDENTIALS
from station.integration_keys import MQTT_CROPS as MQTT_CROPS
from station.integration_keys import MQTT_DISCOVERY as MQTT_DISCOVERY
from station.integration_keys import MQTT_PREFIX as MQTT_PREFIX
from station.integration_keys import MQTT_TLS as MQTT_TLS
from station.integration_keys import OUTBOX_MAX as OUTBOX_MAX
from station.integration_keys import WEBHOOKS as WEBHOOKS

Value = bool | int | float | str
Kind = type[bool] | type[int] | type[float] | type[str]


class SettingError(ValueError):
    """A value a setting does not accept; the message names the setting and what it accepts."""


class _Calibrated:
    """The marker for a default that depends on the embedding model: its calibrated 1:N threshold."""

    _instance: _Calibrated | None = None

    def __new__(cls) -> _Calibrated:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "CALIBRATED"


CALIBRATED: Final = _Calibrated()


def calibrated_threshold(model: str) -> float:
    """The model's calibrated 1:N threshold (at most 1% of strangers named, by the documented procedure of
    vision/calibration.py; the figures are in vision/embedders/calibrated.py); loads no model."""
    from vision.embedders.calibrated import VGGFACE2_IDENTIFICATION_THRESHOLD, calibration

    found = calibration(model)
    if found is not None:
        return float(found.identification_threshold)
    if model == "vggface2-2048":  # uncalibrated; its module is the tensorflow extra's, so not imported here
        return VGGFACE2_IDENTIFICATION_THRESHOLD
    raise ValueError(f"unknown model {model!r}")


def calibrated_margin(model: str, default: float) -> float:
    """The model's calibrated margin over the runner-up (in its own score units), else ``default``."""
    from vision.embedders.calibrated import calibration

    found = calibration(model)
    return default if found is None else float(found.margin)


def looks_like_hostport(text: str) -> bool:
    """HOST:PORT of a peer (network/addresses.py is the one parser), without spaces inside."""
    from network.addresses import parse_hostport

    try:
        parse_hostport(text, allow_zero=False)
    except ValueError:
        return False
    return " " not in text.strip()


def _hostport_problem(text: str) -> str | None:
    return None if not text or looks_like_hostport(text) else "must be HOST:PORT"


def parse_hours(text: str) -> tuple[int, int] | None:
    """ "22:00-06:00" as (start, end) minutes after midnight (the span may cross midnight); None for empty.
    ValueError for anything else."""
    if not text.strip():
        return None
    parts = text.replace(" ", "").split("-")
    if len(parts) != 2:
        raise ValueError("must be HH:MM-HH:MM")
    minutes = []
    for part in parts:
        hh, _, mm = part.partition(":")
        if not (hh.isdigit() and mm.isdigit() and len(mm) == 2 and int(hh) < 24 and int(mm) < 60):
            raise ValueError("must be HH:MM-HH:MM")
        minutes.append(int(hh) * 60 + int(mm))
    if minutes[0] == minutes[1]:
        raise ValueError("must span some time (start and end differ)")
    return minutes[0], minutes[1]


def _hours_problem(text: str) -> str | None:
    try:
        parse_hours(text)
    except ValueError as exc:
        return str(exc)
    return None


def camera_names(text: str) -> tuple[str, ...]:
    """A comma-separated list of camera names (empty: every camera)."""
    return tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))


def _cameras_problem(text: str) -> str | None:
    if any(not n.isprintable() or len(n) > 200 for n in camera_names(text)):
        return "must be camera names separated by commas"
    return None


@dataclass(frozen=True)
class Setting:
    """One setting.

    ``low``/``high`` bound a number, inclusive. ``zero_means`` names what 0 stands for where 0 is
    accepted outside the range ("no limit", "keep forever"). ``check`` returns a problem with a text
    value, or None. ``flag`` is the command-line option, where there is one; ``applies`` says when a
    change takes effect.
    """

    name: str
    key: str
    kind: Kind
    default: Value | _Calibrated
    label: str
    help: str
    low: float | None = None
    high: float | None = None
    unit: str = ""
    decimals: int = 0
    step: float = 1.0
    zero_means: str | None = None
    empty_means: str | None = None
    flag: str | None = None
    applies: str = "at once"
    check: Callable[[str], str | None] | None = field(default=None, compare=False, repr=False)
    group: str = "Recognition"  # the Settings dialog's page
    metavar: str | None = None  # the flag's value in --help (default: by kind)
    multiline: bool = False  # edited as several lines of text (the webhooks' JSON)

    @property
    def dest(self) -> str | None:
        """The argparse destination of :attr:`flag` ("--max-rate" -> "max_rate")."""
        return None if self.flag is None else self.flag.lstrip("-").replace("-", "_")

    @property
    def title(self) -> str:
        return self.label[:1].upper() + self.label[1:]

    def accepts_text(self) -> str:
        """What the setting accepts, in words: "between 0.05 and 0.99", "0 (no limit) or between 0.1 and 60 Hz"."""
        if self.kind is bool:
            return "on or off"
        if self.kind is str:
            shapes: dict[Callable[[str], str | None], str] = {
                _hostport_problem: "HOST:PORT",
                _hours_problem: "HH:MM-HH:MM",
                _cameras_problem: "camera names separated by commas",
            }
            shape = shapes.get(self.check, "text") if self.check is not None else "text"
            return f"{shape}, or empty ({self.empty_means})" if self.empty_means else shape
        unit = f" {self.unit}" if self.unit else ""
        span = f"between {self.low:g} and {self.high:g}{unit}"
        return f"0 ({self.zero_means}) or {span}" if self.zero_means else span

    def describe(self, default: Value | None = None) -> str:
        """The help text with what is accepted and the default (for tooltips and ``--help``)."""
        shown = default if default is not None else self.default
        if isinstance(shown, _Calibrated):
            default_text = "the model's calibrated threshold"
        elif isinstance(shown, bool):
            default_text = "on" if shown else "off"
        elif isinstance(shown, str):
            default_text = repr(shown) if shown else f"empty, {self.empty_means}" if self.empty_means else "empty"
        elif self.zero_means and shown == 0:
            default_text = f"0, {self.zero_means}"
        else:
            default_text = f"{shown:g}"
        return f"{self.help} Accepts {self.accepts_text()}; default {default_text}."

    def default_for(self, model: str) -> Value:
        """The default value; the calibrated threshold of ``model`` for :data:`CALIBRATED`."""
        if isinstance(self.default, _Calibrated):
            return calibrated_threshold(model)
        return self.default

    def parse(self, raw: object) -> Value:
        """``raw`` (a stored value, a widget's value, a command-line string) as this setting's type, checked."""
        if self.kind is bool:
            return self._bool(raw)
        if self.kind is str:
            if not isinstance(raw, str):
                raise SettingError(f"The {self.label} must be text (it is {raw!r}).")
            text = raw.strip()
            problem = self.check(text) if self.check is not None else None
            if problem is not None:
                raise SettingError(f"The {self.label} {problem} (it is {text!r}).")
            return text
        number = self._number(raw)
        if self.zero_means and number == 0:
            return int(number) if self.kind is int else 0.0
        assert self.low is not None and self.high is not None
        if not self.low <= number <= self.high:
            raise SettingError(f"The {self.label} must be {self.accepts_text()} (it is {number:g}).")
        return int(number) if self.kind is int else float(number)

    def _number(self, raw: object) -> float:
        what = "a whole number" if self.kind is int else "a number"
        if isinstance(raw, bool):
            raise SettingError(f"The {self.label} must be {what} (it is {raw!r}).")
        if isinstance(raw, (int, float)):
            number = float(raw)
        elif isinstance(raw, str):
            try:
                number = float(raw.strip())
            except ValueError:
                raise SettingError(f"The {self.label} must be {what} (it is {raw!r}).") from None
        elif hasattr(raw, "__float__"):  # numpy scalars
            number = float(raw)
        else:
            raise SettingError(f"The {self.label} must be {what} (it is {raw!r}).")
        if not math.isfinite(number) or (self.kind is int and number != int(number)):
            raise SettingError(f"The {self.label} must be {what} (it is {raw!r}).")
        return number

    def _bool(self, raw: object) -> bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int) and raw in (0, 1):
            return bool(raw)
        if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
            return raw.strip().lower() in _TRUE
        raise SettingError(f"The {self.label} must be on or off (it is {raw!r}).")


def _integration(name: str, key: str, kind: Kind, default: Value, label: str, help: str, **more: Any) -> Setting:
    """A setting of the Integrations page: MQTT, webhooks, the API (each takes effect at the next start)."""
    return Setting(name, key, kind, default, label, help, applies="next start", group=keys.INTEGRATIONS, **more)


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

# Keys under which the values are stored in the gallery.
THRESHOLD: Final = "recognition.threshold"
MIN_FACE: Final = "recognition.min_face_px"
MAX_RATE: Final = "recognition.max_rate_hz"
RETENTION_DAYS: Final = "retention.days"
UNKNOWN_ALERTS: Final = "alerts.unknown"
RAY_ADDRESS: Final = "recognition.ray_address"
STRANGER_CAMERAS: Final = "alerts.strangers.cameras"
STRANGER_HOURS: Final = "alerts.strangers.hours"
STRANGER_RETURNS: Final = "alerts.strangers.returns"
STRANGER_WINDOW: Final = "alerts.strangers.window_min"
STORAGE_MARGIN: Final = "storage.margin_mb"

SETTINGS: Final[tuple[Setting, ...]] = (
    Setting(
        "threshold",
        THRESHOLD,
        float,
        CALIBRATED,
        "recognition threshold",
        "Cosine similarity a face needs to be recognised. Higher: fewer false matches, more faces left unknown.",
        low=0.05,
        high=0.99,
        decimals=3,
        step=0.01,
        flag="--threshold",
    ),
    Setting(
        "min_face_px",
        MIN_FACE,
        int,
        40,
        "minimum face size",
        "Faces smaller than this (the shorter side of the box) are not recognised.",
        low=12,
        high=1000,
        unit="px",
    ),
    Setting(
        "max_rate_hz",
        MAX_RATE,
        float,
        15.0,
        "maximum recognition rate per camera",
        "Frames recognised per second per camera, at most; 0 recognises as fast as the workers go. "
        "The track-first engine detects on every frame it can and embeds a face only when it adds "
        "information, so 15 (a camera's usual frame rate) costs what 5 did before.",
        low=0.1,
        high=60.0,
        unit="Hz",
        decimals=2,
        step=0.5,
        zero_means="no limit",
        flag="--max-rate",
    ),
    Setting(
        "retention_days",
        RETENTION_DAYS,
        int,
        90,
        "sighting retention",
        "Sightings older than this are deleted (watchlist people's are kept); 0 keeps them forever.",
        low=1,
        high=36500,
        unit="days",
        zero_means="keep forever",
    ),
    Setting(
        "alerts_unknown",
        UNKNOWN_ALERTS,
        bool,
        False,
        "alert on new unknown faces",
        "Raise a stranger alarm for a face no one in the gallery matches: on the cameras and in the hours below, "
        "once it came back as often as asked within the window; one alarm per face and window.",
    ),
    Setting(
        "strangers_cameras",
        STRANGER_CAMERAS,
        str,
        "",
        "stranger alarm cameras",
        "The cameras whose unknown faces raise stranger alarms, separated by commas.",
        empty_means="every camera",
        check=_cameras_problem,
    ),
    Setting(
        "strangers_hours",
        STRANGER_HOURS,
        str,
        "",
        "stranger alarm hours",
        "The hours in which unknown faces raise stranger alarms, e.g. 22:00-06:00 (local time).",
        empty_means="at any hour",
        check=_hours_problem,
    ),
    Setting(
        "strangers_returns",
        STRANGER_RETURNS,
        int,
        3,
        "stranger alarm after",
        "An unknown face raises its alarm once it has been seen this often within the window (1: at once).",
        low=1,
        high=100,
        unit="sightings",
    ),
    Setting(
        "strangers_window_min",
        STRANGER_WINDOW,
        int,
        60,
        "stranger alarm window",
        "The window in which an unknown face's sightings are counted; one alarm per face per window.",
        low=1,
        high=10_080,
        unit="min",
    ),
    Setting(
        "storage_margin_mb",
        STORAGE_MARGIN,
        int,
        500,
        "free-space margin",
        "When the gallery's disk has less room than this, the station warns (status bar, an alarm, headless's "
        "storage line) and stores new sightings without their evidence snapshots until room returns.",
        low=1,
        high=1_000_000,
        unit="MB",
    ),
    Setting(
        "ray_address",
        RAY_ADDRESS,
        str,
        "",
        "Ray cluster address",
        "HOST:PORT of a Ray cluster whose workers do the recognition (docs/scaling.md).",
        empty_means="recognise on this PC",
        flag="--ray-address",
        applies="next start",
        check=_hostport_problem,
    ),
    _integration(
        "mqtt_broker",
        keys.MQTT_BROKER,
        str,
        "",
        "MQTT broker",
        "HOST:PORT of the MQTT broker the station publishes its events to (e.g. mosquitto on 1883).",
        empty_means="MQTT off",
        flag="--mqtt",
        check=_hostport_problem,
    ),
    _integration(
        "mqtt_prefix",
        keys.MQTT_PREFIX,
        str,
        "facestation",
        "MQTT topic prefix",
        "Every topic the station publishes starts with this.",
        flag="--mqtt-prefix",
        check=keys.topic_problem,
        metavar="P",
    ),
    _integration(
        "mqtt_credentials",
        keys.MQTT_CREDENTIALS,
        str,
        "",
        "MQTT credentials file",
        "A file holding the broker's USERNAME:PASSWORD (keep it mode 0600); never given on the command line.",
        empty_means="no login",
        flag="--mqtt-credentials",
        check=keys.path_problem,
        metavar="FILE",
    ),
    _integration(
        "mqtt_tls",
        keys.MQTT_TLS,
        bool,
        False,
        "MQTT over TLS",
        "Connect to the broker with TLS, checking its certificate against the system's authorities.",
        flag="--mqtt-tls",
    ),
    _integration(
        "mqtt_discovery",
        keys.MQTT_DISCOVERY,
        str,
        "homeassistant",
        "Home Assistant discovery prefix",
        "Where Home Assistant's MQTT discovery listens: the station announces itself, a sensor per camera "
        "and a presence sensor per enrolled person there.",
        empty_means="no discovery",
        check=keys.discovery_problem,
    ),
    _integration(
        "mqtt_crops",
        keys.MQTT_CROPS,
        bool,
        False,
        "publish face crops over MQTT",
        "Publish each recorded sighting's face crop (JPEG) to PREFIX/camera/NAME/crop.",
    ),
    _integration(
        "webhooks",
        keys.WEBHOOKS,
        str,
        "",
        "webhooks",
        'A JSON list of endpoints: [{"url": "https://…", "secret": "…", "events": ["watchlist_hit"], '
        '"persons": [], "cameras": [], "watchlist_only": false, "timeout_s": 5}] (see the operator\'s guide).',
        empty_means="no webhooks",
        check=keys.webhooks_problem,
        multiline=True,
    ),
    _integration(
        "api_listen",
        keys.API_LISTEN,
        str,
        "",
        "local HTTP API address",
        "HOST:PORT the local HTTP API listens on (127.0.0.1 keeps it on this PC); tokens are required.",
        empty_means="API off",
        flag="--api",
        check=_hostport_problem,
    ),
    _integration(
        "api_tls_cert",
        keys.API_TLS_CERT,
        str,
        "",
        "API TLS certificate",
        "A PEM certificate file: the API then speaks HTTPS (give its key too).",
        empty_means="plain HTTP",
        flag="--api-tls-cert",
        check=keys.path_problem,
        metavar="FILE",
    ),
    _integration(
        "api_tls_key",
        keys.API_TLS_KEY,
        str,
        "",
        "API TLS key",
        "The PEM private key of the API's certificate.",
        empty_means="plain HTTP",
        flag="--api-tls-key",
        check=keys.path_problem,
        metavar="FILE",
    ),
    _integration(
        "api_max_rate",
        keys.API_MAX_RATE,
        int,
        50,
        "API requests served per second",
        "At most this many API requests are served a second; the others wait their turn, so clients that "
        "poll without pause cannot take recognition's CPU.",
        low=1,
        high=10_000,
        unit="requests/s",
    ),
    _integration(
        "outbox_max",
        keys.OUTBOX_MAX,
        int,
        10_000,
        "outbox size per destination",
        "Undelivered events kept for MQTT and for each webhook while it is unreachable; beyond this the "
        "oldest are dropped (counted and logged).",
        low=100,
        high=1_000_000,
        unit="events",
    ),
)

BY_NAME: Final[Mapping[str, Setting]] = {s.name: s for s in SETTINGS}
BY_KEY: Final[Mapping[str, Setting]] = {s.key: s for s in SETTINGS}


def setting(name_or_key: str) -> Setting:
    """The setting called ``name_or_key`` (its name, "threshold", or its key, "recognition.threshold")."""
    found = BY_NAME.get(name_or_key) or BY_KEY.get(name_or_key)
    if found is None:
        raise KeyError(f"no setting {name_or_key!r}")
    return found


def parse(name_or_key: str, raw: object) -> Value:
    """``raw`` checked and converted by the setting's rule; raises :class:`SettingError` naming it and its range."""
    return setting(name_or_key).parse(raw)


def default_for(name_or_key: str, model: str) -> Value:
    return setting(name_or_key).default_for(model)


@dataclass(frozen=True)
class SettingValues:
    """A value for each setting, by name (frozen: it crosses from a loading job to the GUI thread).

    ``problems`` lists stored values that were refused (and replaced by their default) by a lenient load.
    """

    items: tuple[tuple[str, Value], ...]
    problems: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name, value in self.items:
            setting(name).parse(value)

    def __getitem__(self, name: str) -> Value:
        for n, v in self.items:
            if n == name:
                return v
        raise KeyError(name)

    def __iter__(self) -> Iterator[tuple[str, Value]]:
        return iter(self.items)

    def as_dict(self) -> dict[str, Value]:
        return dict(self.items)

    def by_key(self) -> dict[str, Value]:
        """The values under their gallery keys."""
        return {setting(n).key: v for n, v in self.items}

    def number(self, name: str) -> float:
        value = self[name]
        assert isinstance(value, (int, float)) and not isinstance(value, bool)
        return float(value)

    @classmethod
    def checked(cls, values: Mapping[str, object]) -> SettingValues:
        """Every value of ``values`` (by name or key) parsed; raises one :class:`SettingError` listing all problems."""
        items, problems = [], []
        for name, raw in values.items():
            s = setting(name)
            try:
                items.append((s.name, s.parse(raw)))
            except SettingError as exc:
                problems.append(str(exc))
        if problems:
            raise SettingError("\n".join(problems))
        return cls(tuple(items))


def defaults(model: str, names: Iterable[str] | None = None) -> SettingValues:
    chosen = [setting(n) for n in names] if names is not None else list(SETTINGS)
    return SettingValues(tuple((s.name, s.default_for(model)) for s in chosen))


def load(
    get: Callable[[str, Any], Any], model: str, names: Iterable[str] | None = None, *, strict: bool = True
) -> SettingValues:
    """The stored values (``get`` is ``gallery.get_setting``), the defaults where none is stored.

    A stored value the setting refuses raises :class:`SettingError` naming the key; with ``strict`` off it
    is replaced by the default and its problem kept in ``problems``. Runs where the gallery may be read (a job).
    """
    chosen = [setting(n) for n in names] if names is not None else list(SETTINGS)
    items: list[tuple[str, Value]] = []
    problems: list[str] = []
    for s in chosen:
        raw = get(s.key, None)
        if raw is None:
            items.append((s.name, s.default_for(model)))
            continue
        try:
            items.append((s.name, s.parse(raw)))
        except SettingError as exc:
            message = f"stored setting {s.key}: {exc}"
            if strict:
                raise SettingError(message) from None
            problems.append(message + " The default is used.")
            items.append((s.name, s.default_for(model)))
    return SettingValues(tuple(items), tuple(problems))


# ------------------------------------------------------------------ command line


def argparse_type(name_or_key: str) -> Callable[[str], Value]:
    """A ``type=`` for argparse that checks a flag's value by the setting's rule."""
    s = setting(name_or_key)

    def convert(text: str) -> Value:
        try:
            return s.parse(text)
        except SettingError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = s.name  # argparse names the type in some messages
    return convert


def add_arguments(parser: argparse.ArgumentParser, *names: str) -> None:
    """Add the command-line flags of the settings ``names`` (all settings with a flag when none are named).

    Each flag defaults to None (the gallery's setting applies), is checked by the setting's rule, and
    lands in ``args.<dest>`` ("--max-rate" -> ``args.max_rate``); :func:`cli_overrides` reads them back.
    """
    chosen = [setting(n) for n in names] if names else [s for s in SETTINGS if s.flag is not None]
    for s in chosen:
        if s.flag is None:
            raise ValueError(f"setting {s.name!r} has no command-line flag")
        metavar = s.metavar or {float: "X", int: "N", str: "HOST:PORT", bool: "on|off"}[s.kind]
        parser.add_argument(
            s.flag,
            dest=s.dest,
            type=argparse_type(s.name),
            default=None,
            metavar=metavar,
            help=f"{s.describe()} Default here: the gallery's setting.".replace("%", "%%"),
        )


def cli_overrides(args: argparse.Namespace, *names: str) -> dict[str, Value]:
    """The settings given on the command line, by setting name (flags left out are not included)."""
    chosen = [setting(n) for n in names] if names else [s for s in SETTINGS if s.flag is not None]
    out: dict[str, Value] = {}
    for s in chosen:
        value = getattr(args, s.dest or "", None)
        if value is not None:
            out[s.name] = value
    return out
