from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class EncryptionKeyArgs:
    account_id: str
    region: str
    tags: dict[str, str]
    deletion_window_days: int = 30
    """Days a scheduled key deletion can still be cancelled (7-30)."""


class EncryptionKey(pulumi.ComponentResource):
    """The environment's customer-managed KMS key: artifacts, data capture, secrets and log groups use it.

    Protected: deleting it makes everything it encrypted unreadable.
    """

    def __init__(self, name: str, args: EncryptionKeyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:aws:EncryptionKey", name, None, opts)
        account_root = f"arn:aws:iam::{args.account_id}:root"
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {   # The account administers the key through IAM, as with AWS's default key policy.
                    "Sid": "AccountAdministersThroughIam",
                    "Effect": "Allow",
                    "Principal": {"AWS": account_root},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {   # CloudWatch Logs encrypts log groups only when the key policy names it.
                    "Sid": "CloudWatchLogsInThisAccount",
                    "Effect": "Allow",
                    "Principal": {"Service": f"logs.{args.region}.amazonaws.com"},
                    "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                               "kms:Describe*"],
                    "Resource": "*",
                    "Condition": {"ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn":
                            f"arn:aws:logs:{args.region}:{args.account_id}:log-group:*"
                    }},
                },
            ],
        }
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"{name}: model artifacts, data capture, secrets and logs",
            enable_key_rotation=True,
            deletion_window_in_days=args.deletion_window_days,
            policy=pulumi.Output.json_dumps(policy),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.alias = aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/{name}",
            target_key_id=self.key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.arn = self.key.arn
        self.register_outputs({"arn": self.arn, "alias": self.alias.name})
