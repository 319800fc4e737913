"""The production front (issue #7 item 7a): Debian's nginx with the site rendered from deploy/nginx/'s template,
a certificate from a CA made in the test, before a real gunicorn; everything on free ports of 127.0.0.1.

TLS 1.1 refused (a control run of the same site with TLS 1.1 allowed shows the client can speak it), TLS 1.2
and 1.3 and HTTP/2 accepted, a reading posted through it stored with X-Forwarded-Proto/For set, the API's body
limit answered by nginx in the API's shape, and slow clients held by nginx: gunicorn runs *sync* workers here,
so only the front's buffering stands between 50 trickling connections and the two workers."""

import http.client
import os
import re
import socket
import ssl
import struct
import time
import warnings
from unittest import mock

import orjson
import pytest
from django.conf import settings

from apps.ingestion.models import Reading
from tests.brokers import make_ca
from tests.test_mqtt_channel import _database_url_of_this_test
from tests.webfront import Gunicorn, Nginx, Tricklers, find_nginx, http_get, render_nginx

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

ACCESS_FORMAT = '%(m)s %(U)s %(s)s proto=%({x-forwarded-proto}i)s for=%({x-forwarded-for}i)s host=%({host}i)s'


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pki")
    ca = make_ca(tmp / "ca")
    cert, key = ca.issue("localhost", tmp / "server")
    return ca, cert, key


def client_tls(ca, *, version=None, alpn=("http/1.1",)) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca.cert_file))
    if version is not None:
        with warnings.catch_warnings():  # "ssl.TLSVersion.TLSv1_1 is deprecated": the point of the test
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ctx.maximum_version = version
        if version < ssl.TLSVersion.TLSv1_2:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 offers TLS 1.0/1.1 only at level 0
    ctx.set_alpn_protocols(list(alpn))
    return ctx


def handshake(port: int, ctx: ssl.SSLContext) -> ssl.SSLSocket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(sock, server_hostname="localhost")


@pytest.fixture(scope="module")
def app(tmp_path_factory, django_db_setup):
    """gunicorn with the production configuration, but 2 *sync* workers: the front must protect them.
    One per module, on the test database (each test's transactional data is flushed around it)."""
    tmp = tmp_path_factory.mktemp("gunicorn")
    with Gunicorn(_database_url_of_this_test(), settings.REDIS_URL, tmp / "gunicorn.log", workers=2,
                  extra_args=("--worker-class", "sync", "--access-logfile", str(tmp / "access.log"),
                              "--access-logformat", ACCESS_FORMAT)) as running:
        running.access_log = tmp / "access.log"
        yield running


@pytest.fixture(scope="module")
def front(tmp_path_factory, app, pki):
    _ca, cert, key = pki
    with Nginx(tmp_path_factory.mktemp("nginx"), app.port, cert, key) as nginx:
        yield nginx


def test_shipped_template_renders_to_a_valid_site_with_the_apis_limits(tmp_path, pki):
    assert find_nginx(), "nginx is missing: scripts/install-nginx (make test runs it)"
    _ca, cert, key = pki
    site = render_nginx(tmp_path / "site.conf", upstream_port=8000, https_port=443, http_port=80, cert=cert,
                        key=key).read_text()
    assert "{{" not in site
    limit = re.search(r"client_max_body_size (\d+)m;", site).group(1)
    assert int(limit) * 1024 * 1024 == settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert re.search(r"ssl_protocols TLSv1\.2 TLSv1\.3;", site)
    assert "proxy_request_buffering on;" in site
    connect = int(re.search(r"proxy_connect_timeout (\d+)s;", site).group(1))
    read = int(re.search(r"proxy_read_timeout (\d+)s;", site).group(1))
    assert connect <= 30 and read <= 60  # R-8.1.2.2
    from tests.webfront import ROOT

    conf = {}
    with mock.patch.dict(os.environ):  # the file sets CARBONPARK_DB_POOL for gunicorn: not for this process
        exec((ROOT / "carbonpark" / "gunicorn.conf.py").read_text(), conf)  # noqa: S102 - our own config file
    assert conf["timeout"] < read  # a stuck worker is replaced before the front gives up
    assert conf["BUFFER_LIMIT"] == settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    nginx = Nginx(tmp_path / "nginx", 8000, cert, key)
    checked = nginx.check()
    assert checked.returncode == 0, checked.stderr


def test_tls_below_1_2_refused_1_2_1_3_and_http2_accepted(tmp_path, pki, app, front):
    ca, cert, key = pki
    with pytest.raises(ssl.SSLError):
        handshake(front.https_port, client_tls(ca, version=ssl.TLSVersion.TLSv1_1))
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        with handshake(front.https_port, client_tls(ca, version=version)) as s:
            assert s.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
    with handshake(front.https_port, client_tls(ca, alpn=("h2", "http/1.1"))) as s:
        assert s.selected_alpn_protocol() == "h2"
        assert h2_get(s, "/healthz", front.https_port) in (200, 503)  # the application answered over HTTP/2
    # Control: the same site with TLS 1.1 allowed takes this client's TLS 1.1, so the refusal above is the site's.
    widened = Nginx(tmp_path / "nginx-tls11", app.port, cert, key, site_edit=lambda text: text.replace(
        "ssl_protocols TLSv1.2 TLSv1.3;", "ssl_protocols TLSv1.1 TLSv1.2 TLSv1.3;").replace(
        "ssl_ciphers ", "ssl_ciphers DEFAULT:@SECLEVEL=0:"))
    with widened, handshake(widened.https_port, client_tls(ca, version=ssl.TLSVersion.TLSv1_1)) as s:
        assert s.version() == "TLSv1.1"


def test_a_reading_posted_through_the_front_is_stored(pki, app, front, meter, token_key):
    ca, _cert, _key = pki
    conn = http.client.HTTPSConnection("localhost", front.https_port, timeout=20, context=client_tls(ca))
    body = orjson.dumps({"sourceId": "TP01-EM-0001", "timestamp": "2026-11-23 10:00:00", "value": 12.5,
                         "unit": "kWh", "status": "N"})
    conn.request("POST", "/api/v1/readings", body=body, headers={
        "Content-Type": "application/json", "Authorization": f"Token {token_key}", "X-Forwarded-For": "6.6.6.6"})
    resp = conn.getresponse()
    assert (resp.status, orjson.loads(resp.read())["accepted"]) == (200, 1)
    assert list(Reading.objects.values_list("value", flat=True)) == [12.5]
    # Plain HTTP only redirects to HTTPS.
    plain = http.client.HTTPConnection("127.0.0.1", front.http_port, timeout=10)
    plain.request("GET", "/healthz", headers={"Host": "localhost"})
    redirect = plain.getresponse()
    assert redirect.status == 308
    assert redirect.getheader("Location") == f"https://localhost:{front.https_port}/healthz"
    # gunicorn saw the scheme and the client's address from the front, not the address the client claimed.
    deadline = time.monotonic() + 5
    while "POST /api/v1/readings" not in app.access_log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    line = next(x for x in app.access_log.read_text().splitlines() if x.startswith("POST /api/v1/readings"))
    assert line == f"POST /api/v1/readings 200 proto=https for=127.0.0.1 host=localhost:{front.https_port}"


def test_a_body_over_the_apis_limit_refused_by_the_front_with_the_apis_code(pki, front):
    ca, _cert, _key = pki
    conn = http.client.HTTPSConnection("localhost", front.https_port, timeout=20, context=client_tls(ca))
    conn.putrequest("POST", "/api/v1/readings")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1))
    conn.putheader("Accept-Language", "en")
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413
    assert resp.getheader("Content-Type") == "application/json"
    assert orjson.loads(resp.read()) == {"code": "E1004", "message": (
        f"The request body is too large (limit {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes). "
        "Split it, or send the data as a file through the resumable upload endpoint /api/v1/uploads/ (tus protocol; "
        "see docs/uploads.md).")}


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_gunicorn_down_answers_the_apis_e1018_with_retry_after(tmp_path, pki, language):
    """No gunicorn behind the front (stopped, or restarting under its supervisor): the client gets the API's
    JSON E1018 and Retry-After, word for word the platform's own message, not nginx's HTML 502."""
    from apps.core.errors import E1018

    ca, cert, key = pki
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    with Nginx(tmp_path / "nginx", dead, cert, key) as nginx:
        conn = http.client.HTTPSConnection("localhost", nginx.https_port, timeout=20, context=client_tls(ca))
        conn.request("POST", "/api/v1/readings", body=b"[]",
                     headers={"Content-Type": "application/json", "Accept-Language": language})
        resp = conn.getresponse()
        assert resp.status == 503 and resp.getheader("Retry-After") == "5"
        assert resp.getheader("Content-Type") == "application/json"
        assert orjson.loads(resp.read()) == {"code": "E1018", "message": E1018.message(language, retry_after=5)}


@pytest.mark.parametrize("what", ["headers", "body"])
def test_slow_clients_held_by_the_front_not_by_the_workers(pki, app, front, what):
    ca, _cert, _key = pki
    tls = client_tls(ca)
    with Tricklers("127.0.0.1", front.https_port, 50, tls=tls, interval=0.3, body=(what == "body")) as slow:
        time.sleep(1.5)
        waits = []
        for _ in range(6):
            t = time.monotonic()
            status, headers, body = http_get("127.0.0.1", front.https_port, "/healthz", timeout=10, tls=tls)
            waits.append(time.monotonic() - t)
            assert status in (200, 503) and "checks" in orjson.loads(body), (status, body[:300])
            time.sleep(0.5)
        assert slow.sent >= 50 * 10
    print(f"/healthz through the front under 50 trickling {what}: max {max(waits):.2f} s")


# --- a minimal HTTP/2 client: enough for one GET (RFC 9113 frames, RFC 7541 literal header fields) ---------------

def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def _literal(index: int, value: str) -> bytes:
    """Literal header field without indexing, name from the static table, value not Huffman-coded."""
    data = value.encode()
    assert index < 15 and len(data) < 127
    return bytes([index, len(data)]) + data


def h2_get(sock: ssl.SSLSocket, path: str, port: int) -> int:
    """Send a GET over HTTP/2 and return the answer's :status."""
    headers = b"\x82\x87" + _literal(4, path) + _literal(1, f"localhost:{port}")  # :method GET, :scheme https
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _frame(0x4, 0, 0) + _frame(0x1, 0x4 | 0x1, 1, headers))
    buf = b""
    while True:
        while len(buf) < 9 or len(buf) < 9 + int.from_bytes(buf[:3], "big"):
            chunk = sock.recv(65536)
            assert chunk, "the server closed the HTTP/2 connection"
            buf += chunk
        length, kind, flags = int.from_bytes(buf[:3], "big"), buf[3], buf[4]
        stream = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
        payload, buf = buf[9:9 + length], buf[9 + length:]
        assert kind != 0x7, f"GOAWAY {payload!r}"
        if kind == 0x4 and not flags & 0x1:  # the server's SETTINGS: acknowledge them
            sock.sendall(_frame(0x4, 0x1, 0))
        if kind == 0x1 and stream == 1:  # HEADERS of our stream: :status comes first
            first = payload[0]
            if first & 0x80:  # indexed: static table entries 8-14 are :status values
                return {8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500}[first & 0x7F]
            assert first & 0x0F == 8 or first & 0x3F == 8, payload[:8]  # a literal named ":status"
            return int(payload[2:2 + payload[1]])
