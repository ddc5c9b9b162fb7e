"""API keys: read from a mounted file, compared in constant time, known elsewhere only by their id.

File format, one key per line: `key-id:secret` (blank lines and `#` comments are skipped). A line with no
`key-id:` gets an id derived from a hash of the secret, so logs and metrics can still tell keys apart
without holding anything that opens the API. The file is read again when it changes (Kubernetes updates
mounted Secrets in place), at most once per RELOAD_SECONDS.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from pathlib import Path

from .errors import ApiError

log = logging.getLogger("selfhost_adapter.keys")

RELOAD_SECONDS = 5.0
NO_KEY = "-"


def parse_keys(text: str) -> dict[str, bytes]:
    """key id -> secret digest. Digests of equal length make every comparison take the same time."""
    keys: dict[str, bytes] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key_id, sep, secret = line.partition(":")
        if not sep:
            key_id, secret = "", key_id
        secret = secret.strip()
        if not secret:
            continue
        digest = hashlib.sha256(secret.encode()).digest()
        keys[key_id.strip() or "key-" + digest.hex()[:8]] = digest
    return keys


class KeyRing:
    def __init__(self, path: str) -> None:
        self.path = Path(path) if path else None
        self._keys: dict[str, bytes] = {}
        self._mtime_ns = -1
        self._checked = 0.0
        self._reload(force=True)

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    def check(self, authorization: bytes | None) -> str:
        """The key id for an `Authorization: Bearer <key>` header, or a 401. Without a key file: NO_KEY."""
        if self.path is None:
            return NO_KEY
        self._reload()
        if not authorization or not authorization[:7].lower() == b"bearer ":
            raise ApiError(401, "missing API key: send 'Authorization: Bearer <key>'")
        digest = hashlib.sha256(authorization[7:].strip()).digest()
        found = NO_KEY
        # Compare against every key, always: the time taken says nothing about which key, or how much of it,
        # matched.
        for key_id, known in self._keys.items():
            if hmac.compare_digest(digest, known):
                found = key_id
        if found == NO_KEY:
            raise ApiError(401, "invalid API key")
        return found

    def _reload(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.path is None or (not force and now - self._checked < RELOAD_SECONDS):
            return
        self._checked = now
        try:
            mtime = os.stat(self.path).st_mtime_ns
            if mtime != self._mtime_ns:
                self._keys = parse_keys(self.path.read_text())
                self._mtime_ns = mtime
                log.info("loaded %d API keys: %s", len(self._keys), ", ".join(self.key_ids()))
        except OSError as exc:
            # Keep the keys we have: a Secret being swapped is briefly absent.
            log.error("cannot read API keys file %s: %s", self.path, exc.strerror)
