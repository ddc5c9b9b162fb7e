"""`selfhost-fetch`: download pinned weights into a model cache: files of a Hugging Face repository at a commit, or
every object under a prefix of an S3-compatible bucket (AWS S3, Cloud Storage through its XML API, MinIO).

It runs as a Kubernetes init container before the engine (non-root, read-only root file system, only the cache
volume writable), so it uses the standard library only: the serving images carry no huggingface_hub and no AWS SDK,
and llama.cpp loads one GGUF file, not a repository snapshot.

    selfhost-fetch --repo Qwen/Qwen2.5-1.5B-Instruct-GGUF --revision <40-hex commit> \\
        --file qwen2.5-1.5b-instruct-q4_k_m.gguf --dir /models [--sha256 <hex>]
    selfhost-fetch --dir /models [--objects-dir /objects] [--endpoint URL] [--region R] ITEM...

An ITEM is `hf://owner/name@<commit>/<file>[#sha256=<hex>]` (one file of a repository), `hf://owner/name@<commit>`
(a PEFT LoRA folder: its adapter_config.json and adapter_model.safetensors), or `s3://bucket/key` or
`gs://bucket/key` (the object `key`, or every object under `key/`; `#sha256=<hex>` checks a single object).

A Hub file lands at `{dir}/{repo, "/" as "--"}/{revision}/{file}`; an object at `{objects-dir}/{s3|gs}/{bucket}/{key}`.
Each item's path (a file, or the folder of a prefix) is printed as one line on stdout (logs go to stderr). A file
already there is kept: with a SHA-256 once its hash is known to match, from the `<file>.sha256` marker a verified
download leaves, so a multi-GB file is not hashed again at every pod start; an object while its size and ETag are
the bucket's (the `<file>.etag` marker). A download goes to `<file>.part` beside it, resumes from there, is
verified, synced and renamed into place: the path exists only once the file is whole. Exit status: 0 done, 1
failed (one line on stderr says why), 2 bad arguments.

Buckets are read with an access key pair, signed by hand (AWS Signature Version 4): AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), else the files of those names in the directory
SELFHOST_FETCH_CREDENTIALS_DIR names (a mounted Kubernetes Secret). Cloud Storage takes the same requests with an
HMAC key (its S3-interoperable XML API at https://storage.googleapis.com); MinIO with its own endpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import errno
import fcntl
import hashlib
import hmac
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
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from http.client import HTTPMessage
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlsplit, urlunsplit

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

    def current(self) -> bool:
        """The file in place is still the one to serve: a commit does not change."""
        return True

    def remember(self) -> None:
        """Note what was downloaded, for `current` at the next start (the sha256 marker does it here)."""


def _log(message: str) -> None:
    print(f"selfhost-fetch: {message}", file=sys.stderr, flush=True)


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


# -- object stores -------------------------------------------------------------------------------------------
# S3's REST API as S3-compatible stores answer it: ListObjectsV2 (GET /{bucket}?list-type=2&prefix=...) and GET of
# each object, path-style (/{bucket}/{key}: works for bucket names with dots over TLS, and on MinIO and Cloud
# Storage alike), signed with AWS Signature Version 4 (AWS S3 API reference "Authenticating Requests (AWS Signature
# Version 4)"; Cloud Storage "Interoperability with other storage providers": HMAC keys, the XML API at
# storage.googleapis.com, list-type=2; read 2026-12).

GCS_ENDPOINT = "https://storage.googleapis.com"
DEFAULT_REGION = {"s3": "us-east-1", "gs": "auto"}
"""The credential scope's region when none is given: S3's own default; Cloud Storage takes `auto`."""
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
"""The payload hash of a GET (no body), which S3 wants in x-amz-content-sha256."""
CREDENTIAL_NAMES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
"""Environment variables, or files of these names in SELFHOST_FETCH_CREDENTIALS_DIR (a mounted Secret)."""
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    session_token: str | None = None

    def __repr__(self) -> str:  # never in a traceback or a log
        return f"Credentials(access_key={self.access_key!r}, secret_key=***)"


def read_credentials(environ: Mapping[str, str]) -> Credentials:
    """The access key pair: from the environment, else from the files SELFHOST_FETCH_CREDENTIALS_DIR holds."""
    values = {name: environ.get(name, "").strip() for name in CREDENTIAL_NAMES}
    directory = environ.get("SELFHOST_FETCH_CREDENTIALS_DIR")
    if not (values["AWS_ACCESS_KEY_ID"] and values["AWS_SECRET_ACCESS_KEY"]) and directory:
        for name in CREDENTIAL_NAMES:
            try:
                values[name] = (Path(directory) / name).read_text().strip()
            except FileNotFoundError:
                values[name] = ""
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not text"
                raise FetchError(f"cannot read {name} in SELFHOST_FETCH_CREDENTIALS_DIR={directory}: "
                                 f"{reason}") from None
    if not (values["AWS_ACCESS_KEY_ID"] and values["AWS_SECRET_ACCESS_KEY"]):
        raise FetchError("a bucket is read with an access key: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
                         "point SELFHOST_FETCH_CREDENTIALS_DIR at a directory of files of those names (a mounted "
                         "Secret)")
    if not all(_TOKEN.fullmatch(v) for v in values.values() if v):
        raise FetchError("the access key (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_SESSION_TOKEN) has spaces "
                         "or control characters")
    return Credentials(values["AWS_ACCESS_KEY_ID"], values["AWS_SECRET_ACCESS_KEY"],
                       values["AWS_SESSION_TOKEN"] or None)


def _host(url: str) -> str:
    """The Host header (and signed `host`): the host name, and the port unless it is the scheme's default."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def sign_v4(method: str, url: str, credentials: Credentials, region: str, now: datetime.datetime,
            service: str = "s3", payload_sha256: str = EMPTY_SHA256) -> dict[str, str]:
    """The headers that sign a request with AWS Signature Version 4 (host, x-amz-date, x-amz-content-sha256, the
    session token if any, Authorization). `url` is sent as it is: its path and query already percent-encoded
    (S3 signs the path as sent, encoded once), its query as `quote(x, safe="-_.~")` pairs."""
    parts = urlsplit(url)
    stamp = now.astimezone(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    headers = {"host": _host(url), "x-amz-content-sha256": payload_sha256, "x-amz-date": stamp}
    if credentials.session_token:
        headers["x-amz-security-token"] = credentials.session_token
    signed = ";".join(sorted(headers))
    pairs = sorted(pair.partition("=")[::2] for pair in parts.query.split("&")) if parts.query else []
    canonical = "\n".join([
        method.upper(), parts.path or "/", "&".join(f"{k}={v}" for k, v in pairs),
        "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in sorted(headers)), signed, payload_sha256])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(f"AWS4{credentials.secret_key}".encode(), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
                                f"SignedHeaders={signed}, Signature={signature}")
    return headers


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


@dataclass(frozen=True)
class Store:
    """An S3-compatible endpoint and the key that reads it."""

    scheme: str
    """`s3` or `gs`: the scheme of the sources it reads (and the folder they land in)."""
    endpoint: str
    region: str
    credentials: Credentials

    def url(self, bucket: str, key: str = "", query: Sequence[tuple[str, str]] = ()) -> str:
        base = urlsplit(self.endpoint)
        path = f"{base.path.rstrip('/')}/{bucket}" + (f"/{quote(key, safe='/~')}" if key else "")
        return urlunsplit((base.scheme, base.netloc, path, "&".join(f"{_encode(k)}={_encode(v)}" for k, v in query),
                           ""))

    def sign(self, url: str) -> dict[str, str]:
        # Signed at each request: a signature is refused 15 minutes after its x-amz-date.
        return sign_v4("GET", url, self.credentials, self.region, datetime.datetime.now(datetime.UTC))


@dataclass(frozen=True)
class Listed:
    key: str
    size: int
    etag: str


@dataclass(frozen=True)
class ObjectTarget:
    """One object of a bucket, to put at `dest` (what `fetch` takes, as it takes a Hub file)."""

    store: Store
    bucket: str
    key: str
    dest: Path
    size: int
    etag: str
    sha256: str | None = None

    @property
    def file(self) -> str:
        return self.key

    @property
    def uri(self) -> str:
        return f"{self.store.scheme}://{self.bucket}/{self.key}"

    def url(self, endpoint: str) -> str:
        return self.store.url(self.bucket, self.key)

    def current(self) -> bool:
        """The file in place is the object the bucket holds now: same size, same ETag (a marker from its
        download; a file without one, put there by a download that could not write it, goes by its size)."""
        if self.dest.stat().st_size != self.size:
            return False
        with contextlib.suppress(OSError, UnicodeDecodeError):
            return _sibling(self.dest, ".etag").read_text().strip() == self.etag
        return True

    def remember(self) -> None:
        try:
            _sibling(self.dest, ".etag").write_text(self.etag + "\n")
        except OSError as exc:  # only saves a download after a change of the object
            _log(f"cannot write {self.dest.name}.etag: {exc.strerror}")


def _xml_text(node: ElementTree.Element, name: str) -> str:
    """The text of `node`'s child `name`, whatever XML namespace the store answers in (S3's and Cloud Storage's
    differ)."""
    for child in node:
        if child.tag.rpartition("}")[2] == name:
            return child.text or ""
    return ""


def _store_problem(exc: urllib.error.HTTPError, what: str, store: Store) -> Exception:
    code = exc.code
    if code >= 500 or code == 429:
        return _Transient(f"{urlsplit(store.endpoint).hostname} answered {code}", _retry_after(exc.headers))
    error, region = "", ""
    with contextlib.suppress(Exception):
        root = ElementTree.fromstring(exc.read(65536))
        error, region = _xml_text(root, "Code"), _xml_text(root, "Region")
    named = f"{code} {error}".strip()
    if code == 301 or error in ("AuthorizationHeaderMalformed", "PermanentRedirect"):
        where = f" (it says {region})" if region else ""
        return FetchError(f"{named}: {what} is not in region {store.region} at {store.endpoint}{where}: set the "
                          "region (and the endpoint) of the bucket")
    if code == 403:
        why = {"SignatureDoesNotMatch": "the secret key does not match the access key",
               "InvalidAccessKeyId": "the store does not know the access key",
               "RequestTimeTooSkewed": "the clock of this node is off by more than 15 minutes"}.get(
                   error, "the access key has no read access to it (s3:ListBucket on the prefix, s3:GetObject)")
        return FetchError(f"{named}: cannot read {what}: {why}")
    if code == 404:
        missing = "bucket" if error == "NoSuchBucket" else "object"
        return FetchError(f"{named}: no such {missing}: {what} at {store.endpoint}")
    return FetchError(f"{named} {exc.reason} from {urlsplit(store.endpoint).hostname} for {what}")


def _get_xml(url: str, store: Store, what: str) -> ElementTree.Element:
    """One listing page, tried again as a download is after a connection error, a 5xx or a 429."""
    for tried in range(len(RETRY_DELAYS_SECONDS) + 1):
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        for name, value in store.sign(url).items():
            request.add_unredirected_header(name, value)
        try:
            with _OPENER.open(request, timeout=TIMEOUT_SECONDS) as response:
                return ElementTree.fromstring(response.read())
        except urllib.error.HTTPError as exc:
            problem = _store_problem(exc, what, store)
            exc.close()
        except urllib.error.URLError as exc:
            problem = _Transient(f"cannot reach {urlsplit(url).hostname}: {exc.reason}")
        except (OSError, http.client.HTTPException) as exc:
            problem = _Transient(f"cannot reach {urlsplit(url).hostname}: {exc or type(exc).__name__}")
        except ElementTree.ParseError as exc:
            raise FetchError(f"the listing of {what} from {store.endpoint} is not XML: {exc}") from None
        if not isinstance(problem, _Transient):
            raise problem from None
        if tried == len(RETRY_DELAYS_SECONDS):
            raise FetchError(f"{problem} (gave up after {tried + 1} tries)") from None
        delay = RETRY_DELAYS_SECONDS[tried]
        if problem.retry_after is not None:
            delay = max(delay, min(problem.retry_after, MAX_RETRY_AFTER_SECONDS))
        _log(f"{problem}; trying again in {delay:g} s")
        time.sleep(delay)
    raise AssertionError("unreachable")


def list_objects(store: Store, bucket: str, key: str) -> list[Listed]:
    """The object `key` and every object under `key/` (every object of the bucket for an empty key), page after
    page of ListObjectsV2; folder markers (keys ending in '/') are not files."""
    found: list[Listed] = []
    token = ""
    what = f"{store.scheme}://{bucket}/{key}"
    while True:
        query = [("list-type", "2"), ("prefix", key), *([("continuation-token", token)] if token else [])]
        root = _get_xml(store.url(bucket, "", query), store, what)
        for node in root:
            if node.tag.rpartition("}")[2] != "Contents":
                continue
            name = _xml_text(node, "Key")
            if (not key or name == key or name.startswith(key + "/")) and not name.endswith("/"):
                found.append(Listed(name, int(_xml_text(node, "Size") or 0), _xml_text(node, "ETag").strip('"')))
        token = _xml_text(root, "NextContinuationToken")
        if _xml_text(root, "IsTruncated").lower() != "true" or not token:
            return found


def _safe_relative(path: str) -> bool:
    return not (path.startswith("/") or "\\" in path or "\0" in path
                or any(p in ("", ".", "..") for p in path.split("/")))


# -- arguments -----------------------------------------------------------------------------------------------

FLAGS = (
    ("repo", "Hugging Face model repository, owner/name"),
    ("revision", "commit of the repository, 40 hex digits (a branch or tag moves: a cache of it would go stale)"),
    ("file", "path of the file in the repository"),
    ("dir", "cache directory; the file goes to DIR/OWNER--NAME/REVISION/FILE"),
    ("sha256", "expected SHA-256 of the file, checked before it is put in place (optional)"),
)
STORE_FLAGS = (
    ("objects-dir", "where bucket objects go: OBJECTS_DIR/{s3|gs}/BUCKET/KEY (default: --dir)"),
    ("endpoint", f"the S3-compatible endpoint of s3:// and gs:// items (default: AWS S3 in the region for s3://, "
                 f"{GCS_ENDPOINT} for gs://; MinIO: its URL)"),
    ("region", "the region requests to the endpoint are signed for (default: us-east-1 for s3://, auto for gs://)"),
)
PEFT_FILES = ("adapter_config.json", "adapter_model.safetensors")
"""What `hf://owner/name@<commit>` (a PEFT LoRA folder, as our adapter's SELFHOST_ADAPTERS names one) fetches:
what vLLM loads of it."""
_HF_ITEM = re.compile(rf"hf://(?P<repo>{_NAME}/{_NAME})@(?P<revision>[0-9a-f]{{40}})(?:/(?P<file>[^#]+))?"
                      r"(?:#sha256=(?P<sha256>[0-9a-fA-F]{64}))?")
_BUCKET_ITEM = re.compile(r"(?P<scheme>s3|gs)://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<key>[^#]*))?"
                          r"(?:#sha256=(?P<sha256>[0-9a-fA-F]{64}))?")


@dataclass(frozen=True)
class HubItem:
    """Files of a Hub repository at a commit; `path` is printed: the file, or the folder of a PEFT adapter."""

    targets: tuple[Target, ...]
    path: Path


@dataclass(frozen=True)
class BucketItem:
    """The object `key`, or every object under `key/`, of a bucket; `sha256` checks a single object."""

    scheme: str
    bucket: str
    key: str
    sha256: str | None = None

    @property
    def uri(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class Plan:
    """What one run fetches, in order."""

    items: tuple[HubItem | BucketItem, ...]
    objects_dir: Path | None = None
    endpoint: str | None = None
    region: str | None = None


def _hub_item(text: str, directory: Path) -> HubItem | None:
    m = _HF_ITEM.fullmatch(text)
    # Repo and file become parts of a path under the cache: nothing may climb out of it.
    if m is None or ".." in m["repo"] or "--" in m["repo"] or (m["file"] and not _safe_relative(m["file"])) or (
            m["sha256"] and not m["file"]):
        return None
    sha = m["sha256"].lower() if m["sha256"] else None
    files = (m["file"],) if m["file"] else PEFT_FILES
    targets = tuple(Target(m["repo"], m["revision"], f, directory, sha) for f in files)
    return HubItem(targets, targets[0].dest if m["file"] else targets[0].dest.parent)


def _bucket_item(text: str) -> BucketItem | None:
    m = _BUCKET_ITEM.fullmatch(text)
    key = (m["key"] or "").strip("/") if m else ""
    if m is None or (key and not _safe_relative(key)):
        return None
    return BucketItem(m["scheme"], m["bucket"], key, m["sha256"].lower() if m["sha256"] else None)


def parse_args(argv: Sequence[str] | None, environ: Mapping[str, str]) -> Plan:
    parser = argparse.ArgumentParser(
        prog="selfhost-fetch", description="Download pinned weights: files of a Hugging Face repository at a commit, "
                                           "or the objects under a prefix of an S3-compatible bucket.",
        epilog="Hub token: HF_TOKEN, else the file HF_TOKEN_PATH names. Mirror: HF_ENDPOINT. Bucket key: "
               "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, else files of those names in "
               "SELFHOST_FETCH_CREDENTIALS_DIR.")
    for name, help_text in (*FLAGS, *STORE_FLAGS):
        env = f"SELFHOST_FETCH_{name.upper().replace('-', '_')}"
        parser.add_argument(f"--{name}", default=environ.get(env) or None, help=f"{help_text} (env {env})")
    parser.add_argument("items", nargs="*", metavar="ITEM",
                        help="hf://owner/name@<commit>[/<file>][#sha256=<hex>], s3://bucket/key or gs://bucket/key")
    args = parser.parse_args(argv)
    legacy = any(getattr(args, name) for name, _ in FLAGS[:3])
    needed = [name for name, _ in FLAGS[:4]] if legacy or not args.items else []
    if any(item.startswith("hf://") for item in args.items) and "dir" not in needed:
        needed.append("dir")
    problems = [f"--{name} (or SELFHOST_FETCH_{name.upper()}) is required" for name in needed
                if not getattr(args, name)]
    objects_dir = args.objects_dir or args.dir
    if any(item.startswith(("s3://", "gs://")) for item in args.items) and not objects_dir:
        problems.append("--objects-dir (or --dir) is required for s3:// and gs:// items")
    if problems:
        parser.error("; ".join(problems))
    items: list[HubItem | BucketItem] = []
    if legacy:
        repo, revision, file, sha256 = args.repo, args.revision, args.file, args.sha256
        # Each is part of a path under --dir: nothing may climb out of it.
        if not _REPO.fullmatch(repo) or ".." in repo or "--" in repo:
            problems.append(f"--repo {repo!r} is not a Hugging Face repository id (owner/name)")
        if not _COMMIT.fullmatch(revision):
            problems.append(f"--revision {revision!r} is not a commit (40 lowercase hex digits)")
        if not _safe_relative(file):
            problems.append(f"--file {file!r} is not a relative path inside the repository")
        if sha256 is not None and not _SHA256.fullmatch(sha256):
            problems.append(f"--sha256 {sha256!r} is not 64 hex digits")
        target = Target(repo, revision, file, Path(args.dir), sha256.lower() if sha256 else None)
        items.append(HubItem((target,), target.dest))
    for text in args.items:
        item = _hub_item(text, Path(args.dir or ".")) if text.startswith("hf://") else _bucket_item(text)
        if item is None:
            problems.append(f"{text!r} is not an item: hf://owner/name@<40-hex commit>[/<file>][#sha256=<hex>] "
                            "(a path inside the repository), s3://bucket/key or gs://bucket/key")
        else:
            items.append(item)
    schemes = {item.scheme for item in items if isinstance(item, BucketItem)}
    if len(schemes) > 1 and args.endpoint:
        problems.append("one --endpoint serves either s3:// or gs:// items, not both")
    if problems:
        parser.error("; ".join(problems))
    return Plan(tuple(items), Path(objects_dir) if objects_dir else None, args.endpoint, args.region)


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


def _http_problem(exc: urllib.error.HTTPError, target: Target | ObjectTarget, endpoint: str,
                  sent_token: bool) -> Exception:
    if isinstance(target, ObjectTarget):
        return _store_problem(exc, target.uri, target.store)
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


def _open(url: str, token: str | None, part: _Part, target: Target | ObjectTarget, endpoint: str) -> Any:
    """The server's answer for the rest of the file, or None when the `.part` holds all of it."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if part.size:
        request.add_header("Range", f"bytes={part.size}-")  # not signed: S3 signs the x-amz-* headers and host
    if isinstance(target, ObjectTarget):
        # The Hub token is never sent to a bucket; the signature goes to the store only, never to a redirect.
        for name, value in target.store.sign(url).items():
            request.add_unredirected_header(name, value)
    elif token:
        # Unredirected: urllib copies the other headers to every redirect, _Redirects this one to the same origin.
        request.add_unredirected_header("Authorization", f"Bearer {token}")
    host = urlsplit(url).hostname
    try:
        return _OPENER.open(request, timeout=TIMEOUT_SECONDS)
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not part.size:
            problem = _http_problem(exc, target, endpoint, token is not None)  # it may read the error's body
            exc.close()
            raise problem from None
        exc.close()
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


def _attempt(url: str, token: str | None, part: _Part, target: Target | ObjectTarget, endpoint: str) -> None:
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


def _download(url: str, token: str | None, part: _Part, target: Target | ObjectTarget, endpoint: str) -> None:
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


def _in_place(target: Target | ObjectTarget) -> bool:
    """The file is there, whole and still the one to serve; one that is not is removed."""
    if not _cached(target.dest, target.sha256):
        return False
    if target.current():
        return True
    _log(f"{target.dest} is not the object the bucket holds now (size or ETag): downloading it again")
    target.dest.unlink()
    return False


def fetch(target: Target | ObjectTarget, endpoint: str, token: str | None) -> Path:
    """Put the file in place (unless it is there already) and return its path."""
    dest = target.dest
    part_path = _sibling(dest, ".part")
    try:
        if _in_place(target):
            _log(f"already there: {dest}")
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        with _locked(part_path) as file:
            if _in_place(target):  # the fetch this one waited for has put it in place
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
    target.remember()
    _log(f"downloaded {_gib(part.size)} to {dest}")
    return dest


def store_for(item: BucketItem, plan: Plan, environ: Mapping[str, str]) -> Store:
    region = plan.region or DEFAULT_REGION[item.scheme]
    endpoint = plan.endpoint or (GCS_ENDPOINT if item.scheme == "gs" else f"https://s3.{region}.amazonaws.com")
    return Store(item.scheme, endpoint, region, read_credentials(environ))


def fetch_bucket(item: BucketItem, store: Store, objects_dir: Path) -> Path:
    """Every object of the item in place under `objects_dir`; returns the item's path there (a file or a folder)."""
    root = objects_dir / item.scheme / item.bucket
    listed = list_objects(store, item.bucket, item.key)
    if not listed:
        raise FetchError(f"nothing at {item.uri} on {store.endpoint}: no object is {item.key or '(the bucket)'} or "
                         "under it (check the bucket, the prefix and the access key's list permission)")
    single = len(listed) == 1 and listed[0].key == item.key
    if item.sha256 and not single:
        raise FetchError(f"#sha256 checks one object; {item.uri} is a folder of {len(listed)}")
    for obj in listed:
        if not _safe_relative(obj.key):
            raise FetchError(f"the object key {obj.key!r} in {item.uri} is not a path that stays under {root}")
        fetch(ObjectTarget(store, item.bucket, obj.key, root / obj.key, obj.size, obj.etag, item.sha256), "", None)
    return root / item.key if item.key else root


def main(argv: Sequence[str] | None = None) -> int:
    plan = parse_args(argv, os.environ)
    secrets: list[str] = []

    def redact(message: str) -> str:
        for secret in secrets:
            message = message.replace(secret, "***")
        return message

    try:
        for item in plan.items:
            if isinstance(item, HubItem):
                token = read_token(os.environ)
                secrets += [token] if token else []
                for target in item.targets:
                    fetch(target, os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT, token)
                dest = item.path
            else:
                store = store_for(item, plan, os.environ)
                secrets += [s for s in (store.credentials.secret_key, store.credentials.session_token) if s]
                assert plan.objects_dir is not None  # parse_args requires it with bucket items
                dest = fetch_bucket(item, store, plan.objects_dir)
            print(dest, flush=True)
    except FetchError as exc:
        _log(f"error: {redact(str(exc))}")
        return 1
    except Exception as exc:
        # Still one line, and without the token, which no message should hold but a traceback could quote.
        _log(f"error: {type(exc).__name__}: {redact(str(exc))}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
