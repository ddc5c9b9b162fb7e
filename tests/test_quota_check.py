"""`selfhost quota --check`'s reading of applied quotas, offline.

AWS: real botocore clients under botocore's Stubber, which validates every request and every recorded response
against the service's own model (so the shapes are the real ones). Google Cloud: the recorded responses in
tests/data/quotas/ (their sources are in its README) served by an httpx.MockTransport. No test reaches a network.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import NoCredentialsError
from botocore.stub import ANY, Stubber

from components.aws.online import quotas as aws_quotas
from components.aws.online.quotas import check_aws
from components.gcp.online import quotas as gcp_quotas
from components.gcp.online.quotas import check_gcp
from components.quota_check import USAGE_UNREPORTED, QuotaStatus, check
from components.quotas import QuotaNeed

DATA = Path(__file__).parent / "data" / "quotas"
REGION = "us-east-1"
PROJECT = "acme-llm-pool"
WHEN = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def aws_need(**kw: Any) -> QuotaNeed:
    base: dict[str, Any] = dict(need="sagemaker-endpoint:ml.g5.2xlarge", platform="aws", service="sagemaker",
                                quota_name="ml.g5.2xlarge for endpoint usage", quota_code="L-9614C779", metric=None,
                                unit="instances", region=REGION, at_min=1, at_max=2, at_update=2,
                                resources=("chat-endpoint",))
    return QuotaNeed(**{**base, **kw})


EC2_G = dict(need="ec2-ondemand:G", service="ec2", quota_name="Running On-Demand G and VT instances",
             quota_code="L-DB2E81BA", unit="vCPUs")
EC2_G_SPOT = dict(need="ec2-spot:G", service="ec2", quota_name="All G and VT Spot Instance Requests",
                  quota_code="L-3819A6DF", unit="vCPUs")


def sq_quota(code: str, name: str, value: float, service: str = "sagemaker", **extra: Any) -> dict[str, Any]:
    """A ServiceQuota as ListServiceQuotas returns it."""
    return {"ServiceCode": service, "ServiceName": {"sagemaker": "Amazon SageMaker", "ec2": "Amazon Elastic Compute "
                                                    "Cloud (Amazon EC2)"}[service],
            "QuotaArn": f"arn:aws:servicequotas:{REGION}:123456789012:{service}/{code}", "QuotaCode": code,
            "QuotaName": name, "Value": value, "Unit": "None", "Adjustable": True, "GlobalQuota": False,
            "QuotaAppliedAtLevel": "ACCOUNT", **extra}


G_USAGE_METRIC = {"MetricNamespace": "AWS/Usage", "MetricName": "ResourceCount",
                  "MetricDimensions": {"Class": "G/OnDemand", "Resource": "vCPU", "Service": "EC2", "Type": "Resource"},
                  "MetricStatisticRecommendation": "Maximum"}


class StubbedSession:
    """What check_aws asks of a boto3 Session: `client(name, region_name=...)`, here real clients under Stubbers."""

    def __init__(self) -> None:
        self.stubs: dict[tuple[str, str], Stubber] = {}
        self.clients: dict[tuple[str, str], Any] = {}

    def stub(self, name: str, region: str = REGION) -> Stubber:
        if (name, region) not in self.stubs:
            client = boto3.client(name, region_name=region, aws_access_key_id="x", aws_secret_access_key="x")
            self.clients[name, region], self.stubs[name, region] = client, Stubber(client)
            self.stubs[name, region].activate()
        return self.stubs[name, region]

    def client(self, name: str, region_name: str) -> Any:
        self.stub(name, region_name)
        return self.clients[name, region_name]

    def verify(self) -> None:
        for s in self.stubs.values():
            s.assert_no_pending_responses()


@pytest.fixture()
def aws() -> Iterator[StubbedSession]:
    session = StubbedSession()
    yield session
    session.verify()


def stub_endpoints(session: StubbedSession, running: dict[str, int]) -> None:
    """One endpoint per instance type, each one variant with that many instances in service."""
    sm = session.stub("sagemaker")
    arn = f"arn:aws:sagemaker:{REGION}:123456789012"
    sm.add_response("list_endpoints", {"Endpoints": [
        {"EndpointName": f"ep-{i}", "EndpointArn": f"{arn}:endpoint/ep-{i}", "CreationTime": WHEN,
         "LastModifiedTime": WHEN, "EndpointStatus": "InService"} for i in range(len(running))]}, {})
    for i, (kind, count) in enumerate(running.items()):
        sm.add_response("describe_endpoint", {
            "EndpointName": f"ep-{i}", "EndpointArn": f"{arn}:endpoint/ep-{i}", "EndpointConfigName": f"cfg-{i}",
            "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentWeight": 1.0, "DesiredWeight": 1.0,
                                    "CurrentInstanceCount": count, "DesiredInstanceCount": count,
                                    "VariantStatus": []}],
            "EndpointStatus": "InService", "CreationTime": WHEN, "LastModifiedTime": WHEN},
            {"EndpointName": f"ep-{i}"})
        sm.add_response("describe_endpoint_config", {
            "EndpointConfigName": f"cfg-{i}", "EndpointConfigArn": f"{arn}:endpoint-config/cfg-{i}",
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": f"model-{i}", "InitialInstanceCount": 1,
                                    "InstanceType": kind, "InitialVariantWeight": 1.0}],
            "CreationTime": WHEN}, {"EndpointConfigName": f"cfg-{i}"})


# ---------------------------------------------------------------------------------------------------------- AWS


def test_aws_enough_counts_the_instances_the_endpoints_run(aws: StubbedSession) -> None:
    aws.stub("service-quotas").add_response("list_service_quotas", {"Quotas": [
        sq_quota("L-1623D0BE", "ml.p3.2xlarge for endpoint usage", 2.0),
        sq_quota("L-9614C779", "ml.g5.2xlarge for endpoint usage", 4.0)]}, {"ServiceCode": "sagemaker"})
    # SageMaker's endpoint-usage quotas carry no CloudWatch usage metric: the running instances are counted.
    stub_endpoints(aws, {"ml.g5.2xlarge": 1, "ml.g5.12xlarge": 3})

    [status] = check_aws([aws_need(at_update=3)], aws)

    assert (status.state, status.limit, status.usage, status.short_by) == ("enough", 4.0, 1.0, 0.0)
    assert "1 ml.g5.2xlarge counted over the account's SageMaker endpoints" in status.note
    assert status.increase == ""


def test_aws_counts_pools_and_the_new_fleet_of_an_update_under_way(aws: StubbedSession) -> None:
    aws.stub("service-quotas").add_response("list_service_quotas", {"Quotas": [
        sq_quota("L-9614C779", "ml.g5.2xlarge for endpoint usage", 8.0)]}, {"ServiceCode": "sagemaker"})
    sm, arn = aws.stub("sagemaker"), f"arn:aws:sagemaker:{REGION}:123456789012"
    sm.add_response("list_endpoints", {"Endpoints": [
        {"EndpointName": "chat", "EndpointArn": f"{arn}:endpoint/chat", "CreationTime": WHEN,
         "LastModifiedTime": WHEN, "EndpointStatus": "Updating"}]}, {})
    sm.add_response("describe_endpoint", {
        "EndpointName": "chat", "EndpointArn": f"{arn}:endpoint/chat", "EndpointConfigName": "chat-v1",
        "ProductionVariants": [
            {"VariantName": "blue", "CurrentInstanceCount": 2, "DesiredInstanceCount": 2},
            {"VariantName": "mixed", "CurrentInstanceCount": 3, "InstancePools": [
                {"InstanceType": "ml.g5.2xlarge", "CurrentInstanceCount": 1},
                {"InstanceType": "ml.g6.2xlarge", "CurrentInstanceCount": 2}]}],
        # A blue/green update: the new fleet runs beside the old one until traffic has shifted.
        "PendingDeploymentSummary": {"EndpointConfigName": "chat-v2", "StartTime": WHEN, "ProductionVariants": [
            {"VariantName": "blue", "InstanceType": "ml.g5.2xlarge", "CurrentInstanceCount": 2,
             "DesiredInstanceCount": 2}]},
        "EndpointStatus": "Updating", "CreationTime": WHEN, "LastModifiedTime": WHEN}, {"EndpointName": "chat"})
    sm.add_response("describe_endpoint_config", {
        "EndpointConfigName": "chat-v1", "EndpointConfigArn": f"{arn}:endpoint-config/chat-v1", "CreationTime": WHEN,
        "ProductionVariants": [
            {"VariantName": "blue", "ModelName": "chat", "InstanceType": "ml.g5.2xlarge", "InitialInstanceCount": 2},
            {"VariantName": "mixed", "ModelName": "chat", "InstancePools": [
                {"InstanceType": "ml.g5.2xlarge", "Priority": 1}, {"InstanceType": "ml.g6.2xlarge", "Priority": 2}]}]},
        {"EndpointConfigName": "chat-v1"})

    [status] = check_aws([aws_need(at_update=4)], aws)

    # 2 (live variant) + 1 (its pool) + 2 (the pending fleet) = 5 of 8: 3 free, the plan's peak needs 4.
    assert (status.state, status.usage, status.short_by) == ("short", 5.0, 1.0)
    assert "--desired-value 9 --region us-east-1" in status.increase


def test_aws_short_by_what_the_update_needs_past_cloudwatch_usage(aws: StubbedSession) -> None:
    aws.stub("service-quotas").add_response("list_service_quotas", {"Quotas": [
        sq_quota("L-DB2E81BA", "Running On-Demand G and VT instances", 32.0, "ec2", UsageMetric=G_USAGE_METRIC)]},
        {"ServiceCode": "ec2"})
    aws.stub("cloudwatch").add_response("get_metric_statistics", {
        "Label": "ResourceCount",
        "Datapoints": [{"Timestamp": WHEN, "Maximum": 12.0, "Unit": "None"},
                       {"Timestamp": WHEN, "Maximum": 16.0, "Unit": "None"}]},
        {"Namespace": "AWS/Usage", "MetricName": "ResourceCount",
         "Dimensions": [{"Name": "Class", "Value": "G/OnDemand"}, {"Name": "Resource", "Value": "vCPU"},
                        {"Name": "Service", "Value": "EC2"}, {"Name": "Type", "Value": "Resource"}],
         "StartTime": ANY, "EndTime": ANY, "Period": 60, "Statistics": ["Maximum"]})

    [status] = check_aws([aws_need(**EC2_G, at_min=8, at_max=16, at_update=24)], aws)

    # 32 applied, 16 in use at the hour's peak: 16 free, the update's peak needs 24.
    assert (status.state, status.limit, status.usage, status.short_by) == ("short", 32.0, 16.0, 8.0)
    assert "fits at max (16) but not during an update (peak 24)" in status.note
    assert status.increase == (
        "console: https://us-east-1.console.aws.amazon.com/servicequotas/home/services/ec2/quotas/L-DB2E81BA\n"
        "cli: aws service-quotas request-service-quota-increase --service-code ec2 --quota-code L-DB2E81BA "
        "--desired-value 40 --region us-east-1")


def test_aws_matched_by_name_when_the_table_has_no_code(aws: StubbedSession) -> None:
    sq = aws.stub("service-quotas")
    p3, g5 = sq_quota("L-1623D0BE", "ml.p3.2xlarge for endpoint usage", 2.0), sq_quota(
        "L-9614C779", "ml.g5.2xlarge for endpoint usage", 4.0)
    sq.add_response("list_service_quotas", {"Quotas": [p3], "NextToken": "page-2"}, {"ServiceCode": "sagemaker"})
    sq.add_response("list_service_quotas", {"Quotas": [g5]}, {"ServiceCode": "sagemaker", "NextToken": "page-2"})
    stub_endpoints(aws, {})

    [status] = check_aws([aws_need(quota_code=None, at_max=4, at_update=6)], aws)

    assert (status.state, status.limit, status.usage, status.short_by) == ("short", 4.0, 0.0, 2.0)
    # The code the name resolved to is the one the request names.
    assert "--quota-code L-9614C779 --desired-value 6 --region us-east-1" in status.increase
    assert "/services/sagemaker/quotas/L-9614C779\n" in status.increase


def test_aws_a_quota_not_listed_runs_at_the_default(aws: StubbedSession) -> None:
    sq = aws.stub("service-quotas")
    sq.add_response("list_service_quotas", {"Quotas": [
        sq_quota("L-DB2E81BA", "Running On-Demand G and VT instances", 32.0, "ec2")]}, {"ServiceCode": "ec2"})
    default = sq_quota("L-3819A6DF", "All G and VT Spot Instance Requests", 8.0, "ec2",
                       QuotaArn="arn:aws:servicequotas:us-east-1::ec2/L-3819A6DF")
    sq.add_response("get_aws_default_service_quota", {"Quota": default},
                    {"ServiceCode": "ec2", "QuotaCode": "L-3819A6DF"})

    [status] = check_aws([aws_need(**EC2_G_SPOT, at_max=8, at_update=12)], aws)

    assert (status.state, status.limit, status.usage, status.short_by) == ("short", 8.0, None, 4.0)
    assert "the AWS default applies" in status.note
    assert USAGE_UNREPORTED in status.note
    assert "--quota-code L-3819A6DF --desired-value 12 --region us-east-1" in status.increase


def test_aws_a_name_not_listed_is_looked_up_among_the_defaults(aws: StubbedSession) -> None:
    sq = aws.stub("service-quotas")
    sq.add_response("list_service_quotas", {"Quotas": []}, {"ServiceCode": "sagemaker"})
    sq.add_response("list_aws_default_service_quotas", {"Quotas": [
        sq_quota("L-9614C779", "ml.g5.2xlarge for endpoint usage", 0.0,
                 QuotaArn="arn:aws:servicequotas:us-east-1::sagemaker/L-9614C779")]}, {"ServiceCode": "sagemaker"})
    stub_endpoints(aws, {})

    [status] = check_aws([aws_need(quota_code=None)], aws)

    assert (status.state, status.limit, status.short_by) == ("short", 0.0, 2.0)
    assert "--quota-code L-9614C779 --desired-value 2" in status.increase


def test_aws_access_denied_is_unknown_with_its_code(aws: StubbedSession) -> None:
    # One denied listing answers for every need of the service and region: a single call is stubbed.
    aws.stub("service-quotas").add_client_error(
        "list_service_quotas", service_error_code="AccessDeniedException", http_status_code=400,
        service_message="User: arn:aws:iam::123456789012:user/ci is not authorized to perform: "
                        "servicequotas:ListServiceQuotas", expected_params={"ServiceCode": "sagemaker"})

    statuses = check_aws([aws_need(), aws_need(need="sagemaker-endpoint:ml.g5.12xlarge", quota_code="L-65C4BD00",
                                               quota_name="ml.g5.12xlarge for endpoint usage")], aws)

    assert [s.state for s in statuses] == ["unknown", "unknown"]
    assert all("AccessDeniedException" in s.note and s.limit is None for s in statuses)
    # The way to ask is still given: someone with the permission can.
    assert "--quota-code L-65C4BD00 --desired-value 2" in statuses[1].increase


def test_aws_missing_credentials_at_call_time_are_unknown() -> None:
    class NoCredentials:
        def client(self, name: str, region_name: str) -> Any:
            return self

        def get_paginator(self, operation: str) -> Any:
            raise NoCredentialsError()

    [status] = check_aws([aws_need()], NoCredentials())

    assert status.state == "unknown" and "NoCredentialsError" in status.note


def test_aws_cloudwatch_denied_leaves_the_limit(aws: StubbedSession) -> None:
    aws.stub("service-quotas").add_response("list_service_quotas", {"Quotas": [
        sq_quota("L-DB2E81BA", "Running On-Demand G and VT instances", 32.0, "ec2", UsageMetric=G_USAGE_METRIC)]},
        {"ServiceCode": "ec2"})
    aws.stub("cloudwatch").add_client_error("get_metric_statistics", service_error_code="AccessDenied",
                                            http_status_code=403)

    [status] = check_aws([aws_need(**EC2_G, at_max=16, at_update=16)], aws)

    assert (status.state, status.limit, status.usage) == ("enough", 32.0, None)
    assert "usage not read: AccessDenied" in status.note and USAGE_UNREPORTED in status.note


def test_check_without_aws_credentials_is_unknown(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata probe

    [status] = check([aws_need()])

    assert status.state == "unknown" and status.note == aws_quotas.NO_AWS_CREDENTIALS
    assert "--quota-code L-9614C779 --desired-value 2 --region us-east-1" in status.increase


# ------------------------------------------------------------------------------------------------- Google Cloud


def gcp_need(**kw: Any) -> QuotaNeed:
    base: dict[str, Any] = dict(need="gce-gpu:nvidia-l4", platform="gcp", service="compute.googleapis.com",
                                quota_name="NVIDIA L4 GPUs", quota_code="NVIDIA_L4_GPUS",
                                metric="compute.googleapis.com/nvidia_l4_gpus", unit="GPUs", region="us-central1",
                                at_min=1, at_max=4, at_update=4, resources=("pool",), project=PROJECT)
    return QuotaNeed(**{**base, **kw})


SPOT_L4 = dict(need="gce-gpu-spot:nvidia-l4", quota_name="Preemptible NVIDIA L4 GPUs",
               quota_code="PREEMPTIBLE_NVIDIA_L4_GPUS", metric="compute.googleapis.com/preemptible_nvidia_l4_gpus")
ALL_REGIONS = dict(need="gce-gpu:all-regions", quota_name="GPUs (all regions)", quota_code="GPUS_ALL_REGIONS",
                   metric="compute.googleapis.com/gpus_all_regions", region="global")
VERTEX_L4 = dict(need="vertex-serving:nvidia-l4", service="aiplatform.googleapis.com",
                 quota_name="Custom model serving Nvidia L4 GPUs per region", quota_code=None,
                 metric="aiplatform.googleapis.com/custom_model_serving_nvidia_l4_gpus")

REGION_URL = f"/compute/v1/projects/{PROJECT}/regions/us-central1"
PROJECT_URL = f"/compute/v1/projects/{PROJECT}"
INFOS_URL = f"/v1/projects/{PROJECT}/locations/global/services/aiplatform.googleapis.com/quotaInfos"
COMPUTE_INFOS_URL = f"/v1/projects/{PROJECT}/locations/global/services/compute.googleapis.com/quotaInfos"
# As components/catalog/data/quotas.csv writes the rows: Vertex AI's metric in quota_code, its quota id in quota_name;
# Compute Engine's H100 under "GPUs per GPU family", with no regions.get metric and the family in the name.
# (QuotaRow.metric of a Vertex AI row is its code.)
VERTEX_L4_TABLE = dict(VERTEX_L4, quota_code="aiplatform.googleapis.com/custom_model_serving_nvidia_l4_gpus",
                       quota_name="CustomModelServingL4GPUsPerProjectPerRegion",
                       metric="aiplatform.googleapis.com/custom_model_serving_nvidia_l4_gpus")
H100_FAMILY = dict(need="gce-gpus:on-demand:nvidia-h100-80gb", quota_code=None,
                   quota_name="GPUs per GPU family (gpu_family=NVIDIA_H100)",
                   metric="compute.googleapis.com/gpus_per_gpu_family")


class Google:
    """The recorded answers by host and path (and page token); every request kept."""

    def __init__(self, overrides: dict[str, tuple[int, str]] | None = None) -> None:
        self.routes: dict[tuple[str, str, str], tuple[int, str]] = {
            ("compute.googleapis.com", REGION_URL, ""): (200, "compute_region_us-central1.json"),
            ("compute.googleapis.com", PROJECT_URL, ""): (200, "compute_project_acme-llm-pool.json"),
            ("cloudquotas.googleapis.com", INFOS_URL, ""): (200, "cloudquotas_aiplatform_page1.json"),
            ("cloudquotas.googleapis.com", INFOS_URL, json.loads(
                (DATA / "cloudquotas_aiplatform_page1.json").read_text())["nextPageToken"]):
                (200, "cloudquotas_aiplatform_page2.json"),
            ("cloudquotas.googleapis.com", COMPUTE_INFOS_URL, ""): (200, "cloudquotas_compute.json"),
        }
        for path, answer in (overrides or {}).items():
            for key in [k for k in self.routes if k[1] == path]:
                self.routes[key] = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = (request.url.host, request.url.path, request.url.params.get("pageToken", ""))
        if key not in self.routes:
            return httpx.Response(404, json={"error": {"code": 404, "message": f"no recording for {key}",
                                                       "status": "NOT_FOUND"}})
        status, name = self.routes[key]
        return httpx.Response(status, content=(DATA / name).read_bytes(), headers={"content-type": "application/json"})

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


def run_gcp(*needs: QuotaNeed, google: Google | None = None) -> tuple[list[QuotaStatus], Google]:
    google = google or Google()
    with google.client() as http:
        return check_gcp(list(needs), "ya29.recorded-token", http), google


def test_gcp_compute_enough_from_region_limit_and_usage() -> None:
    [status], google = run_gcp(gcp_need())

    # NVIDIA_L4_GPUS in us-central1: limit 8, usage 2; the pool needs 4 at its peak.
    assert (status.state, status.limit, status.usage, status.short_by) == ("enough", 8.0, 2.0, 0.0)
    assert status.increase == "" and status.note == ""
    [request] = google.requests
    assert request.headers["authorization"] == "Bearer ya29.recorded-token"
    assert request.url.params["fields"] == "quotas,quotaStatusWarning"


def test_gcp_compute_short_with_the_exact_request() -> None:
    [status], _ = run_gcp(gcp_need(**SPOT_L4, at_max=4, at_update=6))

    assert (status.state, status.limit, status.usage, status.short_by) == ("short", 4.0, 0.0, 2.0)
    assert "fits at max (4) but not during an update (peak 6)" in status.note
    lines = status.increase.splitlines()
    assert lines[0] == ("console: https://console.cloud.google.com/iam-admin/quotas?project=acme-llm-pool "
                        "(filter: compute.googleapis.com/preemptible_nvidia_l4_gpus, region us-central1)")
    assert lines[1] == ("cli: gcloud quotas preferences create --service=compute.googleapis.com "
                        "--project=acme-llm-pool --quota-id=PREEMPTIBLE-NVIDIA-L4-GPUS-per-project-region "
                        "--preferred-value=6 --dimensions=region=us-central1")


def test_gcp_compute_global_quota_from_the_project() -> None:
    statuses, google = run_gcp(gcp_need(**ALL_REGIONS, at_max=2, at_update=3), gcp_need(**ALL_REGIONS, at_update=1))

    # GPUS_ALL_REGIONS: limit 4, usage 2; read once for both needs.
    assert [(s.state, s.short_by) for s in statuses] == [("short", 1.0), ("enough", 0.0)]
    assert [(r.url.path, r.url.params["fields"]) for r in google.requests] == [(PROJECT_URL, "quotas")]
    assert ("--quota-id=GPUS-ALL-REGIONS-per-project --preferred-value=5\n"
            in statuses[0].increase)
    assert "--dimensions" not in statuses[0].increase


def test_gcp_compute_missing_quota_is_unknown() -> None:
    [status], _ = run_gcp(gcp_need(quota_code="NVIDIA_H100_GPUS", metric="compute.googleapis.com/nvidia_h100_gpus"))

    assert (status.state, status.limit, status.usage) == ("unknown", None, None)
    assert "no NVIDIA_H100_GPUS quota in us-central1" in status.note
    assert "--quota-id=NVIDIA-H100-GPUS-per-project-region --preferred-value=4" in status.increase


def test_gcp_http_403_is_unknown_with_the_reason() -> None:
    google = Google({REGION_URL: (403, "error_403_compute.json")})
    [status], _ = run_gcp(gcp_need(), google=google)

    assert status.state == "unknown"
    assert "HTTP 403 forbidden: Required 'compute.regions.get' permission" in status.note


def test_gcp_transport_error_is_unknown() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with httpx.Client(transport=httpx.MockTransport(refuse)) as http:
        [status] = check_gcp([gcp_need()], "token", http)

    assert status.state == "unknown" and "ConnectError: connection refused" in status.note


def test_gcp_vertex_reads_every_page_of_quota_infos() -> None:
    statuses, google = run_gcp(gcp_need(**VERTEX_L4, at_max=3, at_update=3),
                               gcp_need(**VERTEX_L4, region="us-east1", at_max=1, at_update=2))

    # The L4 serving quota is on page 2: us-central1 has its own row (4), us-east1 the default row (1).
    central, east = statuses
    assert (central.state, central.limit, central.usage, central.short_by) == ("enough", 4.0, None, 0.0)
    assert central.note.startswith(USAGE_UNREPORTED)
    assert (east.state, east.limit, east.short_by) == ("short", 1.0, 1.0)
    assert east.increase.splitlines()[1] == (
        "cli: gcloud quotas preferences create --service=aiplatform.googleapis.com --project=acme-llm-pool "
        "--quota-id=CustomModelServingL4GPUsPerProjectPerRegion --preferred-value=2 --dimensions=region=us-east1")
    # Two pages, the second asked for with the first's token; both needs served from one listing.
    assert [r.url.params.get("pageToken") for r in google.requests] == [
        None, "CkdDdXN0b21Nb2RlbFRyYWluaW5nTDRHUFVzUGVyUHJvamVjdFBlclJlZ2lvbg"]


def test_gcp_vertex_zero_is_left_out_of_the_json() -> None:
    need = gcp_need(**{**VERTEX_L4, "metric": "aiplatform.googleapis.com/custom_model_serving_nvidia_a100_gpus"},
                    at_update=1)
    [status], _ = run_gcp(need)

    assert (status.state, status.limit, status.short_by) == ("short", 0.0, 1.0)


def test_gcp_vertex_region_without_the_quota_is_unknown() -> None:
    [status], _ = run_gcp(gcp_need(**VERTEX_L4, region="southamerica-east1"))

    assert status.state == "unknown"
    assert "no value for region=southamerica-east1" in status.note
    assert "--quota-id=CustomModelServingL4GPUsPerProjectPerRegion" in status.increase


def test_gcp_vertex_missing_metric_is_unknown() -> None:
    [status], _ = run_gcp(gcp_need(**{**VERTEX_L4, "metric": "aiplatform.googleapis.com/custom_model_serving_tpu_v7"}))

    assert status.state == "unknown" and "Cloud Quotas lists no" in status.note
    assert "find its id: gcloud quotas info list --service=aiplatform.googleapis.com" in status.increase


def test_gcp_cloud_quotas_api_disabled_is_unknown() -> None:
    google = Google({INFOS_URL: (403, "error_403_cloudquotas_disabled.json")})
    [status], _ = run_gcp(gcp_need(**VERTEX_L4), google=google)

    assert status.state == "unknown"
    assert "HTTP 403 PERMISSION_DENIED SERVICE_DISABLED: Cloud Quotas API has not been used" in status.note


def test_check_without_gcp_credentials_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth
    import google.auth.exceptions

    def no_credentials(**kw: Any) -> Any:
        raise google.auth.exceptions.DefaultCredentialsError("Could not automatically determine credentials.")

    monkeypatch.setattr(google.auth, "default", no_credentials)
    google_api = Google()
    with google_api.client() as http:
        [status] = check([gcp_need()], {"gcp": (http, None)})

    assert status.state == "unknown" and status.note == gcp_quotas.NO_GCP_CREDENTIALS
    assert google_api.requests == []


def test_check_dispatches_per_platform_in_order(aws: StubbedSession) -> None:
    aws.stub("service-quotas").add_response("list_service_quotas", {"Quotas": [
        sq_quota("L-9614C779", "ml.g5.2xlarge for endpoint usage", 4.0)]}, {"ServiceCode": "sagemaker"})
    stub_endpoints(aws, {})
    other = dataclasses.replace(gcp_need(), platform="azure")
    google = Google()
    with google.client() as http:
        statuses = check([gcp_need(), aws_need(), other], {"aws": aws, "gcp": (http, "token")})

    assert [s.need.platform for s in statuses] == ["gcp", "aws", "azure"]
    assert [s.state for s in statuses] == ["enough", "enough", "unknown"]


def test_gcp_vertex_as_the_quota_table_names_it() -> None:
    [status], _ = run_gcp(gcp_need(**VERTEX_L4_TABLE, at_update=5))

    assert (status.state, status.limit, status.short_by) == ("short", 4.0, 1.0)
    assert "--quota-id=CustomModelServingL4GPUsPerProjectPerRegion --preferred-value=5" in status.increase


def test_gcp_compute_gpu_family_quota_from_cloud_quotas() -> None:
    central, east = run_gcp(gcp_need(**H100_FAMILY, at_max=8, at_update=8),
                            gcp_need(**H100_FAMILY, region="us-east4", at_max=8, at_update=8))[0]

    # us-central1 has its own H100 row (8); us-east4 falls to the family's default row, whose 0 the JSON leaves out.
    assert (central.state, central.limit, central.usage) == ("enough", 8.0, None)
    assert central.note.startswith(USAGE_UNREPORTED)
    assert (east.state, east.limit, east.short_by) == ("short", 0.0, 8.0)
    assert east.increase.splitlines() == [
        "console: https://console.cloud.google.com/iam-admin/quotas?project=acme-llm-pool "
        "(filter: compute.googleapis.com/gpus_per_gpu_family, region us-east4, gpu family NVIDIA_H100)",
        "cli: gcloud quotas preferences create --service=compute.googleapis.com --project=acme-llm-pool "
        "--quota-id=GPUS-PER-GPU-FAMILY-per-project-region --preferred-value=8 "
        "--dimensions=region=us-east4,gpu_family=NVIDIA_H100"]


def test_gcp_gpu_family_quota_without_a_family_is_unknown() -> None:
    [status], _ = run_gcp(gcp_need(**{**H100_FAMILY, "quota_name": "GPUs per GPU family"}))

    assert status.state == "unknown" and "per GPU family and the table names none" in status.note
