"""Azure quotas for `selfhost quota --check` (components/quota_check.py asks this reader through the platform,
components/targets/azure.py).

What it reads: Azure Machine Learning's usages per subscription and region,
`GET https://management.azure.com/subscriptions/{sub}/providers/Microsoft.MachineLearningServices/locations/{region}/usages`
(api-version 2025-09-01, the newest stable version in Azure/azure-rest-api-specs, specification/machinelearningservices/
resource-manager/Microsoft.MachineLearningServices/stable/2025-09-01; read 2026-12-08). It lists, with limit and
current value: the clusters count ("Clusters"), the total dedicated cores ("Total Cluster Dedicated Regional vCPUs"),
each VM family's dedicated cores (name.value `standardNCSv3Family`, localizedValue "Standard NCSv3 Family Cluster
Dedicated vCPUs", as a public script in the code index reads them; the REST spec's example writes the display name in
both), and the same per workspace and per compute (those rows are not the subscription's quota and are ignored).
A need matches a row by the quota table's code (the family, `standardNCADSA100v4Family`) or name, compared without
case, spaces or underscores, so "standard NCASv3_T4 Family" (the SKU list's spelling) and `standardNCASv3_T4Family`
are one. A limit of -1 is no limit.

Credentials: a bearer token for https://management.azure.com/ from the Azure CLI (`az account get-access-token`;
permission Microsoft.MachineLearningServices/locations/usages/read, which Reader has). The subscription: the need's
`project` (the plan's subscription id), else the CLI's current one (`az account show`). Every failure to read is an
`unknown` status whose note says why, never an exception.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from ...quotas import Http, HttpResponse, QuotaNeed, QuotaReader, QuotaStatus, desired, evaluate, get_json, unknown

ARM = "https://management.azure.com"
USAGES_API_VERSION = "2025-09-01"
NO_AZURE_CREDENTIALS = "no credentials: run `az login` (the Azure CLI's token for https://management.azure.com/)"
NO_SUBSCRIPTION = "no subscription: the plan names none and `az account show` gave none (run `az login`)"
ML_QUOTA_PAGE = "https://ml.azure.com/quota"
# A paginated listing that never ends is a broken server, not a reason to hang the preflight.
MAX_PAGES = 50
CLI_TIMEOUT_S = 60


class AzureClient(NamedTuple):
    """What the reader reads with (a plain `(http, token, subscription)` tuple does as well)."""

    http: Any = None
    """An httpx.Client, or anything with its `get` (`Http`); None: a new httpx.Client, closed after."""
    token: str | None = None
    """A bearer token for https://management.azure.com/; None: the Azure CLI's."""
    subscription: str | None = None
    """The subscription of needs that name none; None: the Azure CLI's current one."""


# (argv) -> stdout, or None where the command is missing or failed; injected by tests.
RunCli = Callable[[Sequence[str]], str | None]


class AzureQuotaReader(QuotaReader):
    """The `azure` platform's reader. `client`: an `AzureClient` or `(http, token, subscription)` tuple, any part
    None for the default; None: every default. Without a token every need is `unknown`, saying how to get one, and
    nothing is requested."""

    def __init__(self, run_cli: RunCli | None = None) -> None:
        self.run_cli = run_cli or _run_cli

    def check(self, needs: Sequence[Any], client: Any = None) -> list[Any]:
        needs = list(needs)
        http, token, subscription = AzureClient(*(client or ()))
        if token is None:
            token = self.run_cli(["az", "account", "get-access-token", "--resource", f"{ARM}/",
                                  "--query", "accessToken", "-o", "tsv"])
        if not token:
            return [unknown(n, NO_AZURE_CREDENTIALS, _azure_increase(n, n.project or subscription, None))
                    for n in needs]
        if subscription is None and any(not n.project for n in needs):
            subscription = self.run_cli(["az", "account", "show", "--query", "id", "-o", "tsv"]) or None
        if http is not None:
            return check_azure(needs, token, http, subscription)
        # httpx is imported only when no client is given (the tests always give one).
        import httpx

        default_http: Any = httpx.Client(timeout=30.0)
        try:
            return check_azure(needs, token, default_http, subscription)
        finally:
            default_http.close()


class _AzureError(Exception):
    pass


def check_azure(needs: Iterable[QuotaNeed], token: str, http: Http, subscription: str | None = None
                ) -> list[QuotaStatus]:
    """Each need against its subscription's Azure ML usages in its region (`need.project`, else `subscription`)."""
    reader = _AzureReader(http, {"Authorization": f"Bearer {token}"})
    return [reader.status(n, n.project or subscription) for n in needs]


class _AzureReader:
    """One session's usage listings, each fetched once however many needs read it."""

    def __init__(self, http: Http, headers: Mapping[str, str]) -> None:
        self.http = http
        self.headers = dict(headers)
        self.usages: dict[tuple[str, str], list[dict[str, Any]] | _AzureError] = {}

    def status(self, need: QuotaNeed, subscription: str | None) -> QuotaStatus:
        if not subscription:
            return unknown(need, NO_SUBSCRIPTION, _azure_increase(need, None, None))
        if need.region == "global":
            return unknown(need, "Azure ML reports its usages per region; this need names none",
                           _azure_increase(need, subscription, None))
        try:
            rows = self.list_usages(subscription, need.region)
        except _AzureError as exc:
            return unknown(need, str(exc), _azure_increase(need, subscription, None))
        wanted = {_norm(x) for x in (need.quota_code, need.quota_name) if x}
        matches = [r for r in rows if _subscription_level(r) and _names(r) & wanted]
        if not matches:
            what = need.quota_code or need.quota_name
            return unknown(need, f"the Azure ML usages API reports no {what} for subscription {subscription} in "
                                 f"{need.region}", _azure_increase(need, subscription, None))
        row = matches[0]
        try:
            limit, usage = float(row.get("limit", "")), float(row.get("currentValue", 0.0))
        except (TypeError, ValueError):
            return unknown(need, f"{_display(row)}: limit {row.get('limit')!r} is not a number",
                           _azure_increase(need, subscription, None))
        notes = []
        if limit < 0:
            limit = math.inf
            notes.append("no limit of its own (-1)")
        return evaluate(need, limit, usage, notes, lambda u: _azure_increase(need, subscription, u))

    def list_usages(self, subscription: str, region: str) -> list[dict[str, Any]]:
        key = (subscription, region)
        if key not in self.usages:
            try:
                self.usages[key] = self._fetch(subscription, region)
            except _AzureError as exc:
                self.usages[key] = exc
        got = self.usages[key]
        if isinstance(got, _AzureError):
            raise got
        return got

    def _fetch(self, subscription: str, region: str) -> list[dict[str, Any]]:
        url: str | None = (f"{ARM}/subscriptions/{subscription}/providers/Microsoft.MachineLearningServices/"
                           f"locations/{region}/usages")
        params: Mapping[str, str] | None = {"api-version": USAGES_API_VERSION}
        rows: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            assert url is not None
            page = self._get(url, params)
            rows += [r for r in page.get("value") or [] if isinstance(r, dict)]
            # nextLink carries its own query (api-version and skip token).
            url, params = page.get("nextLink") or None, None
            if url is None:
                return rows
        raise _AzureError(f"GET usages in {region}: still paginating after {MAX_PAGES} pages")

    def _get(self, url: str, params: Mapping[str, str] | None) -> dict[str, Any]:
        return get_json(self.http, url, dict(params) if params else None, self.headers, _AzureError, _arm_error)


def _norm(name: str) -> str:
    """A quota name compared without case, spaces or punctuation: the SKU list writes "standard NCASv3_T4 Family"
    where the API's key is standardNCASv3_T4Family."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _names(row: Mapping[str, Any]) -> set[str]:
    name = row.get("name") or {}
    return {_norm(str(v)) for v in (name.get("value"), name.get("localizedValue")) if v} if isinstance(name, dict) \
        else set()


def _display(row: Mapping[str, Any]) -> str:
    name = row.get("name") or {}
    return str(name.get("localizedValue") or name.get("value") or "?") if isinstance(name, dict) else "?"


def _subscription_level(row: Mapping[str, Any]) -> bool:
    """The subscription's own quota, not a workspace's or a compute's share of it (those rows repeat the name)."""
    return "/workspaces/" not in str(row.get("id", "")).lower() and "workspace" not in str(row.get("type", "")).lower()


def _azure_increase(need: QuotaNeed, subscription: str | None, usage: float | None) -> str:
    """Where to ask for the value the plan needs: Azure ML's quota page (an increase of Azure ML cores is a request
    there or a support ticket: no CLI command sets it)."""
    sub = subscription or "<subscription>"
    lines = [f"console: {ML_QUOTA_PAGE} (subscription {sub}, region {need.region}: {need.quota_name}, request "
             f"{desired(need, usage)})"]
    if need.unit == "endpoints":
        lines.append("an endpoint limit is raised by a technical support ticket to the Azure ML team")
    lines.append(f"check: az rest --method get --url {ARM}/subscriptions/{sub}/providers/"
                 f"Microsoft.MachineLearningServices/locations/{need.region}/usages?api-version={USAGES_API_VERSION}")
    return "\n".join(lines)


def _arm_error(r: HttpResponse) -> str:
    """ARM's error body ({"error": {"code", "message"}}) as one line."""
    try:
        err = r.json().get("error") or {}
    except (ValueError, AttributeError):
        return r.text[:200]
    return f"{err.get('code', '')}: {err.get('message', '')}".strip(": ")


def _run_cli(argv: Sequence[str]) -> str | None:
    """The Azure CLI's answer, stripped; None where `az` is missing, fails or times out."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    out = done.stdout.strip()
    return out if done.returncode == 0 and out else None
