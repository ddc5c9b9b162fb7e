"""The declared job that copies a pinned Hub revision into the artifacts bucket: a `source: s3` model's, or a Hub
LoRA adapter's that a SageMaker endpoint mounts from there (SageMaker mounts S3, never the Hub)."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_command as command

from .foundation import AwsFoundation
from .storage import MODELS_PREFIX

ROOT = Path(__file__).resolve().parents[2]


def staged_prefix(repo: str, revision: str) -> str:
    """Where a repository's pinned revision is staged in the artifacts bucket: models/<owner>/<name>/<revision>
    (an adapter's repository too: one layout, one `selfhost stage`)."""
    return f"{MODELS_PREFIX}/{repo}/{revision}"


@dataclass(frozen=True)
class ModelStagingArgs:
    foundation: AwsFoundation
    repo: str
    """The Hugging Face repository: a model's, or a LoRA adapter's."""
    revision: str
    """The pinned commit."""
    hf_token: pulumi.Output[str] | None
    """For gated repositories: in the job's environment only (a secret in state), never in the serving model."""


def python() -> str:
    """The project's interpreter, relative to the project when it lives there (so plans do not name a machine's
    paths)."""
    here = Path(sys.executable)
    return str(here.relative_to(ROOT)) if here.is_relative_to(ROOT) else str(here)


class ModelStaging(pulumi.ComponentResource):
    """`selfhost stage` run by `pulumi up` on the deploying machine, once the bucket exists and before the model
    that reads it: the weights, configs and tokenizer (or a LoRA adapter's files) of the pinned commit into
    models/<repo>/<revision>/, encrypted with the environment key. It runs again only when the repository, its
    revision or the bucket change; removing it leaves the weights in place (old versions expire with the bucket's
    lifecycle)."""

    def __init__(self, name: str, args: ModelStagingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:aws:ModelStaging", name, None, opts)
        repo, revision, base = args.repo, args.revision, args.foundation
        prefix = staged_prefix(repo, revision)
        run = pulumi.Output.all(base.bucket_name, base.kms_key_arn).apply(lambda v: " ".join(shlex.quote(a) for a in [
            python(), "-m", "selfhost.cli", "stage", "--repo", repo, "--revision", revision, "--bucket", v[0],
            "--prefix", prefix, "--kms-key-id", v[1]]))
        environment: dict[str, pulumi.Input[str]] = {"HF_HUB_DISABLE_TELEMETRY": "1"}
        if args.hf_token is not None:
            environment["HF_TOKEN"] = pulumi.Output.secret(args.hf_token)
        self.job = command.local.Command(
            f"{name}-copy", create=run, update=run, dir=str(ROOT), environment=environment,
            triggers=[repo, revision, base.bucket_name], opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"prefix": prefix})
