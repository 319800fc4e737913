"""deploy/systemd/ (issue #7 item 2): one unit per process of the Procfile, each restarting always, under a
service user, with the environment file; checked by systemd's own `systemd-analyze verify`."""

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from carbonpark.supervise import INFRA, RELEASE, read_procfile

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "deploy" / "systemd"
PREFIX, ENV_FILE = "/opt/carbonpark", "/etc/carbonpark/carbonpark.env"
DEMO_ONLY = {"simulators", "demo"}  # the embedded default's demo park: no production unit


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(UNITS / f"carbonpark-{name}.service")
    return parser


def test_one_unit_per_product_process_with_the_procfiles_command():
    procfile = read_procfile(ROOT / "Procfile")
    product = {n for n in procfile if n not in INFRA and n != RELEASE and n not in DEMO_ONLY}
    assert product == {"web", "worker", "beat", "ingest", "hj212"}
    units = {p.name.removeprefix("carbonpark-").removesuffix(".service") for p in UNITS.glob("carbonpark-*.service")}
    assert units == product | {"release"}
    for name in product:
        service = unit(name)["Service"]
        assert service["Restart"] == "always" and service["User"] == "carbonpark", name
        assert service["EnvironmentFile"] == ENV_FILE and service["WorkingDirectory"] == PREFIX, name
        argv = shlex.split(service["ExecStart"])
        assert argv[0].startswith(f"{PREFIX}/.venv/bin/"), argv
        # The same command as `make run` runs; production may only add options after it.
        expected = shlex.split(procfile[name])
        assert [Path(argv[0]).name, *argv[1:len(expected)]] == expected, (name, argv, expected)
        assert unit(name)["Unit"]["StartLimitIntervalSec"] == "0", name  # restarts never give up
    target = (UNITS / "carbonpark.target").read_text()
    assert all(f"carbonpark-{n}.service" in target for n in units)
    assert (UNITS / "README.md").exists() and (UNITS / "carbonpark.env.example").exists()


def test_systemd_analyze_verify_finds_nothing(tmp_path):
    """`systemd-analyze verify` on the units as installed under a prefix (here a temporary one holding this
    virtualenv's programs, as an installer outside /opt would write them): no warning at all."""
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is needed: run scripts/install-systemd-analyze (make test does)"
    bin_dir = tmp_path / "opt" / "carbonpark" / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for program in ("python", "gunicorn", "celery"):
        (bin_dir / program).symlink_to(Path(sys.executable).with_name(program))
    env_file = tmp_path / "carbonpark.env"
    shutil.copy(UNITS / "carbonpark.env.example", env_file)
    out = tmp_path / "units"
    out.mkdir()
    for path in [*UNITS.glob("*.service"), UNITS / "carbonpark.target"]:
        text = path.read_text().replace(ENV_FILE, str(env_file)).replace(PREFIX, str(tmp_path / "opt" / "carbonpark"))
        (out / path.name).write_text(text)
    result = subprocess.run([tool, "verify", "--man=no", *sorted(str(p) for p in out.iterdir())],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr
    # verify reports what it does not understand as warnings (exit 0): the check above fails on those too.
    (out / "carbonpark-web.service").write_text((out / "carbonpark-web.service").read_text() + "Restartt=always\n")
    bad = subprocess.run([tool, "verify", "--man=no", str(out / "carbonpark-web.service")], capture_output=True,
                         text=True, timeout=60)
    assert "Restartt" in bad.stdout + bad.stderr
