from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp


@dataclass(frozen=True)
class ProjectApisArgs:
    project: str
    services: tuple[str, ...]
    """Service names, e.g. aiplatform.googleapis.com."""


class ProjectApis(pulumi.ComponentResource):
    """The Google APIs an environment uses, enabled by the stack so a fresh project deploys in one `pulumi up`.

    APIs stay enabled on destroy: other workloads in the project may rely on them.
    """

    def __init__(self, name: str, args: ProjectApisArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:gcp:ProjectApis", name, None, opts)
        self.services: dict[str, gcp.projects.Service] = {
            service: gcp.projects.Service(
                f"{name}-{service.split('.')[0]}", project=args.project, service=service,
                disable_on_destroy=False, disable_dependent_services=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for service in args.services
        }
        self.register_outputs({"services": list(args.services)})

    def needs(self, *services: str) -> list[pulumi.Resource]:
        """The enablement resources to depend on before using `services`."""
        return [self.services[s] for s in services]
