"""`selfhost-fetch` against a local stand-in for the Hugging Face Hub: the pinned path, the cache, resuming,
verification, the token (sent, never printed, never to another host) and the errors an operator must read."""

from __future__ import annotations

import datetime
import hashlib
import random
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
from selfhost_adapter import fetch

from .conftest import wait_until

REPO = "Qwen/Qwen2.5-1.5B-Instruct-GGUF"
REV = "91cad51170dc346986eccefdc2dd33a9da36ead9"
FILE = "qwen2.5-1.5b-instruct-q4_k_m.gguf"
CONTENT = random.Random(0).randbytes(3 * (1 << 20) + 12345)  # a few chunks, not a whole one at the end
SHA256 = hashlib.sha256(CONTENT).hexdigest()
TOKEN = "hf_SecretTokenForTests0123456789"


@dataclass
class Hub:
    """Serves `files` at /{repo}/resolve/{rev}/{file} (and under /cdn/, where redirects go), with Range."""

    files: dict[str, bytes] = field(default_factory=lambda: {f"/{REPO}/resolve/{REV}/{FILE}": CONTENT})
    token: str | None = None
    """Required on the resolve route (not under /cdn/, which a signed URL would open) when set."""
    redirect_to: str | None = None
    """A base URL: the resolve route answers 302 to {redirect_to}/cdn{path}."""
    ranges: bool = True
    fail: list[int] = field(default_factory=list)
    """Statuses to answer the next requests with, one each."""
    cut_after: int | None = None
    """Send only this many bytes of the next body, then close the connection."""
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    url: str = ""

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        self.requests.append((h.path, dict(h.headers)))
        if self.fail:
            return self._answer(h, self.fail.pop(0))
        path = h.path.removeprefix("/cdn")
        if path not in self.files:
            return self._answer(h, 404, {"X-Error-Code": "EntryNotFound"})
        if not h.path.startswith("/cdn"):
            if self.token and h.headers.get("Authorization") != f"Bearer {self.token}":
                return self._answer(h, 401)
            if self.redirect_to:
                return self._answer(h, 302, {"Location": f"{self.redirect_to}/cdn{h.path}"})
        content = self.files[path]
        start = 0
        asked = re.fullmatch(r"bytes=(\d+)-", h.headers.get("Range") or "")
        if asked and self.ranges:
            start = int(asked[1])
            if start >= len(content):
                return self._answer(h, 416, {"Content-Range": f"bytes */{len(content)}"})
        h.send_response(206 if start else 200)
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}")
        h.send_header("Content-Length", str(len(content) - start))
        h.end_headers()
        body = content[start:]
        if self.cut_after is not None:
            body, self.cut_after = body[:self.cut_after], None
        h.wfile.write(body)

    @staticmethod
    def _answer(h: BaseHTTPRequestHandler, status: int, headers: dict[str, str] | None = None) -> None:
        h.send_response(status)
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.send_header("Content-Length", "0")
        h.end_headers()


def serve(hub: Hub, host: str = "127.0.0.1") -> Iterator[Hub]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hub.handle(self)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hub.url = f"http://{host}:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)  # quick to shut down
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    for name in ("HF_TOKEN", "HF_TOKEN_PATH", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
                 *(f"SELFHOST_FETCH_{n.upper()}" for n, _ in fetch.FLAGS)):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(fetch, "RETRY_DELAYS_SECONDS", (0.0, 0.01, 0.01))
    for running in serve(Hub()):
        monkeypatch.setenv("HF_ENDPOINT", running.url)
        yield running


@pytest.fixture
def cdn() -> Iterator[Hub]:
    """A second server under another host name (localhost, where the hub is 127.0.0.1): the CDN."""
    yield from serve(Hub(files={}), host="localhost")


def args(models: Path, *extra: str, file: str = FILE) -> list[str]:
    return ["--repo", REPO, "--revision", REV, "--file", file, "--dir", str(models), *extra]


def dest(models: Path, file: str = FILE) -> Path:
    return models / "Qwen--Qwen2.5-1.5B-Instruct-GGUF" / REV / file


def test_downloads_to_the_pinned_path_and_prints_only_it(hub: Hub, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert fetch.main(args(tmp_path, "--sha256", SHA256.upper())) == 0
    out = capsys.readouterr().out
    assert out == f"{dest(tmp_path)}\n"
    assert dest(tmp_path).read_bytes() == CONTENT
    assert sorted(p.name for p in dest(tmp_path).parent.iterdir()) == [FILE, FILE + ".sha256"]  # no .part
    assert (dest(tmp_path).parent / (FILE + ".sha256")).read_text().strip() == SHA256
    [(path, headers)] = hub.requests
    assert path == f"/{REPO}/resolve/{REV}/{FILE}" and "Authorization" not in headers and "Range" not in headers


def test_flags_come_from_the_environment_too(hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in (("REPO", REPO), ("REVISION", REV), ("FILE", FILE), ("DIR", str(tmp_path)),
                        ("SHA256", SHA256)):
        monkeypatch.setenv(f"SELFHOST_FETCH_{name}", value)
    assert fetch.main([]) == 0
    assert capsys.readouterr().out == f"{dest(tmp_path)}\n"


@pytest.mark.parametrize("sha", [None, SHA256])
def test_a_second_run_finds_the_file_and_asks_nothing(hub: Hub, tmp_path: Path, sha: str | None,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    extra = ("--sha256", sha) if sha else ()
    assert fetch.main(args(tmp_path, *extra)) == 0
    assert fetch.main(args(tmp_path, *extra)) == 0
    assert len(hub.requests) == 1
    assert capsys.readouterr().out == f"{dest(tmp_path)}\n" * 2


def test_without_the_marker_a_matching_file_is_hashed_once_not_fetched(hub: Hub, tmp_path: Path) -> None:
    dest(tmp_path).parent.mkdir(parents=True)
    dest(tmp_path).write_bytes(CONTENT)
    assert fetch.main(args(tmp_path, "--sha256", SHA256)) == 0
    assert not hub.requests
    assert (dest(tmp_path).parent / (FILE + ".sha256")).read_text().strip() == SHA256


def test_a_file_that_does_not_match_is_fetched_again(hub: Hub, tmp_path: Path) -> None:
    dest(tmp_path).parent.mkdir(parents=True)
    dest(tmp_path).write_bytes(b"not the model")
    assert fetch.main(args(tmp_path, "--sha256", SHA256)) == 0
    assert dest(tmp_path).read_bytes() == CONTENT and len(hub.requests) == 1


@pytest.mark.parametrize("ranges", [True, False], ids=["resumed", "server-ignores-range"])
def test_a_partial_download_is_resumed(hub: Hub, tmp_path: Path, ranges: bool) -> None:
    hub.ranges = ranges
    part = dest(tmp_path).parent / (FILE + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(CONTENT[:1_000_000])
    assert fetch.main(args(tmp_path, "--sha256", SHA256)) == 0
    assert dest(tmp_path).read_bytes() == CONTENT and not part.exists()
    [(_, headers)] = hub.requests
    assert headers["Range"] == "bytes=1000000-"


def test_a_part_that_was_already_whole_is_put_in_place(hub: Hub, tmp_path: Path) -> None:
    part = dest(tmp_path).parent / (FILE + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(CONTENT)  # a run stopped between the last byte and the rename
    assert fetch.main(args(tmp_path, "--sha256", SHA256)) == 0
    assert dest(tmp_path).read_bytes() == CONTENT and not part.exists()


def test_a_cut_connection_and_server_errors_are_retried_and_resumed(hub: Hub, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    hub.fail = [503, 429]
    hub.cut_after = 1_500_000
    assert fetch.main(args(tmp_path, "--sha256", SHA256)) == 0
    assert dest(tmp_path).read_bytes() == CONTENT
    ranges = [headers.get("Range") for _, headers in hub.requests]
    assert ranges == [None, None, None, "bytes=1500000-"]
    err = capsys.readouterr().err
    assert "answered 503" in err and "answered 429" in err and "connection closed at 1500000" in err


def test_a_server_that_keeps_failing_is_given_up_on(hub: Hub, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    hub.fail = [500] * 10
    assert fetch.main(args(tmp_path)) == 1
    assert len(hub.requests) == len(fetch.RETRY_DELAYS_SECONDS) + 1
    assert capsys.readouterr().err.splitlines()[-1].startswith("selfhost-fetch: error: ")


def test_a_sha256_mismatch_fails_and_leaves_no_file(hub: Hub, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert fetch.main(args(tmp_path, "--sha256", "0" * 64)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"sha256 mismatch for {FILE}: expected {'0' * 64}, got {SHA256}" in captured.err
    assert list(dest(tmp_path).parent.iterdir()) == []


def test_401_without_a_token_says_to_set_it(hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hub.token = TOKEN
    assert fetch.main(args(tmp_path)) == 1
    line = capsys.readouterr().err.splitlines()[-1]
    assert line.startswith("selfhost-fetch: error: 401: ") and REPO in line
    assert "no token was sent" in line and "HF_TOKEN_PATH" in line
    assert len(hub.requests) == 1  # not retried
    assert list(dest(tmp_path).parent.iterdir()) == []


def test_the_token_file_is_used_and_never_printed(hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    hub.token = TOKEN
    token_file = tmp_path / "secret" / "token"
    token_file.parent.mkdir()
    token_file.write_text(TOKEN + "\n")
    monkeypatch.setenv("HF_TOKEN_PATH", str(token_file))
    models = tmp_path / "models"
    assert fetch.main(args(models)) == 0
    assert dest(models).read_bytes() == CONTENT
    assert hub.requests[0][1]["Authorization"] == f"Bearer {TOKEN}"
    # The error paths must not print it either: a refused token, a missing file.
    hub.files[f"/{REPO}/resolve/{REV}/other.gguf"] = b"x"
    hub.token = TOKEN + "-rotated"
    assert fetch.main(args(models, file="other.gguf")) == 1
    assert fetch.main(args(models, file="missing.gguf")) == 1
    captured = capsys.readouterr()
    assert "the token was refused" in captured.err
    assert TOKEN not in captured.out + captured.err
    assert "SecretToken" not in captured.out + captured.err


def test_404_names_what_was_not_found(hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert fetch.main(args(tmp_path, file="nope/q8_0.gguf")) == 1
    [line] = capsys.readouterr().err.splitlines()[-1:]
    assert line == (f"selfhost-fetch: error: 404: file nope/q8_0.gguf not found in {REPO} at {REV} "
                    f"on {hub.url}")
    assert len(hub.requests) == 1


@pytest.mark.parametrize("same_host", [False, True], ids=["to-a-cdn", "on-the-hub"])
def test_the_token_follows_redirects_only_to_the_same_host(hub: Hub, cdn: Hub, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch, same_host: bool) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    hub.token = TOKEN
    target = hub if same_host else cdn
    target.files[f"/{REPO}/resolve/{REV}/{FILE}"] = CONTENT
    hub.redirect_to = target.url
    part = dest(tmp_path).parent / (FILE + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(CONTENT[:100])
    assert fetch.main(args(tmp_path, "--sha256", SHA256)) == 0
    assert dest(tmp_path).read_bytes() == CONTENT
    (first, asked), (second, followed) = hub.requests[0], target.requests[-1]
    assert first == f"/{REPO}/resolve/{REV}/{FILE}" and asked["Authorization"] == f"Bearer {TOKEN}"
    assert second == f"/cdn/{REPO}/resolve/{REV}/{FILE}" and followed["Range"] == "bytes=100-"
    assert followed.get("Authorization") == (f"Bearer {TOKEN}" if same_host else None)


def test_not_enough_room_fails_before_writing(hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(fetch.shutil, "disk_usage", lambda path: SimpleNamespace(total=10, used=9, free=1))
    assert fetch.main(args(tmp_path)) == 1
    [line] = capsys.readouterr().err.splitlines()[-1:]
    assert line.startswith("selfhost-fetch: error: disk full: ") and FILE in line
    assert not dest(tmp_path).exists()


def test_two_fetches_of_the_same_file_download_it_once(hub: Hub, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    logs: list[str] = []
    monkeypatch.setattr(fetch, "_log", logs.append)
    gate = threading.Event()
    handle = hub.handle

    def slow(h: BaseHTTPRequestHandler) -> None:
        gate.wait(10)
        handle(h)

    monkeypatch.setattr(hub, "handle", slow)
    codes: list[int] = []
    first = threading.Thread(target=lambda: codes.append(fetch.main(args(tmp_path))))
    first.start()
    wait_until(lambda: any(line.startswith("downloading") for line in logs), 5, "first fetch started")
    second = threading.Thread(target=lambda: codes.append(fetch.main(args(tmp_path))))
    second.start()
    wait_until(lambda: any(line.startswith("waiting for another fetch") for line in logs), 5, "second waits")
    gate.set()
    first.join(10)
    second.join(10)
    assert codes == [0, 0] and len(hub.requests) == 1
    assert dest(tmp_path).read_bytes() == CONTENT
    assert not (dest(tmp_path).parent / (FILE + ".part")).exists()


@pytest.mark.parametrize("flag, value", [("--revision", "main"), ("--repo", "../etc"), ("--file", "../x.gguf"),
                                         ("--file", "/abs.gguf"), ("--sha256", "abc")])
def test_bad_arguments_exit_2(tmp_path: Path, flag: str, value: str) -> None:
    argv = args(tmp_path)
    if flag in argv:
        argv[argv.index(flag) + 1] = value
    else:
        argv += [flag, value]
    with pytest.raises(SystemExit) as exit_info:
        fetch.main(argv)
    assert exit_info.value.code == 2


# ---------------------------------------------------------------------------------------------------------
# Buckets: AWS Signature Version 4 by hand, checked against botocore's own signer, and ListObjectsV2 + GET against
# a local stand-in for an S3-compatible store that verifies every signature with botocore.

ACCESS_KEY = "AKIDEXAMPLE0123456789"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
BUCKET = "team-weights"
NOW = datetime.datetime(2026, 12, 7, 23, 59, 58, tzinfo=datetime.UTC)


def botocore_authorization(method: str, url: str, headers: dict[str, str], region: str, when: datetime.datetime,
                           token: str | None = None, s3: bool = False) -> str:
    """The Authorization header botocore's signer writes for the same request at the same moment."""
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=url, headers=dict(headers))
    signer = (botocore.auth.S3SigV4Auth if s3 else botocore.auth.SigV4Auth)(
        Credentials(ACCESS_KEY, SECRET_KEY, token), "s3", region)
    original = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda: when.replace(tzinfo=None)  # type: ignore[attr-defined]
    try:
        signer.add_auth(request)
    finally:
        botocore.auth.get_current_datetime = original
    return request.headers["Authorization"]


@pytest.mark.parametrize(("url", "region", "token", "s3"), [
    ("https://s3.eu-west-1.amazonaws.com/team-weights/adapters/support/adapter_config.json", "eu-west-1", None, False),
    ("https://s3.us-east-1.amazonaws.com/team-weights?list-type=2&prefix=adapters%2Fsupport&continuation-token="
     "1%2Fab%2B%3D%3D", "us-east-1", None, False),
    ("https://storage.googleapis.com/team-weights/ckpt/model-00001-of-00004.safetensors", "auto", "session-token-1",
     False),
    ("http://minio.dc1.example.internal:9000/team-weights/ckpt%20v2/tokenizer.json", "us-east-1", None, True),
], ids=["object", "listing-page", "gcs-with-session-token", "minio-port-and-escaped-key"])
def test_the_signature_is_botocores(url: str, region: str, token: str | None, s3: bool) -> None:
    ours = fetch.sign_v4("GET", url, fetch.Credentials(ACCESS_KEY, SECRET_KEY, token), region, NOW)
    # botocore signs every header it is given: give it ours but the two it writes itself (date, Authorization).
    given = {k: v for k, v in ours.items() if k not in ("authorization", "x-amz-date", "x-amz-security-token")}
    assert ours["authorization"] == botocore_authorization("GET", url, given, region, NOW, token, s3)
    assert ours["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20261207/{region}/s3/")
    assert SECRET_KEY not in repr(fetch.Credentials(ACCESS_KEY, SECRET_KEY))


@dataclass
class Bucket:
    """Answers ListObjectsV2 (pages of `page` keys) and GETs of objects (with Range), path-style, for requests whose
    signature botocore computes the same from the request as sent; anything else is a 403."""

    objects: dict[str, bytes]
    region: str = "us-east-1"
    name: str = BUCKET
    page: int = 2
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    url: str = ""

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        self.requests.append((h.path, dict(h.headers)))
        auth, stamp = h.headers.get("Authorization"), h.headers.get("x-amz-date")
        if not auth or not stamp:
            return self._xml(h, 403, "<Error><Code>AccessDenied</Code></Error>")
        signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
        headers = {name: h.headers[name] for name in signed if name not in ("x-amz-date", "x-amz-security-token")}
        when = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ")
        if auth != botocore_authorization("GET", self.url + h.path, headers, self.region, when, s3=True):
            return self._xml(h, 403, "<Error><Code>SignatureDoesNotMatch</Code></Error>")
        parts = urlsplit(h.path)
        bucket, _, key = parts.path.lstrip("/").partition("/")
        if bucket != self.name:
            return self._xml(h, 404, "<Error><Code>NoSuchBucket</Code></Error>")
        if not key:
            query = dict(parse_qsl(parts.query))
            assert query["list-type"] == "2"
            keys = sorted(k for k in self.objects if k.startswith(query.get("prefix", "")))
            start = int(query.get("continuation-token", "0/").split("/")[0])
            shown, more = keys[start:start + self.page], start + self.page < len(keys)
            contents = "".join(f"<Contents><Key>{k}</Key><Size>{len(self.objects[k])}</Size>"
                               f"<ETag>&quot;{hashlib.md5(self.objects[k]).hexdigest()}&quot;</ETag></Contents>"
                               for k in shown)
            # A token with the characters that must be escaped in a query (as S3's opaque tokens have).
            token = f"<NextContinuationToken>{start + self.page}/x+y=</NextContinuationToken>" if more else ""
            return self._xml(h, 200, f'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                                     f"<Name>{self.name}</Name><IsTruncated>{str(more).lower()}</IsTruncated>"
                                     f"{token}{contents}</ListBucketResult>")
        name = unquote(key)
        if name not in self.objects:
            return self._xml(h, 404, "<Error><Code>NoSuchKey</Code></Error>")
        body = self.objects[name]
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    @staticmethod
    def _xml(h: BaseHTTPRequestHandler, status: int, text: str) -> None:
        data = text.encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/xml")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)


ADAPTER = {"adapters/support/adapter_config.json": b'{"r": 16, "peft_type": "LORA"}',
           "adapters/support/adapter_model.safetensors": CONTENT[:200_000],
           "adapters/support/extra dir/notes.txt": b"escaped key",
           "adapters/support/": b"",  # a folder marker, as consoles create: not a file
           "adapters/support-old/adapter_config.json": b"a sibling prefix, not under adapters/support/"}


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[Bucket]:
    for name in (*fetch.CREDENTIAL_NAMES, "SELFHOST_FETCH_CREDENTIALS_DIR", "HTTP_PROXY", "http_proxy",
                 *(f"SELFHOST_FETCH_{n.upper().replace('-', '_')}" for n, _ in (*fetch.FLAGS, *fetch.STORE_FLAGS))):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(fetch, "RETRY_DELAYS_SECONDS", (0.0, 0.01, 0.01))
    store = Bucket(dict(ADAPTER))
    yield from serve(store)  # type: ignore[arg-type]


def bucket_args(store: Bucket, objects: Path, *items: str) -> list[str]:
    return ["--objects-dir", str(objects), "--endpoint", store.url, *items]


def test_every_object_under_a_prefix_is_fetched_with_signed_requests(bucket: Bucket, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    assert fetch.main(bucket_args(bucket, tmp_path, f"s3://{BUCKET}/adapters/support")) == 0
    folder = tmp_path / "s3" / BUCKET / "adapters" / "support"
    assert capsys.readouterr().out == f"{folder}\n"
    for key in ("adapter_config.json", "adapter_model.safetensors", "extra dir/notes.txt"):
        assert (folder / key).read_bytes() == ADAPTER[f"adapters/support/{key}"]
    assert not (tmp_path / "s3" / BUCKET / "adapters" / "support-old").exists()
    assert not list(folder.rglob("*.part"))
    paths = [path for path, _ in bucket.requests]
    # Three keys under the prefix and the sibling's, two to a page: two listing pages, then the three objects.
    assert sum("list-type=2" in p for p in paths) == 3 and len(paths) == 6
    assert "continuation-token=2%2Fx%2By%3D" in paths[1]
    assert all(headers["Authorization"].startswith("AWS4-HMAC-SHA256 ") for _, headers in bucket.requests)


def test_a_second_start_lists_again_and_downloads_only_what_changed(bucket: Bucket, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "secret"  # the Secret's keys as mounted files
    secret.mkdir()
    (secret / "AWS_ACCESS_KEY_ID").write_text(ACCESS_KEY + "\n")
    (secret / "AWS_SECRET_ACCESS_KEY").write_text(SECRET_KEY)
    monkeypatch.setenv("SELFHOST_FETCH_CREDENTIALS_DIR", str(secret))
    objects = tmp_path / "objects"
    assert fetch.main(bucket_args(bucket, objects, f"s3://{BUCKET}/adapters/support")) == 0
    first = len(bucket.requests)
    assert fetch.main(bucket_args(bucket, objects, f"s3://{BUCKET}/adapters/support")) == 0
    assert all("list-type=2" in p for p, _ in bucket.requests[first:])  # only listings: every file is current
    bucket.objects["adapters/support/adapter_config.json"] = b'{"r": 32, "peft_type": "LORA"}'
    second = len(bucket.requests)
    assert fetch.main(bucket_args(bucket, objects, f"s3://{BUCKET}/adapters/support")) == 0
    fetched = [p for p, _ in bucket.requests[second:] if "list-type" not in p]
    assert fetched == [f"/{BUCKET}/adapters/support/adapter_config.json"]
    assert (objects / "s3" / BUCKET / "adapters/support/adapter_config.json").read_bytes().startswith(b'{"r": 32')


def test_one_object_with_its_sha256_and_gcs_signed_for_region_auto(bucket: Bucket, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    bucket.region = "auto"
    key = "adapters/support/adapter_model.safetensors"
    digest = hashlib.sha256(ADAPTER[key]).hexdigest()
    assert fetch.main(bucket_args(bucket, tmp_path, f"gs://{BUCKET}/{key}#sha256={digest}")) == 0
    dest = tmp_path / "gs" / BUCKET / key
    assert capsys.readouterr().out == f"{dest}\n" and dest.read_bytes() == ADAPTER[key]
    assert "/auto/s3/aws4_request" in bucket.requests[-1][1]["Authorization"]
    assert fetch.main(bucket_args(bucket, tmp_path / "other", f"gs://{BUCKET}/{key}#sha256={'0' * 64}")) == 1
    assert "sha256 mismatch" in capsys.readouterr().err


def test_a_refused_key_says_why_and_never_prints_the_secret(bucket: Bucket, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-" + SECRET_KEY)
    assert fetch.main(bucket_args(bucket, tmp_path, f"s3://{BUCKET}/adapters/support")) == 1
    err = capsys.readouterr().err
    assert "403 SignatureDoesNotMatch" in err and "secret key does not match" in err
    assert SECRET_KEY not in err and len(bucket.requests) == 1  # not retried
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    assert fetch.main(bucket_args(bucket, tmp_path, "s3://another-bucket/x")) == 1
    assert "404 NoSuchBucket: no such bucket: s3://another-bucket/x" in capsys.readouterr().err
    assert fetch.main(bucket_args(bucket, tmp_path, f"s3://{BUCKET}/nothing/here")) == 1
    assert "nothing at s3://team-weights/nothing/here" in capsys.readouterr().err


def test_a_bucket_without_a_key_is_refused_before_any_request(bucket: Bucket, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert fetch.main(bucket_args(bucket, tmp_path, f"s3://{BUCKET}/adapters/support")) == 1
    assert "AWS_ACCESS_KEY_ID" in capsys.readouterr().err and not bucket.requests


def test_a_peft_folder_on_the_hub_is_two_files_in_one_run(hub: Hub, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    repo, rev = "acme/support-lora", "0123456789abcdef0123456789abcdef01234567"
    hub.files.update({f"/{repo}/resolve/{rev}/adapter_config.json": b"{}",
                      f"/{repo}/resolve/{rev}/adapter_model.safetensors": b"weights"})
    assert fetch.main(["--dir", str(tmp_path), f"hf://{repo}@{rev}", f"hf://{REPO}@{REV}/{FILE}#sha256={SHA256}"]) == 0
    folder = tmp_path / "acme--support-lora" / rev
    assert capsys.readouterr().out == f"{folder}\n{dest(tmp_path)}\n"
    assert (folder / "adapter_model.safetensors").read_bytes() == b"weights" and dest(tmp_path).read_bytes() == CONTENT


@pytest.mark.parametrize("item", ["hf://acme/x@main/a.gguf", "hf://acme/x@" + "0" * 40 + "/../a.gguf",
                                  "s3://Bad_Bucket/x", "s3://team-weights/a/../b", "ftp://x/y"])
def test_bad_items_exit_2(tmp_path: Path, item: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        fetch.main(["--dir", str(tmp_path), item])
    assert exit_info.value.code == 2
