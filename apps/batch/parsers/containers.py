"""Unwrapping a batch file down to its CSV, XML or XLSX bytes (interfaces.md §5, §7; R-8.2.2.2): the CPE1
envelope (content type 0x03, associated data = the upload id) decrypted as a stream, then gzip or zip
decompressed with bomb limits (size after decompression, ratio, one zip member). Each step writes a temporary
file beside the next, so memory stays flat whatever the size. Pure: the caller hands over the key lookup."""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from apps.protocols.codecs import envelope

from .common import FileError, Limits
from .names import FileName

CHUNK = 1 << 20
MB = 1024 * 1024


def _mb(n: int) -> str:
    return f"{n / MB:.0f}" if n >= MB else f"{n / MB:.2f}"


class _Budget:
    """Counts bytes written after decompression against the size and ratio limits."""

    def __init__(self, limits: Limits, compressed: int):
        self.limits, self.compressed, self.out = limits, max(compressed, 1), 0

    def add(self, n: int) -> None:
        self.out += n
        if self.out > self.limits.max_bytes:
            raise FileError("E9114", limit_mb=_mb(self.limits.max_bytes))
        if self.out > self.limits.ratio_floor and self.out / self.compressed > self.limits.max_ratio:
            raise FileError("E9115", ratio=self.limits.max_ratio)


def _temp(workdir: str, suffix: str):
    return tempfile.NamedTemporaryFile(dir=workdir, suffix=suffix, delete=False)  # noqa: SIM115 - closed by caller


def open_sealed(path: str, *, key_for: Callable[[str], bytes | None], upload_id: str, workdir: str) -> str:
    """Decrypt a CPE1 file envelope into a temporary file; returns its path. The GCM tag is checked at the end
    before the plaintext is used (a temporary file that fails is deleted)."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(6 + 255 + envelope.NONCE_BYTES)
        try:
            env = envelope.parse(head + b"\x00" * envelope.TAG_BYTES)  # the header only; the body follows
        except envelope.EnvelopeError as exc:
            raise FileError("E9118", detail=exc.detail) from None
        if env.content_type != envelope.CONTENT_FILE:
            raise FileError("E9118", detail=f"content type 0x{env.content_type:02X}, not 0x03 (file)")
        start = len(env.header) + envelope.NONCE_BYTES
        if size - start < envelope.TAG_BYTES:
            raise FileError("E9118", detail="too short for the GCM tag")
        key = key_for(env.key_id)
        if key is None:
            raise FileError("E9119", key_id=env.key_id[:64])
        fh.seek(size - envelope.TAG_BYTES)
        tag = fh.read(envelope.TAG_BYTES)
        decryptor = Cipher(algorithms.AES(key), modes.GCM(env.nonce, tag)).decryptor()
        decryptor.authenticate_additional_data(env.header + upload_id.encode("utf-8"))
        fh.seek(start)
        left = size - envelope.TAG_BYTES - start
        out = _temp(workdir, ".plain")
        try:
            with out:
                while left > 0:
                    chunk = fh.read(min(CHUNK, left))
                    if not chunk:
                        break
                    left -= len(chunk)
                    out.write(decryptor.update(chunk))
                out.write(decryptor.finalize())
        except InvalidTag:
            os.unlink(out.name)
            raise FileError("E9120") from None
        except BaseException:
            os.unlink(out.name)
            raise
    return out.name


def gunzip(path: str, *, limits: Limits, workdir: str) -> str:
    """gzip → a temporary file, refused past the size or ratio limit as soon as it is passed (E9114, E9115)."""
    budget = _Budget(limits, os.path.getsize(path))
    out = _temp(workdir, ".gunzip")
    try:
        with out, gzip.open(path, "rb") as src:
            while True:
                chunk = src.read(CHUNK)
                if not chunk:
                    break
                budget.add(len(chunk))
                out.write(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        os.unlink(out.name)
        raise FileError("E9117", detail=f"gzip: {str(exc)[:120]}") from None
    except BaseException:
        os.unlink(out.name)
        raise
    return out.name


def check_zip(archive: zipfile.ZipFile, limits: Limits, compressed: int) -> None:
    """The declared sizes of every member against the limits, before anything is inflated (the declared
    sizes may lie: the inflating is counted again)."""
    total = sum(i.file_size for i in archive.infolist())
    if total > limits.max_bytes:
        raise FileError("E9114", limit_mb=_mb(limits.max_bytes))
    if total > limits.ratio_floor and total / max(compressed, 1) > limits.max_ratio:
        raise FileError("E9115", ratio=limits.max_ratio)


def unzip(path: str, name: FileName, *, limits: Limits, workdir: str) -> str:
    """The one member of a zip (E9116 otherwise), of the name's format, inflated under the limits."""
    compressed = os.path.getsize(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise FileError("E9117", detail=f"zip: {str(exc)[:120]}") from None
    with archive:
        members = [i for i in archive.infolist() if not i.is_dir()]
        shown = ", ".join(i.filename[:60] for i in members[:5]) or "—"
        if len(members) != 1 or not members[0].filename.lower().endswith("." + name.format):
            raise FileError("E9116", members=shown)
        check_zip(archive, limits, compressed)
        budget = _Budget(limits, compressed)
        out = _temp(workdir, ".unzip")
        try:
            with out, archive.open(members[0]) as src:
                while True:
                    chunk = src.read(CHUNK)
                    if not chunk:
                        break
                    budget.add(len(chunk))
                    out.write(chunk)
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError, RuntimeError) as exc:
            os.unlink(out.name)
            raise FileError("E9117", detail=f"zip: {str(exc)[:120]}") from None
        except BaseException:
            os.unlink(out.name)
            raise
    return out.name


def unwrap(path: str, name: FileName, *, limits: Limits, workdir: str,
           key_for: Callable[[str], bytes | None] | None = None, upload_id: str = "") -> tuple[str, list[str]]:
    """The plain CSV/XML/XLSX file of ``path`` as its name describes it: (its path, the temporary files made,
    for the caller to delete). Refused with an E91xx FileError at the first step that fails."""
    made: list[str] = []
    current = path
    try:
        if name.sealed:
            if key_for is None:
                raise FileError("E9119", key_id="—")
            current = open_sealed(current, key_for=key_for, upload_id=upload_id, workdir=workdir)
            made.append(current)
        if name.compression == "gz":
            current = gunzip(current, limits=limits, workdir=workdir)
            made.append(current)
        elif name.compression == "zip":
            current = unzip(current, name, limits=limits, workdir=workdir)
            made.append(current)
        size = os.path.getsize(current)
        if size > limits.max_bytes:
            raise FileError("E9122", size_mb=_mb(size), limit_mb=_mb(limits.max_bytes))
    except BaseException:
        for p in made:
            with contextlib.suppress(OSError):
                os.unlink(p)
        raise
    return current, made

