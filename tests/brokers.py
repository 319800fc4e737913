"""Real MQTT brokers for tests: Mosquitto (MQTT 3.1.1 and 5, TLS) and the pure-Python amqtt (MQTT 3.1.1).

Plain functions and context managers, no pytest fixtures; conftest wires them in.

    ca = make_ca(tmp_path)
    with Mosquitto(tmp_path / "broker", tls_ca=ca) as broker:
        broker.port, broker.tls_port, broker.ca_file, broker.url, broker.tls_url

Each broker runs in the foreground as a child process on free ports of 127.0.0.1 (never 1883/8883, which a
system broker may hold) and is stopped when the ``with`` block ends.
"""
from __future__ import annotations

import abc
import contextlib
import datetime as dt
import ipaddress
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


# --- discovery --------------------------------------------------------------------------------------------------

def find_mosquitto() -> str | None:
    """Path of the mosquitto broker binary (Debian puts it in /usr/sbin, often not on a user's PATH)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/usr/local/bin/mosquitto"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def mosquitto_version() -> tuple[int, ...]:
    """(2, 0, 11) for Debian 12's broker; () when mosquitto is missing."""
    binary = find_mosquitto()
    if binary is None:
        return ()
    out = subprocess.run([binary, "-h"], capture_output=True, text=True, timeout=10).stdout
    match = re.search(r"mosquitto version (\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(part) for part in match.groups()) if match else ()


def find_mosquitto_passwd() -> str | None:
    found = shutil.which("mosquitto_passwd")
    if found:
        return found
    for candidate in ("/usr/bin/mosquitto_passwd", "/usr/local/bin/mosquitto_passwd"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1 (bind to port 0 and let the kernel choose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = START_TIMEOUT, proc: subprocess.Popen | None = None) -> None:
    """Block until host:port accepts TCP connections; fail early when ``proc`` has exited."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"broker exited with status {proc.returncode} before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f} s") from None
            time.sleep(0.05)


# --- a certificate authority made in the test -------------------------------------------------------------------

def _write_key(key, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


@dataclass
class CA:
    """A throw-away certificate authority (ECDSA P-256). ``cert_file``/``key_file`` are PEM files."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_file: Path
    key_file: Path

    def issue(self, common_name: str, tmpdir, dns: list[str] | None = None, ip: list[str] | None = None,
              *, client: bool = False) -> tuple[Path, Path]:
        """Issue a leaf certificate signed by this CA; returns (certfile, keyfile) written as PEM into tmpdir.

        Server certificates (the default) carry subjectAltNames ``dns`` (default ["localhost"]) and ``ip``
        (default ["127.0.0.1"]); ``client=True`` makes a client-auth certificate for mutual TLS.
        """
        dns = ["localhost"] if dns is None else dns
        ip = ["127.0.0.1"] if ip is None else ip
        tmpdir = Path(tmpdir)
        tmpdir.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        sans = [x509.DNSName(name) for name in dns] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ip]
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                         data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client
                                                  else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in common_name)
        certfile, keyfile = tmpdir / f"{stem}.crt", tmpdir / f"{stem}.key"
        certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, keyfile)
        return certfile, keyfile


def make_ca(tmpdir, common_name: str = "CarbonPark test CA") -> CA:
    """Create a CA certificate and key (PEM: ``ca.crt``, ``ca.key``) in tmpdir."""
    tmpdir = Path(tmpdir)
    tmpdir.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmpdir / "ca.crt", tmpdir / "ca.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, key_file)
    return CA(cert=cert, key=key, cert_file=cert_file, key_file=key_file)


def write_password_file(path, users: dict[str, str]) -> Path:
    """A Mosquitto password file (hashed) made with ``mosquitto_passwd -b``."""
    passwd = find_mosquitto_passwd()
    if passwd is None:
        raise RuntimeError("mosquitto_passwd not found (apt-get install mosquitto; see scripts/install-mosquitto)")
    path = Path(path)
    path.unlink(missing_ok=True)
    if not users:
        path.write_text("")
    for i, (username, password) in enumerate(users.items()):
        args = [passwd, "-b", *(["-c"] if i == 0 else []), str(path), username, password]
        subprocess.run(args, check=True, capture_output=True, timeout=30)
    path.chmod(0o600)
    return path


# --- Mosquitto --------------------------------------------------------------------------------------------------

class _ChildBroker(abc.ABC):
    host = "127.0.0.1"
    proc: subprocess.Popen | None = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __del__(self):  # last resort: never leak a broker process
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(Exception):
                proc.kill()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @abc.abstractmethod
    def start(self) -> None:
        """Start the broker process and wait until it accepts connections."""

    def stop(self) -> None:
        """SIGTERM and wait (Mosquitto writes its persistence file on SIGTERM); SIGKILL after a timeout."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT)
        self._close_output()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: a crash; nothing is saved since the last autosave."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait(STOP_TIMEOUT)
        self._close_output()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def _close_output(self) -> None:
        out = getattr(self, "_output", None)
        if out is not None:
            out.close()
            self._output = None


class Mosquitto(_ChildBroker):
    """A Mosquitto broker in the foreground on free ports, configured in and persisting to ``tmpdir``.

    - plain listener on ``port``; with ``tls_ca`` a second TLS listener on ``tls_port`` whose server certificate
      the CA issued for 127.0.0.1/localhost (``ca_file`` is the CA's PEM for clients to verify against);
    - ``users`` {username: password} -> password file and ``allow_anonymous false`` (else anonymous allowed);
    - ``acl`` -> the text of an ACL file (``topic``/``pattern``/``user`` lines, see mosquitto.conf(5));
    - persistence on (``mosquitto.db`` in tmpdir, saved on SIGTERM), so ``restart()`` keeps persistent sessions
      and their queued QoS 1/2 messages; ``kill()`` is a crash (nothing saved);
    - ``max_queued_messages 0`` (no limit), ``max_inflight_messages 2000``;
    - ``extra_conf`` is appended verbatim (global options; per_listener_settings is false);
    - the log (``log_type all``) goes to ``log_path``; stdout/stderr of the process to ``tmpdir/mosquitto.out``.

    Alternatively ``conf_text`` supplies a whole configuration (e.g. the production one rewritten to temporary
    paths); its placeholders ``{port}``, ``{tls_port}`` and ``{tmpdir}`` are replaced, and start() waits for the
    ports whose placeholder it uses (pass ``tls_port=True`` to get a ``tls_port``).
    """

    def __init__(self, tmpdir, *, tls_ca: CA | None = None, users: dict[str, str] | None = None,
                 acl: str | None = None, extra_conf: str = "", conf_text: str | None = None,
                 tls_port: bool | None = None) -> None:
        binary = find_mosquitto()
        if binary is None:
            raise RuntimeError("mosquitto not found (run scripts/install-mosquitto)")
        self.binary = binary
        self.tmpdir = Path(tmpdir)
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        self.tls_ca = tls_ca
        self.users = users
        self.acl = acl
        self.extra_conf = extra_conf
        self.port = free_port()
        want_tls = tls_ca is not None if tls_port is None else tls_port
        self.tls_port: int | None = free_port() if want_tls else None
        while self.tls_port == self.port:
            self.tls_port = free_port()
        self.ca_file: Path | None = tls_ca.cert_file if tls_ca is not None else None
        self.log_path = self.tmpdir / "mosquitto.log"
        self.output_path = self.tmpdir / "mosquitto.out"
        self.conf_path = self.tmpdir / "mosquitto.conf"
        self.db_path = self.tmpdir / "mosquitto.db"
        self.proc = None
        self._output = None
        if conf_text is None:
            self._wait_ports = [p for p in (self.port, self.tls_port) if p is not None]
            self.conf_path.write_text(self._config())
        else:
            values = {"port": self.port, "tls_port": self.tls_port, "tmpdir": self.tmpdir}
            self._wait_ports = [value for name, value in values.items()
                                if name != "tmpdir" and "{" + name + "}" in conf_text]
            for name, value in values.items():
                conf_text = conf_text.replace("{" + name + "}", str(value))
            self.conf_path.write_text(conf_text)

    @property
    def tls_url(self) -> str:
        if self.tls_port is None:
            raise AttributeError("this broker has no TLS listener (pass tls_ca=)")
        return f"mqtts://{self.host}:{self.tls_port}"

    def _config(self) -> str:
        lines = [
            "# generated by tests/brokers.py",
            "per_listener_settings false",
            # Started as root, Mosquitto 2 drops privileges to the 'mosquitto' user, which cannot write tmpdir.
            *(["user root"] if os.geteuid() == 0 else []),
            f"listener {self.port} {self.host}",
        ]
        if self.tls_ca is not None:
            certfile, keyfile = self.tls_ca.issue("localhost", self.tmpdir / "certs")
            lines += [
                f"listener {self.tls_port} {self.host}",
                f"cafile {self.tls_ca.cert_file}",
                f"certfile {certfile}",
                f"keyfile {keyfile}",
                "tls_version tlsv1.2",
            ]
        if self.users is not None:
            passwd = write_password_file(self.tmpdir / "passwd", self.users)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        if self.acl is not None:
            acl_path = self.tmpdir / "acl"
            acl_path.write_text(textwrap.dedent(self.acl).strip() + "\n")
            acl_path.chmod(0o600)
            lines.append(f"acl_file {acl_path}")
        lines += [
            "persistence true",
            f"persistence_location {self.tmpdir}/",
            "persistence_file mosquitto.db",
            "autosave_interval 1800",
            "max_queued_messages 0",
            "max_inflight_messages 2000",
            "set_tcp_nodelay true",
            f"log_dest file {self.log_path}",
            "log_type all",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            "connection_messages true",
        ]
        return "\n".join(lines) + "\n" + self.extra_conf + "\n"

    def start(self) -> None:
        if self.running:
            return
        self._output = open(self.output_path, "ab")  # noqa: SIM115 - closed by stop()/kill()
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf_path)], stdin=subprocess.DEVNULL,
                                     stdout=self._output, stderr=subprocess.STDOUT, cwd=self.tmpdir)
        try:
            for port in self._wait_ports:
                wait_for_port(self.host, port, START_TIMEOUT, self.proc)
        except Exception as exc:
            self.kill()
            raise RuntimeError(f"{exc}\n--- {self.output_path}:\n{self.output()}\n--- log:\n{self.log()}") from exc

    def reload(self) -> None:
        """SIGHUP: Mosquitto re-reads its password file, ACL and certificates (and disconnects revoked users)."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGHUP)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def output(self) -> str:
        return self.output_path.read_text(errors="replace") if self.output_path.exists() else ""


# --- amqtt ------------------------------------------------------------------------------------------------------

_AMQTT_CHILD = """
import asyncio, logging, signal, sys
from amqtt.broker import Broker

async def main(port, anonymous):
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": anonymous}},
    }
    broker = Broker(config)
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await broker.shutdown()

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
logging.getLogger("transitions").setLevel(logging.WARNING)
asyncio.run(main(int(sys.argv[1]), sys.argv[2] == "1"))
"""


class AmqttBroker(_ChildBroker):
    """The pure-Python amqtt 0.12 broker in a child Python process on a free port (``url``, ``port``).

    MQTT 3.1.1 only: an MQTT 5 CONNECT is refused ("Unsupported protocol version"), so no shared subscriptions,
    no session expiry; no TLS here. Sessions live in memory: a restart loses them.

    ``anonymous=True`` (default): anyone connects, but amqtt then marks *every* session anonymous, and it
    neither keeps anonymous sessions after disconnect nor queues QoS 1/2 messages for them while offline,
    whatever clean_session says. ``anonymous=False``: clients must send a username (any name, no password
    check) and clean_session=False sessions keep their subscriptions and queue QoS 1/2 messages offline.
    """

    def __init__(self, tmpdir=None, *, anonymous: bool = True, python: str | None = None) -> None:
        self.anonymous = anonymous
        self.python = python or sys.executable
        self.tmpdir = Path(tmpdir) if tmpdir is not None else None
        self.port = free_port()
        self.log_path: Path | None = None
        self.proc = None
        self._output = None

    def start(self) -> None:
        if self.running:
            return
        if self.tmpdir is not None:
            self.tmpdir.mkdir(parents=True, exist_ok=True)
            self.log_path = self.tmpdir / "amqtt.log"
            self._output = open(self.log_path, "ab")  # noqa: SIM115 - closed by stop()/kill()
            out = self._output
        else:
            out = subprocess.DEVNULL
        args = [self.python, "-c", _AMQTT_CHILD, str(self.port), "1" if self.anonymous else "0"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.host, self.port, START_TIMEOUT, self.proc)
        except Exception as exc:
            self.kill()
            log = self.log_path.read_text(errors="replace") if self.log_path else ""
            raise RuntimeError(f"{exc}\n--- log:\n{log}") from exc


# --- the production configuration, rewritten to temporary paths -------------------------------------------------

REPO = Path(__file__).resolve().parent.parent
PRODUCTION_CONF = REPO / "deploy" / "mosquitto" / "mosquitto.conf"
PRODUCTION_ACL = REPO / "deploy" / "mosquitto" / "acl"


def production_conf_text(tmpdir, ca: CA, users: dict[str, str], *, conf_path=PRODUCTION_CONF,
                         acl_path=PRODUCTION_ACL) -> str:
    """deploy/mosquitto/mosquitto.conf with every host path moved into tmpdir: certificates issued by ``ca``,
    a password file for ``users``, a copy of deploy/mosquitto/acl, persistence, pid and log files; the 8883
    listener becomes ``listener {tls_port} 127.0.0.1`` (a placeholder Mosquitto(conf_text=...) fills in).
    Everything else (limits, ACL, authentication) is the production text. Raises if a host path is left."""
    tmpdir = Path(tmpdir)
    tmpdir.mkdir(parents=True, exist_ok=True)
    certfile, keyfile = ca.issue("localhost", tmpdir / "certs")
    passwd = write_password_file(tmpdir / "passwd", users)
    acl = tmpdir / "acl"
    acl.write_text(Path(acl_path).read_text())
    acl.chmod(0o600)
    replacements = {
        "listener": lambda v: "{tls_port} 127.0.0.1" if v.split()[0] == "8883" else v,
        "cafile": lambda v: str(ca.cert_file),
        "certfile": lambda v: str(certfile),
        "keyfile": lambda v: str(keyfile),
        "password_file": lambda v: str(passwd),
        "acl_file": lambda v: str(acl),
        "persistence_location": lambda v: f"{tmpdir}/",
        "pid_file": lambda v: str(tmpdir / "mosquitto.pid"),
        "log_dest": lambda v: f"file {tmpdir / 'mosquitto.log'}" if v.startswith("file ") else v,
        # as root Mosquitto would switch to the 'mosquitto' user, which cannot read tmpdir
        "user": lambda v: "root" if os.geteuid() == 0 else None,
    }
    out = []
    for line in Path(conf_path).read_text().splitlines():
        key, _, value = line.strip().partition(" ")
        if key in replacements and not line.lstrip().startswith("#"):
            value = replacements[key](value.strip())
            if value is None:
                continue
            line = f"{key} {value}"
        out.append(line)
    text = "\n".join(out) + "\n"
    for line in text.splitlines():
        if not line.lstrip().startswith("#") and any(p in line for p in ("/etc/", "/var/", "/run/")):
            raise ValueError(f"production config line not rewritten to a temporary path: {line!r}")
    return text


def production_mosquitto(tmpdir, ca: CA, users: dict[str, str]) -> Mosquitto:
    """A Mosquitto running deploy/mosquitto/mosquitto.conf + acl on a free TLS port (``tls_port``; there is no
    plain listener, as in production). Use it as a context manager."""
    tmpdir = Path(tmpdir)
    text = production_conf_text(tmpdir, ca, users)
    broker = Mosquitto(tmpdir, conf_text=text, tls_port=True)
    broker.ca_file = ca.cert_file
    broker.log_path = tmpdir / "mosquitto.log"
    return broker


# --- a synchronous paho-mqtt 2.x client for tests ---------------------------------------------------------------

class MqttError(Exception):
    pass


class TestClient:
    """A blocking wrapper of paho-mqtt 2.x for tests (a network thread runs paho's loop).

        with TestClient.connect(broker.url, "sub", protocol=5) as sub:
            sub.subscribe("carbonpark/+/+/data")
            msg = sub.expect(timeout=2)          # paho MQTTMessage

    ``url`` is mqtt://host:port or mqtts://host:port (then ``ca_file`` is required; the server certificate and
    host name are verified). Every received message lands in ``messages`` (queue.Queue). ``manual_ack=True``
    leaves acknowledging to ``ack(message)``. Connection refusals raise MqttError with ``reason_code``.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, client, protocol: int) -> None:
        self.client = client
        self.protocol = protocol
        self.messages: queue.Queue = queue.Queue()
        self.connack = None          # (reason_code, session_present, properties)
        self.disconnects: list = []  # reason codes of disconnections
        self.puback: dict[int, object] = {}
        self.suback: dict[int, list] = {}
        self._cond = threading.Condition()

    # construction ---------------------------------------------------------------------------------------------
    @classmethod
    def connect(cls, url: str, client_id: str = "", *, protocol: int = 5, username: str | None = None,
                password: str | None = None, ca_file=None, clean_start: bool = True,
                session_expiry: int | None = None, will: tuple[str, bytes | str, int, bool] | None = None,
                keepalive: int = 60, manual_ack: bool = False, receive_maximum: int | None = None,
                timeout: float = 5.0) -> TestClient:
        from urllib.parse import urlsplit

        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        parts = urlsplit(url)
        proto = {5: mqtt.MQTTv5, 4: mqtt.MQTTv311, 3: mqtt.MQTTv31}[protocol]
        client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=proto, clean_session=None if protocol == 5 else clean_start,
                             reconnect_on_failure=False, manual_ack=manual_ack)
        self = cls(client, protocol)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        if username is not None:
            client.username_pw_set(username, password)
        if will is not None:
            client.will_set(*will)
        if parts.scheme == "mqtts":
            if ca_file is None:
                raise ValueError("mqtts:// needs ca_file")
            client.tls_set(ca_certs=str(ca_file))
        kwargs = {}
        if protocol == 5:
            kwargs["clean_start"] = clean_start
            props = Properties(PacketTypes.CONNECT)
            if session_expiry is not None:
                props.SessionExpiryInterval = session_expiry
            if receive_maximum is not None:
                props.ReceiveMaximum = receive_maximum
            kwargs["properties"] = props
        client.connect(parts.hostname, parts.port, keepalive, **kwargs)  # TLS errors raise here (ssl.SSLError)
        client.loop_start()
        with self._cond:
            if not self._cond.wait_for(lambda: self.connack is not None or self.disconnects, timeout):
                self.close()
                raise TimeoutError(f"no CONNACK from {url} within {timeout} s")
        if self.connack is None or self.connack[0].is_failure:
            reason = self.connack[0] if self.connack else self.disconnects[0]
            self.close()
            err = MqttError(f"connection to {url} refused: {reason}")
            err.reason_code = reason
            raise err
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # callbacks (network thread) -------------------------------------------------------------------------------
    def _on_connect(self, _client, _userdata, flags, reason_code, properties) -> None:
        with self._cond:
            self.connack = (reason_code, flags.session_present, properties)
            self._cond.notify_all()

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        with self._cond:
            self.disconnects.append(reason_code)
            self._cond.notify_all()

    def _on_publish(self, _client, _userdata, mid, reason_code, _properties) -> None:
        with self._cond:
            self.puback[mid] = reason_code
            self._cond.notify_all()

    def _on_subscribe(self, _client, _userdata, mid, reason_codes, _properties) -> None:
        with self._cond:
            self.suback[mid] = reason_codes
            self._cond.notify_all()

    # API ------------------------------------------------------------------------------------------------------
    @property
    def session_present(self) -> bool:
        return bool(self.connack and self.connack[1])

    @property
    def connected(self) -> bool:
        return self.client.is_connected()

    def subscribe(self, topic: str, qos: int = 1, timeout: float = 5.0) -> list:
        """Subscribe and wait for the SUBACK; returns its reason codes (failure codes do not raise)."""
        rc, mid = self.client.subscribe(topic, qos)
        if rc != 0:
            raise MqttError(f"subscribe {topic}: {rc}")
        with self._cond:
            if not self._cond.wait_for(lambda: mid in self.suback or self.disconnects, timeout):
                raise TimeoutError(f"no SUBACK for {topic}")
        if mid not in self.suback:
            raise MqttError(f"disconnected while subscribing to {topic}: {self.disconnects}")
        return self.suback[mid]

    def publish(self, topic: str, payload: bytes | str = b"", qos: int = 1, retain: bool = False,
                wait: bool = True, timeout: float = 5.0):
        """Publish; with ``wait`` (QoS > 0) block until the PUBACK/PUBCOMP and return its reason code (MQTT 5:
        e.g. 135 Not authorized; 3.1.1 has none: Success), or None when the connection dropped first."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if not wait or qos == 0:
            return info
        with self._cond:
            self._cond.wait_for(lambda: info.mid in self.puback or not self.client.is_connected(), timeout)
        if info.mid not in self.puback and self.client.is_connected():
            raise TimeoutError(f"no acknowledgement for {topic} within {timeout} s")
        return self.puback.get(info.mid)

    def expect(self, timeout: float = 5.0):
        """The next received message; raises queue.Empty after ``timeout``."""
        return self.messages.get(timeout=timeout)

    def received(self, count: int, timeout: float = 5.0) -> list:
        """Exactly ``count`` messages (waits at most ``timeout`` in total)."""
        deadline = time.monotonic() + timeout
        got = []
        while len(got) < count:
            try:
                got.append(self.messages.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"received {len(got)} of {count} messages within {timeout} s") from None
        return got

    def nothing(self, within: float = 1.0) -> bool:
        """True if no message arrives within ``within`` seconds."""
        try:
            self.messages.get(timeout=within)
        except queue.Empty:
            return True
        return False

    def ack(self, message) -> None:
        self.client.ack(message.mid, message.qos)

    def disconnect(self) -> None:
        """A clean DISCONNECT (no Last Will); a persistent session stays on the broker."""
        if self.client.is_connected():
            self.client.disconnect()
            with self._cond:
                self._cond.wait_for(lambda: bool(self.disconnects), 2.0)
        self.client.loop_stop()

    def drop(self) -> None:
        """Vanish without DISCONNECT (crash / network loss): the broker publishes the Last Will."""
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.disconnect()
        self.client.loop_stop()
