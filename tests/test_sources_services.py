"""Device state, downlink commands and key rings, at the service and API level (R-5.3.1, R-5.2.2.6,
R-8.1.2.1, R-9.1.4)."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.ingestion.services import ingest_readings
from apps.quality.models import Alarm
from apps.sources.models import Command, DeviceState, SourceKey
from apps.sources.services import keys as key_services
from apps.sources.services import rotation
from apps.sources.services.commands import create_command, dispatch_pending, expire_overdue, record_ack
from apps.sources.services.state import flag_silent_sources


def test_ingest_updates_last_seen_and_silence_is_flagged_then_cleared(meter):
    ingest_readings([{"sourceId": meter.source_id, "timestamp": "2026-11-23 10:00:00", "value": 1}],
                    channel="test", actor="t")
    state = DeviceState.objects.get(source=meter)
    assert state.last_seen_at is not None and not state.silent
    assert flag_silent_sources(now=state.last_seen_at + timedelta(seconds=3 * 300 - 1)) == 0
    assert flag_silent_sources(now=state.last_seen_at + timedelta(seconds=3 * 300 + 1)) == 1
    assert DeviceState.objects.get(source=meter).silent
    assert Alarm.objects.get(source=meter, kind="silent").code == "E6002"
    assert flag_silent_sources(now=state.last_seen_at + timedelta(hours=2)) == 0  # flagged once
    ingest_readings([{"sourceId": meter.source_id, "timestamp": "2026-11-23 10:05:00", "value": 1}],
                    channel="test", actor="t")
    assert not DeviceState.objects.get(source=meter).silent


@pytest.mark.parametrize("seconds", [59, 3601, "300", 300.5, None])
def test_set_interval_is_limited_to_60_3600_seconds(meter, seconds):
    with pytest.raises(ValidationError):
        create_command(actor="t", source=meter, type="set_interval", params={"seconds": seconds})


def test_command_api_creates_lists_and_validates(api, meter):
    url = f"/api/v1/sources/{meter.source_id}/commands"
    r = api.post(url, {"type": "set_interval", "params": {"seconds": 600}}, format="json")
    assert r.status_code == 201, r.json()
    assert r.json()["state"] == "pending" and r.json()["cmdId"]
    r = api.post(url, {"type": "set_interval", "params": {"seconds": 30}}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "E1011"
    r = api.post(url, {"type": "rotate_key", "params": {}}, format="json")
    assert r.status_code == 400
    listed = api.get(url).json()
    assert listed["count"] == 1 and [c["type"] for c in listed["results"]] == ["set_interval"]


def test_dispatch_publishes_each_pending_command_once_and_expiry(meter):
    sent = []
    create_command(actor="t", source=meter, type="poll_now")
    late = create_command(actor="t", source=meter, type="poll_now", ttl=timedelta(seconds=1))
    Command.objects.filter(pk=late.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert dispatch_pending(lambda topic, payload: sent.append((topic, payload)) or True) == 1
    assert dispatch_pending(lambda topic, payload: sent.append((topic, payload)) or True) == 0
    assert len(sent) == 1 and sent[0][0] == f"carbonpark/TP01/{meter.source_id}/cmd"
    assert Command.objects.get(pk=late.pk).state == "expired"
    failed = create_command(actor="t", source=meter, type="poll_now")
    assert dispatch_pending(lambda topic, payload: False) == 0
    assert Command.objects.get(pk=failed.pk).state == "pending"


def test_error_ack_fails_the_command(meter):
    cmd = create_command(actor="t", source=meter, type="control", params={"relay": 1})
    record_ack(source=meter, payload={"cmdId": cmd.cmd_id, "result": "error", "message": "relay stuck"})
    cmd.refresh_from_db()
    assert (cmd.state, cmd.result, cmd.message) == ("failed", "error", "relay stuck")


def test_keys_rotate_when_due_and_a_refused_rotation_leaves_the_old_key(meter):
    old, _material = key_services.provision_key(actor="t", source=meter)
    with pytest.raises(ValueError):
        key_services.provision_key(actor="t", source=meter)
    assert rotation.rotate_due_keys() == 0
    SourceKey.objects.filter(pk=old.pk).update(activated_at=timezone.now() - timedelta(days=31))
    assert rotation.rotate_due_keys() == 1
    assert rotation.rotate_due_keys() == 0  # a rotation is already under way
    cmd = Command.objects.get(type="rotate_key")
    record_ack(source=meter, payload={"cmdId": cmd.cmd_id, "result": "error", "message": "no flash space"})
    pending = SourceKey.objects.get(key_id=cmd.params["keyId"])
    assert pending.state == "retired" and pending.decrypt_until <= timezone.now()
    assert SourceKey.objects.get(pk=old.pk).state == "active"


def test_keys_are_sealed_at_rest(meter):
    key, material_b64 = key_services.provision_key(actor="t", source=meter)
    import base64

    material = base64.b64decode(material_b64)
    stored = bytes(SourceKey.objects.get(pk=key.pk).sealed)
    assert material not in stored and len(stored) == 1 + 12 + 32 + 16
    assert key_services.key_material(key) == material


def test_expired_rotation_abandons_the_pending_key(meter):
    key_services.provision_key(actor="t", source=meter)
    cmd = rotation.rotate_key(actor="t", source=meter)
    Command.objects.filter(pk=cmd.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert expire_overdue() == 1
    assert SourceKey.objects.get(key_id=cmd.params["keyId"]).state == "retired"


def test_file_keys_are_per_park_and_rotate_at_once(park):
    first = key_services.rotate_file_key(actor="t", park=park)
    second = key_services.rotate_file_key(actor="t", park=park)
    first.refresh_from_db()
    assert (first.state, second.state) == ("retired", "active")
    assert first.source_id is None and second.park == park
    assert set(key_services.decryption_keys()) >= {first.key_id, second.key_id}  # retired still decrypts
