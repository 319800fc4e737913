"""Readings pushed with Transfer-Encoding: chunked over a raw socket to a real gunicorn are read and stored;
past the body limit the answer is 413 E1004 while the client is still sending (issue #7 item 6)."""

import http.client
import json
import socket
import threading

import pytest
from django.conf import settings

from apps.ingestion.models import Reading
from tests.gunicorn_server import Gunicorn, database_url_of_this_test
from tests.test_ingest_api import rec


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def head(token_key: str, extra: str = "") -> bytes:
    return (f"POST /api/v1/readings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {token_key}\r\n"
            f"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n{extra}\r\n").encode()


def read_response(sock: socket.socket) -> tuple[int, dict]:
    resp = http.client.HTTPResponse(sock)
    resp.begin()
    return resp.status, json.loads(resp.read())


@pytest.fixture(scope="module")
def web(django_db_setup, tmp_path_factory):
    with Gunicorn(database_url_of_this_test(), tmp_path_factory.mktemp("web") / "web.log") as server:
        yield server


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_chunked_batch_is_read_and_stored(meter, token_key, web):
    records = [rec(timestamp=f"2026-11-23 10:{m:02d}:00", value=float(m)) for m in range(60)]
    body = json.dumps(records).encode()
    with socket.create_connection(("127.0.0.1", web.port), timeout=30) as sock:
        sock.sendall(head(token_key))
        # Odd chunk sizes, sent one by one, as a client streaming its body would.
        for i in range(0, len(body), 777):
            sock.sendall(chunk(body[i:i + 777]))
        sock.sendall(b"0\r\n\r\n")
        status, answer = read_response(sock)
    assert status == 200, answer
    assert answer == {"accepted": 60, "duplicates": 0, "rejected": []}
    assert Reading.objects.count() == 60


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_chunked_body_past_the_limit_is_refused_before_it_ends(meter, token_key, web):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    piece = b"[" + b" " * (1024 * 1024 - 1)
    sock = socket.create_connection(("127.0.0.1", web.port), timeout=30)
    sent = {"bytes": 0, "error": None}

    def send():
        # Past the limit by a few pieces, then the client keeps the body open (no last chunk): a server
        # that read the whole body before checking would never answer.
        try:
            sock.sendall(head(token_key))
            while sent["bytes"] <= limit + 4 * len(piece):
                sock.sendall(chunk(piece))
                sent["bytes"] += len(piece)
        except OSError as exc:
            sent["error"] = exc

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        status, answer = read_response(sock)
    finally:
        sock.close()
        sender.join(10)
    assert status == 413, answer
    assert answer["code"] == "E1004"
    assert Reading.objects.count() == 0
    assert web.proc.poll() is None
    # The web server still serves.
    assert web.request("GET", "/api/v1/errors")[0] == 200


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_chunked_body_just_under_the_limit_is_read(meter, token_key, web):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = json.dumps([rec()]).encode()
    body = body[:-1] + b" " * (limit - len(body)) + b"]"
    assert len(body) == limit
    with socket.create_connection(("127.0.0.1", web.port), timeout=60) as sock:
        sock.sendall(head(token_key))
        for i in range(0, len(body), 1 << 20):
            sock.sendall(chunk(body[i:i + (1 << 20)]))
        sock.sendall(b"0\r\n\r\n")
        status, answer = read_response(sock)
    assert status == 200, answer
    assert answer["accepted"] == 1
