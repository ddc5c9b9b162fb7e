from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class HfTokenSecretArgs:
    token: pulumi.Output[str]
    """A Pulumi secret (from `pulumi config set --secret hfToken`); it stays secret in state and outputs."""
    kms_key_arn: pulumi.Input[str]
    tags: dict[str, str]
    recovery_window_days: int = 7


class HfTokenSecret(pulumi.ComponentResource):
    """The Hugging Face token in Secrets Manager, encrypted with the environment key."""

    def __init__(self, name: str, args: HfTokenSecretArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:aws:HfTokenSecret", name, None, opts)
        self.secret = aws.secretsmanager.Secret(
            f"{name}-secret", description="Hugging Face access token for gated model downloads",
            kms_key_id=args.kms_key_arn, recovery_window_in_days=args.recovery_window_days, tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Annotated: from the argument's type alone, mypy cannot tell which part of Input[U] an Output[str] is.
        token: pulumi.Output[str] = pulumi.Output.secret(args.token)
        aws.secretsmanager.SecretVersion(
            f"{name}-version", secret_id=self.secret.id, secret_string=token,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.arn = self.secret.arn
        self.register_outputs({"arn": self.arn})
