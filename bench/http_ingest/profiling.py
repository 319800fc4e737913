"""--profile: where the time of one batch goes, in-process (no HTTP server, no clients)."""

from __future__ import annotations

import os
import time

from .common import URL_PATH, say
from .data import make_bodies
from .database import reset_tables


def run_profile(args, fx: dict) -> None:
    """Where the time of one batch goes, in this process (no HTTP server, no clients): each stage
    timed on its own over fresh batches (wall clock and this process's CPU), then cProfile of the
    whole request through Django's test client."""
    import cProfile
    import io
    import pstats
    import statistics

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carbonpark.settings")
    django.setup()
    import orjson
    from django.db import transaction
    from django.test import Client
    from django.utils import timezone

    from apps.accounts.authentication import ApiTokenAuthentication, TokenPrincipal
    from apps.accounts.models import ApiToken
    from apps.ingestion import store
    from apps.ingestion.config import current_config
    from apps.ingestion.normalize import normalize
    from apps.ingestion.services import ingest_readings

    nb = args.profile_batches
    reset_tables(os.environ["DATABASE_URL"])
    client = Client(HTTP_AUTHORIZATION=f"Token {fx['token']}", HTTP_ACCEPT_LANGUAGE="en")
    token = ApiToken.objects.select_related("park").get(prefix=fx["token"].split("_")[1])
    principal = TokenPrincipal(token)
    parks = frozenset([token.park_id])
    client.post(URL_PATH, b"[]", content_type="application/json")  # warm: imports, config, connection
    offset = [10_000_000]
    now = timezone.now()
    cfg = current_config()

    def fresh(count=nb):  # new identities for every stage, so that every insert really inserts
        bodies = make_bodies(count * args.batch, args.batch, fx, offset=offset[0])
        offset[0] += count * args.batch
        return bodies

    def fresh_rows():
        return [normalize(orjson.loads(b), cfg, allowed_parks=parks, now=now)[0] for b in fresh()]

    stages: dict[str, tuple] = {}

    def stage(name, fn, inputs):
        walls, cpus = [], []
        for x in inputs:
            t, c = time.perf_counter(), time.process_time()
            fn(x)
            cpus.append(time.process_time() - c)
            walls.append(time.perf_counter() - t)
        stages[name] = (statistics.median(walls) * 1000, statistics.median(cpus) * 1000)

    class FakeRequest:
        META = {"HTTP_AUTHORIZATION": f"Token {fx['token']}"}
        headers = {"authorization": META["HTTP_AUTHORIZATION"]}

    auth = ApiTokenAuthentication()
    stage("orjson.loads(body)", orjson.loads, fresh())
    stage("token authentication (1 query)", lambda _: auth.authenticate(FakeRequest()), range(nb))
    stage("current_config() (1 query: config version)", lambda _: current_config(), range(nb))
    stage("normalize(records)", lambda recs: normalize(recs, cfg, allowed_parks=parks, now=now),
          [orjson.loads(b) for b in fresh()])
    commits = []

    def db_only(rows):
        atomic = transaction.atomic()
        atomic.__enter__()
        cur = store.raw_cursor()
        bid, _version = store.open_batch(cur)
        repeated = store.insert_readings(cur, rows, batch_id=bid, channel="http", now=now)
        store.insert_batch(cur, bid, now=now, channel="http", actor_label="bench", park_id=fx["park_pk"],
                           total=len(rows), accepted=len(rows) - len(repeated), duplicates=len(repeated), rejected=0,
                           flagged=0, warned=0)
        t = time.perf_counter()
        atomic.__exit__(None, None, None)
        commits.append(time.perf_counter() - t)

    stage("store: batch id + binary COPY to staging + INSERT..SELECT + batch row + commit", db_only, fresh_rows())
    stages["  of which COMMIT (the 3 deferred FK checks per row run here, then the WAL flush)"] = (
        statistics.median(commits) * 1000, None)
    stage("ingest_readings(records): the whole service", lambda recs: ingest_readings(
        recs, channel="http", actor=principal, parks=[token.park_id]), [orjson.loads(b) for b in fresh()])
    stage("full request via Django test client (WSGI, middleware, DRF, auth)",
          lambda body: client.post(URL_PATH, body, content_type="application/json"), fresh())

    say(f"\nper {args.batch}-record batch, median over {nb} batches, in this process (ms):")
    say(f"  {'stage':<92} {'wall':>7} {'CPU':>7}")
    for name, (wall, cpu) in stages.items():
        say(f"  {name:<92} {wall:7.2f} {'' if cpu is None else f'{cpu:7.2f}':>7}")

    prof = cProfile.Profile()
    bodies = fresh()
    prof.enable()
    for b in bodies:
        client.post(URL_PATH, b, content_type="application/json")
    prof.disable()
    for key, title in (("tottime", "own time"), ("cumulative", "cumulative time")):
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats(key).print_stats(args.profile_top)
        say(f"\ncProfile of {nb} full requests (divide by {nb} for one batch), by {title}:")
        say(out.getvalue())
