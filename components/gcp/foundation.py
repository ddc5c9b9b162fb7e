"""The Google Cloud foundation every target on Google Cloud stands on, declared once per stack: the project's
APIs, the network, the serving identity, the Hugging Face token secret and, when a target serves our image, its
Artifact Registry repository. Targets receive it whole (`GcpFoundation`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from ..catalog.gcp_machines import PROXY_SUBNET_CIDR
from ..catalog.models import as_label
from ..schema import NetworkConfig
from ..serving_image import IMAGES
from .apis import ProjectApis, ProjectApisArgs
from .iam import ServingIdentity, ServingIdentityArgs
from .kms import EncryptionKey, EncryptionKeyArgs
from .network import Network, NetworkArgs
from .registry import ArtifactRegistryServingImage, ArtifactRegistryServingImageArgs
from .secrets import HfTokenSecret, HfTokenSecretArgs

# APIs every Google Cloud environment calls, enabled by the stack itself; targets may need more.
APIS = ("compute.googleapis.com", "iam.googleapis.com", "aiplatform.googleapis.com",
        "secretmanager.googleapis.com", "artifactregistry.googleapis.com", "monitoring.googleapis.com",
        "logging.googleapis.com", "dns.googleapis.com", "networkconnectivity.googleapis.com",
        "cloudkms.googleapis.com")


@dataclass(frozen=True)
class GcpFoundation:
    project: str
    project_number: pulumi.Input[str]
    region: str
    labels: dict[str, str]
    apis: ProjectApis
    """`apis.needs(...)`: what a resource must wait for."""
    network_id: pulumi.Input[str]
    subnet_id: pulumi.Input[str]
    service_account_email: pulumi.Input[str]
    kms_key_id: pulumi.Input[str]
    """The environment's Cloud KMS key: BigQuery datasets, the token secret and the image repository use it."""
    own_image: pulumi.Output[str] | None = None
    """Our serving image by digest, when a target asked for it."""
    hf_token_secret_id: pulumi.Input[str] | None = None
    """The Secret Manager secret holding the Hugging Face token (the serving account may read it)."""
    proxy_subnet: gcp.compute.Subnetwork | None = None
    """The region's proxy-only subnet, when a target puts an internal Application Load Balancer in front."""
    kms_grants: list[pulumi.Resource] = field(default_factory=list)
    """What a resource encrypted with the key waits for: the service agents' grants on it."""


def labels_of(tags: dict[str, str]) -> dict[str, str]:
    """GCP labels from tags, in the characters labels allow (lowercase, digits, '-', '_')."""
    return {as_label(k): as_label(v) for k, v in tags.items()}


def declare_foundation(name: str, project: str, region: str, network: NetworkConfig, tags: dict[str, str],
                       hf_token: pulumi.Output[str] | None, own_image: bool,
                       extra_apis: Iterable[str] = (), proxy_subnet: bool = False
                       ) -> tuple[GcpFoundation, dict[str, object]]:
    """Declare the foundation; return it and its stack outputs."""
    labels = labels_of(tags)
    project_number = gcp.organizations.get_project(project_id=project).number
    apis = ProjectApis(f"{name}-apis", ProjectApisArgs(project=project, services=APIS + tuple(extra_apis)))
    net = Network(name, NetworkArgs(
        project=project, region=region, cidr=network.cidr,
        nat="none" if network.nat == "none" else "single", labels=labels,
        depends_on=apis.needs("compute.googleapis.com"),
    ))
    key = EncryptionKey(f"{name}-cmek", EncryptionKeyArgs(project=project, region=region, labels=labels,
                                                          depends_on=apis.needs("cloudkms.googleapis.com")))
    identity = ServingIdentity(f"{name}-serving", ServingIdentityArgs(
        project=project, account_id=f"{name}-serving"[:30], depends_on=apis.needs("iam.googleapis.com")))
    secret = (HfTokenSecret(f"{name}-hf-token", HfTokenSecretArgs(
        project=project, region=region, secret_id=f"{name}-hf-token", token=hf_token, reader=identity.member,
        labels=labels, kms_key_id=key.key_id, depends_on=[*apis.needs("secretmanager.googleapis.com"), *key.grants],
    )) if hf_token is not None else None)
    image = None
    if own_image:
        image = ArtifactRegistryServingImage(f"{name}-serving", ArtifactRegistryServingImageArgs(
            project=project, region=region, spec=IMAGES["vllm"], reader=identity.member, labels=labels,
            kms_key_id=key.key_id, depends_on=[*apis.needs("artifactregistry.googleapis.com"), *key.grants],
        )).image_ref
    proxy = gcp.compute.Subnetwork(
        f"{name}-proxy-only", project=project, region=region, network=net.network_id, ip_cidr_range=PROXY_SUBNET_CIDR,
        purpose="REGIONAL_MANAGED_PROXY", role="ACTIVE", opts=pulumi.ResourceOptions(parent=net),
    ) if proxy_subnet else None
    foundation = GcpFoundation(project=project, project_number=project_number, region=region, labels=labels,
                               apis=apis, network_id=net.network_id, subnet_id=net.subnet_id,
                               service_account_email=identity.email, own_image=image,
                               hf_token_secret_id=secret.secret_id if secret else None, proxy_subnet=proxy,
                               kms_key_id=key.key_id, kms_grants=key.grants)
    outputs: dict[str, object] = {"gcpRegion": region, "gcpProject": project, "gcpNetwork": net.network_id,
                                  "servingServiceAccount": identity.email, "kmsKeyId": key.key_id}
    if secret:
        outputs["gcpHfTokenSecret"] = secret.secret_id
    return foundation, outputs
