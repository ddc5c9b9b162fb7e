"""Declares one environment from its validated config: the wiring between components, nothing else."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp

from .aws.kms import EncryptionKey, EncryptionKeyArgs
from .aws.network import Network, NetworkArgs
from .aws.registry import EcrServingImage, EcrServingImageArgs
from .aws.sagemaker import OwnImage, SageMakerEndpoint, SageMakerEndpointArgs
from .aws.secrets import HfTokenSecret, HfTokenSecretArgs
from .aws.storage import ArtifactStore, ArtifactStoreArgs
from .catalog.images import sagemaker_image
from .catalog.sagemaker_instances import instances_in
from .config import Environment
from .gcp.apis import ProjectApis, ProjectApisArgs
from .gcp.iam import ServingIdentity, ServingIdentityArgs
from .gcp.network import GcpNetwork, GcpNetworkArgs
from .gcp.registry import ArtifactRegistryServingImage, ArtifactRegistryServingImageArgs
from .gcp.secrets import GcpHfTokenSecret, GcpHfTokenSecretArgs
from .gcp.vertex import VertexEndpoint, VertexEndpointArgs
from .serving_image import IMAGES

# APIs a Vertex AI environment calls, enabled by the stack itself.
GCP_APIS = ("compute.googleapis.com", "iam.googleapis.com", "aiplatform.googleapis.com",
            "secretmanager.googleapis.com", "artifactregistry.googleapis.com", "monitoring.googleapis.com",
            "logging.googleapis.com", "dns.googleapis.com", "networkconnectivity.googleapis.com")


def regions(env: Environment) -> dict[str, str]:
    """Cloud -> region of the environment, as the cost engine keys prices."""
    return {k: v for k, v in (("aws", env.aws_region), ("gcp", env.gcp_region)) if v}


def cost_inputs(env: Environment) -> dict[str, object]:
    """What the cost engine needs beside the resources: the usage profile and the budget (a stack output, so
    `selfhost cost` reads them from the previewed graph like everything else)."""
    u = env.usage
    return {
        "usage": {"hoursPerDay": u.hours_per_day, "requestsPerDay": u.requests_per_day,
                  "inputTokensPerRequest": u.input_tokens_per_request,
                  "outputTokensPerRequest": u.output_tokens_per_request, "compareWith": list(u.compare_with)},
        "budgetMonthlyUsd": env.budget.monthly_usd,
    }


def declare_environment(env: Environment, hf_token: pulumi.Output[str] | None) -> dict[str, object]:
    """Declare every resource of `env` and return the stack outputs."""
    outputs: dict[str, object] = {"environment": env.name}
    sagemaker_targets = [t for t in env.targets if t.kind == "sagemaker"]
    if sagemaker_targets:
        outputs.update(_declare_aws(env, sagemaker_targets, hf_token))
    vertex_targets = [t for t in env.targets if t.kind == "vertex"]
    if vertex_targets:
        outputs.update(_declare_gcp(env, vertex_targets, hf_token))
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
    own = None
    if any(t.image == "selfhost" for t in targets):
        spec = IMAGES["vllm"]
        built = EcrServingImage(f"{env.name}-serving-image", EcrServingImageArgs(spec=spec, kms_key_arn=key.arn,
                                                                                tags=tags))
        own = OwnImage(built.image_ref, built.repository_arn, spec)

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
            own_image=own if target.image == "selfhost" else None,
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


def gcp_labels(env: Environment) -> dict[str, str]:
    """GCP labels: the environment tags, in the characters labels allow (lowercase, digits, '-', '_')."""
    clean = lambda text: "".join(c if c.isalnum() or c in "-_" else "-" for c in text.lower())[:63]  # noqa: E731
    return {clean(k): clean(v) for k, v in env.all_tags.items()}


def _declare_gcp(env: Environment, targets: list, hf_token: pulumi.Output[str] | None) -> dict[str, object]:
    project, region = env.gcp_project, env.gcp_region
    assert project is not None and region is not None  # validated: Vertex targets require both
    labels = gcp_labels(env)
    project_number = gcp.organizations.get_project(project_id=project).number

    logging = any(t.request_logging.enabled for t in targets)
    apis = ProjectApis(f"{env.name}-apis", ProjectApisArgs(
        project=project, services=GCP_APIS + (("bigquery.googleapis.com",) if logging else ())))
    network = GcpNetwork(env.name, GcpNetworkArgs(
        project=project, region=region, cidr=env.network.cidr,
        nat="none" if env.network.nat == "none" else "single", labels=labels,
        depends_on=apis.needs("compute.googleapis.com"),
    ))
    identity = ServingIdentity(f"{env.name}-serving", ServingIdentityArgs(
        project=project, account_id=f"{env.name}-serving"[:30], depends_on=apis.needs("iam.googleapis.com")))
    secret = (GcpHfTokenSecret(f"{env.name}-hf-token", GcpHfTokenSecretArgs(
        project=project, region=region, secret_id=f"{env.name}-hf-token", token=hf_token, reader=identity.member,
        labels=labels, depends_on=apis.needs("secretmanager.googleapis.com"),
    )) if hf_token is not None else None)
    own_image = None
    if any(t.image == "selfhost" for t in targets):
        own_image = ArtifactRegistryServingImage(f"{env.name}-serving", ArtifactRegistryServingImageArgs(
            project=project, region=region, spec=IMAGES["vllm"], reader=identity.member, labels=labels,
            depends_on=apis.needs("artifactregistry.googleapis.com"),
        )).image_ref

    endpoints = {}
    for target in targets:
        model = env.model(target.model)
        endpoint = VertexEndpoint(f"{env.name}-{target.name}", VertexEndpointArgs(
            project=project, project_number=project_number, region=region,
            endpoint_name=f"{env.name}-{target.name}", model=model, facts=model.resolved_facts(), target=target,
            network_id=network.network_id, subnet_id=network.subnet_id, hf_token=hf_token, labels=labels,
            own_image=own_image if target.image == "selfhost" else None,
            depends_on=apis.needs("aiplatform.googleapis.com", "monitoring.googleapis.com", "dns.googleapis.com",
                                  "networkconnectivity.googleapis.com",
                                  *(("bigquery.googleapis.com",) if target.request_logging.enabled else ())),
        ))
        endpoints[target.name] = {
            "endpointId": endpoint.endpoint_id,
            "resourceName": endpoint.resource_name,
            "predictUrl": endpoint.predict_url,
            "openaiBaseUrl": endpoint.openai_base_url,
            "machineType": target.machine_type,
            "accelerator": f"{target.accelerator_count} x {target.accelerator_type}",
            "startupTimeoutSeconds": endpoint.startup_timeout_seconds,
            "image": endpoint.image,
            **({"privateIp": endpoint.private_ip} if endpoint.private_ip is not None else {}),
            **({"requestLogDataset": endpoint.request_log_dataset.id} if endpoint.request_log_dataset else {}),
        }
    out: dict[str, object] = {
        "gcpProject": project,
        "gcpRegion": region,
        "gcpNetwork": network.network_id,
        "servingServiceAccount": identity.email,
        "vertexEndpoints": endpoints,
    }
    if secret:
        out["gcpHfTokenSecret"] = secret.secret_id
    return out
