"""The stack's container registry on Azure (the workspace's, and where our serving image is pushed)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure
import pulumi_command as command
import pulumi_docker_build as docker_build

from ..serving_image import CONTAINERS, ImageSpec, content_tag
from .keyvault import KeyVault
from .network import Network

# ACR's token exchange takes this user name with a Microsoft Entra access token (`az acr login --expose-token`,
# Azure Container Registry docs, "Authenticate with an Azure container registry", individual login).
TOKEN_USER = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class RegistryArgs:
    registry_name: str
    """Globally unique, 5-50 letters and digits."""
    resource_group_name: pulumi.Input[str]
    location: str
    network: Network
    vault: KeyVault
    tags: dict[str, str]
    deployer_cidrs: tuple[str, ...]
    """Public ranges `pulumi up` pushes from; empty: no public network access at all."""
    image: ImageSpec | None
    """Our serving image, built from containers/ and pushed here; None: no image of ours."""


class ContainerRegistry(pulumi.ComponentResource):
    """A Premium registry (private endpoint and customer-managed key need Premium), zone-redundant, with no admin
    user, no anonymous pull and no public network access but the deployers' ranges, encrypted with the stack's key;
    and, when asked, our serving image built and pushed by `pulumi up` with the deployer's own Entra token."""

    def __init__(self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:azure:ContainerRegistry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        vault = args.vault
        public = bool(args.deployer_cidrs)
        self.registry = azure.containerregistry.Registry(
            f"{name}-registry", registry_name=args.registry_name, resource_group_name=args.resource_group_name,
            location=args.location, sku={"name": "Premium"}, admin_user_enabled=False, anonymous_pull_enabled=False,
            zone_redundancy="Enabled",
            # Layers come from a regional data endpoint (reached through the same private endpoint), not a shared one.
            data_endpoint_enabled=True,
            public_network_access="Enabled" if public else "Disabled",
            network_rule_set={"default_action": "Deny",
                              "ip_rules": [{"i_p_address_or_range": c, "action": "Allow"}
                                           for c in args.deployer_cidrs]},
            # Azure ML's image builds and the platform's own pulls are trusted services.
            network_rule_bypass_options="AzureServices",
            identity=azure.containerregistry.IdentityPropertiesArgs(
                type=azure.containerregistry.ResourceIdentityType.USER_ASSIGNED,
                user_assigned_identities=vault.encryption_identity.id.apply(
                    lambda i: {i: azure.containerregistry.UserIdentityPropertiesArgs()})),
            encryption={"status": "enabled", "key_vault_properties": {
                "key_identifier": vault.key.key_uri, "identity": vault.encryption_identity.client_id}},
            # No export of images: ACR allows turning it off only without public network access.
            policies={"export_policy": {"status": "enabled" if public else "disabled"},
                      "retention_policy": {"status": "enabled", "days": 30}},
            tags=args.tags, opts=pulumi.ResourceOptions(parent=self, depends_on=[vault.key_grant]))
        args.network.private_endpoint(f"{name}-registry", self.registry.id, "registry", self)
        self.image_ref: pulumi.Output[str] | None = None
        if args.image is not None:
            login = command.local.Command(
                f"{name}-login", create=pulumi.Output.format(
                    "az acr login --name {0} --expose-token --output tsv --query accessToken",
                    self.registry.name),
                # The token lives an hour: fetch it again on every `pulumi up`.
                triggers=[content_tag()], opts=pulumi.ResourceOptions(
                    parent=self, additional_secret_outputs=["stdout"], depends_on=[self.registry]))
            host = self.registry.login_server
            path = pulumi.Output.format("{0}/{1}", host, args.image.name)
            self.image = docker_build.Image(
                f"{name}-image",
                context=docker_build.BuildContextArgs(location=str(CONTAINERS)),
                dockerfile=docker_build.DockerfileArgs(location=str(CONTAINERS / args.image.dockerfile)),
                platforms=[docker_build.Platform.LINUX_AMD64], push=True,
                tags=[pulumi.Output.format("{0}:{1}", path, content_tag())],
                registries=[docker_build.RegistryArgs(address=host, username=TOKEN_USER,
                                                      password=pulumi.Output.secret(login.stdout))],
                opts=child)
            self.image_ref = pulumi.Output.format("{0}@{1}", path, self.image.digest)
        self.register_outputs({"registryId": self.registry.id, "imageRef": self.image_ref})
