"""AWS quotas and their usage for `selfhost quota --check` (components/quota_check.py asks this reader through the
platform, components/targets/aws.py).

What it reads, per region, and the permissions that takes: Service Quotas `ListServiceQuotas` (the applied
values; `GetAWSDefaultServiceQuota` or `ListAWSDefaultServiceQuotas` for a quota listed without one), CloudWatch
`GetMetricStatistics` for the usage metric a quota names, and for SageMaker endpoint-usage quotas without one,
`ListEndpoints`, `DescribeEndpoint` and `DescribeEndpointConfig` to count the instances running
(servicequotas:List*/Get*, cloudwatch:GetMetricStatistics, sagemaker:ListEndpoints/DescribeEndpoint/
DescribeEndpointConfig). Every failure to read is an `unknown` status whose note says why, never an exception.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ...quotas import QuotaNeed, QuotaReader, QuotaStatus, desired, evaluate, unknown

NO_AWS_CREDENTIALS = "no credentials: run with AWS credentials (a profile, `aws sso login`, or the environment)"
# CloudWatch's AWS/Usage metrics are published every minute; the peak of the last hour is the usage, so that a
# fleet that scaled in a minute ago still counts.
USAGE_WINDOW = timedelta(hours=1)
USAGE_PERIOD_S = 60
SAGEMAKER_ENDPOINT_QUOTA = re.compile(r"^(ml\.\S+) for endpoint usage$")


class AwsQuotaReader(QuotaReader):
    """The `aws` platform's reader. `client`: a boto3 Session (or anything whose `client(name, region_name=...)`
    returns botocore clients: the tests pass stubbed ones); None: the environment's, and where it finds no
    credentials every need is `unknown`, saying how to get them."""

    def check(self, needs: Sequence[Any], client: Any = None) -> list[Any]:
        needs = list(needs)
        session = client if client is not None else _default_aws_session()
        if session is None:
            return [unknown(n, NO_AWS_CREDENTIALS, _aws_increase(n, n.quota_code, None)) for n in needs]
        return check_aws(needs, session)


def check_aws(needs: Iterable[QuotaNeed], session: Any) -> list[QuotaStatus]:
    """Each AWS need against Service Quotas in its region. `session` is a boto3 Session (or anything whose
    `client(name, region_name=...)` returns botocore clients: the tests pass stubbed ones)."""
    account = _AwsAccount(session)
    return [account.status(n) for n in needs]


class _AwsAccount:
    """One account's clients and listings, each read once however many needs share a service and region."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.clients: dict[tuple[str, str], Any] = {}
        self.listed: dict[tuple[str, str], list[dict[str, Any]] | Exception] = {}
        self.defaults: dict[tuple[str, str], list[dict[str, Any]] | Exception] = {}
        self.endpoint_instances: dict[str, dict[str, int] | Exception] = {}

    def client(self, name: str, region: str) -> Any:
        if (name, region) not in self.clients:
            self.clients[name, region] = self.session.client(name, region_name=region)
        return self.clients[name, region]

    def status(self, need: QuotaNeed) -> QuotaStatus:
        errors = _botocore_errors()
        try:
            quota, notes = self.quota(need)
        except errors as exc:
            return unknown(need, f"Service Quotas: {_aws_error(exc)}", _aws_increase(need, need.quota_code, None))
        if quota is None:
            what = need.quota_code or repr(need.quota_name)
            return unknown(need, f"no quota {what} in Service Quotas for {need.service} in {need.region}",
                            _aws_increase(need, need.quota_code, None))
        code = quota.get("QuotaCode") or need.quota_code
        value = quota.get("Value")
        if value is None:
            reason = (quota.get("ErrorReason") or {}).get("ErrorCode", "no value returned")
            return unknown(need, f"Service Quotas has no value for {code}: {reason}",
                            _aws_increase(need, code, None))
        if quota.get("Adjustable") is False:
            notes.append("not adjustable: Service Quotas takes no increase request for it")
        try:
            usage, how = self.usage(need, quota)
        except errors as exc:
            usage, how = None, f"usage not read: {_aws_error(exc)}"
        if how:
            notes.append(how)
        return evaluate(need, float(value), usage, notes, lambda u: _aws_increase(need, code, u))

    def quota(self, need: QuotaNeed) -> tuple[dict[str, Any] | None, list[str]]:
        """The applied quota the need names (by code, else by name), or the AWS default where the account has no
        applied value listed."""
        sq = self.client("service-quotas", need.region)
        found = _match_aws(self.listing(self.listed, sq, "list_service_quotas", need), need)
        if found is not None:
            return found, []
        # Service Quotas lists only quotas with an applied value available; the others run at AWS's default.
        if need.quota_code:
            quota = sq.get_aws_default_service_quota(ServiceCode=need.service, QuotaCode=need.quota_code)["Quota"]
        else:
            quota = _match_aws(self.listing(self.defaults, sq, "list_aws_default_service_quotas", need), need)
        note = "no applied value listed: the AWS default applies"
        return quota, [note] if quota is not None else []

    def listing(self, cache: dict[tuple[str, str], list[dict[str, Any]] | Exception], sq: Any, operation: str,
                need: QuotaNeed) -> list[dict[str, Any]]:
        key = (need.service, need.region)
        if key not in cache:
            try:
                quotas: list[dict[str, Any]] = []
                for page in sq.get_paginator(operation).paginate(ServiceCode=need.service):
                    quotas.extend(page.get("Quotas", []))
                cache[key] = quotas
            except _botocore_errors() as exc:
                # Cached too: a denied listing is denied for every need of the service, one call says so.
                cache[key] = exc
        got = cache[key]
        if isinstance(got, Exception):
            raise got
        return got

    def usage(self, need: QuotaNeed, quota: Mapping[str, Any]) -> tuple[float | None, str]:
        """What is in use now, and how it was read."""
        metric = quota.get("UsageMetric") or {}
        if metric.get("MetricNamespace") and metric.get("MetricName"):
            return self.metric_usage(need.region, metric)
        m = SAGEMAKER_ENDPOINT_QUOTA.match(need.quota_name or "")
        if need.service == "sagemaker" and m:
            count = self.sagemaker_instances(need.region).get(m.group(1), 0)
            return float(count), (f"usage: {count} {m.group(1)} counted over the account's SageMaker endpoints "
                                  f"in {need.region}")
        return None, ""

    def metric_usage(self, region: str, metric: Mapping[str, Any]) -> tuple[float | None, str]:
        stat = metric.get("MetricStatisticRecommendation") or "Maximum"
        now = datetime.now(UTC)
        answer = self.client("cloudwatch", region).get_metric_statistics(
            Namespace=metric["MetricNamespace"], MetricName=metric["MetricName"],
            Dimensions=[{"Name": k, "Value": v} for k, v in sorted((metric.get("MetricDimensions") or {}).items())],
            StartTime=now - USAGE_WINDOW, EndTime=now, Period=USAGE_PERIOD_S, Statistics=[stat])
        points = [p[stat] for p in answer.get("Datapoints", []) if stat in p]
        where = f"CloudWatch {metric['MetricNamespace']} {metric['MetricName']} ({stat}, last hour)"
        if not points:
            # The AWS/Usage metrics are published only while something is in use.
            return 0.0, f"usage: none in {where}"
        return max(points), f"usage from {where}"

    def sagemaker_instances(self, region: str) -> dict[str, int]:
        """Instances per type over the region's endpoints: live variants, shadow variants, and the new fleet of
        a blue/green update under way (it holds instances as much as the old one)."""
        if region not in self.endpoint_instances:
            try:
                self.endpoint_instances[region] = self._count_endpoints(self.client("sagemaker", region))
            except _botocore_errors() as exc:
                self.endpoint_instances[region] = exc
        got = self.endpoint_instances[region]
        if isinstance(got, Exception):
            raise got
        return got

    @staticmethod
    def _count_endpoints(sm: Any) -> dict[str, int]:
        counts: dict[str, int] = {}
        configs: dict[str, dict[str, str]] = {}

        def config_types(name: str | None) -> dict[str, str]:
            # DescribeEndpoint's variant summaries carry no instance type: the endpoint config has it.
            if not name:
                return {}
            if name not in configs:
                cfg = sm.describe_endpoint_config(EndpointConfigName=name)
                configs[name] = {v["VariantName"]: v["InstanceType"]
                                 for v in [*cfg.get("ProductionVariants", []), *cfg.get("ShadowProductionVariants", [])]
                                 if v.get("InstanceType")}
            return configs[name]

        def add(variants: Iterable[Mapping[str, Any]], config: str | None) -> None:
            for v in variants:
                pools = v.get("InstancePools") or []
                if pools:  # a heterogeneous variant: the count per type is in its pools
                    for p in pools:
                        counts[p["InstanceType"]] = counts.get(p["InstanceType"], 0) + p.get("CurrentInstanceCount", 0)
                    continue
                if not v.get("CurrentInstanceCount"):
                    continue
                # A pending variant names its type; a live one does not, and its config is read only then.
                kind = v.get("InstanceType") or config_types(config).get(v.get("VariantName", ""))
                if kind:
                    counts[kind] = counts.get(kind, 0) + v.get("CurrentInstanceCount", 0)

        for page in sm.get_paginator("list_endpoints").paginate():
            for summary in page.get("Endpoints", []):
                ep = sm.describe_endpoint(EndpointName=summary["EndpointName"])
                add([*ep.get("ProductionVariants", []), *ep.get("ShadowProductionVariants", [])],
                    ep.get("EndpointConfigName"))
                pending = ep.get("PendingDeploymentSummary") or {}
                add([*pending.get("ProductionVariants", []), *pending.get("ShadowProductionVariants", [])],
                    pending.get("EndpointConfigName"))
        return counts


def _match_aws(quotas: Iterable[Mapping[str, Any]], need: QuotaNeed) -> dict[str, Any] | None:
    for q in quotas:
        if need.quota_code and q.get("QuotaCode") == need.quota_code:
            return dict(q)
    if need.quota_code:
        return None
    name = (need.quota_name or "").strip().casefold()
    return next((dict(q) for q in quotas if (q.get("QuotaName") or "").strip().casefold() == name), None)


def _aws_increase(need: QuotaNeed, code: str | None, usage: float | None) -> str:
    """The Service Quotas console page and `aws service-quotas request-service-quota-increase` for the value the
    plan needs; without a code, the command that finds it by name."""
    console = f"https://{need.region}.console.aws.amazon.com/servicequotas/home/services/{need.service}/quotas"
    if not code:
        name = (need.quota_name or "").replace("'", "\\'")
        return (f"console: {console} (search {need.quota_name!r})\n"
                f"find its code: aws service-quotas list-service-quotas --service-code {need.service} "
                f"--region {need.region} --query \"Quotas[?QuotaName=='{name}'].QuotaCode\"\n"
                f"then: aws service-quotas request-service-quota-increase --service-code {need.service} "
                f"--quota-code <code> --desired-value {desired(need, usage)} --region {need.region}")
    return (f"console: {console}/{code}\n"
            f"cli: aws service-quotas request-service-quota-increase --service-code {need.service} "
            f"--quota-code {code} --desired-value {desired(need, usage)} --region {need.region}")


def _aws_error(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and response.get("Error"):
        err = response["Error"]
        message = err.get("Message") or ""
        return f"{err.get('Code', type(exc).__name__)}" + (f": {message}" if message else "")
    return f"{type(exc).__name__}: {exc}"


def _botocore_errors() -> tuple[type[Exception], ...]:
    # Imported here: the module loads without botocore (a GCP-only check), like selfhost/stage.py's boto3.
    from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

    return (BotoCoreError, ClientError)


def _default_aws_session() -> Any:
    """The environment's session, or None where it finds no credentials (so no call is tried to fail)."""
    import boto3

    session = boto3.Session()
    try:
        return session if session.get_credentials() is not None else None
    except _botocore_errors():
        return None

