"""API keys: a file of salted hashes, ``docsort keys create|list|revoke`` and the check every
``/v1`` route makes when the server runs with ``--api-keys FILE``.

A key reads ``dsk_<id>_<secret>``: the id (12 hex digits, not secret, shown by ``keys list``)
names its entry, the secret is 43 random letters and digits (256 bits). The file stores per
key its id, name, created time, revoked flag, a random 16-byte salt and the scrypt hash of the
whole key, never the key: ``keys create`` prints it once. The file is written whole to a
temporary file (mode 0600) and renamed over the old one, under a lock, so two ``keys create``
never lose each other's key and a reader never sees half a file.

The server re-reads the file when it changes (a ``stat`` per request), so a revoked key is
refused from its next request on. A presented key costs one scrypt (n=2**14, r=8: 16 MB and
50-100 ms here, run in a worker thread, never on the event loop) the first time; a key that
matched is remembered in memory by its SHA-256 until the file changes. Hashes are compared
with ``hmac.compare_digest``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import stat
import string
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from docsort.errors import DocsortError

PREFIX = "dsk_"
FORMAT = "docsort-api-keys"
VERSION = 1
SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # 16 MB and 50-100 ms per check on this machine
SECRET_ALPHABET = string.ascii_letters + string.digits
SECRET_CHARS = 43  # 62**43 > 2**256
MAX_NAME_CHARS = 100
MAX_TOKEN_CHARS = 200


class AuthMissing(DocsortError):
    """No usable ``Authorization: Bearer`` header (a 401)."""


class AuthRefused(DocsortError):
    """A well-formed key that is unknown, wrong or revoked (a 403)."""


@dataclass
class KeyEntry:
    id: str
    name: str
    created: str
    revoked: bool
    salt: str  # hex
    hash: str  # hex, scrypt of the whole key
    scrypt: dict[str, int]
    revoked_at: str | None = None

    def public(self) -> dict[str, Any]:
        """What ``keys list`` shows: never the salt or the hash."""
        return {"id": self.id, "name": self.name, "created": self.created,
                "revoked": self.revoked, "revoked_at": self.revoked_at}  # fmt: skip


def _derive(key: str, salt: bytes, params: dict[str, int]) -> bytes:
    n, r, p = params["n"], params["r"], params["p"]
    return hashlib.scrypt(key.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=256 * r * (n + p + 2), dklen=32)  # fmt: skip


def parse_token(token: str) -> str:
    """The id in ``dsk_<id>_<secret>``; ``AuthMissing`` when the token has another shape."""
    if len(token) > MAX_TOKEN_CHARS or not token.startswith(PREFIX):
        raise AuthMissing("the bearer token is not a docsort API key (dsk_...)")
    parts = token[len(PREFIX) :].split("_", 1)
    if len(parts) != 2 or len(parts[0]) != 12 or not parts[1]:
        raise AuthMissing("the bearer token is not a docsort API key (dsk_<id>_<secret>)")
    key_id = parts[0]
    if any(c not in "0123456789abcdef" for c in key_id):
        raise AuthMissing("the bearer token is not a docsort API key (dsk_<id>_<secret>)")
    return key_id


# --------------------------------------------------------------------------- the file


def read_keys(path: str | Path) -> list[KeyEntry]:
    """The entries of a keys file; a missing or malformed file is one line saying what to do."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DocsortError(
            f"{str(path)!r} does not exist: create a key with docsort keys create --file {path}"
        ) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise DocsortError(f"cannot read API keys file {str(path)!r}: {exc}") from None
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError("not a docsort API keys file")
        if data.get("version") != VERSION:
            raise ValueError(f"version {data.get('version')!r}, this docsort reads {VERSION}")
        entries = [KeyEntry(**entry) for entry in data["keys"]]
        for entry in entries:
            bytes.fromhex(entry.salt), bytes.fromhex(entry.hash)  # noqa: B018
            if set(entry.scrypt) != set(SCRYPT):
                raise ValueError(f"key {entry.id}: scrypt parameters {sorted(entry.scrypt)}")
    except (ValueError, KeyError, TypeError) as exc:
        reason = " ".join(str(exc).split())[:160]
        raise DocsortError(f"{str(path)!r} is not a docsort API keys file: {reason}") from None
    return entries


def _write_keys(path: Path, entries: list[KeyEntry]) -> None:
    """Write the whole file to an owner-only temporary file, fsync it, rename it over ``path``."""
    data = {"format": FORMAT, "version": VERSION, "keys": [asdict(e) for e in entries]}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)  # hashes only, but nobody else needs to read them
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    with contextlib.suppress(OSError):  # the rename itself survives a power cut
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One writer at a time: ``keys create`` twice at once keeps both keys."""
    if not path.parent.is_dir():
        raise DocsortError(
            f"cannot write {str(path)!r}: the folder {str(path.parent)!r} is missing"
        )
    if path.is_dir():
        raise DocsortError(f"cannot write {str(path)!r}: it is a folder (give a file name)")
    try:
        handle = open(path.parent / f".{path.name}.lock", "a")  # noqa: SIM115
    except OSError as exc:
        raise DocsortError(f"cannot write {str(path)!r}: {exc.strerror}") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def create_key(path: str | Path, name: str = "") -> tuple[str, KeyEntry]:
    """A new key added to ``path`` (created if missing); the key itself is returned only here."""
    path = Path(path)
    name = " ".join(name.split())
    if len(name) > MAX_NAME_CHARS:
        raise DocsortError(f"--name is {len(name)} characters; at most {MAX_NAME_CHARS}")
    with _locked(path):
        entries = read_keys(path) if path.exists() else []
        taken = {e.id for e in entries}
        key_id = secrets.token_hex(6)
        while key_id in taken:
            key_id = secrets.token_hex(6)
        secret = "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_CHARS))
        key = f"{PREFIX}{key_id}_{secret}"
        salt = secrets.token_bytes(16)
        entry = KeyEntry(
            id=key_id,
            name=name,
            created=_now(),
            revoked=False,
            salt=salt.hex(),
            hash=_derive(key, salt, SCRYPT).hex(),
            scrypt=dict(SCRYPT),
        )
        _write_keys(path, [*entries, entry])
    return key, entry


def revoke_key(path: str | Path, key_id: str) -> tuple[KeyEntry, bool]:
    """Mark ``key_id`` revoked (a key may be named by its whole ``dsk_...`` text too); returns
    the entry and whether it was active before."""
    path = Path(path)
    if key_id.startswith(PREFIX):
        try:
            key_id = parse_token(key_id)
        except AuthMissing:
            raise DocsortError("that is not a docsort API key or key id") from None
    with _locked(path):
        entries = read_keys(path)
        for entry in entries:
            if entry.id == key_id:
                if entry.revoked:
                    return entry, False
                entry.revoked, entry.revoked_at = True, _now()
                _write_keys(path, entries)
                return entry, True
    known = ", ".join(e.id for e in entries[:10]) or "none"
    shown = key_id if len(key_id) <= 40 else key_id[:39] + "…"
    raise DocsortError(f"no key with id {shown!r} in {str(path)!r} (ids: {known})")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def loose_permissions(path: str | Path) -> bool:
    """True when group or others may read the file (it should be 0600)."""
    return bool(stat.S_IMODE(Path(path).stat().st_mode) & 0o077)


# --------------------------------------------------------------------------- the server's check


class KeyRing:
    """The keys a server accepts, re-read whenever the file changes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = None
        self._entries: dict[str, KeyEntry] = {}
        self._matched: dict[bytes, str] = {}  # sha256 of a key that matched -> its id
        self._reload()
        if not any(not e.revoked for e in self._entries.values()):
            raise DocsortError(
                f"--api-keys {str(self.path)!r} holds no active key: create one with "
                f"docsort keys create --file {self.path}"
            )

    def active(self) -> int:
        return sum(not e.revoked for e in self._entries.values())

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return (info.st_ino, info.st_mtime_ns, info.st_size)

    def _reload(self) -> None:
        signature = self._stat()
        if signature == self._signature and signature is not None:
            return
        entries = read_keys(self.path)
        self._entries = {e.id: e for e in entries}
        self._matched = {}
        self._signature = signature

    def _current(self) -> None:
        # a file removed or broken while serving: keep the last good keys (a revoked key stays
        # revoked), and try again on the next request
        with self._lock, contextlib.suppress(DocsortError):
            self._reload()

    def check(self, token: str) -> KeyEntry:
        """The entry of ``token``; ``AuthMissing`` (malformed) or ``AuthRefused``."""
        key_id = parse_token(token)
        self._current()
        with self._lock:
            entry = self._entries.get(key_id)
            digest = hashlib.sha256(token.encode("utf-8")).digest()
            remembered = self._matched.get(digest) == key_id
        if entry is None:
            raise AuthRefused("this API key is not known to the server")
        if not remembered:
            derived = _derive(token, bytes.fromhex(entry.salt), entry.scrypt)
            if not hmac.compare_digest(derived, bytes.fromhex(entry.hash)):
                raise AuthRefused("this API key is not known to the server")
            with self._lock:
                if self._entries.get(key_id) is entry:  # not reloaded meanwhile
                    self._matched[digest] = key_id
        if entry.revoked:
            raise AuthRefused(f"API key {entry.id} was revoked")
        return entry


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer TOKEN`` header; ``AuthMissing`` otherwise."""
    if header is None or not header.strip():
        raise AuthMissing("this route needs an API key: send Authorization: Bearer KEY")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthMissing("the Authorization header must read Bearer KEY")
    return token.strip()
