from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

from ..serving_image import CONTAINERS, ImageSpec, content_tag


@dataclass(frozen=True)
class OwnImage:
    """Our image, pushed to ECR, used instead of the engine's managed image."""

    ref: pulumi.Output[str]
    """repository@sha256:... (by digest: what was tested is what runs)."""
    repository_arn: pulumi.Output[str]
    spec: ImageSpec


@dataclass(frozen=True)
class EcrServingImageArgs:
    spec: ImageSpec
    kms_key_arn: pulumi.Input[str]
    tags: dict[str, str]
    keep_images: int = 20
    """Tagged images kept; older ones expire (a rollback rarely goes further back)."""


class EcrServingImage(pulumi.ComponentResource):
    """Our serving image built from containers/ and pushed to a private ECR repository: scanned on push,
    immutable tags, encrypted with the environment key. Endpoints use it by digest."""

    def __init__(self, name: str, args: EcrServingImageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:aws:EcrServingImage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.repository = aws.ecr.Repository(
            f"{name}-repo", image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(
                encryption_type="KMS", kms_key=args.kms_key_arn)],
            tags=args.tags, opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle", repository=self.repository.name,
            policy=json.dumps({"rules": [
                {"rulePriority": 1, "description": "drop untagged layers after a week",
                 "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                               "countNumber": 7}, "action": {"type": "expire"}},
                {"rulePriority": 2, "description": f"keep the last {args.keep_images} images",
                 "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": args.keep_images},
                 "action": {"type": "expire"}},
            ]}),
            opts=child,
        )
        token = aws.ecr.get_authorization_token_output(registry_id=self.repository.registry_id)
        self.image = docker_build.Image(
            f"{name}-image",
            context=docker_build.BuildContextArgs(location=str(CONTAINERS)),
            dockerfile=docker_build.DockerfileArgs(location=str(CONTAINERS / args.spec.dockerfile)),
            # SageMaker runs containers as root (its contract); the Kubernetes path builds the non-root default.
            build_args={"APP_UID": "0"},
            platforms=[docker_build.Platform.LINUX_AMD64],
            push=True,
            tags=[pulumi.Output.format("{0}:{1}", self.repository.repository_url, content_tag())],
            registries=[docker_build.RegistryArgs(address=self.repository.repository_url, username=token.user_name,
                                                  password=pulumi.Output.secret(token.password))],
            opts=child,
        )
        self.repository_arn = self.repository.arn
        self.image_ref = pulumi.Output.format("{0}@{1}", self.repository.repository_url, self.image.digest)
        self.register_outputs({"imageRef": self.image_ref, "repositoryArn": self.repository_arn})
