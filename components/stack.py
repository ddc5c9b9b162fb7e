"""Declares one environment from its validated config: the wiring between components, nothing else."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from .aws.kms import EncryptionKey, EncryptionKeyArgs
from .aws.network import Network, NetworkArgs
from .aws.sagemaker import SageMakerEndpoint, SageMakerEndpointArgs
from .aws.secrets import HfTokenSecret, HfTokenSecretArgs
from .aws.storage import ArtifactStore, ArtifactStoreArgs
from .catalog.images import sagemaker_image
from .catalog.sagemaker_instances import instances_in
from .config import Environment


def declare_environment(env: Environment, hf_token: pulumi.Output[str] | None) -> dict[str, object]:
    """Declare every resource of `env` and return the stack outputs."""
    outputs: dict[str, object] = {"environment": env.name}
    sagemaker_targets = [t for t in env.targets if t.kind == "sagemaker"]
    if sagemaker_targets:
        outputs.update(_declare_aws(env, sagemaker_targets, hf_token))
    return outputs


def _declare_aws(env: Environment, targets: list, hf_token: pulumi.Output[str] | None) -> dict[str, object]:
    region = env.aws_region
    assert region is not None  # validated: SageMaker targets require aws:region
    tags = env.all_tags
    account_id = aws.get_caller_identity().account_id
    zones = env.network.availability_zones or aws.get_availability_zones(state="available").names[: env.network.az_count]

    key = EncryptionKey(env.name, EncryptionKeyArgs(account_id=account_id, region=region, tags=tags))
    network = Network(env.name, NetworkArgs(
        region=region, cidr=env.network.cidr, availability_zones=list(zones), nat=env.network.nat,
        flow_log_retention_days=env.network.flow_log_retention_days, kms_key_arn=key.arn, tags=tags,
    ))
    store = ArtifactStore(f"{env.name}-artifacts", ArtifactStoreArgs(kms_key_arn=key.arn, tags=tags))
    secret = (HfTokenSecret(f"{env.name}-hf-token", HfTokenSecretArgs(token=hf_token, kms_key_arn=key.arn, tags=tags))
              if hf_token is not None else None)

    endpoints = {}
    for target in targets:
        model = env.model(target.model)
        instance = instances_in(region)[target.instance_type]
        endpoint = SageMakerEndpoint(f"{env.name}-{target.name}", SageMakerEndpointArgs(
            endpoint_name=f"{env.name}-{target.name}", region=region, account_id=account_id,
            model=model, facts=model.resolved_facts(), target=target, instance=instance,
            image_uri=sagemaker_image(model.engine, region),
            vpc_id=network.vpc_id, vpc_cidr=env.network.cidr, subnet_ids=network.subnet_ids,
            s3_prefix_list_id=network.s3_endpoint.prefix_list_id,
            bucket_name=store.bucket_name, bucket_arn=store.bucket_arn, kms_key_arn=key.arn,
            hf_token=hf_token, hf_token_secret_arn=secret.arn if secret else None, tags=tags,
        ))
        endpoints[target.name] = {
            "endpointName": endpoint.endpoint_name,
            "endpointArn": endpoint.endpoint_arn,
            "invokeUrl": endpoint.invoke_url,
            "roleArn": endpoint.role.arn,
            "image": endpoint.image_uri,
            "instanceType": target.instance_type,
            "startupTimeoutSeconds": endpoint.startup_timeout_seconds,
        }
    out: dict[str, object] = {
        "awsRegion": region,
        "vpcId": network.vpc_id,
        "privateSubnetIds": network.subnet_ids,
        "artifactBucket": store.bucket_name,
        "kmsKeyArn": key.arn,
        "sagemakerEndpoints": endpoints,
    }
    if secret:
        out["hfTokenSecretArn"] = secret.arn
    return out
