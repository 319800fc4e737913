"""The tus 1.0.0 headers, read strictly (https://tus.io/protocols/resumable-upload, interfaces.md §3): plain
functions from header text to values, each refusal a CarbonParkError with its E90xx code. No database, no files.

What the server offers is said once here, for OPTIONS and the docs (docs/uploads.md)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from apps.core.errors import CarbonParkError
from apps.uploads import errors

VERSION = "1.0.0"
EXTENSIONS = ("creation", "creation-with-upload", "creation-defer-length", "termination", "checksum",
              "concatenation", "expiration")
# sha1 because tus clients (tuspy, tus-js-client) use it by default; sha256 and md5 as interfaces.md §3 says.
CHECKSUMS = {"sha256": hashlib.sha256, "md5": hashlib.md5, "sha1": hashlib.sha1}
OCTETS = "application/offset+octet-stream"
MAX_METADATA = 4096  # characters of Upload-Metadata: a file name, an MD5, a park code and a few more
MAX_PARTS = 64
MAX_INT = 2**63 - 1  # a PostgreSQL bigint


def check_version(value: str | None) -> None:
    """Every request but OPTIONS names the protocol version; any other than 1.0.0 (or none) answers 412."""
    if (value or "").strip() != VERSION:
        raise CarbonParkError(errors.E9001, field="Tus-Resumable", version=(value or "(none)")[:40])


def non_negative(header: str, value: str | None) -> int:
    """A header holding a byte count: ASCII digits only (no sign, no spaces inside, no exponent), at most a
    bigint. A huge number is refused here, never passed on as an int PostgreSQL cannot store."""
    text = (value or "").strip()
    if not text or not text.isascii() or not text.isdigit() or len(text) > 19 or int(text) > MAX_INT:
        raise CarbonParkError(errors.E9002, field=header, header=header,
                              detail=f"a whole number of bytes is expected, got {text[:40]!r}")
    return int(text)


def parse_metadata(value: str | None) -> dict[str, str | None]:
    """``Upload-Metadata``: ``key base64,key base64,key``. Keys are unique, ASCII and without spaces or commas;
    values decode from base64 to UTF-8 text without NUL (a key may come without a value: None)."""
    if value is None or not value.strip():
        return {}
    if len(value) > MAX_METADATA:
        raise CarbonParkError(errors.E9004, field="Upload-Metadata", detail=f"longer than {MAX_METADATA} characters")
    out: dict[str, str | None] = {}
    for pair in value.split(","):
        pieces = pair.strip().split(" ")
        key = pieces[0]
        if not key or len(pieces) > 2 or not re.fullmatch(r"[!-~]+", key):
            raise CarbonParkError(errors.E9004, field="Upload-Metadata", detail=f"the pair {pair.strip()[:40]!r} "
                                  "is not 'key base64value'")
        if key in out:
            raise CarbonParkError(errors.E9004, field="Upload-Metadata", detail=f"the key {key[:40]} comes twice")
        if len(pieces) == 1 or pieces[1] == "":
            out[key] = None
            continue
        try:
            raw = base64.b64decode(pieces[1], validate=True)
        except (binascii.Error, ValueError):
            raise CarbonParkError(errors.E9004, field="Upload-Metadata",
                                  detail=f"the value of {key[:40]} is not base64") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CarbonParkError(errors.E9004, field="Upload-Metadata",
                                  detail=f"the value of {key[:40]} is not UTF-8 text") from None
        if "\x00" in text:
            raise CarbonParkError(errors.E9004, field="Upload-Metadata",
                                  detail=f"the value of {key[:40]} holds NUL (U+0000)")
        out[key] = text
    return out


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes

    def hasher(self):
        return CHECKSUMS[self.algorithm]()


def parse_checksum(value: str | None) -> Checksum | None:
    """``Upload-Checksum: <algorithm> <base64 digest>`` (the checksum extension)."""
    if value is None:
        return None
    algorithms = ", ".join(CHECKSUMS)
    pieces = value.strip().split(" ")
    if len(pieces) != 2:
        raise CarbonParkError(errors.E9017, field="Upload-Checksum", detail="'algorithm base64digest' is expected",
                              algorithms=algorithms)
    name = pieces[0].lower()
    if name not in CHECKSUMS:
        raise CarbonParkError(errors.E9017, field="Upload-Checksum", detail=f"unknown algorithm {pieces[0][:20]!r}",
                              algorithms=algorithms)
    try:
        digest = base64.b64decode(pieces[1], validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != CHECKSUMS[name]().digest_size:
        raise CarbonParkError(errors.E9017, field="Upload-Checksum",
                              detail=f"the digest is not a base64 {name} digest", algorithms=algorithms)
    return Checksum(name, digest)


def parse_concat(value: str | None) -> tuple[str, list[str]]:
    """``Upload-Concat``: ``partial``, or ``final;<url> <url> …`` (the parts' URLs or bare ids, in order).
    Returns ("" | "partial" | "final", [part ids as text])."""
    if value is None or not value.strip():
        return "", []
    text = value.strip()
    if text == "partial":
        return "partial", []
    if not text.startswith("final;"):
        raise CarbonParkError(errors.E9021, field="Upload-Concat",
                              detail="'partial' or 'final;<url> <url>' is expected")
    urls = [u for u in text[len("final;"):].split(" ") if u]
    if not urls:
        raise CarbonParkError(errors.E9021, field="Upload-Concat", detail="a final upload names its parts")
    if len(urls) > MAX_PARTS:
        raise CarbonParkError(errors.E9021, field="Upload-Concat", detail=f"at most {MAX_PARTS} parts")
    ids = []
    for url in urls:
        match = re.search(r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})/?$", url)
        if match is None:
            raise CarbonParkError(errors.E9021, field="Upload-Concat", detail=f"{url[:80]!r} is not an upload's URL")
        ids.append(match.group(1).lower())
    if len(set(ids)) != len(ids):
        raise CarbonParkError(errors.E9021, field="Upload-Concat", detail="a part is named twice")
    return "final", ids


# --- file names (interfaces.md §7) ----------------------------------------------------------------------------

@dataclass(frozen=True)
class FileType:
    kind: str  # csv, xml, xlsx
    compression: str  # "", gz, zip
    encrypted: bool
    park_code: str


def file_type(name: str) -> FileType:
    """The format, compression and envelope a file name announces (``….csv[.gz|.zip][.enc]``) and its park, by the
    naming rule of interfaces.md §7 (``apps.batch.parsers.names``, the loader's own rule): judged before any byte
    arrives, so that a file the loader would refuse by its name is never sent."""
    from apps.batch import errors as batch_errors  # noqa: F401 - its E91xx codes in the registry
    from apps.batch.parsers.common import FileError
    from apps.batch.parsers.names import parse_name
    from apps.core.errors import REGISTRY

    lowered = name.lower().removesuffix(".enc").removesuffix(".gz").removesuffix(".zip")
    if lowered.rpartition(".")[2] not in ("csv", "xml", "xlsx") or "." not in lowered:
        raise CarbonParkError(errors.E9006, field="filename", name=name[:120])
    try:
        parsed = parse_name(name)
    except FileError as exc:
        raise CarbonParkError(REGISTRY[exc.code], field="filename", **exc.params) from None
    return FileType(parsed.format, parsed.compression or "", parsed.sealed, parsed.park)


def clean_filename(name: str | None) -> str:
    """The file's own name: the last path component, without control characters, at most 255 characters."""
    if not name or not name.strip():
        raise CarbonParkError(errors.E9005, field="filename")
    base = re.split(r"[/\\]", name)[-1].strip()
    if not base or len(base) > 255 or any(ord(c) < 32 or ord(c) == 127 for c in base) or base in (".", ".."):
        raise CarbonParkError(errors.E9006, field="filename", name=base[:120] or name[:120])
    return base


def clean_md5(value: str | None) -> str:
    if value is None:
        return ""
    text = value.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{32}", text):
        raise CarbonParkError(errors.E9010, field="md5")
    return text
