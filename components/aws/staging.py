"""The declared job that copies a `source: s3` model's pinned revision from the Hub into the artifacts bucket."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_command as command

from ..schema import ModelSpec
from .foundation import AwsFoundation
from .storage import MODELS_PREFIX

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ModelStagingArgs:
    foundation: AwsFoundation
    model: ModelSpec
    hf_token: pulumi.Output[str] | None
    """For gated models: in the job's environment only (a secret in state), never in the serving model."""


def python() -> str:
    """The project's interpreter, relative to the project when it lives there (so plans do not name a machine's
    paths)."""
    here = Path(sys.executable)
    return str(here.relative_to(ROOT)) if here.is_relative_to(ROOT) else str(here)


class ModelStaging(pulumi.ComponentResource):
    """`selfhost stage` run by `pulumi up` on the deploying machine, once the bucket exists and before the model
    that reads it: the weights, configs and tokenizer of the pinned commit into models/<id>/<revision>/, encrypted
    with the environment key. It runs again only when the model, its revision or the bucket change; removing it
    leaves the weights in place (old versions expire with the bucket's lifecycle)."""

    def __init__(self, name: str, args: ModelStagingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:aws:ModelStaging", name, None, opts)
        m, base = args.model, args.foundation
        prefix = f"{MODELS_PREFIX}/{m.id}/{m.revision}"
        run = pulumi.Output.all(base.bucket_name, base.kms_key_arn).apply(lambda v: " ".join(shlex.quote(a) for a in [
            python(), "-m", "selfhost.cli", "stage", "--repo", m.id, "--revision", m.revision, "--bucket", v[0],
            "--prefix", prefix, "--kms-key-id", v[1]]))
        environment: dict[str, pulumi.Input[str]] = {"HF_HUB_DISABLE_TELEMETRY": "1"}
        if args.hf_token is not None:
            environment["HF_TOKEN"] = pulumi.Output.secret(args.hf_token)
        self.job = command.local.Command(
            f"{name}-copy", create=run, update=run, dir=str(ROOT), environment=environment,
            triggers=[m.id, m.revision, base.bucket_name], opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"prefix": prefix})
