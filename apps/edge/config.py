"""edge.toml: parsed with tomllib and validated; every mistake is a ConfigError naming the key."""
from __future__ import annotations

import os
import re
import stat
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
CREDENTIAL_NAME = "mqtt-password"  # the file's name in systemd's $CREDENTIALS_DIRECTORY (LoadCredential=)
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_CODE = re.compile(r"^[A-Za-z0-9]{8}$")
DRIVERS = ("modbus_tcp", "modbus_rtu", "dlt645_tcp", "dlt645_serial", "fake")
DLT645_DRIVERS = ("dlt645_tcp", "dlt645_serial")
SERIAL_DRIVERS = ("modbus_rtu", "dlt645_serial")
MODBUS_DRIVERS = ("modbus_tcp", "modbus_rtu")
_METER_ADDRESS = re.compile(r"^[0-9A-Fa-f]{12}$")
_DI = re.compile(r"^([0-9A-Fa-f]{4}|[0-9A-Fa-f]{8})$")


class ConfigError(ValueError):
    pass


@dataclass
class Point:
    data_code: str
    unit: str = ""
    min: float | None = None
    max: float | None = None
    # modbus_tcp / modbus_rtu: a point of the device's register map by ``name``, or an explicit one
    name: str | None = None
    function: int | None = None  # 3 holding | 4 input; when absent, from ``register``
    address: int = 0
    register: str = "holding"  # holding | input
    type: str = "float32"  # codecs.modbus.TYPES: (u)int16/32/64, float32/64
    byte_order: str = "big"
    word_order: str = "big"  # big (ABCD) | little (CDAB)
    scale: float = 1.0
    offset: float = 0.0
    # dlt645_tcp: data identifier, 8 hex digits (2007) or 4 (1997)
    di: str | None = None
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
    register_map: str | None = None  # modbus: a codecs.modbus.REGISTER_MAPS name ("eastron-sdm630", …)
    serial: str | None = None  # modbus_rtu, dlt645_serial: the serial port (e.g. /dev/ttyUSB0)
    baudrate: int = 9600  # modbus_rtu, dlt645_serial (DL/T 645-2007 meters usually 2400)
    parity: str | None = None  # serial: N, E, O (default: N for Modbus RTU, E for DL/T 645)
    address: str | None = None  # dlt645_tcp, dlt645_serial: the meter's 12-digit address

    @property
    def bus(self) -> tuple:
        """Devices with the same bus share one poller: one transaction at a time on it."""
        if self.driver in SERIAL_DRIVERS:
            return ("serial", self.serial)
        return ("dlt645" if self.driver == "dlt645_tcp" else "modbus", self.host, self.port)


@dataclass
class Platform:
    mqtt_url: str
    park: str
    client_id: str
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    username: str | None = None
    password_file: str | None = None  # resolved: $CREDENTIALS_DIRECTORY/mqtt-password, else this file
    keepalive: int = 60
    time_zone: str = "Asia/Shanghai"
    batch_size: int = 200
    protocol: int = 5  # MQTT 5 (a refused PUBACK is seen); 4 = 3.1.1 only for brokers without MQTT 5

    def read_password(self) -> str | None:
        """The MQTT password, read from its file now (so a rotated password is used on the next connect);
        raises ConfigError when the file became readable by others or vanished."""
        if self.password_file is None:
            return None
        return read_secret(Path(self.password_file))

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
        "username": str, "password": str, "password_file": str, "keepalive": int, "time_zone": str,
        "batch_size": int, "protocol": int,
    }, ("mqtt_url", "park", "client_id"))
    if "password" in p:
        raise ConfigError("[platform] password does not belong in the configuration file: put it in a file of its "
                          "own (chmod 600) named by password_file, or in systemd's credential "
                          f"{CREDENTIAL_NAME} (LoadCredential=)")
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
    if platform.key_file is not None:
        check_private(Path(platform.key_file), "[platform] key_file")
    if platform.protocol not in (4, 5):
        raise ConfigError("[platform] protocol must be 5 (MQTT 5) or 4 (MQTT 3.1.1)")
    platform.password_file = _password_file(platform.password_file, base_dir)
    if platform.password_file is not None:
        platform.read_password()  # readable, private, not empty
        if platform.username is None:
            platform.username = platform.client_id  # the broker's user for a gateway is its sourceId
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
                               "port": int, "unit_id": int, "timeout_s": float, "map": str, "codes": dict,
                               "serial": str, "baudrate": int, "parity": str, "address": str},
                       ("source_id", "driver"))
        register_map = d.pop("map", None)
        raw_points = list(d.pop("points", []))
        codes = d.pop("codes", {})
        if codes and register_map is None:
            raise ConfigError(f"[{where}] codes needs a map")
        raw_points += [{"name": name, "data_code": code} for name, code in codes.items()]
        device = Device(register_map=register_map, **d)
        if register_map is not None:
            from apps.protocols.codecs.modbus import REGISTER_MAPS  # a pure codec

            if device.driver not in MODBUS_DRIVERS:
                raise ConfigError(f"[{where}] map is for the modbus drivers")
            if register_map not in REGISTER_MAPS:
                raise ConfigError(f"[{where}] map must be one of {', '.join(REGISTER_MAPS)}")
        device.points = [_point(rp, f"{where} point {j}", device) for j, rp in enumerate(raw_points)]
        points = device.points
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
        _check_driver(device, where)
        devices.append(device)
    buses: dict[tuple, Device] = {}
    for i, device in enumerate(devices):
        if device.driver == "fake":
            continue
        first = buses.setdefault(device.bus, device)
        if (first.timeout_s, first.baudrate) != (device.timeout_s, device.baudrate):
            raise ConfigError(f"[device {i}] shares its bus with {first.source_id}: timeout_s and baudrate "
                              "must be the same")
        if first is not device and device.driver in MODBUS_DRIVERS and first.unit_id == device.unit_id:
            raise ConfigError(f"[device {i}] unit_id {device.unit_id} is already {first.source_id}'s on this bus")
    return Config(platform=platform, buffer=buffer, devices=devices, testing=testing)


_POINT_KEYS = {"data_code": str, "unit": str, "min": float, "max": float, "name": str, "function": int,
               "address": int, "register": str, "type": str, "byte_order": str, "word_order": str, "scale": float,
               "offset": float, "di": str, "start": float, "step": float, "values": list}


def _point(raw: dict, pw: str, device: Device) -> Point:
    point = Point(**_take(raw, pw, _POINT_KEYS, ("data_code",)))
    if not _CODE.match(point.data_code):
        raise ConfigError(f"[{pw}] data_code must be an 8-character code, not {point.data_code!r}")
    if point.min is not None and point.max is not None and point.min > point.max:
        raise ConfigError(f"[{pw}] min > max")
    if point.register not in ("holding", "input"):
        raise ConfigError(f"[{pw}] register must be holding or input")
    if point.function is None:
        point.function = 3 if point.register == "holding" else 4
    if device.driver not in MODBUS_DRIVERS:
        if point.name is not None:
            raise ConfigError(f"[{pw}] name (a register map point) is for the modbus drivers")
        return point
    from apps.protocols.codecs import modbus as codec  # a pure codec

    if point.name is not None:
        if device.register_map is None:
            raise ConfigError(f"[{pw}] name {point.name!r} needs the device's map")
        known = {p.name: p for p in codec.load_map(codec.REGISTER_MAPS[device.register_map])}
        if point.name not in known:
            raise ConfigError(f"[{pw}] {device.register_map} has no point {point.name!r}")
        if not point.unit and known[point.name].unit:
            point.unit = known[point.name].unit
        return point
    try:
        modbus_point(point)
    except ValueError as exc:
        raise ConfigError(f"[{pw}] {exc}") from None
    return point


def modbus_point(point: Point, register_map: str | None = None):
    """The codecs.modbus.Point a configured point reads: its map's point with this data code and unit, or
    the explicit one (value = raw × scale + offset)."""
    from dataclasses import replace

    from apps.protocols.codecs import modbus as codec

    if point.name is not None and register_map is not None:
        known = next(p for p in codec.load_map(codec.REGISTER_MAPS[register_map]) if p.name == point.name)
        return replace(known, data_code=point.data_code, unit=point.unit or known.unit)
    return codec.Point(name=point.data_code, function=point.function, address=point.address, type=point.type,
                       byte_order=point.byte_order, word_order=point.word_order, scale=point.scale,
                       offset=point.offset, unit=point.unit or None, data_code=point.data_code)


def _check_driver(device: Device, where: str) -> None:
    if not 0 < device.timeout_s <= 60:
        raise ConfigError(f"[{where}] timeout_s must be > 0 and <= 60")
    if not 1 <= device.port <= 65535:
        raise ConfigError(f"[{where}] port must be 1-65535")
    if device.driver in MODBUS_DRIVERS and not 0 <= device.unit_id <= 247:
        raise ConfigError(f"[{where}] unit_id must be 0-247")
    if device.driver in SERIAL_DRIVERS and not device.serial:
        raise ConfigError(f"[{where}] {device.driver} needs serial (the port, e.g. /dev/ttyUSB0)")
    if device.parity is not None and device.parity not in ("N", "E", "O"):
        raise ConfigError(f"[{where}] parity must be N, E or O")
    if device.driver in DLT645_DRIVERS:
        if device.address is None or not _METER_ADDRESS.match(device.address):
            raise ConfigError(f"[{where}] {device.driver} needs address, the meter's 12-digit address")
        device.address = device.address.upper()
        for j, point in enumerate(device.points):
            if point.di is None or not _DI.match(point.di):
                raise ConfigError(f"[{where} point {j}] di must be 8 hex digits (2007) or 4 (1997)")
            point.di = point.di.upper()


def _password_file(configured: str | None, base_dir: Path) -> str | None:
    """systemd's credential wins (LoadCredential=mqtt-password:... puts it in $CREDENTIALS_DIRECTORY), else
    the configured file, relative to the configuration's folder."""
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds and (Path(creds) / CREDENTIAL_NAME).is_file():
        return str(Path(creds) / CREDENTIAL_NAME)
    if configured is None:
        return None
    path = (base_dir / configured).resolve()
    if not path.is_file():
        raise ConfigError(f"[platform] password_file {path} does not exist")
    return str(path)


def check_private(path: Path, what: str) -> None:
    """A secret must not be readable by other users: refuse a world-accessible or group-writable file."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"{what} {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXO | stat.S_IWGRP):
        raise ConfigError(f"{what} {path} is accessible to other users (mode {stat.filemode(mode)}): "
                          f"chmod 600 {path}")


def read_secret(path: Path) -> str:
    check_private(path, "[platform] password_file")
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"[platform] password_file {path}: {exc.strerror}") from None
    if not value:
        raise ConfigError(f"[platform] password_file {path} is empty")
    return value


def load(path: str | Path) -> Config:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return parse(data, path.parent)
