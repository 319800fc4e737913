#!/usr/bin/env python3
"""Render deploy/nginx/carbonpark.conf.template into a site file for nginx (standard library only).

    python3 deploy/nginx/render.py --server-name carbon.example.org \\
        --cert /etc/ssl/carbonpark/fullchain.pem --key /etc/ssl/carbonpark/privkey.pem \\
        --output /etc/nginx/sites-available/carbonpark

Every value has a production default (gunicorn on 127.0.0.1:8000, HTTPS on 443, HTTP on 80, the API's 16 MiB
body limit); the tests render the same template with free ports and a certificate made in the test.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().with_name("carbonpark.conf.template")
BODY_LIMIT = 16 * 1024 * 1024  # carbonpark/settings.py DATA_UPLOAD_MAX_MEMORY_SIZE (a test keeps them equal)
# carbonpark/settings.py UPLOAD_MAX_BYTES (default 100 MiB): one tus PATCH may carry a whole file
UPLOAD_LIMIT = int(os.environ.get("UPLOAD_MAX_BYTES", str(100 * 1024 * 1024)))


def render(*, upstream: str, server_name: str, cert: str, key: str, https_port: int = 443, http_port: int = 80,
           listen: str = "0.0.0.0", body_limit: int = BODY_LIMIT, template: Path = TEMPLATE) -> str:
    for name, value in {"upstream": upstream, "server_name": server_name, "cert": cert, "key": key,
                        "listen": listen}.items():
        if not value or re.search(r"[\s;{}'\"$]", value):
            raise ValueError(f"--{name.replace('_', '-')} must be one word without ; {{ }} quotes or $: {value!r}")
    if body_limit % (1024 * 1024):
        raise ValueError("--body-limit must be a whole number of MiB")
    values = {
        "UPSTREAM": upstream, "SERVER_NAME": server_name, "CERT": cert, "KEY": key, "LISTEN": listen,
        "HTTPS_PORT": str(https_port), "HTTP_PORT": str(http_port),
        "HTTPS_PORT_SUFFIX": "" if https_port == 443 else f":{https_port}",
        "BODY_LIMIT": f"{body_limit // (1024 * 1024)}m", "BODY_LIMIT_BYTES": str(body_limit),
        "UPLOAD_LIMIT": f"{UPLOAD_LIMIT // (1024 * 1024) + 1}m",
    }
    text = template.read_text()
    missing = set(re.findall(r"\{\{(\w+)\}\}", text)) - set(values)
    if missing:
        raise ValueError(f"the template names values render.py does not know: {sorted(missing)}")
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", default="127.0.0.1:8000", help="gunicorn's address (default 127.0.0.1:8000)")
    ap.add_argument("--server-name", required=True, help="the host name clients use (the certificate's name)")
    ap.add_argument("--cert", required=True, help="certificate chain (PEM), server certificate first")
    ap.add_argument("--key", required=True, help="its private key (PEM)")
    ap.add_argument("--https-port", type=int, default=443)
    ap.add_argument("--http-port", type=int, default=80, help="plain HTTP: redirects to HTTPS only")
    ap.add_argument("--listen", default="0.0.0.0", help="address to listen on (default: all IPv4)")
    ap.add_argument("--body-limit", type=int, default=BODY_LIMIT, help="bytes; the API's limit (default 16 MiB)")
    ap.add_argument("--output", help="file to write (default: standard output)")
    args = ap.parse_args(argv)
    try:
        text = render(upstream=args.upstream, server_name=args.server_name, cert=args.cert, key=args.key,
                      https_port=args.https_port, http_port=args.http_port, listen=args.listen,
                      body_limit=args.body_limit)
    except ValueError as exc:
        ap.error(str(exc))
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
