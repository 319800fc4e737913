"""The test brokers (tests/brokers.py) and the production Mosquitto configuration (deploy/mosquitto/), over real
brokers: Mosquitto 2 (MQTT 3.1.1 and 5, TLS with a CA made here) and amqtt (MQTT 3.1.1)."""
import queue
import re
import ssl
import subprocess
import time

import pytest

from tests.brokers import (
    PRODUCTION_ACL,
    PRODUCTION_CONF,
    AmqttBroker,
    Mosquitto,
    MqttError,
    TestClient,
    find_mosquitto,
    find_mosquitto_passwd,
    make_ca,
    mosquitto_version,
    production_conf_text,
    production_mosquitto,
)

# `make test` installs Mosquitto when the machine lacks it (scripts/install-mosquitto); a missing broker is a
# failure, never a skip counted as coverage.
needs_mosquitto = pytest.mark.usefixtures("mosquitto_installed")


@pytest.fixture(scope="session")
def mosquitto_installed():
    assert find_mosquitto() is not None and find_mosquitto_passwd() is not None, \
        "mosquitto and mosquitto_passwd are needed: run scripts/install-mosquitto"

NOT_AUTHORIZED = 0x87
DATA = "carbonpark/P1/DEV-1/data"
PLATFORM = {"carbonpark-platform": "platform-secret"}
DEVICES = {"DEV-1": "dev1-secret", "DEV-2": "dev2-secret"}


@pytest.fixture
def ca(tmp_path):
    return make_ca(tmp_path / "ca")


# --- plain Mosquitto ------------------------------------------------------------------------------------------

@needs_mosquitto
@pytest.mark.parametrize("protocol", [5, 4], ids=["mqtt5", "mqtt311"])
def test_mosquitto_publish_subscribe_qos1(tmp_path, protocol):
    with Mosquitto(tmp_path) as broker, \
            TestClient.connect(broker.url, "sub", protocol=protocol) as sub, \
            TestClient.connect(broker.url, "pub", protocol=protocol) as pub:
        assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
        assert broker.port not in (1883, 8883)
        assert [rc.value for rc in sub.subscribe("carbonpark/+/+/data", qos=1)] == [1]
        assert pub.publish(DATA, b'{"v": 1}', qos=1).value == 0
        msg = sub.expect(timeout=2)
        assert (msg.topic, msg.payload, msg.qos) == (DATA, b'{"v": 1}', 1)
    assert not broker.running
    assert "mosquitto version" in broker.log()


@needs_mosquitto
def test_mosquitto_shared_subscription_splits_the_stream(tmp_path):
    group = "$share/carbonpark/carbonpark/+/+/data"
    with Mosquitto(tmp_path) as broker, TestClient.connect(broker.url, "w1") as w1, \
            TestClient.connect(broker.url, "w2") as w2, TestClient.connect(broker.url, "dev") as dev:
        w1.subscribe(group)
        w2.subscribe(group)
        for i in range(10):
            dev.publish(DATA, str(i))
        got1, got2 = w1.received(5, timeout=2), w2.received(5, timeout=2)
        assert sorted(int(m.payload) for m in got1 + got2) == list(range(10))
        assert w1.nothing(0.2) and w2.nothing(0.2)


# --- TLS --------------------------------------------------------------------------------------------------------

@needs_mosquitto
def test_mosquitto_tls_with_test_ca(tmp_path, ca):
    with Mosquitto(tmp_path / "broker", tls_ca=ca) as broker:
        assert broker.tls_url == f"mqtts://127.0.0.1:{broker.tls_port}"
        assert broker.ca_file == ca.cert_file
        with TestClient.connect(broker.tls_url, "tls-sub", ca_file=broker.ca_file) as sub, \
                TestClient.connect(broker.tls_url, "tls-pub", protocol=4, ca_file=broker.ca_file) as pub:
            sub.subscribe("carbonpark/#")
            pub.publish(DATA, b"over tls")
            assert sub.expect(timeout=2).payload == b"over tls"
        # a client trusting another CA refuses the server certificate
        other = make_ca(tmp_path / "other-ca", common_name="Some other CA")
        with pytest.raises(ssl.SSLCertVerificationError):
            TestClient.connect(broker.tls_url, "mitm", ca_file=other.cert_file)
        # and a plain MQTT client on the TLS port gets no CONNACK
        with pytest.raises((TimeoutError, MqttError, OSError)):
            TestClient.connect(f"mqtt://127.0.0.1:{broker.tls_port}", "plain", timeout=1)


def test_ca_issues_server_certificates(tmp_path, ca):
    from cryptography import x509

    certfile, keyfile = ca.issue("broker.example", tmp_path, dns=["broker.example", "localhost"], ip=["127.0.0.1"])
    cert = x509.load_pem_x509_certificate(certfile.read_bytes())
    assert cert.issuer == ca.cert.subject
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["broker.example", "localhost"]
    assert [str(a) for a in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert keyfile.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    ctx = ssl.create_default_context(cafile=str(ca.cert_file))
    ctx.load_cert_chain(str(certfile), str(keyfile))  # key matches certificate


# --- persistent sessions ----------------------------------------------------------------------------------------

@needs_mosquitto
@pytest.mark.parametrize("protocol", [5, 4], ids=["mqtt5", "mqtt311"])
def test_persistent_session_keeps_qos1_messages_across_offline_and_broker_restart(tmp_path, protocol):
    consumer = {"client_id": "consumer-1", "protocol": protocol, "clean_start": False, "session_expiry": 3600}
    with Mosquitto(tmp_path) as broker:
        with TestClient.connect(broker.url, **consumer) as sub:
            assert not sub.session_present
            sub.subscribe("carbonpark/+/+/data")
        with TestClient.connect(broker.url, "dev", protocol=4) as dev:
            dev.publish(DATA, b"while offline")
        broker.restart()  # SIGTERM: Mosquitto saves sessions and queued messages, same port on restart
        with TestClient.connect(broker.url, "dev", protocol=4) as dev:
            dev.publish(DATA, b"after restart")
        with TestClient.connect(broker.url, **consumer) as sub:
            assert sub.session_present
            assert [m.payload for m in sub.received(2, timeout=2)] == [b"while offline", b"after restart"]
        assert broker.db_path.exists()


@needs_mosquitto
def test_mosquitto_2_0_forgets_shared_subscriptions_on_restart(tmp_path):
    """Mosquitto 2.0 saves a session's queued messages but not its $share subscriptions (only the 2.1 line
    persists them): after a broker restart the consumer finds session_present=True, gets what was queued, and
    must subscribe again; what devices publish before it does matches no subscription and is dropped."""
    consumer = {"client_id": "consumer-1", "clean_start": False, "session_expiry": 3600}
    group = "$share/carbonpark/carbonpark/+/+/data"
    with Mosquitto(tmp_path) as broker:
        with TestClient.connect(broker.url, **consumer) as sub:
            sub.subscribe(group)
        with TestClient.connect(broker.url, "dev") as dev:
            dev.publish(DATA, b"queued before restart")
        broker.restart()
        with TestClient.connect(broker.url, "dev") as dev:
            dev.publish(DATA, b"before resubscribe")
        with TestClient.connect(broker.url, **consumer) as sub, TestClient.connect(broker.url, "dev") as dev:
            assert sub.session_present
            assert sub.expect(timeout=2).payload == b"queued before restart"
            lost = sub.nothing(within=0.3)
            if mosquitto_version() < (2, 1):
                assert lost
            sub.subscribe(group)  # the workaround: subscribe on every CONNACK, session present or not
            dev.publish(DATA, b"after resubscribe")
            assert sub.expect(timeout=2).payload == b"after resubscribe"


@needs_mosquitto
def test_unacked_messages_are_redelivered_to_a_restarting_manual_ack_consumer(tmp_path):
    consumer = {"client_id": "consumer-1", "clean_start": False, "session_expiry": 3600, "manual_ack": True}
    with Mosquitto(tmp_path) as broker:
        with TestClient.connect(broker.url, **consumer) as sub, TestClient.connect(broker.url, "dev") as dev:
            sub.subscribe("carbonpark/+/+/data")
            for i in range(3):
                dev.publish(DATA, str(i))
            first = sub.received(3, timeout=2)
            sub.ack(first[0])  # the batch holding 1 and 2 never commits: no PUBACK for them
        with TestClient.connect(broker.url, **consumer) as sub:
            again = sub.received(2, timeout=2)
            assert [m.payload for m in again] == [b"1", b"2"]
            assert all(m.dup for m in again)


@needs_mosquitto
def test_debian_default_queue_limit_drops_and_the_production_limits_do_not(tmp_path):
    """The pitfall: max_queued_messages caps what a persistent session keeps while its client is away; beyond it
    QoS 1 messages are dropped although the publisher got its PUBACK (here a limit of 5 instead of 1000)."""
    consumer = {"client_id": "consumer-1", "clean_start": False, "session_expiry": 3600}
    with Mosquitto(tmp_path, extra_conf="max_queued_messages 5") as broker:
        with TestClient.connect(broker.url, **consumer) as sub:
            sub.subscribe("carbonpark/+/+/data")
        with TestClient.connect(broker.url, "dev") as dev:
            assert all(dev.publish(DATA, str(i)).value == 0 for i in range(8))  # all acknowledged ...
        with TestClient.connect(broker.url, **consumer) as sub:
            assert len(sub.received(5, timeout=2)) == 5
            assert sub.nothing(0.3)  # ... but 3 are gone
        assert "Outgoing messages are being dropped" in broker.log()


# --- the production configuration -------------------------------------------------------------------------------

def _directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out.setdefault(key, []).append(value.strip())
    return out


def test_production_config_values():
    conf = _directives(PRODUCTION_CONF.read_text())
    assert conf["listener"] == ["8883"]
    assert conf["cafile"] == ["/etc/mosquitto/certs/ca.crt"]
    assert conf["certfile"] == ["/etc/mosquitto/certs/server.crt"]
    assert conf["keyfile"] == ["/etc/mosquitto/certs/server.key"]
    assert conf["tls_version"] == ["tlsv1.2"]
    assert conf["allow_anonymous"] == ["false"]
    assert conf["password_file"] == ["/etc/mosquitto/passwd"]
    assert conf["acl_file"] == ["/etc/mosquitto/acl"]
    assert conf["persistence"] == ["true"]
    queued = int(conf["max_queued_messages"][0])
    assert queued == 0 or queued >= 100_000  # never the 1000 default
    assert 0 < int(conf["max_queued_bytes"][0]) <= 8 * 2**30
    assert int(conf["max_inflight_messages"][0]) >= 1000
    assert conf["max_packet_size"] == ["1048576"]
    assert conf["max_keepalive"] == ["120"]
    assert conf["set_tcp_nodelay"] == ["true"]
    assert re.fullmatch(r"\d+[hdwmy]", conf["persistent_client_expiration"][0])
    acl = _directives(PRODUCTION_ACL.read_text())
    assert sorted(acl["pattern"]) == sorted([
        "write carbonpark/+/%u/data", "write carbonpark/+/%u/tlv", "write carbonpark/+/%u/status",
        "write carbonpark/+/%u/cmd/ack", "read carbonpark/+/%u/cmd"])
    assert acl["user"] == ["carbonpark-platform"]
    assert acl["topic"] == ["read carbonpark/#", "write carbonpark/+/+/cmd"]


@needs_mosquitto
def test_production_config_rewrite_leaves_no_host_path(tmp_path, ca):
    text = production_conf_text(tmp_path, ca, {**PLATFORM, **DEVICES})
    conf = _directives(text)
    assert conf["listener"] == ["{tls_port} 127.0.0.1"]
    assert conf["password_file"] == [str(tmp_path / "passwd")]
    assert "/etc/" not in "".join(v for vs in conf.values() for v in vs)
    assert conf["max_queued_messages"] == _directives(PRODUCTION_CONF.read_text())["max_queued_messages"]


@pytest.fixture
def production(tmp_path, ca):
    with production_mosquitto(tmp_path / "broker", ca, {**PLATFORM, **DEVICES}) as broker:
        yield broker


def _connect(broker, client_id, username, protocol=5, **kwargs):
    users = {**PLATFORM, **DEVICES}
    return TestClient.connect(broker.tls_url, client_id, protocol=protocol, username=username,
                              password=users[username], ca_file=broker.ca_file, **kwargs)


@needs_mosquitto
@pytest.mark.parametrize("protocol", [5, 4], ids=["mqtt5", "mqtt311"])
def test_production_acl_device_publishes_only_under_its_own_source_id(production, protocol):
    with _connect(production, "platform", "carbonpark-platform") as platform:
        platform.subscribe("$share/carbonpark/carbonpark/+/+/data")
        platform.subscribe("carbonpark/+/+/status")
        with _connect(production, "DEV-1", "DEV-1", protocol=protocol) as dev:
            assert dev.publish("carbonpark/P1/DEV-1/data", b'{"ok": 1}').value == 0
            assert platform.expect(timeout=2).topic == "carbonpark/P1/DEV-1/data"
            assert dev.publish("carbonpark/P1/DEV-1/status", b'{"state": "online"}', retain=True).value == 0
            assert platform.expect(timeout=2).payload == b'{"state": "online"}'
            # another device's topic: Mosquitto 2.0 acknowledges (MQTT 5: reason code 135, Not authorized;
            # 3.1.1: a plain PUBACK) and drops it -- and then closes the connection.
            result = dev.publish("carbonpark/P1/DEV-2/data", b'{"forged": 1}')
            assert result is None or result.value in (0, NOT_AUTHORIZED)
            if protocol == 5 and result is not None:
                assert result.value == NOT_AUTHORIZED
            assert platform.nothing(within=1.0)


@needs_mosquitto
def test_production_acl_device_cannot_send_commands_but_platform_can(production):
    with _connect(production, "platform", "carbonpark-platform") as platform, \
            _connect(production, "DEV-2", "DEV-2") as dev2:
        dev2.subscribe("carbonpark/+/DEV-2/cmd")
        with _connect(production, "DEV-1", "DEV-1") as dev1:
            # Mosquitto 2.0 grants the SUBACK for another device's cmd topic but never delivers to it: the
            # read ACL is applied per message
            dev1.subscribe("carbonpark/+/+/cmd")
            assert platform.publish("carbonpark/P1/DEV-2/cmd", b'{"cmdId": "c1"}').value == 0
            assert dev2.expect(timeout=2).payload == b'{"cmdId": "c1"}'
            assert dev1.nothing(within=0.3)
            assert platform.publish("carbonpark/P1/DEV-1/cmd", b'{"cmdId": "c2"}').value == 0
            assert dev1.expect(timeout=2).payload == b'{"cmdId": "c2"}'
            # a device cannot send commands to another device
            result = dev1.publish("carbonpark/P1/DEV-2/cmd", b'{"cmdId": "forged"}')
            assert result is None or result.value == NOT_AUTHORIZED  # None: the broker closed first
        assert dev2.nothing(within=0.5)
        platform.subscribe("carbonpark/+/+/cmd/ack")
        assert dev2.publish("carbonpark/P1/DEV-2/cmd/ack", b'{"cmdId": "c1", "result": "ok"}').value == 0
        assert platform.expect(timeout=2).topic == "carbonpark/P1/DEV-2/cmd/ack"


@needs_mosquitto
@pytest.mark.parametrize("protocol", [5, 4], ids=["mqtt5", "mqtt311"])
def test_production_refuses_wrong_password_and_anonymous(production, protocol):
    with pytest.raises(MqttError) as refused:
        TestClient.connect(production.tls_url, "DEV-1", protocol=protocol, username="DEV-1", password="wrong",
                           ca_file=production.ca_file)
    assert refused.value.reason_code.is_failure
    with pytest.raises(MqttError):
        TestClient.connect(production.tls_url, "anon", protocol=protocol, ca_file=production.ca_file)


@needs_mosquitto
def test_production_connack_announces_limits_to_mqtt5_clients(production):
    with _connect(production, "DEV-1", "DEV-1", keepalive=300) as dev:
        props = dev.connack[2]
        assert props.ReceiveMaximum == 2000      # max_inflight_messages
        assert props.MaximumPacketSize == 1048576
        assert props.ServerKeepAlive == 120      # max_keepalive; 3.1.1 clients are not told (nor refused)


@needs_mosquitto
def test_production_revoking_a_device_and_reloading_disconnects_it(production):
    with _connect(production, "DEV-1", "DEV-1") as dev1, _connect(production, "DEV-2", "DEV-2") as dev2:
        subprocess.run([find_mosquitto_passwd(), "-D", str(production.tmpdir / "passwd"), "DEV-1"], check=True)
        production.reload()
        deadline = time.monotonic() + 3
        while dev1.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not dev1.connected
        assert dev2.connected
    with pytest.raises(MqttError):
        _connect(production, "DEV-1", "DEV-1")


@needs_mosquitto
def test_production_limits_keep_more_than_debian_default_for_an_offline_consumer(production):
    consumer = {"clean_start": False, "session_expiry": 3600, "receive_maximum": 2000}
    with _connect(production, "ingest-1", "carbonpark-platform", **consumer) as sub:
        assert sub.connack[2].ReceiveMaximum == 2000  # the broker's own, from max_inflight_messages
        sub.subscribe("$share/carbonpark/carbonpark/+/+/data")
    total = 1500  # > Debian's 1000
    with _connect(production, "DEV-1", "DEV-1") as dev:
        infos = [dev.publish(DATA, str(i), wait=False) for i in range(total)]
        for info in infos:
            info.wait_for_publish(5)
    with _connect(production, "ingest-1", "carbonpark-platform", **consumer) as sub:
        assert sub.session_present
        got = sub.received(total, timeout=5)
        assert sorted(int(m.payload) for m in got) == list(range(total))
    assert "being dropped" not in production.log()


# --- Last Will ----------------------------------------------------------------------------------------------------

@needs_mosquitto
def test_last_will_reaches_status_subscriber_on_mosquitto(production):
    status = "carbonpark/P1/DEV-1/status"
    with _connect(production, "platform", "carbonpark-platform") as platform:
        platform.subscribe("carbonpark/+/+/status")
        dev = _connect(production, "DEV-1", "DEV-1", will=(status, b'{"state": "offline"}', 1, True), keepalive=60)
        dev.publish(status, b'{"state": "online"}', retain=True)
        assert platform.expect(timeout=2).payload == b'{"state": "online"}'
        dev.drop()  # no DISCONNECT
        msg = platform.expect(timeout=3)
        assert (msg.topic, msg.payload) == (status, b'{"state": "offline"}')
    with _connect(production, "platform-2", "carbonpark-platform") as late:
        late.subscribe("carbonpark/+/+/status")
        msg = late.expect(timeout=2)
        assert (msg.payload, msg.retain) == (b'{"state": "offline"}', True)  # retained for late subscribers


# --- amqtt --------------------------------------------------------------------------------------------------------

def test_amqtt_publish_subscribe_qos1_and_last_will(tmp_path):
    status = "carbonpark/P1/DEV-1/status"
    with AmqttBroker(tmp_path) as broker:
        assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
        with TestClient.connect(broker.url, "sub", protocol=4) as sub:
            sub.subscribe("carbonpark/#")
            dev = TestClient.connect(broker.url, "dev", protocol=4, will=(status, b'{"state": "offline"}', 1, True))
            dev.publish(DATA, b'{"v": 2}')
            msg = sub.expect(timeout=2)
            assert (msg.topic, msg.payload, msg.qos) == (DATA, b'{"v": 2}', 1)
            dev.drop()
            msg = sub.expect(timeout=3)
            assert (msg.topic, msg.payload) == (status, b'{"state": "offline"}')
        with pytest.raises(MqttError):  # MQTT 5 is not spoken
            TestClient.connect(broker.url, "v5", protocol=5)
    assert not broker.running


def test_amqtt_persistent_session_needs_a_username(tmp_path):
    with AmqttBroker(tmp_path, anonymous=False) as broker:
        with pytest.raises(MqttError):
            TestClient.connect(broker.url, "nobody", protocol=4)
        persistent = {"client_id": "consumer", "protocol": 4, "clean_start": False, "username": "consumer"}
        with TestClient.connect(broker.url, **persistent) as sub:
            sub.subscribe("carbonpark/+/+/data")
        with TestClient.connect(broker.url, "dev", protocol=4, username="dev") as dev:
            dev.publish(DATA, b"queued")
        with TestClient.connect(broker.url, **persistent) as sub:
            assert sub.session_present
            assert sub.expect(timeout=2).payload == b"queued"


def test_amqtt_anonymous_sessions_are_not_persistent(tmp_path):
    """amqtt 0.12 with anonymous access marks every session anonymous and queues nothing for it offline."""
    with AmqttBroker(tmp_path) as broker:
        persistent = {"client_id": "consumer", "protocol": 4, "clean_start": False, "username": "consumer"}
        with TestClient.connect(broker.url, **persistent) as sub:
            sub.subscribe("carbonpark/+/+/data")
        with TestClient.connect(broker.url, "dev", protocol=4) as dev:
            dev.publish(DATA, b"lost")
        with TestClient.connect(broker.url, **persistent) as sub, pytest.raises(queue.Empty):
            sub.expect(timeout=0.5)
