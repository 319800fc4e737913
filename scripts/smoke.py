#!/usr/bin/env python
"""Smoke-test the README's run command on the embedded default: start it in a fresh var/ directory
(no DATABASE_URL, no REDIS_URL), push a reading over HTTP, read it back, see the demo stream flowing,
stop it as Ctrl-C does (SIGINT to the foreground process group) and check that everything, PostgreSQL
and Redis included, shut down cleanly. The faults (a process killed, restarted by supervisord) are
tests/test_run_faults.py's."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from carbonpark.embedded import free_port  # noqa: E402


def fail(msg, log=None):
    print(f"SMOKE FAILED: {msg}")
    if log and log.exists():
        print("---- last lines of the run's output ----")
        print("\n".join(log.read_text(errors="replace").splitlines()[-60:]))
    sys.exit(1)


def http(method, url, token=None, body=None):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    req.add_header("Accept-Language", "en")
    if token:
        req.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def main():
    var = Path(tempfile.mkdtemp(prefix="carbonpark-smoke-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(CARBONPARK_VAR=str(var), CARBONPARK_PORT=str(port), CARBONPARK_DEMO_INTERVAL="2", WEB_CONCURRENCY="2")
    log = var / "run.log"
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    with open(log, "a") as out:  # append: supervisord's console writes to the same file
        proc = subprocess.Popen([sys.executable, "-m", "carbonpark.embedded", "run"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        token_file = var / "demo_token"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                fail(f"the run command exited early with {proc.returncode}", log)
            try:
                status, body = http("GET", f"{base}/healthz")
                if status == 200 and token_file.exists() and "CarbonPark is up" in log.read_text():
                    break
            except OSError:
                pass
            time.sleep(1)
        else:
            fail("the portal did not become healthy within 240 s", log)
        print(f"up in {time.monotonic() - started:.1f} s: {base} {body}")
        text = log.read_text()
        if "login: admin /" not in text or base + "/" not in text:
            fail("the run command did not print the URL and the login", log)
        for asset in ("/static/admin/css/base.css",
                      "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"):
            with urllib.request.urlopen(base + asset, timeout=10) as resp:
                if resp.status != 200 or not resp.read(100):
                    fail(f"static file {asset} is not served", log)
        with urllib.request.urlopen(base + "/api/docs/", timeout=10) as resp:
            if b"swagger-ui-bundle.js" not in resp.read():
                fail("the API docs page does not load Swagger UI", log)
        print("static files (portal CSS, Swagger UI) are served")
        token = token_file.read_text().strip()
        tz = ZoneInfo("Asia/Shanghai")
        ts = (datetime.now(tz) - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S") + ".321"
        record = {"sourceId": "JSTZ01-EM-0001", "dataCode": "CS010201", "timestamp": ts, "value": 42.5,
                  "unit": "kWh"}
        status, body = http("POST", f"{base}/api/v1/readings", token, record)
        if status != 200 or body != {"accepted": 1, "duplicates": 0, "rejected": []}:
            fail(f"push answered {status} {body}", log)
        query = f"sourceId=JSTZ01-EM-0001&start={ts.replace(' ', '%20')}&end={ts.replace(' ', '%20')}"
        status, body = http("GET", f"{base}/api/v1/readings?{query}", token)
        if status != 200 or [r["value"] for r in body["results"]] != [42.5]:
            fail(f"read back answered {status} {body}", log)
        print(f"pushed and read back one reading at {ts}")
        for _ in range(30):
            status, body = http("GET", f"{base}/api/v1/readings?sourceId=JSTZ01-WW-0001&limit=5", token)
            if status == 200 and body["results"]:
                break
            time.sleep(1)
        else:
            fail("no demo readings arrived from the demo stream", log)
        print("the demo stream is flowing")
        # The real-time channel: the demo's MQTT devices (TLV, sealed JSON) reach the store through the
        # embedded broker and the consumer; then a reading published here comes back over HTTP.
        for sid in ("JSTZ01-EM-0003", "JSTZ01-CCUS-0001"):
            for _ in range(30):
                status, body = http("GET", f"{base}/api/v1/readings?sourceId={sid}&limit=1", token)
                if status == 200 and body["results"]:
                    break
                time.sleep(1)
            else:
                fail(f"no MQTT demo readings from {sid}", log)
        mqtt_url = next(line.split("MQTT broker: ", 1)[1].split()[0] for line in log.read_text().splitlines()
                        if "MQTT broker: " in line)
        import paho.mqtt.client as mqtt

        host, port = mqtt_url.split("://", 1)[1].rsplit(":", 1)
        client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="smoke",
                             protocol=mqtt.MQTTv311)
        client.connect(host, int(port), 60)
        client.loop_start()
        ts2 = (datetime.now(tz) - timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S") + ".654"
        info = client.publish("carbonpark/JSTZ01/JSTZ01-EM-0001/data", json.dumps(
            {"sourceId": "JSTZ01-EM-0001", "dataCode": "CS010201", "timestamp": ts2, "value": 7.25}), qos=1)
        info.wait_for_publish(10)
        client.disconnect()
        client.loop_stop()
        query = f"sourceId=JSTZ01-EM-0001&start={ts2.replace(' ', '%20')}&end={ts2.replace(' ', '%20')}"
        for _ in range(30):
            status, body = http("GET", f"{base}/api/v1/readings?{query}", token)
            if status == 200 and [r["value"] for r in body["results"]] == [7.25]:
                break
            time.sleep(0.5)
        else:
            fail(f"the reading published over MQTT did not arrive: {status} {body}", log)
        print("MQTT: the demo devices' TLV and sealed JSON arrive, and a published reading was read back")
        # Field protocols: the HJ 212 station pushes to the listener; Celery beat polls the DL/T 645, Modbus and
        # OPC UA simulators (first poll within about a minute of start).
        waiting = {"JSTZ01-WW-0001": "HJ 212", "JSTZ01-EM-0001": "DL/T 645", "JSTZ01-EM-0002": "Modbus TCP",
                   "JSTZ01-UA-0001": "OPC UA"}
        deadline = time.monotonic() + 150
        while waiting and time.monotonic() < deadline:
            for sid in list(waiting):
                status, body = http("GET", f"{base}/api/v1/readings?sourceId={sid}&limit=1", token)
                if status == 200 and body["results"]:
                    print(f"{waiting.pop(sid)}: readings of {sid} stored")
            time.sleep(2)
        if waiting:
            fail(f"no readings from the simulated {', '.join(waiting.values())} devices", log)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the run command and supervisord get it
        try:
            code = proc.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            fail("the run command did not stop within 90 s of Ctrl-C", log)
    leftovers = subprocess.run(["pgrep", "-f", str(var)], capture_output=True, text=True).stdout.split()
    if leftovers:
        subprocess.run(["pkill", "-9", "-f", str(var)])
        fail(f"processes left running after stop: {leftovers}", log)
    if (var / "pgdata" / "postmaster.pid").exists():
        fail("PostgreSQL did not shut down cleanly (postmaster.pid left)", log)
    if code != 0:
        fail(f"the run command exited with {code} after Ctrl-C", log)
    print(f"stopped cleanly (exit code {code}); smoke passed in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
