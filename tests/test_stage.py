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
