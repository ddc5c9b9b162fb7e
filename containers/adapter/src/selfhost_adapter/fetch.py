"""`selfhost-fetch`: download one file of a Hugging Face model repository, at a pinned commit, into a model cache.

It runs as a Kubernetes init container before the llama.cpp engine (non-root, read-only root file system, only
the cache volume writable), so it uses the standard library only: the serving images carry no huggingface_hub,
and llama.cpp loads one GGUF file, not a repository snapshot.

    selfhost-fetch --repo Qwen/Qwen2.5-1.5B-Instruct-GGUF --revision <40-hex commit> \\
        --file qwen2.5-1.5b-instruct-q4_k_m.gguf --dir /models [--sha256 <hex>]

The file lands at `{dir}/{repo, "/" as "--"}/{revision}/{file}`, printed as the one line on stdout (logs go to
stderr). A file already there is kept: with --sha256 once its hash is known to match, from the `<file>.sha256`
marker a verified download leaves, so a multi-GB file is not hashed again at every pod start. A download goes
to `<file>.part` beside it, resumes from there, is verified, synced and renamed into place: the path exists
only once the file is whole. Exit status: 0 done, 1 failed (one line on stderr says why), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import hashlib
import http.client
import io
import os
import re
import shutil
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from http.client import HTTPMessage
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlsplit

DEFAULT_ENDPOINT = "https://huggingface.co"
USER_AGENT = "selfhost-fetch/0.1"
TIMEOUT_SECONDS = 30.0
"""To connect, and for each read: a stalled connection fails, and is resumed, instead of holding the pod back."""
CHUNK_BYTES = 1 << 20
RETRY_DELAYS_SECONDS: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)
"""The waits before each new try after a connection error, a 5xx or a 429; a try that got bytes starts the count
again, so a long download over a flaky link goes on as long as it makes progress."""
MAX_RETRY_AFTER_SECONDS = 60.0
PROGRESS_SECONDS = 30.0

_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
_REPO = re.compile(rf"(?:{_NAME}/)?{_NAME}")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_TOKEN = re.compile(r"[\x21-\x7e]+")  # what an HTTP header value can carry
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")
_UNSATISFIABLE = re.compile(r"bytes \*/(\d+)")


class FetchError(Exception):
    """Why the fetch failed, in one line for the operator."""


class _Transient(Exception):
    """Worth another try: the connection broke or timed out, or the server answered 5xx or 429."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Target:
    repo: str
    revision: str
    file: str
    dir: Path
    sha256: str | None = None

    @property
    def dest(self) -> Path:
        return self.dir / self.repo.replace("/", "--") / self.revision / self.file

    def url(self, endpoint: str) -> str:
        # The Hub's download URL for a file at a commit (mirrors named by HF_ENDPOINT answer it too).
        return f"{endpoint.rstrip('/')}/{self.repo}/resolve/{self.revision}/{quote(self.file)}"


def _log(message: str) -> None:
    print(f"selfhost-fetch: {message}", file=sys.stderr, flush=True)


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


# -- arguments -----------------------------------------------------------------------------------------------

FLAGS = (
    ("repo", "Hugging Face model repository, owner/name"),
    ("revision", "commit of the repository, 40 hex digits (a branch or tag moves: a cache of it would go stale)"),
    ("file", "path of the file in the repository"),
    ("dir", "cache directory; the file goes to DIR/OWNER--NAME/REVISION/FILE"),
    ("sha256", "expected SHA-256 of the file, checked before it is put in place (optional)"),
)


def parse_args(argv: Sequence[str] | None, environ: Mapping[str, str]) -> Target:
    parser = argparse.ArgumentParser(
        prog="selfhost-fetch", description="Download one file of a Hugging Face repository at a pinned commit.",
        epilog="Token: HF_TOKEN, else the file HF_TOKEN_PATH names. Mirror: HF_ENDPOINT.")
    for name, help_text in FLAGS:
        env = f"SELFHOST_FETCH_{name.upper()}"
        parser.add_argument(f"--{name}", default=environ.get(env) or None, help=f"{help_text} (env {env})")
    args = parser.parse_args(argv)
    problems = [f"--{name} (or SELFHOST_FETCH_{name.upper()}) is required" for name, _ in FLAGS[:4]
                if not getattr(args, name)]
    if problems:
        parser.error("; ".join(problems))
    repo, revision, file, sha256 = args.repo, args.revision, args.file, args.sha256
    # Each is part of a path under --dir: nothing may climb out of it.
    if not _REPO.fullmatch(repo) or ".." in repo or "--" in repo:
        problems.append(f"--repo {repo!r} is not a Hugging Face repository id (owner/name)")
    if not _COMMIT.fullmatch(revision):
        problems.append(f"--revision {revision!r} is not a commit (40 lowercase hex digits)")
    if file.startswith("/") or "\\" in file or "\0" in file or any(p in ("", ".", "..") for p in file.split("/")):
        problems.append(f"--file {file!r} is not a relative path inside the repository")
    if sha256 is not None and not _SHA256.fullmatch(sha256):
        problems.append(f"--sha256 {sha256!r} is not 64 hex digits")
    if problems:
        parser.error("; ".join(problems))
    return Target(repo, revision, file, Path(args.dir), sha256.lower() if sha256 else None)


def read_token(environ: Mapping[str, str]) -> str | None:
    """huggingface_hub's order, so that this fetch and the engine use the same token: HF_TOKEN, then the file
    HF_TOKEN_PATH names (a mounted Secret; a missing file means no token, as there). Never printed."""
    token = environ.get("HF_TOKEN", "").strip()
    path = environ.get("HF_TOKEN_PATH")
    if not token and path:
        try:
            token = Path(path).read_text().strip()
        except FileNotFoundError:
            _log(f"HF_TOKEN_PATH {path} does not exist: downloading without a token")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not text"
            raise FetchError(f"cannot read the token file HF_TOKEN_PATH={path}: {reason}") from None
    if token and not _TOKEN.fullmatch(token):
        # http.client would quote the refused value in its error: say it here, without it.
        raise FetchError("the Hugging Face token (HF_TOKEN or HF_TOKEN_PATH) has spaces or control characters")
    return token or None


# -- the download --------------------------------------------------------------------------------------------

def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme)


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects, passing the token on only to the same scheme, host and port: the Hub sends a repository's
    large files to a CDN with a signed URL, which must never see it (renamed repositories redirect on the Hub
    itself, and a gated one needs the token there)."""

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: HTTPMessage, newurl: str) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        auth = req.unredirected_hdrs.get("Authorization")
        if new is not None and auth and _origin(new.full_url) == _origin(req.full_url):
            new.add_unredirected_header("Authorization", auth)
        return new


_OPENER = urllib.request.build_opener(_Redirects)  # with the default handlers: https_proxy and no_proxy count


class _Part:
    """The `.part` file with the length and sha256 of what it holds, kept along so that a new try resumes
    without reading gigabytes again."""

    def __init__(self, file: io.BufferedRandom, path: Path) -> None:
        self.file, self.path = file, path
        file.seek(0)
        self.hasher = hashlib.file_digest(file, "sha256")
        self.size = os.fstat(file.fileno()).st_size
        self.received = 0
        """Bytes written by this run, over all tries: tells a try that made progress from one that did not."""

    def restart(self) -> None:
        self.file.truncate(0)
        self.hasher = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        try:
            self.file.write(data)
        except OSError as exc:
            raise _disk_problem(self.path, exc) from None
        self.hasher.update(data)
        self.size += len(data)
        self.received += len(data)

    def sync(self) -> None:
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
        except OSError as exc:
            raise _disk_problem(self.path, exc) from None


def _disk_problem(path: Path, exc: OSError) -> FetchError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        # The .part stays: once the volume has room, the next start resumes it.
        return FetchError(f"disk full: no space left in {path.parent} for {path.name}")
    return FetchError(f"cannot write {path}: {exc.strerror or exc}")


def _retry_after(headers: Message) -> float | None:
    value = (headers.get("Retry-After") or "").strip()
    return float(value) if value.isdigit() else None  # seconds; the date form is not worth parsing here


def _http_problem(exc: urllib.error.HTTPError, target: Target, endpoint: str, sent_token: bool) -> Exception:
    code, where = exc.code, f"{target.repo} at {target.revision}"
    hub_code = exc.headers.get("X-Error-Code", "")  # the Hub's own name for what it did not find
    if code >= 500 or code == 429:
        return _Transient(f"{urlsplit(exc.geturl()).hostname} answered {code}", _retry_after(exc.headers))
    if code in (401, 403):
        if hub_code == "GatedRepo":
            why = f"{target.repo} is gated: accept its terms on the Hub with the account of the token"
        elif code == 401:
            why = f"{target.repo} is private or gated, or the token is invalid"
        else:
            why = f"the token has no access to {target.repo} (a fine-grained token needs read access to it)"
        sent = "the token was refused" if sent_token else "no token was sent"
        return FetchError(f"{code}: {why}; {sent}: set HF_TOKEN_PATH (a file holding the token) or HF_TOKEN")
    if code == 404:
        found = {"RepoNotFound": f"repository {target.repo} not found",
                 "RevisionNotFound": f"revision {target.revision} not found in {target.repo}",
                 "EntryNotFound": f"file {target.file} not found in {where}"}
        what = found.get(hub_code, f"file {target.file} in repository {target.repo} at revision {target.revision}"
                                   " not found (check all three)")
        return FetchError(f"404: {what} on {endpoint}")
    return FetchError(f"{code} {exc.reason} from {urlsplit(exc.geturl()).hostname} for {target.file} in {where}")


def _open(url: str, token: str | None, part: _Part, target: Target, endpoint: str) -> Any:
    """The server's answer for the rest of the file, or None when the `.part` holds all of it."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if part.size:
        request.add_header("Range", f"bytes={part.size}-")
    if token:
        # Unredirected: urllib copies the other headers to every redirect, _Redirects this one to the same origin.
        request.add_unredirected_header("Authorization", f"Bearer {token}")
    host = urlsplit(url).hostname
    try:
        return _OPENER.open(request, timeout=TIMEOUT_SECONDS)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code != 416 or not part.size:
            raise _http_problem(exc, target, endpoint, token is not None) from None
        whole = _UNSATISFIABLE.fullmatch(exc.headers.get("Content-Range") or "")
        if whole and int(whole[1]) == part.size:
            return None  # a run stopped between the last byte and the rename
        part.restart()
        raise _Transient("the partial download is longer than the file: starting over") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ssl.SSLCertVerificationError):
            raise FetchError(f"the TLS certificate of {host} is not trusted ({exc.reason.verify_message}): "
                             "point SSL_CERT_FILE at a CA bundle") from None
        raise _Transient(f"cannot reach {host}: {exc.reason}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Transient(f"cannot reach {host}: {exc or type(exc).__name__}") from None


def _attempt(url: str, token: str | None, part: _Part, target: Target, endpoint: str) -> None:
    """One request: appends to `part` what the server sends, up to the end of the file."""
    response = _open(url, token, part, target, endpoint)
    if response is None:
        return
    with response:
        if response.status == 206:
            resumed = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range") or "")
            if not resumed or int(resumed[1]) != part.size:
                part.restart()
                raise _Transient("the server resumed at another offset: starting over")
            total = None if resumed[2] == "*" else int(resumed[2])
        else:
            if part.size:
                _log("the server sent the whole file, not the rest: starting over")
                part.restart()
            length = response.headers.get("Content-Length") or ""
            total = int(length) if length.isdigit() else None
        if total is not None:
            # Fail now rather than after writing most of several gigabytes.
            free = shutil.disk_usage(part.path.parent).free
            if free < total - part.size:
                raise FetchError(f"disk full: {_gib(free)} free in {part.path.parent}, {target.file} needs "
                                 f"{_gib(total - part.size)} more")
        started = time.monotonic()
        next_log = started + PROGRESS_SECONDS
        try:
            while chunk := response.read(CHUNK_BYTES):
                part.write(chunk)
                if time.monotonic() >= next_log:
                    next_log += PROGRESS_SECONDS
                    rate = part.received / max(time.monotonic() - started, 1e-9)
                    _log(f"{_gib(part.size)}" + (f" of {_gib(total)}" if total else "")
                         + f" ({rate / 2**20:.1f} MiB/s)")
        except (OSError, http.client.HTTPException) as exc:
            raise _Transient(f"download cut at {part.size} bytes: {exc or type(exc).__name__}") from None
        # http.client ends a short body quietly: the length is what tells.
        if total is not None and part.size != total:
            raise _Transient(f"connection closed at {part.size} of {total} bytes")


def _download(url: str, token: str | None, part: _Part, target: Target, endpoint: str) -> None:
    stalled = 0  # tries in a row that got no byte
    while True:
        before = part.received
        try:
            _attempt(url, token, part, target, endpoint)
            return
        except _Transient as exc:
            if part.received > before:
                stalled = 0
            if stalled >= len(RETRY_DELAYS_SECONDS):
                raise FetchError(f"{exc} (gave up after {stalled + 1} tries without progress)") from None
            delay = RETRY_DELAYS_SECONDS[stalled]
            if exc.retry_after is not None:
                delay = max(delay, min(exc.retry_after, MAX_RETRY_AFTER_SECONDS))
            stalled += 1
            _log(f"{exc}; trying again in {delay:g} s")
            time.sleep(delay)


# -- the cache -----------------------------------------------------------------------------------------------

def _write_marker(dest: Path, digest: str) -> None:
    try:
        _sibling(dest, ".sha256").write_text(digest + "\n")
    except OSError as exc:  # only saves hashing next time
        _log(f"cannot write {dest.name}.sha256: {exc.strerror}")


def _cached(dest: Path, expected: str | None) -> bool:
    """The file is in place, and with `expected`, it is that file; a file that is not is removed."""
    if not dest.is_file():
        return False
    if expected is None:
        return True
    marker = _sibling(dest, ".sha256")
    with contextlib.suppress(OSError, UnicodeDecodeError):
        if marker.read_text().strip() == expected:
            return True
    _log(f"checking the sha256 of {dest}")
    with dest.open("rb") as f:
        actual = hashlib.file_digest(f, "sha256").hexdigest()
    if actual == expected:
        _write_marker(dest, actual)
        return True
    # Never left for the engine to load; removed first, as its replacement needs the room.
    _log(f"{dest} has sha256 {actual}, not {expected}: downloading it again")
    dest.unlink()
    marker.unlink(missing_ok=True)
    return False


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[io.BufferedRandom]:
    """`path` opened to read and append, and locked: another fetch of the same file (a second replica's init
    container on a shared cache) waits here instead of writing into the same bytes. The lock is on the open file,
    so make sure it is still the one at `path`: the fetch waited for renames it into place or deletes it."""
    while True:
        file = open(path, "a+b")
        try:
            try:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                _log(f"waiting for another fetch of {path.name} to finish")
                fcntl.flock(file.fileno(), fcntl.LOCK_EX)
            if os.path.samestat(os.fstat(file.fileno()), os.stat(path)):
                break
        except FileNotFoundError:
            pass
        except BaseException:
            file.close()
            raise
        file.close()
    with file:
        yield file


def _fsync_dir(path: Path) -> None:
    # A rename is durable once its directory is: a node that crashes now must not come back without the file.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fetch(target: Target, endpoint: str, token: str | None) -> Path:
    """Put the file in place (unless it is there already) and return its path."""
    dest = target.dest
    part_path = _sibling(dest, ".part")
    try:
        if _cached(dest, target.sha256):
            _log(f"already there: {dest}")
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        with _locked(part_path) as file:
            if _cached(dest, target.sha256):  # the fetch this one waited for has put it in place
                part_path.unlink()
                return dest
            part = _Part(file, part_path)
            url = target.url(endpoint)
            _log(f"downloading {url}" + (f", resuming at {part.size} bytes" if part.size else ""))
            try:
                _download(url, token, part, target, endpoint)
            except FetchError:
                if not part.size:  # nothing to resume: no empty file left in the cache
                    part_path.unlink()
                raise
            part.sync()
            digest = part.hasher.hexdigest()
            if target.sha256 and digest != target.sha256:
                part_path.unlink()
                raise FetchError(f"sha256 mismatch for {target.file}: expected {target.sha256}, got {digest}; "
                                 "the download is deleted")
            os.replace(part_path, dest)
            _fsync_dir(dest.parent)
    except OSError as exc:
        raise _disk_problem(Path(exc.filename) if exc.filename else part_path, exc) from None
    _write_marker(dest, digest)
    _log(f"downloaded {_gib(part.size)} to {dest}")
    return dest


def main(argv: Sequence[str] | None = None) -> int:
    target = parse_args(argv, os.environ)
    token: str | None = None

    def redact(message: str) -> str:
        return message.replace(token, "***") if token else message

    try:
        token = read_token(os.environ)
        dest = fetch(target, os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT, token)
    except FetchError as exc:
        _log(f"error: {redact(str(exc))}")
        return 1
    except Exception as exc:
        # Still one line, and without the token, which no message should hold but a traceback could quote.
        _log(f"error: {type(exc).__name__}: {redact(str(exc))}")
        return 1
    print(dest, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
