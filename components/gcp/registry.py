from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_docker_build as docker_build
import pulumi_gcp as gcp

from ..serving_image import CONTAINERS, ImageSpec, content_tag


@dataclass(frozen=True)
class ArtifactRegistryServingImageArgs:
    project: str
    region: str
    spec: ImageSpec
    reader: pulumi.Input[str]
    """The IAM member allowed to pull (the serving service account); granted on this repository only."""
    labels: dict[str, str]
    kms_key_id: pulumi.Input[str]
    """The environment's Cloud KMS key: the repository's images are encrypted with it."""
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class ArtifactRegistryServingImage(pulumi.ComponentResource):
    """Our serving image built from containers/ and pushed to a regional Artifact Registry repository with
    immutable tags (scanned by Artifact Analysis when its API is on). Deployments use it by digest."""

    def __init__(self, name: str, args: ArtifactRegistryServingImageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:gcp:ArtifactRegistryServingImage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.repository = gcp.artifactregistry.Repository(
            f"{name}-repo", project=args.project, location=args.region, repository_id=f"{name}-images",
            format="DOCKER", description="selfhost-llm serving images", kms_key_name=args.kms_key_id,
            docker_config=gcp.artifactregistry.RepositoryDockerConfigArgs(immutable_tags=True),
            labels=args.labels, opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
        )
        gcp.artifactregistry.RepositoryIamMember(
            f"{name}-reader", project=args.project, location=args.region, repository=self.repository.name,
            role="roles/artifactregistry.reader", member=args.reader, opts=child,
        )
        host = f"{args.region}-docker.pkg.dev"
        path = pulumi.Output.format("{0}/{1}/{2}/{3}", host, args.project, self.repository.repository_id,
                                    args.spec.name)
        client = gcp.organizations.get_client_config_output()
        self.image = docker_build.Image(
            f"{name}-image",
            context=docker_build.BuildContextArgs(location=str(CONTAINERS)),
            dockerfile=docker_build.DockerfileArgs(location=str(CONTAINERS / args.spec.dockerfile)),
            platforms=[docker_build.Platform.LINUX_AMD64],
            push=True,
            tags=[pulumi.Output.format("{0}:{1}", path, content_tag())],
            # The deployer's own credentials, as `gcloud auth configure-docker` would use them.
            registries=[docker_build.RegistryArgs(address=host, username="oauth2accesstoken",
                                                  password=pulumi.Output.secret(client.access_token))],
            opts=child,
        )
        self.image_ref = pulumi.Output.format("{0}@{1}", path, self.image.digest)
        self.register_outputs({"imageRef": self.image_ref})
