"""The LiteLLM router on Cloud Run, for Google Cloud stacks without a Kubernetes cluster (issue 26).

Ingress and TLS: the service takes internal traffic only (`INGRESS_TRAFFIC_INTERNAL_ONLY`) and answers on its
run.app URL with Google's certificate. Callers in the stack's VPC reach that URL through Private Google Access,
which the stack's subnet has (components/gcp/network.py): Cloud Run counts requests from VPC networks of the same
project as internal (Cloud Run docs "Restrict network ingress", read 2026-12-07). No internal Application Load
Balancer in front: it would add a proxy-only subnet, a forwarding rule billed by the hour, a certificate the stack's
private CA issues and every caller must trust, and a second timeout to keep above the longest stream, for nothing
the internal run.app URL lacks here. `runtime.certificate` therefore has no place on Google Cloud (the platform's
config check says so, `Gcp.validate`).

Who may invoke: the invoker IAM check is off (`invokerIamDisabled`), not granted to `allUsers`. OpenAI clients send
the router's own keys as bearer tokens, never Google ID tokens, so an IAM check would refuse every caller; the
network (internal ingress) bounds who reaches the service and the router's keys who is served. Disabling the check
keeps `allUsers` out of the service's IAM policy, which an organization's domain-restricted sharing policy
(iam.allowedPolicyMemberDomains) would refuse (Cloud Run docs "Disable the invoker IAM check", read 2026-12-07).
The rule `gcp-run-internal-ingress` refuses the check disabled on any service that is not internal.

Identity: its own service account (not the serving one) with exactly what it uses: `aiplatform.endpoints.predict`
through a custom role bound on each Vertex AI endpoint it routes to with `gcp.vertex.AiEndpointIamMember` (pulumi-gcp
10.2 has it: google_vertex_ai_endpoint_iam_member), secret access on each of its own secrets, log and metric writing
on the project (no narrower level exists for those).

Egress: Direct VPC egress on the stack's subnet, all traffic, so Private Service Connect endpoints of private Vertex
AI targets (their private DNS zone is the VPC's) and the GPU pools' internal load balancers are in reach.

The image: Cloud Run deploys images from Artifact Registry and Docker Hub (Cloud Run docs "Deploying container
images", read 2026-12-07; one revision of that page also names public GitHub Container Registry images, another
sends every other registry, GHCR among them, through an Artifact Registry remote repository). Images from any other
registry go through a remote repository of this stack for that upstream, encrypted with the stack's key: the
deployment does not depend on which revision of the page holds, and the copy Cloud Run imports is the stack's.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_gcp as gcp

from ..catalog.iam import PROJECT_ROLES
from ..keys import api_keys, slug
from ..router_runtime import RouterEndpoint, RouterRuntime
from .foundation import GcpFoundation
from .pool_monitoring import xy_chart, xy_series

MAX_TIMEOUT_S = 3600
"""Cloud Run's longest request timeout (Cloud Run docs "Configure request timeout": up to 60 minutes)."""
TIMEOUT_MARGIN_S = 60
"""Beyond the longest attempt: the proxy answers (or fails over) before Cloud Run cuts the request."""
CONCURRENCY = 80
"""Requests one instance takes at once: Cloud Run's default; the proxy is asynchronous and mostly waits on its
backends."""
PREDICT_PERMISSION = "aiplatform.endpoints.predict"
"""What calling a Vertex AI endpoint takes (predict, rawPredict and the OpenAI-compatible chat completions): the one
permission of the router's custom role."""
DIRECT_REGISTRIES = re.compile(r"^([a-z0-9-]+-docker\.pkg\.dev|docker\.io|registry-1\.docker\.io)/")
"""Registries Cloud Run deploys from as they are: Artifact Registry, Docker Hub."""
FILES_VOLUME_MIB = 64
"""The in-memory volume the command writes `runtime.files` into (its size counts against the instance's memory)."""
PROBE_PERIOD_S = 10
STARTUP_FAILURES = 30
"""5 minutes for the proxy to load its config and answer ready."""


@dataclass(frozen=True)
class RouterAlertThresholds:
    """What the router's alert policies fire at, and why these defaults:

    - 5xx ratio: the share of Cloud Run's responses in class 5xx over 5 minutes (the proxy's own errors, and
      every target failing); 5%, as the pools' (components/gcp/pool_monitoring.py).
    - latency p95, ms: Cloud Run's request_latencies runs to the response's end, so a streamed answer counts
      whole; 30 s, above the pools' 20 s backend latency, for the failovers a request may go through.
    """

    error_ratio: float = 0.05
    p95_latency_ms: int = 30_000


@dataclass(frozen=True)
class RouterArgs:
    foundation: GcpFoundation
    runtime: RouterRuntime
    production: bool
    """Deletion protection on the service."""
    alerts: RouterAlertThresholds = RouterAlertThresholds()


def remote_upstream(image: str) -> tuple[str, str] | None:
    """(registry host, path in it) of an image Cloud Run cannot deploy as it is; None when it can."""
    if DIRECT_REGISTRIES.match(image) or "/" not in image or "." not in image.split("/", 1)[0]:
        return None  # Artifact Registry, Docker Hub (written out or implied by a host-less name)
    host, path = image.split("/", 1)
    return host, path


def request_timeout_seconds(attempt_seconds: float) -> int:
    """The service's request timeout: the longest attempt and a margin, at most Cloud Run's maximum."""
    return min(MAX_TIMEOUT_S, math.ceil(attempt_seconds) + TIMEOUT_MARGIN_S)


class Router(pulumi.ComponentResource):
    """The LiteLLM proxy as a Cloud Run service in the stack's region: internal ingress, Direct VPC egress, its own
    service account allowed to predict on exactly its Vertex AI routes and to read exactly its own secrets (each in
    Secret Manager, encrypted with the stack's key, handed to the container by reference), probes on the proxy's
    health routes, and alert policies on its 5xx ratio and latency."""

    def __init__(self, name: str, args: RouterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:gcp:Router", name, None, opts)
        base, rt = args.foundation, args.runtime
        self.account = gcp.serviceaccount.Account(
            f"{name}-sa", project=base.project, account_id=slug(rt.name)[:30].rstrip("-"),
            display_name=f"{rt.name}: LiteLLM router", description="Runtime identity of the router on Cloud Run",
            opts=pulumi.ResourceOptions(parent=self, depends_on=base.apis.needs("iam.googleapis.com")))
        member = self.account.member
        grants: list[pulumi.Resource] = [
            gcp.projects.IAMMember(f"{name}-{role.split('/')[1].replace('.', '-').lower()}", project=base.project,
                                   role=role, member=member, opts=pulumi.ResourceOptions(parent=self))
            for role in PROJECT_ROLES]
        grants += self._predict_grants(name, base, rt, member)
        # The callers' keys and the admin key, generated here: they live in the stack's state and Secret Manager.
        self.keys = api_keys(name, rt.generated, self)
        self.secret_ids, env_secrets, secret_grants = self._secrets(name, base, rt, member)
        self.image = self._image(name, base, rt)

        container = self._container(rt, env_secrets)
        scaling = gcp.cloudrunv2.ServiceTemplateScalingArgs(min_instance_count=rt.min_replicas,
                                                            max_instance_count=rt.max_replicas)
        self.service = gcp.cloudrunv2.Service(
            f"{name}-service", project=base.project, location=base.region, name=slug(rt.name)[:49],
            description=f"{rt.name}: the stack's OpenAI-compatible entry point (LiteLLM)",
            ingress="INGRESS_TRAFFIC_INTERNAL_ONLY", invoker_iam_disabled=True,
            deletion_protection=args.production, labels=base.labels,
            template=gcp.cloudrunv2.ServiceTemplateArgs(
                service_account=self.account.email, containers=[container], scaling=scaling,
                timeout=f"{request_timeout_seconds(rt.timeout_seconds)}s",
                max_instance_request_concurrency=CONCURRENCY,
                # Second generation: full Linux compatibility (the proxy's Python stack) and in-memory volumes.
                execution_environment="EXECUTION_ENVIRONMENT_GEN2",
                vpc_access=gcp.cloudrunv2.ServiceTemplateVpcAccessArgs(
                    egress="ALL_TRAFFIC", network_interfaces=[
                        gcp.cloudrunv2.ServiceTemplateVpcAccessNetworkInterfaceArgs(network=base.network_id,
                                                                                    subnetwork=base.subnet_id)]),
                volumes=[gcp.cloudrunv2.ServiceTemplateVolumeArgs(
                    name="files", empty_dir=gcp.cloudrunv2.ServiceTemplateVolumeEmptyDirArgs(
                        medium="MEMORY", size_limit=f"{FILES_VOLUME_MIB}Mi"))],
                labels=base.labels),
            # A revision starts only once its identity may read its secrets and call its routes.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[
                *base.apis.needs("run.googleapis.com"), *grants, *secret_grants]))

        self.alert_policies = self._alerts(name, args)
        body = pulumi.Output.all(self.service.name, [p.name for p in self.alert_policies]).apply(
            lambda v: json.dumps(dashboard(rt.name, base.region, v[0], v[1])))
        self.dashboard = gcp.monitoring.Dashboard(
            f"{name}-dashboard", project=base.project, dashboard_json=body,
            opts=pulumi.ResourceOptions(parent=self, depends_on=base.apis.needs("monitoring.googleapis.com")))
        self.base_url = pulumi.Output.concat(self.service.uri, "/v1")
        self.endpoint = RouterEndpoint(base_url=self.base_url, keys=self.keys, details={
            "serviceName": self.service.name, "serviceAccount": self.account.email, "region": base.region,
            "ingress": "internal", "image": self.image, "secrets": list(self.secret_ids.values()),
            # Callers in the VPC reach the run.app name through the subnet's Private Google Access.
            "reachedThrough": "Private Google Access from the stack's VPC (internal ingress)",
        })
        self.register_outputs({"baseUrl": self.base_url, "serviceName": self.service.name,
                               "serviceAccount": self.account.email})

    def _predict_grants(self, name: str, base: GcpFoundation, rt: RouterRuntime,
                        member: pulumi.Input[str]) -> list[pulumi.Resource]:
        """`aiplatform.endpoints.predict` on each Vertex AI endpoint of its routes (auth gcp-oauth), through a custom
        role holding only that: roles/aiplatform.user would add every other Vertex AI permission on the project."""
        vertex = [e for e in rt.routes if e.auth == "gcp-oauth"]
        if not vertex:
            return []
        role = gcp.projects.IAMCustomRole(
            f"{name}-predict-role", project=base.project, role_id=re.sub(r"\W", "_", f"{rt.name}_predict"),
            title=f"{rt.name}: call Vertex AI endpoints", permissions=[PREDICT_PERMISSION],
            description="Predict on a Vertex AI endpoint, nothing else (the router's routes)",
            opts=pulumi.ResourceOptions(parent=self, depends_on=base.apis.needs("iam.googleapis.com")))
        return [gcp.vertex.AiEndpointIamMember(
            f"{name}-predict-{e.name}", project=base.project, location=base.region,
            endpoint=e.details["endpointId"], role=role.name, member=member,
            opts=pulumi.ResourceOptions(parent=self)) for e in vertex]

    def _secrets(self, name: str, base: GcpFoundation, rt: RouterRuntime, member: pulumi.Input[str]
                 ) -> tuple[dict[str, pulumi.Output[str]], list[gcp.cloudrunv2.ServiceTemplateContainerEnvArgs],
                            list[pulumi.Resource]]:
        """Each of `runtime.secrets` and of the generated keys in its own Secret Manager secret (replicated in the
        region only, encrypted with the stack's key), readable by the router alone (the binding is authoritative
        for the accessor role on it), and the environment variable that names its version: Cloud Run reads the
        value when an instance starts."""
        ids: dict[str, pulumi.Output[str]] = {}
        env: list[gcp.cloudrunv2.ServiceTemplateContainerEnvArgs] = []
        ready: list[pulumi.Resource] = []
        for variable, value in {**rt.secrets, **self.keys}.items():
            role = slug(variable)
            secret = gcp.secretmanager.Secret(
                f"{name}-secret-{role}", project=base.project, secret_id=f"{slug(rt.name)}-{role}",
                labels=base.labels,
                replication=gcp.secretmanager.SecretReplicationArgs(
                    user_managed=gcp.secretmanager.SecretReplicationUserManagedArgs(
                        replicas=[gcp.secretmanager.SecretReplicationUserManagedReplicaArgs(
                            location=base.region,
                            customer_managed_encryption=gcp.secretmanager
                            .SecretReplicationUserManagedReplicaCustomerManagedEncryptionArgs(
                                kms_key_name=base.kms_key_id))])),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[
                    *base.apis.needs("secretmanager.googleapis.com"), *base.kms_grants]))
            data: pulumi.Output[str] = pulumi.Output.secret(value)
            version = gcp.secretmanager.SecretVersion(f"{name}-secret-{role}-version", secret=secret.id,
                                                      secret_data=data, opts=pulumi.ResourceOptions(parent=self))
            binding = gcp.secretmanager.SecretIamBinding(
                f"{name}-secret-{role}-accessor", project=base.project, secret_id=secret.secret_id,
                role="roles/secretmanager.secretAccessor", members=[member],
                opts=pulumi.ResourceOptions(parent=self))
            ids[variable] = secret.id
            # The version, not `latest`: a new value rolls a new revision instead of reaching instances at random.
            env.append(gcp.cloudrunv2.ServiceTemplateContainerEnvArgs(
                name=variable, value_source=gcp.cloudrunv2.ServiceTemplateContainerEnvValueSourceArgs(
                    secret_key_ref=gcp.cloudrunv2.ServiceTemplateContainerEnvValueSourceSecretKeyRefArgs(
                        secret=secret.secret_id, version=version.version))))
            ready += [version, binding]
        return ids, env, ready

    def _image(self, name: str, base: GcpFoundation, rt: RouterRuntime) -> pulumi.Input[str]:
        """The image as Cloud Run pulls it: through a remote repository of the stack for its upstream registry,
        when Cloud Run cannot deploy from that registry itself."""
        upstream = remote_upstream(rt.image)
        if upstream is None:
            return rt.image
        host, path = upstream
        repository_id = f"{slug(rt.name)}-{slug(host.split('.')[0])}"[:63]
        repo = gcp.artifactregistry.Repository(
            f"{name}-images", project=base.project, location=base.region, repository_id=repository_id,
            format="DOCKER", mode="REMOTE_REPOSITORY", kms_key_name=base.kms_key_id, labels=base.labels,
            description=f"{host}, as Cloud Run pulls the router's image",
            remote_repository_config=gcp.artifactregistry.RepositoryRemoteRepositoryConfigArgs(
                description=host, docker_repository=gcp.artifactregistry
                .RepositoryRemoteRepositoryConfigDockerRepositoryArgs(
                    custom_repository=gcp.artifactregistry
                    .RepositoryRemoteRepositoryConfigDockerRepositoryCustomRepositoryArgs(uri=f"https://{host}"))),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[
                *base.apis.needs("artifactregistry.googleapis.com"), *base.kms_grants]))
        # Cloud Run's service agent reads repositories of its own project without a grant (Artifact Registry docs
        # "Deploying to Cloud Run": only another project's repository needs one).
        return pulumi.Output.format("{0}-docker.pkg.dev/{1}/{2}/{3}", base.region, base.project,
                                    repo.repository_id, path)

    def _container(self, rt: RouterRuntime, secrets: list[gcp.cloudrunv2.ServiceTemplateContainerEnvArgs]
                   ) -> gcp.cloudrunv2.ServiceTemplateContainerArgs:
        """The proxy's container: the command writes `files` (plain variables: config and module, not secret) into
        the in-memory volume, then starts the proxy; secrets only by reference."""
        plain = {**rt.environment, **rt.files}
        env = [gcp.cloudrunv2.ServiceTemplateContainerEnvArgs(name=k, value=v) for k, v in plain.items()]
        http = lambda path: {"path": path, "port": rt.port}  # noqa: E731
        return gcp.cloudrunv2.ServiceTemplateContainerArgs(
            name="litellm", image=self.image, commands=list(rt.command),
            ports=gcp.cloudrunv2.ServiceTemplateContainerPortsArgs(container_port=rt.port, name="http1"),
            envs=[*env, *secrets],
            resources=gcp.cloudrunv2.ServiceTemplateContainerResourcesArgs(
                limits={"cpu": f"{rt.cpu:g}", "memory": f"{rt.memory_mib}Mi"},
                # CPU only while requests are in flight when the service may scale to zero (request-based billing);
                # always, when instances are kept (instance-based billing, cheaper per second).
                cpu_idle=rt.min_replicas == 0, startup_cpu_boost=True),
            volume_mounts=[gcp.cloudrunv2.ServiceTemplateContainerVolumeMountArgs(name="files",
                                                                                 mount_path=rt.files_dir)],
            startup_probe=gcp.cloudrunv2.ServiceTemplateContainerStartupProbeArgs(
                http_get=gcp.cloudrunv2.ServiceTemplateContainerStartupProbeHttpGetArgs(**http(rt.readiness_path)),
                period_seconds=PROBE_PERIOD_S, timeout_seconds=5, failure_threshold=STARTUP_FAILURES),
            liveness_probe=gcp.cloudrunv2.ServiceTemplateContainerLivenessProbeArgs(
                http_get=gcp.cloudrunv2.ServiceTemplateContainerLivenessProbeHttpGetArgs(**http(rt.liveness_path)),
                period_seconds=15, timeout_seconds=5, failure_threshold=5))

    def _alerts(self, name: str, args: RouterArgs) -> list[gcp.monitoring.AlertPolicy]:
        base, t, title = args.foundation, args.alerts, args.runtime.name
        flt = lambda metric: self.service.name.apply(  # noqa: E731
            lambda service: run_filter(service, base.region, metric))
        conditions = {
            "5xx-ratio": (f"more than {t.error_ratio:.0%} of responses in class 5xx",
                          gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
                              filter=pulumi.Output.concat(flt(REQUESTS), SERVER_ERRORS),
                              aggregations=[gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs(
                                  alignment_period="60s", per_series_aligner="ALIGN_RATE",
                                  cross_series_reducer="REDUCE_SUM")],
                              denominator_filter=flt(REQUESTS),
                              denominator_aggregations=[
                                  gcp.monitoring.AlertPolicyConditionConditionThresholdDenominatorAggregationArgs(
                                      alignment_period="60s", per_series_aligner="ALIGN_RATE",
                                      cross_series_reducer="REDUCE_SUM")],
                              comparison="COMPARISON_GT", threshold_value=t.error_ratio, duration="300s")),
            "latency": (f"p95 request latency above {t.p95_latency_ms:g} ms",
                        gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
                            filter=flt(LATENCIES),
                            aggregations=[gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs(
                                alignment_period="60s", per_series_aligner="ALIGN_DELTA",
                                cross_series_reducer="REDUCE_PERCENTILE_95")],
                            comparison="COMPARISON_GT", threshold_value=t.p95_latency_ms, duration="300s")),
        }
        return [gcp.monitoring.AlertPolicy(
            f"{name}-alert-{key}", project=base.project, display_name=f"{title}: {key}", combiner="OR",
            severity="ERROR", user_labels=base.labels,
            conditions=[gcp.monitoring.AlertPolicyConditionArgs(display_name=what, condition_threshold=spec)],
            documentation=gcp.monitoring.AlertPolicyDocumentationArgs(
                content=f"Router {title} (Cloud Run, {base.region}): {what}.", mime_type="text/markdown"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=base.apis.needs("monitoring.googleapis.com")))
            for key, (what, spec) in conditions.items()]


# Cloud Run's metrics (Cloud Monitoring's metrics list, "run"): request_count (DELTA INT64, label
# response_code_class: 1xx..5xx) and request_latencies (DELTA DISTRIBUTION, ms, to the response's end), on the
# monitored resource cloud_run_revision (labels service_name, location).
REQUESTS = "run.googleapis.com/request_count"
LATENCIES = "run.googleapis.com/request_latencies"
INSTANCES = "run.googleapis.com/container/instance_count"
SERVER_ERRORS = ' AND metric.labels.response_code_class = "5xx"'


def run_filter(service: str, region: str, metric: str) -> str:
    return (f'resource.type = "cloud_run_revision" AND resource.labels.service_name = "{service}" '
            f'AND resource.labels.location = "{region}" AND metric.type = "{metric}"')


def dashboard(title: str, region: str, service: str, policies: list[str]) -> dict[str, Any]:
    """The Dashboard as Monitoring's API takes it: requests by response class, latency p50/p95, instances, the
    policies' incidents."""

    def series(metric: str, aligner: str, reducer: str, legend: str, group_by: list[str] | None = None
               ) -> dict[str, Any]:
        return xy_series(run_filter(service, region, metric), aligner, reducer, legend, group_by)

    tiles: list[dict[str, Any]] = [
        {"xPos": 0, "yPos": 0, "width": 6, "height": 4, "widget": xy_chart(
            "Requests per second, by response class",
            series(REQUESTS, "ALIGN_RATE", "REDUCE_SUM", "${metric.labels.response_code_class}",
                   ["metric.label.response_code_class"]), label="requests/s")},
        {"xPos": 6, "yPos": 0, "width": 6, "height": 4, "widget": xy_chart(
            "Request latency to the response's end (ms, p50 / p95)",
            series(LATENCIES, "ALIGN_DELTA", "REDUCE_PERCENTILE_50", "p50"),
            series(LATENCIES, "ALIGN_DELTA", "REDUCE_PERCENTILE_95", "p95"), label="ms")},
        {"xPos": 0, "yPos": 4, "width": 12, "height": 4, "widget": xy_chart(
            "Instances", series(INSTANCES, "ALIGN_MAX", "REDUCE_SUM", "${metric.labels.state}",
                                ["metric.label.state"]), label="instances")},
    ]
    width = 12 // max(1, len(policies))
    tiles += [{"xPos": i * width, "yPos": 8, "width": width, "height": 3,
               "widget": {"title": "Incidents", "alertChart": {"name": policy}}}
              for i, policy in enumerate(policies)]
    return {"displayName": f"{title} (router, Cloud Run)", "mosaicLayout": {"columns": 12, "tiles": tiles}}
