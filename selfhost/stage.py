"""`selfhost stage`: copy a model's (or a LoRA adapter's) pinned revision from the Hugging Face Hub into a bucket, so
that serving needs neither the token nor the internet: the stack's S3 artifacts bucket (SageMaker then runs the model
with network isolation), or a Cloud Storage bucket of yours that Vertex and gcp-pool targets read (`source:
gs://bucket/prefix`).

The AWS stacks run it as a declared job at `pulumi up` (components/aws/staging.py: after the bucket exists, before
the model that reads it), on the deploying machine, with the token from the stack's secret config in the job's
environment only. It downloads with the Hub's own client (resumable, cached, pinned to the commit) and uploads with
boto3's managed transfer (encrypted with the environment's KMS key), or to Cloud Storage through its JSON API
(resumable uploads, with google-auth's application-default credentials: the project has google-auth, not
google-cloud-storage; objects take the bucket's default encryption). Files already in the bucket with the same size
are skipped, so a re-run after an interruption copies only what is missing.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol
from urllib.parse import quote

import typer

# What vLLM, TGI and LMI load from a model folder: weights, configs and tokenizer files (no .bin/.pt duplicates,
# no original/ consolidated checkpoints).
PATTERNS = ["*.safetensors", "*.safetensors.index.json", "*.json", "tokenizer*", "*.model", "*.tiktoken", "*.txt",
            "*.jinja"]
IGNORE = ["original/*", "*.bin", "*.pt", "*.pth", "*.gguf", "*.onnx", "*.msgpack", "*.h5"]
# A LoRA adapter: PEFT's two files (what vLLM's --lora-modules loads from a folder), or the GGUF file llama.cpp's
# convert_lora_to_gguf.py writes (what llama.cpp loads).
ADAPTER_PATTERNS = ["adapter_config.json", "adapter_model.safetensors", "*.gguf"]

Kind = Literal["model", "adapter"]

GCS_API = "https://storage.googleapis.com"
GCS_SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"
# Resumable upload chunks must be multiples of 256 KiB (Cloud Storage "Perform resumable uploads"); 16 MiB keeps a
# retry small and the request count of a 16 GB checkpoint near a thousand.
CHUNK_BYTES = 64 * 256 * 1024


class Destination(Protocol):
    """A bucket the staged files go to."""

    url: str
    """`s3://bucket` or `gs://bucket`, for messages."""

    def sizes(self, prefix: str) -> dict[str, int]:
        """Sizes of the objects under `prefix/`, by key."""
        ...

    def upload(self, path: Path, key: str) -> None: ...


class S3Destination:
    def __init__(self, bucket: str, kms_key_id: str | None, s3: Any = None):
        import boto3

        self.url, self.bucket = f"s3://{bucket}", bucket
        self.s3 = s3 or boto3.client("s3")
        self.extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id} if kms_key_id else {}

    def sizes(self, prefix: str) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                      Prefix=prefix.rstrip("/") + "/"):
            sizes.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
        return sizes

    def upload(self, path: Path, key: str) -> None:
        self.s3.upload_file(str(path), self.bucket, key, ExtraArgs=self.extra)


class GcsDestination:
    """A Cloud Storage bucket through the JSON API (objects.list, resumable objects.insert) over `http` (an httpx
    client), authorized by google-auth `credentials` (refreshed when they expire) or a bearer token."""

    def __init__(self, bucket: str, http: Any = None, credentials: Any = None):
        self.url, self.bucket = f"gs://{bucket}", bucket
        self.http = http or _default_http()
        self.credentials = credentials if credentials is not None else _default_credentials()

    def _headers(self) -> dict[str, str]:
        if isinstance(self.credentials, str):
            return {"Authorization": f"Bearer {self.credentials}"}
        if not self.credentials.valid:
            import google.auth.transport.requests

            self.credentials.refresh(google.auth.transport.requests.Request())
        headers: dict[str, str] = {}
        self.credentials.apply(headers)
        return headers

    def sizes(self, prefix: str) -> dict[str, int]:
        sizes: dict[str, int] = {}
        token = ""
        while True:
            params = {"prefix": prefix.rstrip("/") + "/", "fields": "items(name,size),nextPageToken"}
            if token:
                params["pageToken"] = token
            r = self.http.get(f"{GCS_API}/storage/v1/b/{quote(self.bucket, safe='')}/o", params=params,
                              headers=self._headers())
            _check(r, f"listing {self.url}/{prefix}")
            body = r.json()
            sizes.update({o["name"]: int(o["size"]) for o in body.get("items", [])})  # sizes are strings (int64)
            token = body.get("nextPageToken", "")
            if not token:
                return sizes

    def upload(self, path: Path, key: str) -> None:
        """A resumable upload: a session, then the file in CHUNK_BYTES pieces; after a piece the server says how much
        it holds (308 and a Range header), and the next piece starts there."""
        total = path.stat().st_size
        r = self.http.post(f"{GCS_API}/upload/storage/v1/b/{quote(self.bucket, safe='')}/o",
                           params={"uploadType": "resumable", "name": key}, json={},
                           headers={**self._headers(), "X-Upload-Content-Length": str(total)})
        _check(r, f"starting the upload of {self.url}/{key}")
        session = r.headers["Location"]
        with path.open("rb") as f:
            offset = 0
            while True:
                f.seek(offset)
                data = f.read(CHUNK_BYTES)
                span = f"bytes {offset}-{offset + len(data) - 1}/{total}" if data else f"bytes */{total}"
                r = self.http.put(session, content=data, headers={**self._headers(), "Content-Range": span})
                if r.status_code in (200, 201):
                    return
                if r.status_code != 308:
                    _check(r, f"uploading {self.url}/{key}")
                    raise RuntimeError(f"uploading {self.url}/{key}: unexpected status {r.status_code}")
                held = r.headers.get("Range")  # "bytes=0-N": what the server has; none: nothing yet
                offset = int(held.rsplit("-", 1)[1]) + 1 if held else 0


def _check(r: Any, what: str) -> None:
    if r.status_code >= 400:
        try:
            message = (r.json().get("error") or {}).get("message", "")
        except ValueError:
            message = r.text[:200]
        raise RuntimeError(f"{what}: HTTP {r.status_code} {message}".rstrip())


def _default_credentials() -> Any:
    import google.auth

    credentials, _project = google.auth.default(scopes=[GCS_SCOPE])
    return credentials


def _default_http() -> Any:
    import httpx

    return httpx.Client(timeout=120.0)


def _download(repo: str, revision: str, kind: Kind, local_dir: str, cache_dir: Path | None) -> Path:
    from huggingface_hub import snapshot_download

    patterns, ignore = (ADAPTER_PATTERNS, None) if kind == "adapter" else (PATTERNS, IGNORE)
    return Path(snapshot_download(repo_id=repo, revision=revision, allow_patterns=patterns, ignore_patterns=ignore,
                                  cache_dir=str(cache_dir) if cache_dir else None, local_dir=local_dir,
                                  token=os.environ.get("HF_TOKEN") or None,
                                  # A mirror (HF_ENDPOINT), read now: the client reads it once, at import.
                                  endpoint=os.environ.get("HF_ENDPOINT") or None))


def _files(local: Path) -> Iterator[Path]:
    return iter(sorted(p for p in local.rglob("*") if p.is_file() and ".cache" not in p.parts))


def _complete(kind: Kind, names: set[str]) -> bool:
    """Whether the staged files (basenames) are something an engine loads: safetensors weights for a model; PEFT's
    adapter_config.json with its weights, or a GGUF file, for an adapter."""
    if kind == "adapter":
        return {"adapter_config.json", "adapter_model.safetensors"} <= names or any(
            n.endswith(".gguf") for n in names)
    return any(n.endswith(".safetensors") for n in names)


def stage_to(repo: str, revision: str, destination: Destination, prefix: str, kind: Kind = "model",
             cache_dir: Path | None = None, log: Callable[[str], Any] = print) -> list[str]:
    """Copy `repo` at `revision` to `destination` under `prefix/`; return the keys written (skipped ones excluded)."""
    with tempfile.TemporaryDirectory(prefix="selfhost-stage-") as tmp:
        local = _download(repo, revision, kind, tmp, cache_dir)
        present = destination.sizes(prefix)
        written = []
        for path in _files(local):
            key = f"{prefix.rstrip('/')}/{path.relative_to(local).as_posix()}"
            if present.get(key) == path.stat().st_size:
                continue
            destination.upload(path, key)
            written.append(key)
            log(f"uploaded {destination.url}/{key} ({path.stat().st_size:,} bytes)")
        if not _complete(kind, {k.rsplit("/", 1)[-1] for k in [*present, *written]}):
            what = ("no adapter (adapter_config.json and adapter_model.safetensors, or a .gguf file)"
                    if kind == "adapter" else "no safetensors weights")
            raise RuntimeError(f"{repo}@{revision} has {what} to stage")
        return written


def stage_model(repo: str, revision: str, bucket: str, prefix: str, kms_key_id: str | None,
                s3: Any = None, cache_dir: Path | None = None, log: Any = print, kind: Kind = "model") -> list[str]:
    """Copy `repo` at `revision` into s3://bucket/prefix/; return the keys written (skipped ones excluded)."""
    return stage_to(repo, revision, S3Destination(bucket, kms_key_id, s3), prefix, kind, cache_dir, log)


def stage_to_gcs(repo: str, revision: str, bucket: str, prefix: str, kind: Kind = "model", http: Any = None,
                 credentials: Any = None, cache_dir: Path | None = None, log: Any = print) -> list[str]:
    """Copy `repo` at `revision` into gs://bucket/prefix/; return the object names written (skipped ones
    excluded)."""
    return stage_to(repo, revision, GcsDestination(bucket, http, credentials), prefix, kind, cache_dir, log)


def _where(bucket: str | None, to: str | None, prefix: str | None, default: str) -> tuple[str, str, str]:
    """(scheme, bucket, prefix) from --to s3://|gs://bucket[/prefix], or --bucket [gs://]name and --prefix."""
    from components.weights import parse

    if to is not None:
        if bucket is not None or prefix is not None:
            raise ValueError("--to names the bucket and the prefix: give it without --bucket and --prefix")
        location = parse(to)
        if location.scheme not in ("s3", "gs"):
            raise ValueError(f"--to {to!r}: s3://bucket/prefix or gs://bucket/prefix")
        return location.scheme, location.bucket, location.prefix or default
    if bucket is None:
        raise ValueError("give --bucket (the artifacts bucket, or gs://name) or --to gs://bucket/prefix")
    scheme, name = ("gs", bucket.removeprefix("gs://").rstrip("/")) if bucket.startswith("gs://") else (
        "s3", bucket.removeprefix("s3://").rstrip("/"))
    return scheme, name, prefix or default


def stage(
    repo: Annotated[str, typer.Option(help="Hugging Face repository id, e.g. mistralai/Mistral-7B-Instruct-v0.3.")],
    revision: Annotated[str, typer.Option(help="The pinned commit (40 hex characters).")],
    bucket: Annotated[str | None, typer.Option(
        help="The artifacts bucket (stack output artifactBucket), or gs://name for a Cloud Storage bucket.")] = None,
    prefix: Annotated[str | None, typer.Option(
        help="Key prefix (default models/<repo>/<revision>, adapters/<repo>/<revision> with --adapter).")] = None,
    to: Annotated[str | None, typer.Option(
        help="Where to copy, bucket and prefix in one: gs://bucket/prefix (a models[].source or adapters[].source "
             "of Vertex and gcp-pool targets) or s3://bucket/prefix; instead of --bucket and --prefix.")] = None,
    adapter: Annotated[bool, typer.Option(
        help="The repository is a LoRA adapter: copy adapter_config.json and adapter_model.safetensors (PEFT), "
             "and *.gguf files (llama.cpp).")] = False,
    kms_key_id: Annotated[str | None, typer.Option(
        help="KMS key for the objects (stack output kmsKeyArn); S3 only.")] = None,
) -> None:
    """Copy a model's (or with --adapter, a LoRA adapter's) pinned revision from the Hub into a bucket (the token,
    for gated models, from HF_TOKEN; Cloud Storage with the application-default credentials). Run by `pulumi up`
    for `source: s3` models; also by hand."""
    if len(revision) != 40 or any(c not in "0123456789abcdef" for c in revision):
        typer.echo(f"error: --revision {revision!r}: a 40-character commit id, so the bucket holds exactly it",
                   err=True)
        raise typer.Exit(1)
    kind: Kind = "adapter" if adapter else "model"
    try:
        scheme, name, key_prefix = _where(bucket, to, prefix, f"{kind}s/{repo}/{revision}")
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if scheme == "gs" and kms_key_id:
        typer.echo("error: --kms-key-id is for S3; a Cloud Storage bucket encrypts with its own default key",
                   err=True)
        raise typer.Exit(1)
    log = lambda line: typer.echo(line, err=True)  # noqa: E731
    try:
        if scheme == "gs":
            written = stage_to_gcs(repo, revision, name, key_prefix, kind, log=log)
        else:
            written = stage_model(repo, revision, name, key_prefix, kms_key_id, log=log, kind=kind)
    except Exception as exc:  # noqa: BLE001 - one line for the user, whatever failed (Hub, bucket, disk)
        typer.echo(f"error: staging {repo}@{revision[:12]} into {scheme}://{name}: {type(exc).__name__}: {exc}",
                   err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{repo}@{revision[:12]}: {len(written)} files uploaded to {scheme}://{name}/{key_prefix}", err=True)
    sys.stdout.flush()
