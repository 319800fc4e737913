"""Create the demo park, its sources, an administrator, one user per park role and an integrator token
(idempotent)."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.accounts.models import ApiToken, Membership, Park
from apps.accounts.services import issue_token, save_park, set_membership
from apps.catalog.models import DataItem
from apps.core.validators import uscc_check_char
from apps.demo.management.commands.simulate import DEMO_DLT645_ADDRESS, DEMO_HJ212_MN
from apps.sources.models import DataSource, SourceKey
from apps.sources.services import save_source
from apps.sources.services.keys import provision_key
from carbonpark.embedded import VAR_DIR

DEMO_PARK = "JSTZ01"
DEMO_SOURCES = [
    # source id, name, kind, protocol, codes, interval (s)
    ("JSTZ01-EM-0001", "1# 总进线电能表", "meter", "dlt645", ["CS010201"], 60),
    ("JSTZ01-EM-0002", "2# 车间电能表", "meter", "modbus_tcp", ["CS010201"], 60),
    ("JSTZ01-HM-0001", "热力站热量表", "meter", "modbus_tcp", ["CS010301"], 60),
    ("JSTZ01-FM-0001", "锅炉房天然气流量计", "meter", "opcua", ["CS010101"], 60),
    ("JSTZ01-WW-0001", "污水处理站在线监测", "monitor", "hj212", ["CS030201", "CS030202"], 60),
    ("JSTZ01-CCUS-0001", "CCUS 捕集装置（MQTT，加密）", "gateway_channel", "mqtt_json", ["CK020101"], 60),
    ("JSTZ01-EM-0003", "3# 光伏并网电能表（MQTT TLV）", "meter", "mqtt_tlv", ["CS010201"], 60),
    ("JSTZ01-UA-0001", "空压站能源管理系统（OPC UA）", "gateway_channel", "opcua", ["CS010201"], 60),
    ("JSTZ01-FORM-FUEL", "燃料种类台账（表单）", "form", "form", ["CS010104"], 86400),
]


# Meter registers (issue #12 item 2): the DL/T 645 and Modbus meters' energy items are cumulative registers; the
# demo derives their consumption. source id, code, rollover point, CT, PT, rated power (kW). The DL/T 645 meter
# has a six-digit register behind 200/5 A current transformers; the SDM630 a seven-digit one, wired direct.
DEMO_REGISTERS = [
    ("JSTZ01-EM-0001", "CS010201", 1_000_000, 40.0, 1.0, 2000.0),
    ("JSTZ01-EM-0002", "CS010201", 10_000_000, 1.0, 1.0, 2500.0),
]


def demo_role_users() -> dict[str, str]:
    """role → user name of the demo park's people, one per park role: ``jstz01-viewer``, ``jstz01-operator``
    (data entry), ``jstz01-approver``, ``jstz01-auditor``, ``jstz01-admin`` (park administrator)."""
    return {role: f"{DEMO_PARK.lower()}-{role}" for role in Membership.Role.values}


def generated_password(user_name: str) -> str:
    """The password of a demo login: made once, kept in ``var/<user name>_password`` (mode 0600) and
    reused on the next starts, never in git."""
    password_file = VAR_DIR / f"{user_name}_password"
    if not password_file.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        password_file.write_text(secrets.token_urlsafe(12))
        password_file.chmod(0o600)
    return password_file.read_text().strip()


def demo_uscc() -> str:
    first17 = "91321200MA1DEMO0"[:16].replace("O", "0").replace("I", "1").replace("S", "5") + "1"
    return first17 + uscc_check_char(first17)


class Command(BaseCommand):
    help = "Create the demo park, sources, admin user, one user per park role and an integrator token."

    @transaction.atomic
    def handle(self, *args, **options):
        actor = "demo_setup"
        park = Park.objects.filter(code=DEMO_PARK).first() or save_park(
            actor=actor, code=DEMO_PARK, name_zh="泰州零碳示范园区（演示）", name_en="Taizhou Zero-Carbon Demo Park",
            time_zone="Asia/Shanghai", uscc=demo_uscc(), address="江苏省泰州市")
        for sid, name, kind, protocol, codes, interval in DEMO_SOURCES:
            if not DataSource.objects.filter(source_id=sid).exists():
                save_source(actor=actor, source_id=sid, park=park, name=name, kind=kind, protocol=protocol,
                            collection_method="manual" if kind == "form" else "realtime",
                            expected_interval_s=interval, data_items=list(DataItem.objects.filter(code__in=codes)))
        configure_simulated_sources(actor)
        configure_registers(actor)

        ccus = DataSource.objects.get(source_id="JSTZ01-CCUS-0001")
        if not SourceKey.objects.filter(source=ccus).exists():
            provision_key(actor=actor, source=ccus)
        User = get_user_model()
        password = os.environ.get("CARBONPARK_ADMIN_PASSWORD") or generated_password("admin")
        admin = User.objects.filter(username="admin").first()
        if admin is None:
            admin = User.objects.create_superuser("admin", "admin@example.invalid", password)
            set_membership(actor=actor, user=admin, park=park, role="admin")
        # The demo park's people, one per role, to try the portal as each would (no staff flag: a membership is
        # what lets them in, apps/accounts/portal.py).
        for role, name in demo_role_users().items():
            user = User.objects.filter(username=name).first()
            if user is None:
                user = User.objects.create_user(name, f"{name}@example.invalid", generated_password(name))
            if not Membership.objects.filter(user=user, park=park).exists():
                set_membership(actor=actor, user=user, park=park, role=role)
        token_file = VAR_DIR / "demo_token"
        if not ApiToken.objects.filter(park=park, name="demo-integrator").exists() or not token_file.exists():
            ApiToken.objects.filter(park=park, name="demo-integrator").delete()
            _token, key = issue_token(actor=actor, park=park, name="demo-integrator")
            token_file.write_text(key)
            token_file.chmod(0o600)
        # The run command prints the URL, the login and the token once gunicorn answers (not before).
        self.stdout.write(f"demo park {park.code} ready: logins (admin, {', '.join(demo_role_users().values())}) "
                          f"and API token in {VAR_DIR}")


def configure_registers(actor) -> None:
    """The demo's DL/T 645 and Modbus meters read as registers (created once; a park administrator may change
    them in the portal afterwards)."""
    from apps.quality.models import RegisterSetting
    from apps.quality.registers.services import save_register_setting

    for sid, code, modulus, ct, pt, rated in DEMO_REGISTERS:
        source = DataSource.objects.get(source_id=sid)
        item = DataItem.objects.get(code=code)
        if not RegisterSetting.objects.filter(source=source, data_item=item).exists():
            save_register_setting(actor=actor, source=source, data_item=item, modulus=modulus, ct_ratio=ct,
                                  pt_ratio=pt, rated_power_kw=rated, note="demo")


def configure_simulated_sources(actor) -> None:
    """Point the demo's field-protocol sources at the simulators `make run` started (their ports change
    every start): DL/T 645 and Modbus meters and an OPC UA server polled by the platform, an HJ 212
    station pushing to the listener."""
    ports = {k: os.environ.get(k) for k in ("CARBONPARK_SIM_MODBUS_PORT", "CARBONPARK_SIM_DLT645_PORT",
                                             "CARBONPARK_SIM_OPCUA_PORT")}
    if not all(ports.values()):
        return
    poll = {"platform": True}
    wanted = {
        "JSTZ01-EM-0001": {"dlt645": {"host": "127.0.0.1", "port": int(ports["CARBONPARK_SIM_DLT645_PORT"]),
                                      "address": DEMO_DLT645_ADDRESS,
                                      "points": [{"di": "00010000", "data_code": "CS010201", "unit": "kWh"}]},
                           "poll": poll},
        "JSTZ01-EM-0002": {"modbus": {"host": "127.0.0.1", "port": int(ports["CARBONPARK_SIM_MODBUS_PORT"]),
                                      "unit": 1, "map": "eastron-sdm630", "codes": {"import_energy": "CS010201"}},
                           "poll": poll},
        "JSTZ01-UA-0001": {"opcua": {"endpoint": f"opc.tcp://127.0.0.1:{ports['CARBONPARK_SIM_OPCUA_PORT']}/carbonpark/",
                                     "nodes": [{"node": "ns=2;s=Meter1.Energy", "data_code": "CS010201",
                                                "unit": "kWh"}]},
                           "poll": poll},
        "JSTZ01-WW-0001": {"hj212": {"mn": DEMO_HJ212_MN}},
    }
    for sid, settings in wanted.items():
        source = DataSource.objects.get(source_id=sid)
        if source.settings != settings:
            save_source(actor=actor, source=source, settings=settings, reason="demo simulators' ports")
