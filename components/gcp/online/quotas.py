"""Google Cloud quotas for `selfhost quota --check` (components/quota_check.py asks this reader through the
platform, components/targets/gcp.py).

What it reads, per project, and the permissions that takes: Compute Engine `regions.get` and `projects.get` (limits
and usage; compute.regions.get and compute.projects.get); for Vertex AI, and for Compute Engine's "GPUs per GPU
family" quota that regions.get does not list, the Cloud Quotas API's `quotaInfos` list (limits only;
cloudquotas.quotas.get, and the API enabled in the project). Every failure to read is an `unknown` status whose
note says why, never an exception.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from ...quotas import Http, HttpResponse, QuotaNeed, QuotaReader, QuotaStatus, desired, evaluate, get_json, unknown

NO_GCP_CREDENTIALS = "no credentials: run `gcloud auth application-default login` (or set a service account)"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
COMPUTE = "https://compute.googleapis.com/compute/v1"
CLOUD_QUOTAS = "https://cloudquotas.googleapis.com/v1"
GCP_CONSOLE = "https://console.cloud.google.com/iam-admin/quotas"
# A paginated listing that never ends is a broken server, not a reason to hang the preflight.
MAX_PAGES = 100
# How the quota table names the gpu_family dimension of Compute Engine's "GPUs per GPU family" quota.
GPU_FAMILY = re.compile(r"\(gpu_family=([A-Z0-9_]+)\)")


class GcpClient(NamedTuple):
    """What the reader reads with (a plain `(http, credentials)` pair does as well)."""

    http: Any = None
    """An httpx.Client, or anything with its `get` (`Http`); None: a new httpx.Client, closed after."""
    credentials: Any = None
    """google-auth credentials (refreshed when needed) or a bearer token; None: the application-default ones."""


class GcpQuotaReader(QuotaReader):
    """The `gcp` platform's reader. `client`: a `GcpClient` or `(http, credentials)` pair, either part None for
    the default (see `GcpClient`); None: both defaults. Without credentials every need is `unknown`, saying how to
    get them, and nothing is requested."""

    def check(self, needs: Sequence[Any], client: Any = None) -> list[Any]:
        needs = list(needs)
        http, credentials = GcpClient(*(client or ()))
        if credentials is None:
            credentials = _default_gcp_credentials()
        if credentials is None:
            return [unknown(n, NO_GCP_CREDENTIALS, _gcp_increase(n, None, None)) for n in needs]
        if http is not None:
            return check_gcp(needs, credentials, http)
        http = _default_http()
        try:
            return check_gcp(needs, credentials, http)
        finally:
            http.close()


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
        return [unknown(n, f"credentials: {type(exc).__name__}: {exc}", _gcp_increase(n, None, None)) for n in needs]
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
            return unknown(need, "no project: the plan names none for this quota", _gcp_increase(need, None, None))
        try:
            # Compute Engine quotas with a regions.get metric come with their usage; the others (Vertex AI's, and
            # Compute Engine's "GPUs per GPU family", which regions.get does not list) only with their limit.
            if need.service == "compute.googleapis.com" and need.quota_code:
                return self.compute(need, need.quota_code)
            return self.cloud_quotas(need)
        except _GcpError as exc:
            return unknown(need, str(exc), _gcp_increase(need, None, None))

    def get(self, url: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        return get_json(self.http, url, dict(params or {}), self.headers, _GcpError, _google_error)

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
            return unknown(need, why, _gcp_increase(need, None, None))
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
            return unknown(need, f"Cloud Quotas lists no {what} for {need.service} in project {need.project}",
                            _gcp_increase(need, None, None))
        dims = _dimensions(need)
        if "gpu_family" not in dims and any("gpu_family" in (i.get("dimensions") or []) for i in infos):
            return unknown(need, f"{infos[0].get('quotaId')} is per GPU family and the table names none for it",
                            _gcp_increase(need, infos[0].get("quotaId"), None))
        values = [(v, i) for i in infos if (v := _quota_info_value(i, dims)) is not None]
        if not values:
            where = ", ".join(f"{k}={v}" for k, v in dims.items()) or "global"
            return unknown(need, f"{infos[0].get('quotaId')}: no value for {where}",
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


def _google_error(r: HttpResponse) -> str:
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

