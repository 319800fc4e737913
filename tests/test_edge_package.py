"""The edge agent installs alone (issue 7 item 14): its wheel, its example configuration, its credentials,
reload on SIGHUP. No database needed."""

from __future__ import annotations

import csv
import importlib.metadata as md
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

from apps.edge.config import ConfigError, parse
from tests.brokers import Mosquitto, TestClient, find_mosquitto, write_password_file
from tests.test_edge_agent import PARK, config_dict, toml_text, wait_until

REPO = Path(__file__).resolve().parent.parent
CATALOG = REPO / "apps" / "catalog" / "data" / "catalog.csv"
EXAMPLE = REPO / "deploy" / "edge" / "edge.toml"

needs_mosquitto = pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto not installed")


def readme_example() -> dict:
    readme = (REPO / "apps" / "edge" / "README.md").read_text()
    return tomllib.loads(readme.split("```toml", 1)[1].split("```", 1)[0])


def codes_of(data: dict) -> set[str]:
    codes = set()
    for device in data["device"]:
        codes |= {p["data_code"] for p in device.get("points", [])}
        codes |= set(device.get("codes", {}).values())
    return codes


@pytest.mark.parametrize("example", ["deploy/edge/edge.toml", "apps/edge/README.md"])
def test_every_code_in_the_example_configuration_exists_in_the_catalog(example):
    data = tomllib.loads(EXAMPLE.read_text()) if example.endswith(".toml") else readme_example()
    with CATALOG.open(encoding="utf-8") as fh:
        catalog = {row["code"]: row for row in csv.DictReader(fh)}
    codes = codes_of(data)
    assert codes and codes <= set(catalog), f"not in the catalog: {sorted(codes - set(catalog))}"
    units = {p.get("unit") for d in data["device"] for p in d.get("points", [])} - {None}
    assert units <= {row["unit"] for row in catalog.values()}
    data["platform"].pop("ca_file")  # the example's CA path does not exist here
    cfg = parse(data)
    assert cfg.platform.tls and cfg.platform.protocol == 5 and cfg.buffer.max_bytes >= 2 * 10**9
    assert cfg.buffer.path == "/var/lib/carbonpark-edge/buffer.sqlite3"


def test_the_unit_file_matches_the_layout():
    unit = (REPO / "deploy" / "edge" / "carbonpark-edge.service").read_text()
    for line in ("User=carbonpark-edge", "StateDirectory=carbonpark-edge", "Restart=always",
                 "LoadCredential=mqtt-password:/etc/carbonpark-edge/credentials/mqtt-password",
                 "ExecReload=/bin/kill -HUP $MAINPID",
                 "ExecStart=/opt/carbonpark-edge/bin/carbonpark-edge run --config /etc/carbonpark-edge/edge.toml"):
        assert line in unit.splitlines(), line
    assert tomllib.loads(EXAMPLE.read_text())["buffer"]["path"].startswith("/var/lib/carbonpark-edge/")


def test_device_errors_name_the_source_and_the_unit_id_or_meter_address():
    from apps.edge.drivers import BackedOff, DeviceReadError
    from apps.edge.health import describe, error_of

    example = tomllib.loads(EXAMPLE.read_text())
    example["platform"].pop("ca_file")
    devices = {d.source_id: d for d in parse(example).devices}
    assert describe(devices["JSTZ01-EM-0001"]) == "JSTZ01-EM-0001 (modbus_tcp 192.168.1.20:502 unit 1)"
    assert describe(devices["JSTZ01-EM-0004"]) == "JSTZ01-EM-0004 (dlt645_tcp 192.168.1.21:8899 meter 000102030425)"
    assert describe(devices["JSTZ01-EM-0005"]) == "JSTZ01-EM-0005 (dlt645_serial /dev/ttyUSB0 meter 000102030426)"
    meter = devices["JSTZ01-EM-0004"]
    assert error_of(DeviceReadError("E7102", "E7102 timed out"), meter) == (
        "E7102", "JSTZ01-EM-0004 (dlt645_tcp 192.168.1.21:8899 meter 000102030425): E7102 timed out")
    assert error_of(TimeoutError(), meter)[0] == "E6201"
    assert error_of(BackedOff("skipped"), meter)[0] is None  # a skipped poll keeps the last error's code


# --- credentials -------------------------------------------------------------------------------------------------

def test_credentials_stay_out_of_the_toml_and_private(tmp_path, monkeypatch):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    base = config_dict(tmp_path, "mqtts://broker.example:8883")
    with pytest.raises(ConfigError, match="password does not belong in the configuration"):
        parse({**base, "platform": {**base["platform"], "password": "secret"}})
    secret = tmp_path / "mqtt-password"
    secret.write_text("s3cret\n")
    for mode in (0o644, 0o604, 0o620):
        secret.chmod(mode)
        with pytest.raises(ConfigError, match="accessible to other users"):
            parse({**base, "platform": {**base["platform"], "password_file": "mqtt-password"}}, tmp_path)
    secret.chmod(0o600)
    cfg = parse({**base, "platform": {**base["platform"], "password_file": "mqtt-password"}}, tmp_path)
    assert cfg.platform.read_password() == "s3cret" and cfg.platform.username == "EP01-GW-01"
    secret.chmod(0o644)  # made readable later: refused at the next connect
    with pytest.raises(ConfigError):
        cfg.platform.read_password()
    # systemd's credential wins over the file
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt-password").write_text("from-systemd")
    (creds / "mqtt-password").chmod(0o400)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    cfg = parse(base, tmp_path)
    assert cfg.platform.read_password() == "from-systemd"
    # a private key for mutual TLS must be private too
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    (tmp_path / "client.crt").write_text("x")
    (tmp_path / "client.key").write_text("x")
    (tmp_path / "client.key").chmod(0o644)
    with pytest.raises(ConfigError, match="key_file .* accessible to other users"):
        parse({**base, "platform": {**base["platform"], "cert_file": "client.crt", "key_file": "client.key"}},
              tmp_path)


@needs_mosquitto
def test_sighup_reconnects_with_the_password_read_again(tmp_path):
    """The broker's password for the gateway changes; the agent keeps being refused until its file is updated
    and it gets SIGHUP, when it reconnects at once with the new password."""
    with Mosquitto(tmp_path / "broker", users={"EP01-GW-01": "old-secret", "watcher": "w"}) as broker:
        secret = tmp_path / "mqtt-password"
        secret.write_text("old-secret")
        secret.chmod(0o600)
        data = config_dict(tmp_path, broker.url, interval_s=60, time_scale=60)
        data["platform"]["password_file"] = str(secret)
        conf = tmp_path / "edge.toml"
        conf.write_text(toml_text(data))
        watcher = TestClient.connect(broker.url, "watcher", username="watcher", password="w")
        watcher.subscribe(f"carbonpark/{PARK}/EP01-GW-01/status")
        log_path = tmp_path / "agent.log"
        with log_path.open("wb") as log:
            agent = subprocess.Popen([sys.executable, "-m", "apps.edge", "run", "--config", str(conf)], cwd=REPO,
                                     stdout=log, stderr=subprocess.STDOUT)
        try:
            def online_count():
                return log_path.read_text().count("connected to mqtt://")
            wait_until(lambda: online_count() == 1, 15, "first login")
            write_password_file(broker.tmpdir / "passwd", {"EP01-GW-01": "new-secret", "watcher": "w"})
            broker.reload()
            secret.write_text("new-secret")
            agent.send_signal(signal.SIGHUP)
            wait_until(lambda: "reload: reconnecting" in log_path.read_text(), 10, "the reload")
            wait_until(lambda: online_count() == 2, 10, "a login with the new password, without the 5 s wait")
            assert "not authori" not in log_path.read_text().lower()
        finally:
            agent.send_signal(signal.SIGTERM)
            assert agent.wait(20) == 0
            watcher.close()


# --- the wheel ---------------------------------------------------------------------------------------------------

def _requirement_names(dist: md.Distribution) -> list[str]:
    names = []
    for req in dist.requires or []:
        if ";" in req and "extra ==" in req.split(";", 1)[1]:
            continue
        names.append(re.split(r"[\s\[<>=!~;(]", req, maxsplit=1)[0])
    return names


def _copy_distribution(name: str, target: Path, seen: set[str]) -> None:
    """Copy an installed distribution's files (and its own requirements') into ``target``, as pip would."""
    key = name.lower().replace("_", "-")
    if key in seen:
        return
    seen.add(key)
    dist = md.distribution(name)
    for file in dist.files or []:
        src = Path(dist.locate_file(file))
        if src.is_file() and ".." not in file.parts:
            dest = target / file
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
    for req in _requirement_names(dist):
        _copy_distribution(req, target, seen)


def test_the_wheel_installs_alone_and_runs_without_django(tmp_path):
    out = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-w", str(out), str(REPO / "edge")], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    wheel = next(out.glob("carbonpark_edge-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        entry = zf.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "carbonpark-edge = apps.edge.__main__:main" in entry
    requires = sorted(line.split(":", 1)[1].split()[0].split("<")[0].split(">")[0]
                      for line in meta.splitlines() if line.startswith("Requires-Dist:"))
    assert requires == ["paho-mqtt", "pymodbus", "pyserial"]
    shipped = ("apps/__init__", "apps/edge/", "apps/protocols/__init__", "apps/protocols/codecs/",
               "apps/protocols/pollers/")
    assert not [n for n in names if n.startswith("apps/") and not n.startswith(shipped)]
    assert "apps/protocols/pollers/modbus.py" in names and "apps/protocols/codecs/dlt645/frames.py" in names
    assert not [n for n in names if n.startswith("apps/ingestion")], "a Django app's package is in the wheel"
    assert not [n for n in names if re.search(r"(models|views|api|admin|services|tasks)\.py$", n)]

    # a fresh virtual environment (no site packages): the wheel installed by pip, its declared requirements
    # copied from this environment (no network), nothing else
    venv = tmp_path / "venv"
    made = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], capture_output=True,
                          text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, timeout=30, check=True).stdout.strip())
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                              "--no-index", str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    seen: set[str] = set()
    for name in requires:
        _copy_distribution(name, site, seen)
    example = tomllib.loads(EXAMPLE.read_text())
    example["platform"].pop("ca_file")
    example["buffer"]["path"] = str(tmp_path / "buffer.sqlite3")
    config = tmp_path / "edge.toml"
    config.write_text(toml_text(example))
    env = {"PATH": os.environ.get("PATH", "")}
    script = textwrap.dedent(f"""
        import asyncio, importlib.util, sys
        assert importlib.util.find_spec("django") is None, "django is importable in the fresh environment"
        import apps.edge.__main__ as cli
        assert cli.__file__.startswith({str(site)!r}), cli.__file__
        assert importlib.util.find_spec("apps.ingestion") is None, "the platform's ingestion app is installed"
        from apps.edge.config import load
        from apps.edge.drivers import make_driver
        cfg = load({str(config)!r})
        async def drivers():  # every driver type of the example is built (its modules imported), then closed
            made = [make_driver(d) for d in cfg.devices]
            for d in made:
                await d.close()
            return [type(d).__name__ for d in made]
        print(asyncio.run(drivers()))
        import apps.edge.agent, apps.edge.status  # noqa
    """)
    run = subprocess.run([str(python), "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Dlt645TcpDriver" in run.stdout and "ModbusDriver" in run.stdout
    # the console script pip made
    check = subprocess.run([str(venv / "bin" / "carbonpark-edge"), "check", "--config", str(config)], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60, env=env)
    assert check.returncode == 0 and "configuration OK" in check.stdout, check.stderr
    status = subprocess.run([str(venv / "bin" / "carbonpark-edge"), "status", "--json", "--config", str(config)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["exists"] is False
