"""`selfhost quota <stack> --check`: the plan's quota needs (components/quotas.py) against the account's applied
quotas, before `pulumi up` finds out halfway through a rollout.

Read-only: nothing here requests an increase, it only says how (the console page and the CLI command, for the
value the plan needs). Every failure to read (no credentials, a denied permission, an API not enabled, a quota the
region does not offer) is a status `unknown` whose note says why, never an exception: the check is a preflight
and a partial answer is still worth printing.

What it reads, and the permissions that takes:
- AWS, per region: Service Quotas `ListServiceQuotas` (the applied values; `GetAWSDefaultServiceQuota` or
  `ListAWSDefaultServiceQuotas` for a quota listed without one), CloudWatch `GetMetricStatistics` for the usage
  metric a quota names, and for SageMaker endpoint-usage quotas without one, `ListEndpoints`, `DescribeEndpoint`
  and `DescribeEndpointConfig` to count the instances running (servicequotas:List*/Get*, cloudwatch:
  GetMetricStatistics, sagemaker:ListEndpoints/DescribeEndpoint/DescribeEndpointConfig).
- Google Cloud, per project: Compute Engine `regions.get` and `projects.get` (limits and usage, compute.regions.get
  and compute.projects.get); for Vertex AI, and for Compute Engine's "GPUs per GPU family" quota that regions.get
  does not list, the Cloud Quotas API's `quotaInfos` list (limits only; cloudquotas.quotas.get, and the API enabled
  in the project).

Usage counts whatever runs now, this stack's own resources included when they already exist: on an update of a
deployed stack the check is conservative by what the stack itself runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from .quotas import QuotaNeed

State = Literal["enough", "short", "unknown"]

# Units counted in whole items: a shortfall of 2.5 GPUs is a request for 3.
WHOLE_UNITS = {"instances", "GPUs", "vCPUs"}
NO_AWS_CREDENTIALS = "no credentials: run with AWS credentials (a profile, `aws sso login`, or the environment)"
NO_GCP_CREDENTIALS = "no credentials: run `gcloud auth application-default login` (or set a service account)"
USAGE_UNREPORTED = "usage not reported by this API: enough only if nothing else uses it"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
COMPUTE = "https://compute.googleapis.com/compute/v1"
CLOUD_QUOTAS = "https://cloudquotas.googleapis.com/v1"
GCP_CONSOLE = "https://console.cloud.google.com/iam-admin/quotas"
# CloudWatch's AWS/Usage metrics are published every minute; the peak of the last hour is the usage, so that a
# fleet that scaled in a minute ago still counts.
USAGE_WINDOW = timedelta(hours=1)
USAGE_PERIOD_S = 60
# A paginated listing that never ends is a broken server, not a reason to hang the preflight.
MAX_PAGES = 100
SAGEMAKER_ENDPOINT_QUOTA = re.compile(r"^(ml\.\S+) for endpoint usage$")
# How the quota table names the gpu_family dimension of Compute Engine's "GPUs per GPU family" quota.
GPU_FAMILY = re.compile(r"\(gpu_family=([A-Z0-9_]+)\)")


@dataclass(frozen=True)
class QuotaStatus:
    """One need against the quota the account has."""

    need: QuotaNeed
    limit: float | None
    """The applied quota (math.inf where unlimited); None where it could not be read."""
    usage: float | None
    """In use now, where the API reports it; None where it does not (the Cloud Quotas API) or could not be read."""
    state: State
    short_by: float
    """How much more the plan needs during an update (its peak, `at_update`), over what is free; 0 when enough."""
    note: str = ""
    increase: str = ""
    """The console page and the CLI command that request the value the plan needs; empty when enough."""


def check(needs: Iterable[QuotaNeed], *, aws_session: Any = None, gcp_http: Any = None,
          gcp_credentials: Any = None) -> list[QuotaStatus]:
    """Every need's status, in the order given. `aws_session` (a boto3 Session) and `gcp_credentials` (google-auth
    credentials, or an access token) default to the environment's; `gcp_http` (an httpx.Client or anything with its
    `get`) to a new client."""
    needs = list(needs)
    out: dict[int, QuotaStatus] = {}
    aws = [(i, n) for i, n in enumerate(needs) if n.platform == "aws"]
    gcp = [(i, n) for i, n in enumerate(needs) if n.platform == "gcp"]
    for i, n in enumerate(needs):
        if n.platform not in ("aws", "gcp"):
            out[i] = _unknown(n, f"no quota check for platform {n.platform!r}")
    if aws:
        session = aws_session if aws_session is not None else _default_aws_session()
        if session is None:
            out.update((i, _unknown(n, NO_AWS_CREDENTIALS, _aws_increase(n, n.quota_code, None))) for i, n in aws)
        else:
            out.update(zip((i for i, _ in aws), check_aws([n for _, n in aws], session), strict=True))
    if gcp:
        credentials = gcp_credentials if gcp_credentials is not None else _default_gcp_credentials()
        if credentials is None:
            out.update((i, _unknown(n, NO_GCP_CREDENTIALS, _gcp_increase(n, None, None))) for i, n in gcp)
        else:
            http, close = (gcp_http, False) if gcp_http is not None else (_default_http(), True)
            try:
                out.update(zip((i for i, _ in gcp), check_gcp([n for _, n in gcp], credentials, http), strict=True))
            finally:
                if close:
                    http.close()
    return [out[i] for i in range(len(needs))]


def evaluate(need: QuotaNeed, limit: float, usage: float | None, notes: Sequence[str] = (),
             increase: Callable[[float | None], str] | None = None) -> QuotaStatus:
    """The status of `need` under `limit` with `usage` in use (None: not known, so the whole limit counts as
    free and the note says so). `increase(usage)` writes the instructions when the plan does not fit."""
    notes = list(notes)
    if math.isinf(limit):
        return QuotaStatus(need, limit, usage, "enough", 0.0, "; ".join(["unlimited", *notes]))
    free = limit - (usage or 0.0)
    short = _whole(need, need.at_update - free)
    if usage is None:
        notes.insert(0, USAGE_UNREPORTED)
    if short > 0 and need.at_max <= free:
        notes.append(f"fits at max ({_num(need.at_max)}) but not during an update (peak {_num(need.at_update)})")
    state: State = "short" if short > 0 else "enough"
    text = increase(usage) if increase and state == "short" else ""
    return QuotaStatus(need, limit, usage, state, short, "; ".join(notes), text)


def desired(need: QuotaNeed, usage: float | None) -> int:
    """The quota value the plan needs: what is in use plus its own peak, in whole units."""
    return math.ceil((usage or 0.0) + need.at_update - 1e-9)


# ---------------------------------------------------------------------------------------------------------- AWS


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
            return _unknown(need, f"Service Quotas: {_aws_error(exc)}", _aws_increase(need, need.quota_code, None))
        if quota is None:
            what = need.quota_code or repr(need.quota_name)
            return _unknown(need, f"no quota {what} in Service Quotas for {need.service} in {need.region}",
                            _aws_increase(need, need.quota_code, None))
        code = quota.get("QuotaCode") or need.quota_code
        value = quota.get("Value")
        if value is None:
            reason = (quota.get("ErrorReason") or {}).get("ErrorCode", "no value returned")
            return _unknown(need, f"Service Quotas has no value for {code}: {reason}",
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


# ------------------------------------------------------------------------------------------------- Google Cloud


class _Response(Protocol):
    status_code: int
    text: str

    def json(self) -> Any: ...


class Http(Protocol):
    """What check_gcp needs of an HTTP client: httpx.Client's `get` (requests.Session's has the same shape)."""

    def get(self, url: str, *, params: Mapping[str, str] | None = ..., headers: Mapping[str, str] | None = ...
            ) -> _Response: ...


class _GcpError(Exception):
    pass


def check_gcp(needs: Iterable[QuotaNeed], credentials_or_token: Any, http: Http) -> list[QuotaStatus]:
    """Each Google Cloud need against its project's quotas: Compute Engine's from `regions.get` or, for global
    ones, `projects.get` (limit and usage); Vertex AI's, and Compute Engine's per GPU family, from the Cloud Quotas
    API (limit only). `credentials_or_token`: google-auth credentials (refreshed here when needed) or a bearer
    token."""
    needs = list(needs)
    try:
        headers = _auth_headers(credentials_or_token)
    except Exception as exc:  # noqa: BLE001 - google-auth's refresh errors, whichever transport raised them
        return [_unknown(n, f"credentials: {type(exc).__name__}: {exc}", _gcp_increase(n, None, None)) for n in needs]
    reader = _GcpReader(http, headers)
    return [reader.status(n) for n in needs]


class _GcpReader:
    """One session's documents, each fetched once however many needs read it."""

    def __init__(self, http: Http, headers: Mapping[str, str]) -> None:
        self.http = http
        self.headers = dict(headers)
        self.docs: dict[str, dict[str, Any] | _GcpError] = {}
        self.infos: dict[tuple[str, str], list[dict[str, Any]] | _GcpError] = {}

    def status(self, need: QuotaNeed) -> QuotaStatus:
        if not need.project:
            return _unknown(need, "no project: the plan names none for this quota", _gcp_increase(need, None, None))
        try:
            # Compute Engine quotas with a regions.get metric come with their usage; the others (Vertex AI's, and
            # Compute Engine's "GPUs per GPU family", which regions.get does not list) only with their limit.
            if need.service == "compute.googleapis.com" and need.quota_code:
                return self.compute(need, need.quota_code)
            return self.cloud_quotas(need)
        except _GcpError as exc:
            return _unknown(need, str(exc), _gcp_increase(need, None, None))

    def get(self, url: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        try:
            r = self.http.get(url, params=dict(params or {}), headers=self.headers)
        except Exception as exc:  # noqa: BLE001 - the client is injected: whatever its transport raises
            raise _GcpError(f"GET {url}: {type(exc).__name__}: {exc}") from exc
        if r.status_code >= 400:
            raise _GcpError(f"GET {url}: HTTP {r.status_code} {_google_error(r)}")
        try:
            body = r.json()
        except ValueError as exc:
            raise _GcpError(f"GET {url}: not JSON: {r.text[:200]}") from exc
        if not isinstance(body, dict):
            raise _GcpError(f"GET {url}: unexpected answer: {r.text[:200]}")
        return body

    def doc(self, url: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        if url not in self.docs:
            try:
                self.docs[url] = self.get(url, params)
            except _GcpError as exc:
                self.docs[url] = exc
        got = self.docs[url]
        if isinstance(got, _GcpError):
            raise got
        return got

    def compute(self, need: QuotaNeed, metric: str) -> QuotaStatus:
        # Only the quotas (and a region's warning when it could not list them): the zone list and the project's
        # metadata are of no use here. A field the resource lacks would fail the request: Project has no warning.
        if need.region == "global":
            url, where, fields = f"{COMPUTE}/projects/{need.project}", f"project {need.project}", "quotas"
        else:
            url, where = f"{COMPUTE}/projects/{need.project}/regions/{need.region}", need.region
            fields = "quotas,quotaStatusWarning"
        doc = self.doc(url, {"fields": fields})
        row = next((q for q in doc.get("quotas", []) if q.get("metric") == metric), None)
        if row is None:
            warning = (doc.get("quotaStatusWarning") or {}).get("message")
            why = f"Compute Engine reports no {metric} quota in {where}"
            why += f": {warning}" if warning else " (is that GPU offered there?)"
            return _unknown(need, why, _gcp_increase(need, None, None))
        limit, usage = float(row.get("limit", 0.0)), float(row.get("usage", 0.0))
        return evaluate(need, limit, usage, [], lambda u: _gcp_increase(need, None, u))

    def cloud_quotas(self, need: QuotaNeed) -> QuotaStatus:
        key = (need.project or "", need.service)
        if key not in self.infos:
            try:
                self.infos[key] = self.list_quota_infos(need.project or "", need.service)
            except _GcpError as exc:
                self.infos[key] = exc
        got = self.infos[key]
        if isinstance(got, _GcpError):
            raise got
        # The table names Vertex AI's quota id in quota_name and its metric in quota_code; either matches.
        ids = {need.quota_code, need.quota_name} - {None, ""}
        infos = [i for i in got if i.get("quotaId") in ids or (need.metric and i.get("metric") == need.metric)]
        regional = [i for i in infos if ("region" in (i.get("dimensions") or [])) == (need.region != "global")]
        infos = regional or infos
        if not infos:
            what = need.metric or need.quota_code or need.quota_name
            return _unknown(need, f"Cloud Quotas lists no {what} for {need.service} in project {need.project}",
                            _gcp_increase(need, None, None))
        dims = _dimensions(need)
        if "gpu_family" not in dims and any("gpu_family" in (i.get("dimensions") or []) for i in infos):
            return _unknown(need, f"{infos[0].get('quotaId')} is per GPU family and the table names none for it",
                            _gcp_increase(need, infos[0].get("quotaId"), None))
        values = [(v, i) for i in infos if (v := _quota_info_value(i, dims)) is not None]
        if not values:
            where = ", ".join(f"{k}={v}" for k, v in dims.items()) or "global"
            return _unknown(need, f"{infos[0].get('quotaId')}: no value for {where}",
                            _gcp_increase(need, infos[0].get("quotaId"), None))
        limit, info = min(values, key=lambda vi: vi[0])
        notes = []
        eligibility = info.get("quotaIncreaseEligibility") or {}
        if info.get("isFixed") or eligibility.get("isEligible") is False:
            reason = eligibility.get("ineligibilityReason") or "fixed"
            notes.append(f"no increase can be requested ({reason})")
        return evaluate(need, limit, None, notes, lambda u: _gcp_increase(need, info.get("quotaId"), u))

    def list_quota_infos(self, project: str, service: str) -> list[dict[str, Any]]:
        url = f"{CLOUD_QUOTAS}/projects/{project}/locations/global/services/{service}/quotaInfos"
        infos: list[dict[str, Any]] = []
        token = ""
        for _ in range(MAX_PAGES):
            page = self.get(url, {"pageToken": token} if token else None)
            infos.extend(page.get("quotaInfos", []))
            token = page.get("nextPageToken") or ""
            if not token:
                return infos
        raise _GcpError(f"GET {url}: still paginating after {MAX_PAGES} pages")


def _quota_info_value(info: Mapping[str, Any], dims: Mapping[str, str]) -> float | None:
    """The value in force for `dims` (region, and gpu_family where the quota has it; none for a global quota).

    A row applies when every dimension it names has the wanted value, and the region is the one it names or is
    among its applicable locations (a row that lists none applies everywhere). Of those, as Cloud Quotas ranks
    its dimensions: the row naming the region first, then the one naming most dimensions, the default row last.
    """
    region = dims.get("region", "global")
    candidates: list[tuple[bool, int, Mapping[str, Any]]] = []
    for row in info.get("dimensionsInfos") or []:
        named = row.get("dimensions") or {}
        if any(dims.get(k) != v for k, v in named.items()):
            continue
        locations = row.get("applicableLocations") or []
        if "region" not in named and locations and region not in locations:
            continue
        candidates.append(("region" in named, len(named), row))
    if not candidates:
        return None
    row = max(candidates, key=lambda c: (c[0], c[1]))[2]
    # proto3 JSON: an int64 is a string, and a value of 0 is left out altogether.
    try:
        value = float((row.get("details") or {}).get("value", 0))
    except (TypeError, ValueError):
        return None
    return math.inf if value < 0 else value


def _dimensions(need: QuotaNeed) -> dict[str, str]:
    """The Cloud Quotas dimensions of the need: its region, and the GPU family a "GPUs per GPU family" row of
    the table names in its quota_name ("(gpu_family=NVIDIA_H100)")."""
    dims = {} if need.region == "global" else {"region": need.region}
    m = GPU_FAMILY.search(need.quota_name or "")
    if m:
        dims["gpu_family"] = m.group(1)
    return dims


def _compute_quota_id(metric: str, region: str) -> str:
    # Cloud Quotas names Compute Engine's quotas after the metric: CPUS -> CPUS-per-project-region (Google's own
    # example), GPUS_ALL_REGIONS -> GPUS-ALL-REGIONS-per-project.
    return metric.replace("_", "-") + ("-per-project" if region == "global" else "-per-project-region")


def _gcp_increase(need: QuotaNeed, quota_id: str | None, usage: float | None) -> str:
    """The console's quotas page (filtered by hand: its URL filter is not a documented form) and `gcloud quotas
    preferences create` for the value the plan needs; where the quota id was not read, the command that finds it."""
    project = need.project or "<project>"
    metric = need.metric or need.quota_code or need.quota_name
    dims = _dimensions(need)
    where = "".join(f", {k.replace('_', ' ')} {v}" for k, v in dims.items())
    lines = [f"console: {GCP_CONSOLE}?project={project} (filter: {metric}{where})"]
    derived = False
    if quota_id is None and need.service == "compute.googleapis.com" and need.quota_code:
        quota_id, derived = _compute_quota_id(need.quota_code, need.region), True
    elif quota_id is None and need.quota_name and not any(c.isspace() for c in need.quota_name):
        quota_id = need.quota_name  # the table's Vertex AI rows name the quota id there
    find = (f"gcloud quotas info list --service={need.service} --project={project} --filter=\"metric={metric}\" "
            f"--format=\"value(quotaId)\"")
    if quota_id is None:
        lines.append(f"find its id: {find}")
        quota_id = "<quota-id>"
    flag = f" --dimensions={','.join(f'{k}={v}' for k, v in dims.items())}" if dims else ""
    lines.append(f"cli: gcloud quotas preferences create --service={need.service} --project={project} "
                 f"--quota-id={quota_id} --preferred-value={desired(need, usage)}{flag}")
    if derived:
        lines.append(f"(if gcloud does not know that id: {find})")
    return "\n".join(lines)


def _google_error(r: _Response) -> str:
    """Google's error body ({"error": {"code", "message", "status", "errors": [{"reason"}]}}) as one line."""
    try:
        err = r.json().get("error") or {}
    except (ValueError, AttributeError):
        return r.text[:200]
    reasons = [e.get("reason") for e in err.get("errors") or [] if e.get("reason")]
    reasons += [d.get("reason") for d in err.get("details") or [] if isinstance(d, dict) and d.get("reason")]
    head = " ".join(x for x in [err.get("status"), *dict.fromkeys(reasons)] if x)
    return f"{head}: {err.get('message', '')}".strip(": ")


def _auth_headers(credentials_or_token: Any) -> dict[str, str]:
    if isinstance(credentials_or_token, str):
        return {"Authorization": f"Bearer {credentials_or_token}"}
    creds = credentials_or_token
    if not creds.valid:
        import google.auth.transport.requests

        creds.refresh(google.auth.transport.requests.Request())
    headers: dict[str, str] = {}
    # apply() also sets x-goog-user-project where the credentials name a quota project (user credentials need
    # one for the Cloud Quotas API).
    creds.apply(headers)
    return headers


def _default_gcp_credentials() -> Any:
    import google.auth
    import google.auth.exceptions

    try:
        credentials, _project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except google.auth.exceptions.DefaultCredentialsError:
        return None
    return credentials


def _default_http() -> Any:
    # httpx is imported only when no client is given (the tests always give one).
    import httpx

    return httpx.Client(timeout=30.0)


# ------------------------------------------------------------------------------------------------------ helpers


def _unknown(need: QuotaNeed, note: str, increase: str = "") -> QuotaStatus:
    return QuotaStatus(need, None, None, "unknown", 0.0, note, increase)


def _whole(need: QuotaNeed, amount: float) -> float:
    if amount <= 1e-9:
        return 0.0
    return float(math.ceil(amount - 1e-9)) if need.unit in WHOLE_UNITS else amount


def _num(x: float) -> str:
    return f"{x:g}"
