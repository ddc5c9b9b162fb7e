"""The AWS foundation every target on AWS stands on, declared once per stack: the customer-managed key, the
network, the artifacts bucket, the Hugging Face token secret and, when a target serves our image, its ECR
repository. Targets receive it whole (`AwsFoundation`), not as loose ids."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ..schema import NetworkConfig
from ..serving_image import IMAGES
from .kms import EncryptionKey, EncryptionKeyArgs
from .network import Network, NetworkArgs
from .registry import EcrServingImage, EcrServingImageArgs, OwnImage
from .secrets import HfTokenSecret, HfTokenSecretArgs
from .storage import ArtifactStore, ArtifactStoreArgs


@dataclass(frozen=True)
class AwsFoundation:
    region: str
    account_id: str
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    subnet_ids: list[pulumi.Input[str]]
    """The private subnets, one per zone."""
    s3_prefix_list_id: pulumi.Input[str]
    """The S3 gateway endpoint's prefix list, for security group egress."""
    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    log_retention_days: int = 30
    """How long the environment's log groups keep logs."""
    hf_token_secret_arn: pulumi.Input[str] | None = None
    own_image: OwnImage | None = None
    """Our serving image in ECR, when a target asked for it."""
    access_log_bucket: pulumi.Input[str] = ""
    """The access-log bucket's name (SSE-S3); it admits load balancer access logs when a target asked for them."""


def declare_foundation(name: str, region: str, network: NetworkConfig, tags: dict[str, str],
                       hf_token: pulumi.Output[str] | None, log_retention_days: int, own_image: bool,
                       extra_endpoints: tuple[str, ...] = (), lb_access_logs: bool = False
                       ) -> tuple[AwsFoundation, dict[str, object]]:
    """Declare the foundation; return it and its stack outputs."""
    account_id = aws.get_caller_identity().account_id
    zones = network.availability_zones or aws.get_availability_zones(state="available").names[: network.az_count]

    key = EncryptionKey(name, EncryptionKeyArgs(account_id=account_id, region=region, tags=tags))
    net = Network(name, NetworkArgs(
        region=region, cidr=network.cidr, availability_zones=list(zones), nat=network.nat,
        flow_log_retention_days=network.flow_log_retention_days or log_retention_days, kms_key_arn=key.arn, tags=tags,
        extra_endpoints=extra_endpoints,
    ))
    store = ArtifactStore(f"{name}-artifacts", ArtifactStoreArgs(kms_key_arn=key.arn, tags=tags,
                                                                 access_log_days=max(365, log_retention_days),
                                                                 lb_logs_region=region if lb_access_logs else None),
                          account_id=account_id)
    secret = (HfTokenSecret(f"{name}-hf-token", HfTokenSecretArgs(token=hf_token, kms_key_arn=key.arn, tags=tags))
              if hf_token is not None else None)
    own = None
    if own_image:
        spec = IMAGES["vllm"]
        built = EcrServingImage(f"{name}-serving-image", EcrServingImageArgs(spec=spec, kms_key_arn=key.arn,
                                                                            tags=tags))
        own = OwnImage(built.image_ref, built.repository_arn, spec)
    foundation = AwsFoundation(
        region=region, account_id=account_id, vpc_id=net.vpc_id, vpc_cidr=network.cidr, subnet_ids=net.subnet_ids,
        s3_prefix_list_id=net.s3_endpoint.prefix_list_id, bucket_name=store.bucket_name, bucket_arn=store.bucket_arn,
        kms_key_arn=key.arn, log_retention_days=log_retention_days, access_log_bucket=store.access_log_bucket,
        hf_token_secret_arn=secret.arn if secret else None, own_image=own,
    )
    outputs: dict[str, object] = {
        "awsRegion": region, "vpcId": net.vpc_id, "privateSubnetIds": net.subnet_ids,
        "artifactBucket": store.bucket_name, "kmsKeyArn": key.arn,
    }
    if secret:
        outputs["hfTokenSecretArn"] = secret.arn
    return foundation, outputs
