"""edge.toml: parsed with tomllib and validated; every mistake is a ConfigError naming the key."""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

GIB = 1024**3
DEFAULT_MAX_BYTES = 2 * GIB
MIN_MAX_BYTES = 2 * 10**9  # R-5.2.1.5: local cache >= 2 GB
MIN_INTERVAL_S, MAX_INTERVAL_S, DEFAULT_INTERVAL_S = 60, 3600, 300  # R-5.2.1.4
MIN_KEEPALIVE, MAX_KEEPALIVE = 60, 120
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_CODE = re.compile(r"^[A-Za-z0-9]{8}$")
DRIVERS = ("modbus_tcp", "fake")


class ConfigError(ValueError):
    pass


@dataclass
class Point:
    data_code: str
    unit: str = ""
    min: float | None = None
    max: float | None = None
    # modbus_tcp
    address: int = 0
    register: str = "holding"  # holding | input
    type: str = "float32"  # float32 | int16 | uint16 | int32 | uint32
    word_order: str = "big"  # big (ABCD) | little (CDAB)
    scale: float = 1.0
    # fake
    start: float = 0.0
    step: float = 1.0
    values: list[float] | None = None  # cycled when given (fake)


@dataclass
class Device:
    source_id: str
    driver: str
    interval_s: int = DEFAULT_INTERVAL_S
    points: list[Point] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 502
    unit_id: int = 1
    timeout_s: float = 3.0


@dataclass
class Platform:
    mqtt_url: str
    park: str
    client_id: str
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    username: str | None = None
    password: str | None = None
    keepalive: int = 60
    time_zone: str = "Asia/Shanghai"
    batch_size: int = 200

    @property
    def tls(self) -> bool:
        return urlsplit(self.mqtt_url).scheme == "mqtts"

    @property
    def host(self) -> str:
        return urlsplit(self.mqtt_url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.mqtt_url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass
class BufferCfg:
    path: str
    max_bytes: int = DEFAULT_MAX_BYTES
    allow_small_for_tests: bool = False


@dataclass
class Testing:
    time_scale: float = 1.0  # >1 compresses time: virtual clock runs time_scale times faster (tests, demos)


@dataclass
class Config:
    platform: Platform
    buffer: BufferCfg
    devices: list[Device]
    testing: Testing = field(default_factory=Testing)


def _take(table: dict, where: str, known: dict[str, type | tuple], required: tuple[str, ...] = ()) -> dict:
    if not isinstance(table, dict):
        raise ConfigError(f"[{where}] must be a table")
    unknown = set(table) - set(known)
    if unknown:
        raise ConfigError(f"[{where}] unknown key(s): {', '.join(sorted(unknown))}")
    for key in required:
        if key not in table:
            raise ConfigError(f"[{where}] {key} is required")
    for key, value in table.items():
        types = known[key]
        if types is float:
            types = (int, float)
        if isinstance(value, bool) and types is not bool:
            raise ConfigError(f"[{where}] {key} has the wrong type (bool)")
        if not isinstance(value, types):
            raise ConfigError(f"[{where}] {key} has the wrong type ({type(value).__name__})")
    return dict(table)


def _interval(value: int, where: str) -> int:
    if not MIN_INTERVAL_S <= value <= MAX_INTERVAL_S:
        raise ConfigError(f"[{where}] interval_s must be {MIN_INTERVAL_S}-{MAX_INTERVAL_S} s, not {value}")
    return value


def parse(data: dict, base_dir: Path | None = None) -> Config:
    base_dir = base_dir or Path.cwd()
    top = _take(data, "top level", {"platform": dict, "buffer": dict, "device": list, "testing": dict},
                ("platform", "buffer", "device"))
    p = _take(top["platform"], "platform", {
        "mqtt_url": str, "park": str, "client_id": str, "ca_file": str, "cert_file": str, "key_file": str,
        "username": str, "password": str, "keepalive": int, "time_zone": str, "batch_size": int,
    }, ("mqtt_url", "park", "client_id"))
    platform = Platform(**p)
    scheme = urlsplit(platform.mqtt_url).scheme
    if scheme not in ("mqtt", "mqtts") or not urlsplit(platform.mqtt_url).hostname:
        raise ConfigError(f"[platform] mqtt_url must be mqtt://host:port or mqtts://host:port, not {platform.mqtt_url}")
    if not _ID.match(platform.park):
        raise ConfigError("[platform] park must be 1-64 chars [A-Za-z0-9._:-]")
    if not _ID.match(platform.client_id):
        raise ConfigError("[platform] client_id must be 1-64 chars [A-Za-z0-9._:-]")
    if not MIN_KEEPALIVE <= platform.keepalive <= MAX_KEEPALIVE:
        raise ConfigError(f"[platform] keepalive must be {MIN_KEEPALIVE}-{MAX_KEEPALIVE} s")
    if not 1 <= platform.batch_size <= 10000:
        raise ConfigError("[platform] batch_size must be 1-10000")
    for key in ("ca_file", "cert_file", "key_file"):
        value = getattr(platform, key)
        if value is not None:
            path = (base_dir / value).resolve()
            if not path.is_file():
                raise ConfigError(f"[platform] {key} {path} does not exist")
            setattr(platform, key, str(path))
    if (platform.cert_file is None) != (platform.key_file is None):
        raise ConfigError("[platform] cert_file and key_file go together")
    try:
        platform.tz  # noqa: B018 - validates the zone name
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"[platform] unknown time_zone {platform.time_zone}") from None

    b = _take(top["buffer"], "buffer", {"path": str, "max_bytes": int, "allow_small_for_tests": bool}, ("path",))
    buffer = BufferCfg(**b)
    buffer.path = str((base_dir / buffer.path).resolve())
    if buffer.max_bytes < MIN_MAX_BYTES and not buffer.allow_small_for_tests:
        raise ConfigError(f"[buffer] max_bytes must be at least {MIN_MAX_BYTES} (2 GB, R-5.2.1.5)")
    if buffer.max_bytes < 16384:
        raise ConfigError("[buffer] max_bytes must be at least 16384")

    testing = Testing(**_take(top.get("testing", {}), "testing", {"time_scale": float}))
    if testing.time_scale <= 0:
        raise ConfigError("[testing] time_scale must be > 0")

    if not top["device"]:
        raise ConfigError("at least one [[device]] is required")
    devices, seen = [], set()
    for i, raw in enumerate(top["device"]):
        where = f"device {i}"
        d = _take(raw, where, {"source_id": str, "driver": str, "interval_s": int, "points": list, "host": str,
                               "port": int, "unit_id": int, "timeout_s": float}, ("source_id", "driver", "points"))
        points = []
        for j, rp in enumerate(d.pop("points")):
            pw = f"{where} point {j}"
            pt = _take(rp, pw, {"data_code": str, "unit": str, "min": float, "max": float, "address": int,
                                "register": str, "type": str, "word_order": str, "scale": float, "start": float,
                                "step": float, "values": list}, ("data_code",))
            point = Point(**pt)
            if not _CODE.match(point.data_code):
                raise ConfigError(f"[{pw}] data_code must be an 8-character code, not {point.data_code!r}")
            if point.min is not None and point.max is not None and point.min > point.max:
                raise ConfigError(f"[{pw}] min > max")
            if point.register not in ("holding", "input"):
                raise ConfigError(f"[{pw}] register must be holding or input")
            if point.type not in ("float32", "int16", "uint16", "int32", "uint32"):
                raise ConfigError(f"[{pw}] type must be float32, int16, uint16, int32 or uint32")
            if point.word_order not in ("big", "little"):
                raise ConfigError(f"[{pw}] word_order must be big or little")
            points.append(point)
        device = Device(points=points, **d)
        if not _ID.match(device.source_id):
            raise ConfigError(f"[{where}] source_id must be 1-64 chars [A-Za-z0-9._:-]")
        if device.source_id in seen:
            raise ConfigError(f"[{where}] duplicate source_id {device.source_id}")
        seen.add(device.source_id)
        if device.driver not in DRIVERS:
            raise ConfigError(f"[{where}] driver must be one of {', '.join(DRIVERS)}")
        if not points:
            raise ConfigError(f"[{where}] needs at least one point")
        _interval(device.interval_s, where)
        devices.append(device)
    return Config(platform=platform, buffer=buffer, devices=devices, testing=testing)


def load(path: str | Path) -> Config:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return parse(data, path.parent)
