"""`selfhost stage`: copy a model's pinned revision from the Hugging Face Hub into the artifacts bucket, so that
serving needs neither the token nor the internet (SageMaker then runs the model with network isolation).

The stacks run it as a declared job at `pulumi up` (components/aws/staging.py: after the bucket exists, before the
model that reads it), on the deploying machine, with the token from the stack's secret config in the job's
environment only. It downloads with the Hub's own client (resumable, cached, pinned to the commit) and uploads
with boto3's managed transfer, encrypted with the environment's KMS key. Files already in the bucket with the
same size are skipped, so a re-run after an interruption copies only what is missing.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

# What vLLM, TGI and LMI load from a model folder: weights, configs and tokenizer files (no .bin/.pt duplicates,
# no original/ consolidated checkpoints).
PATTERNS = ["*.safetensors", "*.safetensors.index.json", "*.json", "tokenizer*", "*.model", "*.tiktoken", "*.txt",
            "*.jinja"]
IGNORE = ["original/*", "*.bin", "*.pt", "*.pth", "*.gguf", "*.onnx", "*.msgpack", "*.h5"]


def stage_model(repo: str, revision: str, bucket: str, prefix: str, kms_key_id: str | None,
                s3: Any = None, cache_dir: Path | None = None, log: Any = print) -> list[str]:
    """Copy `repo` at `revision` into s3://bucket/prefix/; return the keys written (skipped ones excluded)."""
    import boto3
    from huggingface_hub import snapshot_download

    s3 = s3 or boto3.client("s3")
    with tempfile.TemporaryDirectory(prefix="selfhost-stage-") as tmp:
        local = Path(snapshot_download(repo_id=repo, revision=revision, allow_patterns=PATTERNS,
                                       ignore_patterns=IGNORE, cache_dir=str(cache_dir) if cache_dir else None,
                                       local_dir=tmp, token=os.environ.get("HF_TOKEN") or None,
                                       # A mirror (HF_ENDPOINT), read now: the client reads it once, at import.
                                       endpoint=os.environ.get("HF_ENDPOINT") or None))
        present = _sizes(s3, bucket, prefix)
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id} if kms_key_id else {}
        written = []
        for path in sorted(p for p in local.rglob("*") if p.is_file() and ".cache" not in p.parts):
            key = f"{prefix.rstrip('/')}/{path.relative_to(local).as_posix()}"
            if present.get(key) == path.stat().st_size:
                continue
            s3.upload_file(str(path), bucket, key, ExtraArgs=extra)
            written.append(key)
            log(f"uploaded s3://{bucket}/{key} ({path.stat().st_size:,} bytes)")
        if not any(k.endswith(".safetensors") for k in [*present, *written]):
            raise RuntimeError(f"{repo}@{revision} has no safetensors weights to stage")
        return written


def _sizes(s3: Any, bucket: str, prefix: str) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/"):
        sizes.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    return sizes


def stage(
    repo: Annotated[str, typer.Option(help="Hugging Face repository id, e.g. mistralai/Mistral-7B-Instruct-v0.3.")],
    revision: Annotated[str, typer.Option(help="The pinned commit (40 hex characters).")],
    bucket: Annotated[str, typer.Option(help="The artifacts bucket (stack output artifactBucket).")],
    prefix: Annotated[str | None, typer.Option(help="Key prefix (default models/<repo>/<revision>).")] = None,
    kms_key_id: Annotated[str | None, typer.Option(help="KMS key for the objects (stack output kmsKeyArn).")] = None,
) -> None:
    """Copy a model's pinned revision from the Hub into the artifacts bucket (the token, for gated models, from
    HF_TOKEN). Run by `pulumi up` for `source: s3` models; also by hand."""
    if len(revision) != 40 or any(c not in "0123456789abcdef" for c in revision):
        typer.echo(f"error: --revision {revision!r}: a 40-character commit id, so the bucket holds exactly it",
                   err=True)
        raise typer.Exit(1)
    try:
        written = stage_model(repo, revision, bucket, prefix or f"models/{repo}/{revision}", kms_key_id,
                              log=lambda line: typer.echo(line, err=True))
    except Exception as exc:  # noqa: BLE001 - one line for the user, whatever failed (Hub, S3, disk)
        typer.echo(f"error: staging {repo}@{revision[:12]} into s3://{bucket}: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{repo}@{revision[:12]}: {len(written)} files uploaded to s3://{bucket}", err=True)
    sys.stdout.flush()
