"""`selfhost stage`: the Hub's own client downloads a pinned revision from a local stand-in for the Hub (the
endpoints huggingface_hub calls: the revision's file tree, then HEAD and GET per file), and boto3 uploads it to
S3 as moto serves it (the real client against a local S3 model). Weights only, KMS-encrypted, idempotent."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from moto import mock_aws

from selfhost.stage import stage_model

REPO, REV = "acme/tiny-llm", "0123456789abcdef0123456789abcdef01234567"
FILES = {"config.json": b'{"model_type": "llama"}', "model.safetensors": b"\x00" * 4096,
         "tokenizer.json": b"{}", "pytorch_model.bin": b"\x01" * 64, "original/consolidated.pth": b"\x02" * 64}
TOKEN = "hf_" + "Tt5" * 12


@pytest.fixture()
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[list[tuple[str, str, str | None]]]:
    seen: list[tuple[str, str, str | None]] = []

    class Hub(BaseHTTPRequestHandler):
        def answer(self, body: bytes, kind: str = "application/octet-stream", **headers: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            seen.append((self.command, path, self.headers.get("authorization")))
            if path == f"/api/models/{REPO}/tree/{REV}":
                self.answer(json.dumps([{"type": "file", "path": f, "size": len(d), "oid": hashlib.sha1(d).hexdigest()}
                                        for f, d in FILES.items()]).encode(), "application/json")
                return
            prefix = f"/{REPO}/resolve/{REV}/"
            if path.startswith(prefix) and path[len(prefix):] in FILES:
                data = FILES[path[len(prefix):]]
                self.answer(data, **{"X-Repo-Commit": REV, "ETag": f'"{hashlib.sha256(data).hexdigest()}"'})
                return
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_HEAD = do_GET

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield seen
    server.shutdown()


def test_stage_copies_the_pinned_weights_encrypted_and_only_once(hub, tmp_path):
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="artifacts")
        key = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
        prefix = f"models/{REPO}/{REV}"
        written = stage_model(REPO, REV, "artifacts", prefix, key, s3=s3, log=lambda line: None)
        assert sorted(written) == [f"{prefix}/config.json", f"{prefix}/model.safetensors", f"{prefix}/tokenizer.json"]
        head = s3.head_object(Bucket="artifacts", Key=f"{prefix}/model.safetensors")
        assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == key
        assert s3.get_object(Bucket="artifacts", Key=f"{prefix}/model.safetensors")["Body"].read() == \
            FILES["model.safetensors"]
        # The token went to the Hub with every request, and only there.
        assert {auth for _, _, auth in hub} == {f"Bearer {TOKEN}"}
        # Again: everything is there already, nothing is uploaded.
        assert stage_model(REPO, REV, "artifacts", prefix, key, s3=s3, log=lambda line: None) == []


def test_a_revision_without_safetensors_is_refused(hub, monkeypatch):
    monkeypatch.setitem(FILES, "model.safetensors", b"")
    del FILES["model.safetensors"]
    try:
        with mock_aws():
            s3 = boto3.client("s3", region_name="us-east-1")
            s3.create_bucket(Bucket="artifacts")
            with pytest.raises(RuntimeError, match="no safetensors weights"):
                stage_model(REPO, REV, "artifacts", "models/x", None, s3=s3, log=lambda line: None)
    finally:
        FILES["model.safetensors"] = b"\x00" * 4096


def test_the_cli_refuses_a_branch_name(tmp_path):
    from typer.testing import CliRunner

    from selfhost.cli import app

    result = CliRunner().invoke(app, ["stage", "--repo", REPO, "--revision", "main", "--bucket", "b"])
    assert result.exit_code == 1 and "40-character commit" in result.output


# ---------------------------------------------------------------------------------------------------------
# Cloud Storage (issue 27): the JSON API's objects.list and resumable uploads, served by a stand-in over httpx's
# MockTransport (no network); LoRA adapter repositories.


class FakeGcs:
    """Cloud Storage's JSON API as `selfhost stage` calls it: objects.list by prefix (paged), and resumable
    uploads (a session, then Content-Range pieces answered 308 with the Range held, 200 at the end). It keeps one
    byte less than sent of the first piece, as a server may, so the client must resume from the Range it says."""

    def __init__(self, bucket: str, token: str):
        self.bucket, self.token = bucket, token
        self.objects: dict[str, bytes] = {}
        self.sessions: dict[str, tuple[str, int, bytearray]] = {}
        self.auth: set[str | None] = set()
        self.short_once = True

    def handler(self, request):
        import httpx

        self.auth.add(request.headers.get("authorization"))
        url = request.url
        if request.method == "GET" and url.path == f"/storage/v1/b/{self.bucket}/o":
            prefix = url.params["prefix"]
            names = sorted(n for n in self.objects if n.startswith(prefix))
            start = int(url.params.get("pageToken") or 0)
            page = names[start:start + 2]
            body: dict = {"items": [{"name": n, "size": str(len(self.objects[n]))} for n in page]}
            if start + 2 < len(names):
                body["nextPageToken"] = str(start + 2)
            return httpx.Response(200, json=body)
        if request.method == "POST" and url.path == f"/upload/storage/v1/b/{self.bucket}/o":
            assert url.params["uploadType"] == "resumable"
            sid = f"s{len(self.sessions)}"
            self.sessions[sid] = (url.params["name"], int(request.headers["x-upload-content-length"]), bytearray())
            return httpx.Response(200, headers={"Location": f"https://storage.googleapis.com/upload/session/{sid}"})
        if request.method == "PUT" and url.path.startswith("/upload/session/"):
            name, total, held = self.sessions[url.path.rsplit("/", 1)[1]]
            span = request.headers["content-range"].removeprefix("bytes ")
            data = request.content
            if not span.startswith("*"):
                first = int(span.split("-")[0])
                assert first == len(held), f"a piece at {first}, the server holds {len(held)}"
                if self.short_once and len(data) > 1 and first + len(data) < total:
                    self.short_once, data = False, data[:-1]
                held += data
            if len(held) == total:
                self.objects[name] = bytes(held)
                return httpx.Response(200, json={"name": name, "size": str(total)})
            return httpx.Response(308, headers={"Range": f"bytes=0-{len(held) - 1}"} if held else {})
        return httpx.Response(404, json={"error": {"message": f"no route {request.method} {url.path}"}})


@pytest.fixture()
def gcs(monkeypatch):
    import httpx

    import selfhost.stage

    monkeypatch.setattr(selfhost.stage, "CHUNK_BYTES", 1024)  # several pieces per file
    fake = FakeGcs("acme-models", "ya29.test")
    return fake, httpx.Client(transport=httpx.MockTransport(fake.handler))


def test_stage_to_cloud_storage_uploads_the_pinned_weights_in_pieces_and_only_once(hub, gcs):
    from selfhost.stage import stage_to_gcs

    fake, http = gcs
    prefix = "llama/support-v3"
    written = stage_to_gcs(REPO, REV, "acme-models", prefix, http=http, credentials="ya29.test", log=lambda _: None)
    assert sorted(written) == [f"{prefix}/config.json", f"{prefix}/model.safetensors", f"{prefix}/tokenizer.json"]
    assert fake.objects[f"{prefix}/model.safetensors"] == FILES["model.safetensors"]
    assert fake.objects[f"{prefix}/config.json"] == FILES["config.json"]
    # Cloud Storage saw our credentials only; the Hub token stayed with the Hub.
    assert fake.auth == {"Bearer ya29.test"}
    assert {auth for _, _, auth in hub} == {f"Bearer {TOKEN}"}
    # Again: everything is there already (listed over two pages), nothing is uploaded.
    assert stage_to_gcs(REPO, REV, "acme-models", prefix, http=http, credentials="ya29.test",
                        log=lambda _: None) == []


def test_a_cloud_storage_error_says_what_failed(hub):
    import httpx

    from selfhost.stage import stage_to_gcs

    denied = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(
        403, json={"error": {"message": "sa@x does not have storage.objects.list access"}})))
    with pytest.raises(RuntimeError, match=r"listing gs://acme-models/m: HTTP 403 sa@x does not have"):
        stage_to_gcs(REPO, REV, "acme-models", "m", http=denied, credentials="t", log=lambda _: None)


ADAPTER_FILES = {"adapter_config.json": b'{"r": 16, "peft_type": "LORA"}', "adapter_model.safetensors": b"\x03" * 512,
                 "sql-lora-f16.gguf": b"GGUF" + b"\x00" * 60, "README.md": b"# sql", "training_args.bin": b"\x04" * 8}


def test_an_adapter_repository_stages_its_peft_files_and_gguf_only(hub, gcs, monkeypatch):
    from selfhost.stage import stage_to_gcs

    for name in list(FILES):
        monkeypatch.delitem(FILES, name)
    for name, data in ADAPTER_FILES.items():
        monkeypatch.setitem(FILES, name, data)
    fake, http = gcs
    written = stage_to_gcs(REPO, REV, "acme-models", "adapters/sql", kind="adapter", http=http, credentials="t",
                           log=lambda _: None)
    assert sorted(written) == ["adapters/sql/adapter_config.json", "adapters/sql/adapter_model.safetensors",
                               "adapters/sql/sql-lora-f16.gguf"]
    assert fake.objects["adapters/sql/adapter_model.safetensors"] == ADAPTER_FILES["adapter_model.safetensors"]


def test_a_model_repository_is_not_an_adapter(hub, gcs):
    from selfhost.stage import stage_to_gcs

    _, http = gcs
    with pytest.raises(RuntimeError, match=r"has no adapter \(adapter_config.json and adapter_model.safetensors"):
        stage_to_gcs(REPO, REV, "acme-models", "adapters/x", kind="adapter", http=http, credentials="t",
                     log=lambda _: None)


def test_the_cli_stages_to_cloud_storage(monkeypatch):
    from typer.testing import CliRunner

    import selfhost.stage
    from selfhost.cli import app

    calls = []
    monkeypatch.setattr(selfhost.stage, "stage_to_gcs", lambda *a, **k: calls.append((a, k)) or ["x"])
    runner = CliRunner()
    result = runner.invoke(app, ["stage", "--repo", REPO, "--revision", REV, "--adapter",
                                 "--to", "gs://acme-models/adapters/sql"])
    assert result.exit_code == 0, result.output
    ((args, _),) = calls
    assert args[:5] == (REPO, REV, "acme-models", "adapters/sql", "adapter")
    result = runner.invoke(app, ["stage", "--repo", REPO, "--revision", REV, "--bucket", "gs://acme-models"])
    assert result.exit_code == 0 and calls[-1][0][2:5] == ("acme-models", f"models/{REPO}/{REV}", "model")
    for bad, says in ((["--bucket", "b", "--to", "gs://acme-models/x"], "--to names the bucket and the prefix"),
                      (["--to", "pvc://claim/x"], "s3://bucket/prefix or gs://bucket/prefix"),
                      (["--bucket", "gs://acme-models", "--kms-key-id", "k"], "--kms-key-id is for S3"),
                      ([], "give --bucket")):
        result = runner.invoke(app, ["stage", "--repo", REPO, "--revision", REV, *bad])
        assert result.exit_code == 1 and says in result.output, (bad, result.output)
