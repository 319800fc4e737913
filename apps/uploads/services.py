"""Resumable uploads, the writes (tus 1.0.0; interfaces.md §3, §7; R-8.4.2.2, R-8.4.2.3): creation with every check
made before any byte arrives, appending a chunk at the offset the platform holds, concatenation of parallel parts,
termination, expiry, and the hand-off to loading once the last byte is in.

How one PATCH holds an upload: it takes a lease under the row's lock (select_for_update) and commits; it streams
the body to the file with no transaction or database connection held (a chunk may take minutes on a slow link:
a transaction that long would pin a pooled connection and hold back vacuum); then it commits the new offset under
the row's lock again, only if the lease is still its own. A second PATCH while the lease holds is refused (409,
E9015); a lease whose holder died lapses after UPLOAD_LEASE_SECONDS and is renewed while bytes keep arriving. The
file is opened for append only, and cut back to the committed offset before anything is appended: bytes of a PATCH
that never committed, or of a chunk whose checksum failed, are not kept."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.accounts import access
from apps.accounts.access import Action
from apps.accounts.models import Park
from apps.core.errors import CarbonParkError
from apps.core.services import actor_fields, record_change
from apps.uploads import errors, tus
from apps.uploads.models import Upload, upload_dir

log = logging.getLogger(__name__)

PIECE = 256 * 1024  # bytes read from the request and written to disk at a time: memory stays flat


def _expiry():
    return timezone.now() + timedelta(hours=settings.UPLOAD_EXPIRES_HOURS)


def resolve_park(actor, code: str | None) -> Park:
    """The park an upload is for: the one named in its metadata (``park``), else the caller's only park where it
    may push (an API token's park). Another park, or one that does not exist, is refused alike (R-7.1.2)."""
    if code:
        park = Park.objects.filter(code=code[:32]).first()
        if park is None or not access.check(actor, Action.PUSH, park):
            raise CarbonParkError(errors.E9007, field="park", park=code[:32])
        return park
    ids = access.park_ids(actor, Action.PUSH)
    if ids is not None and len(ids) == 1:
        return Park.objects.get(pk=ids[0])
    if ids == []:
        raise CarbonParkError(errors.E9007, field="park", park="-")
    raise CarbonParkError(errors.E9009, field="park")


def create_upload(*, actor, length: int | None, metadata: dict, concat: str = "", parts: list[str] = ()) -> Upload:
    """Create an upload (tus creation, creation-defer-length, concatenation) after every check that needs no byte:
    the park and the caller's right to push there, the file type by its name (interfaces.md §7), the size
    (UPLOAD_MAX_BYTES) and the declared MD5 (R-8.4.2.2). A final upload is put together from its parts at once and
    queued for loading; naming the same parts again returns the same final upload (a retried request)."""
    park = resolve_park(actor, metadata.get("park"))
    name, ftype = "", None
    if concat != "partial":  # a part's name is its final upload's business
        name = tus.clean_filename(metadata.get("filename"))
        ftype = tus.file_type(name)
        if ftype.park_code != park.code:
            raise CarbonParkError(errors.E9008, field="filename", name=name[:120], file_park=ftype.park_code,
                                  park=park.code)
    md5 = tus.clean_md5(metadata.get("md5"))
    limit = settings.UPLOAD_MAX_BYTES
    if length is not None and length > limit:
        raise CarbonParkError(errors.E9003, field="Upload-Length", length=length, limit=limit)
    who = actor_fields(actor)
    token = getattr(actor, "token", None)
    upload = Upload(park=park, created_by=who["actor"], created_by_token=token if getattr(token, "pk", None) else None,
                    created_by_label=who["actor_label"], filename=name,
                    kind=ftype.kind if ftype else "", compression=ftype.compression if ftype else "",
                    encrypted=ftype.encrypted if ftype else False, length=length, metadata=metadata, md5=md5,
                    concat=concat, expires_at=_expiry())
    if concat == "final":
        return _concatenate(actor, upload, parts)
    upload_dir().mkdir(parents=True, exist_ok=True)
    with transaction.atomic():
        upload.save(force_insert=True)
        with open(upload.path, "ab"):  # append mode: an existing file is never cut short
            pass
        if upload.complete:  # an empty file is whole at creation
            locked = Upload.objects.select_for_update().get(pk=upload.pk)
            _complete(actor, locked)
            locked.save()
            upload = locked
    return upload


def _concatenate(actor, final: Upload, part_ids: list[str]) -> Upload:
    """The concatenation extension: the parts (finished partial uploads of the same park) copied in order into the
    final upload's file, piece by piece. Each part is used by one final upload only."""
    try:
        wanted = [uuid.UUID(p) for p in part_ids]
    except ValueError:
        raise CarbonParkError(errors.E9021, field="Upload-Concat", detail="a part is not an upload's id") from None
    upload_dir().mkdir(parents=True, exist_ok=True)
    with transaction.atomic():
        found = {u.pk: u for u in access.restrict(Upload.objects.select_for_update(), actor, Action.PUSH)
                 .filter(pk__in=wanted).order_by("pk")}
        parts = []
        for pid in wanted:
            part = found.get(pid)
            if part is None:
                raise CarbonParkError(errors.E9021, field="Upload-Concat", detail=f"no part {pid} of yours")
            if part.park_id != final.park_id:
                raise CarbonParkError(errors.E9021, field="Upload-Concat", detail=f"the part {pid} is another park's")
            if part.concat != Upload.Concat.PARTIAL:
                raise CarbonParkError(errors.E9021, field="Upload-Concat",
                                      detail=f"{pid} was not created as a partial upload")
            if part.final_id is not None:
                previous = Upload.objects.filter(pk=part.final_id).first()
                if previous is not None and previous.parts == wanted:
                    return previous  # the same final asked for again: answered once, loaded once
                raise CarbonParkError(errors.E9021, field="Upload-Concat", detail=f"the part {pid} is used already")
            if part.state == Upload.State.EXPIRED:
                raise CarbonParkError(errors.E9012, id=str(pid))
            if not part.complete:
                raise CarbonParkError(errors.E9021, field="Upload-Concat", detail=f"the part {pid} is not finished")
            parts.append(part)
        total = sum(p.length for p in parts)
        if total > settings.UPLOAD_MAX_BYTES:
            raise CarbonParkError(errors.E9003, field="Upload-Concat", length=total, limit=settings.UPLOAD_MAX_BYTES)
        final.length, final.offset, final.parts = total, total, wanted
        final.save(force_insert=True)
        with open(final.path, "ab") as out:
            out.truncate(0)  # a file of this new id cannot hold anything of ours yet
            for part in parts:
                with open(part.path, "rb") as src:
                    while piece := src.read(PIECE):
                        out.write(piece)
            out.flush()
            os.fsync(out.fileno())
        for part in parts:
            part.final = final
            part.save(update_fields=["final", "updated_at"])
        _complete(actor, final)
        final.save()
        paths = [p.path for p in parts]
        transaction.on_commit(lambda: [_remove(p) for p in paths])  # the parts' bytes now live in the final file
    return final


def _remove(path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _md5_of(path) -> str:
    digest = hashlib.md5()  # noqa: S324 - the file's id of R-8.4.2.2, not a password
    with open(path, "rb") as f:
        while piece := f.read(1024 * 1024):
            digest.update(piece)
    return digest.hexdigest()


def _complete(actor, upload: Upload) -> None:
    """The last byte is in (called under the row's lock, once: the state leaves ``receiving`` here). The whole
    file's MD5 is checked against the declared one (R-8.4.2.2): a mismatch fails the upload and nothing is
    loaded; otherwise the load is queued when this transaction commits. Parts of a concatenation wait for it."""
    upload.received_md5 = _md5_of(upload.path)
    upload.received_at = timezone.now()
    upload.lease = upload.lease_until = None
    if upload.concat == Upload.Concat.PARTIAL:
        upload.state = Upload.State.RECEIVED
        return
    if upload.md5 and upload.md5 != upload.received_md5:
        fail(upload, errors.E9030, got=upload.received_md5, declared=upload.md5)
    else:
        upload.state = Upload.State.RECEIVED
        upload.load_queued_at = timezone.now()
        upload_id = upload.pk
        transaction.on_commit(lambda: _enqueue_load(upload_id))
    record_change(actor=actor, action="upload.received", obj=upload, park_code=upload.park.code, after={
        "filename": upload.filename, "length": upload.length, "md5": upload.received_md5, "state": upload.state,
        "error": upload.error_code or None})


def _enqueue_load(upload_id) -> None:
    from apps.uploads import tasks

    tasks.load_upload.delay(str(upload_id))


def fail(upload: Upload, error, **params) -> None:
    upload.state = Upload.State.FAILED
    upload.error_code = error.code
    upload.error_params = {k: str(v) for k, v in params.items()}


# --- PATCH ---------------------------------------------------------------------------------------------------


def _locked(actor, upload_id) -> Upload:
    upload = access.restrict(Upload.objects.select_for_update().select_related("park"), actor, Action.PUSH) \
        .filter(pk=upload_id).first()
    if upload is None:
        raise CarbonParkError(errors.E9011, id=str(upload_id))
    return upload


def _expire_now(upload: Upload) -> bool:
    """An unfinished upload past its time: marked expired and its bytes removed. True when it was."""
    if upload.state != Upload.State.RECEIVING or upload.expires_at > timezone.now():
        return upload.state == Upload.State.EXPIRED
    upload.state, upload.lease, upload.lease_until = Upload.State.EXPIRED, None, None
    upload.save(update_fields=["state", "lease", "lease_until", "updated_at"])
    path = upload.path
    transaction.on_commit(lambda: _remove(path))
    return True


def receive_chunk(*, actor, upload_id, offset: int, body, checksum: tus.Checksum | None = None,
                  length: int | None = None, declared_size: int | None = None) -> Upload:
    """Append the request's body at ``offset`` (tus PATCH; R-8.4.2.2 c: the platform tells how many bytes it holds
    and the terminal continues from there). ``body`` has ``read(n)``; it is read and written PIECE bytes at a time.
    The offset advances by the bytes actually written (a body cut short keeps what arrived), never by what was
    declared; with ``checksum`` a chunk that does not match keeps nothing (460). ``length`` sets a deferred
    Upload-Length. ``declared_size``: the request's Content-Length, refused at once when it runs past the length."""
    lease = uuid.uuid4()
    with transaction.atomic():
        upload = _locked(actor, upload_id)
        expired = _expire_now(upload)
    if expired:
        raise CarbonParkError(errors.E9012, id=str(upload_id))
    with transaction.atomic():
        upload = _locked(actor, upload_id)
        if upload.concat == Upload.Concat.FINAL:
            raise CarbonParkError(errors.E9020)
        if offset != upload.offset:
            raise CarbonParkError(errors.E9013, field="Upload-Offset", offset=upload.offset, sent=offset)
        if length is not None and upload.length is None:
            if length < upload.offset or length > settings.UPLOAD_MAX_BYTES:
                raise CarbonParkError(errors.E9003 if length > upload.offset else errors.E9002, field="Upload-Length",
                                      header="Upload-Length", detail=f"{length} is below the {upload.offset} bytes "
                                      "received", length=length, limit=settings.UPLOAD_MAX_BYTES)
            upload.length = length
        elif length is not None and length != upload.length:
            raise CarbonParkError(errors.E9002, field="Upload-Length", header="Upload-Length",
                                  detail=f"the upload's length is {upload.length} already")
        if upload.state != Upload.State.RECEIVING:
            if declared_size:
                raise CarbonParkError(errors.E9018, length=upload.length)
            return upload  # a retried last PATCH with nothing in it: the upload is whole, nothing to do
        room = (upload.length if upload.length is not None else settings.UPLOAD_MAX_BYTES) - upload.offset
        if declared_size is not None and declared_size > room:
            if upload.length is None:
                raise CarbonParkError(errors.E9003, length=upload.offset + declared_size,
                                      limit=settings.UPLOAD_MAX_BYTES)
            raise CarbonParkError(errors.E9018, length=upload.length)
        now = timezone.now()
        if upload.lease is not None and upload.lease_until > now:
            raise CarbonParkError(errors.E9015)
        upload.lease, upload.lease_until = lease, now + timedelta(seconds=settings.UPLOAD_LEASE_SECONDS)
        upload.save(update_fields=["lease", "lease_until", "length", "updated_at"])
    if not connection.in_atomic_block:
        connection.close()  # no database connection is held while the body arrives (back to the pool)
    written = _stream(upload, lease, body, room, checksum)
    with transaction.atomic():
        upload = _locked(actor, upload_id)
        if upload.lease != lease:  # lapsed and taken over: the other PATCH cut the file back; nothing of ours counts
            raise CarbonParkError(errors.E9015)
        upload.offset += written
        upload.lease = upload.lease_until = None
        upload.expires_at = _expiry()
        if upload.complete:
            _complete(actor, upload)
        upload.save()
    return upload


def _release(upload_id, lease) -> None:
    Upload.objects.filter(pk=upload_id, lease=lease).update(lease=None, lease_until=None)


def _stream(upload: Upload, lease, body, room: int, checksum) -> int:
    """Write the body after the committed offset; the count of bytes written. Raises (lease released, file cut
    back) on a checksum mismatch, a body past the upload's length, or a lease lost on the way."""
    hasher = checksum.hasher() if checksum else None
    lease_s = settings.UPLOAD_LEASE_SECONDS
    renew_at = time.monotonic() + lease_s / 3
    written = 0
    try:
        with open(upload.path, "ab") as f:  # append mode: never truncated on open
            size = f.seek(0, os.SEEK_END)
            if size < upload.offset:
                raise CarbonParkError(errors.E9012, id=str(upload.pk))  # the bytes on disk are gone
            if size > upload.offset:
                f.truncate(upload.offset)  # bytes of a PATCH that never committed
            while written < room + 1:
                try:
                    piece = body.read(min(PIECE, room + 1 - written))
                except OSError:  # the client went away: what arrived counts
                    piece = b""
                except Exception as exc:  # noqa: BLE001 - a server's own "no more data" error reads the same
                    log.info("upload %s: body ended early (%s)", upload.pk, type(exc).__name__)
                    piece = b""
                if not piece:
                    break
                if written + len(piece) > room:
                    f.truncate(upload.offset)
                    if upload.length is None:
                        raise CarbonParkError(errors.E9003, length=upload.offset + written + len(piece),
                                              limit=settings.UPLOAD_MAX_BYTES)
                    raise CarbonParkError(errors.E9018, length=upload.length)
                if time.monotonic() > renew_at:
                    if not Upload.objects.filter(pk=upload.pk, lease=lease).update(
                            lease_until=timezone.now() + timedelta(seconds=lease_s)):
                        raise CarbonParkError(errors.E9015)  # taken over: leave the file to its new holder
                    renew_at = time.monotonic() + lease_s / 3
                f.write(piece)
                if hasher is not None:
                    hasher.update(piece)
                written += len(piece)
            if hasher is not None and hasher.digest() != checksum.digest:
                f.truncate(upload.offset)
                raise CarbonParkError(errors.E9016, algorithm=checksum.algorithm, offset=upload.offset)
            f.flush()
            os.fsync(f.fileno())  # the offset committed next must never run ahead of the disk
    except BaseException:
        _release(upload.pk, lease)
        raise
    return written


# --- termination and expiry ---------------------------------------------------------------------------------


def terminate(*, actor, upload_id) -> None:
    """tus termination: the upload and its bytes are removed. One queued for loading, loading or loaded stays
    (its load and report are the park's record); a partial upload used by a final one may go."""
    with transaction.atomic():
        upload = _locked(actor, upload_id)
        if upload.concat != Upload.Concat.PARTIAL and upload.state in (
                Upload.State.RECEIVED, Upload.State.LOADING, Upload.State.LOADED):
            raise CarbonParkError(errors.E9022, id=str(upload.pk), state=upload.get_state_display(),
                                  what="be deleted")
        record_change(actor=actor, action="upload.terminate", obj=upload, park_code=upload.park.code, before={
            "filename": upload.filename, "length": upload.length, "offset": upload.offset, "state": upload.state})
        path = upload.path
        Upload.objects.filter(final=upload).update(final=None)
        upload.delete()
        transaction.on_commit(lambda: _remove(path))


def expire_uploads(now=None) -> int:
    """Abandoned uploads (unfinished, or parts never concatenated) past their Upload-Expires: marked expired and
    their bytes removed (the beat task ``apps.uploads.tasks.expire_uploads``). The rows stay: a client asking
    about one is told it expired (410), not that it never was."""
    now = now or timezone.now()
    stale = Upload.objects.filter(expires_at__lt=now).filter(
        state=Upload.State.RECEIVING) | Upload.objects.filter(
        expires_at__lt=now, concat=Upload.Concat.PARTIAL, state=Upload.State.RECEIVED, final__isnull=True)
    count = 0
    for upload_id in stale.values_list("pk", flat=True)[:10_000]:
        with transaction.atomic():
            upload = Upload.objects.select_for_update(skip_locked=True).filter(pk=upload_id).first()
            if upload is None or upload.expires_at >= now:
                continue
            if upload.lease is not None and upload.lease_until > now:
                continue  # bytes arriving right now
            upload.state, upload.lease, upload.lease_until = Upload.State.EXPIRED, None, None
            upload.save(update_fields=["state", "lease", "lease_until", "updated_at"])
            path = upload.path
            transaction.on_commit(lambda path=path: _remove(path))
            count += 1
    return count
