"""Quota preflight: the cloud quotas a stack's plan needs, read from the previewed graph (never from the config on
its own), at its minimum and maximum scale and during an update.

Each platform or target kind that declares capacity registers a rule per resource type (`quota_rules`, as it does
`cost_rules`); a rule returns `QuotaNeed`s named by the quota table's keys (components/catalog/quotas.py), and
`needs` sums them per quota and region. `components/quota_check.py` compares them with an account's applied
quotas (`selfhost quota --check`).
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from .cost_rules import Resource


@dataclass(frozen=True)
class QuotaNeed:
    """How much of one quota the plan needs, in one region (or globally)."""

    need: str
    """The quota table's key (components/catalog/data/quotas.csv), e.g. `sagemaker-endpoint:ml.g5.2xlarge`."""
    platform: str
    """The `Platform.name` whose quota it is (the quota table's `platform`)."""
    service: str
    """`sagemaker`, `ec2`, `compute.googleapis.com`, `aiplatform.googleapis.com`."""
    quota_name: str
    quota_code: str | None
    """AWS Service Quotas code (L-...), or the Compute Engine metric (`NVIDIA_L4_GPUS`); None where unknown."""
    metric: str | None
    """Google Cloud's quota metric (`compute.googleapis.com/nvidia_l4_gpus`); None on AWS."""
    unit: str
    """`instances`, `vCPUs`, `GPUs`."""
    region: str
    """The region the quota applies in, or `global`."""
    at_min: float
    at_max: float
    at_update: float
    """The most in use while an update rolls out (blue/green fleets, surge instances): at least `at_max`."""
    resources: tuple[str, ...] = ()
    """The resources that need it."""
    project: str | None = None
    """Google Cloud: the project the quota belongs to."""
    source: str = ""
    """Where the quota's name and code were read (the table's source)."""


@dataclass(frozen=True)
class CapacityHint:
    """Something about the plan that makes capacity harder to get than the quota alone says."""

    resource: str
    severity: str
    """`ok`, `warning`."""
    message: str


@dataclass
class QuotaPlan:
    needs: list[QuotaNeed] = field(default_factory=list)
    hints: list[CapacityHint] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    """Resources that need capacity whose quota the table lacks (named, never dropped)."""




@dataclass(frozen=True)
class Missing:
    """A resource needs capacity under a quota the table lacks."""

    need: str
    resource: str


QuotaItem = QuotaNeed | CapacityHint | Missing
QuotaRule = Callable[[Resource, "QuotaCtx"], list[QuotaItem]]


@dataclass(frozen=True)
class QuotaCtx:
    regions: dict[str, str]
    """Platform -> the stack's region."""
    siblings: dict[str | None, list[Resource]]

    def sibling(self, r: Resource, token: str) -> Resource | None:
        return next((s for s in self.siblings.get(r.component, []) if s.type == token), None)

    def need(self, key: str, r: Resource, at_min: float, at_max: float, at_update: float | None = None,
             region: str | None = None, project: str | None = None) -> QuotaItem:
        """The quota `key` of the table, needed by `r` in `region` (default: the platform's)."""
        from .catalog.quotas import quota_for

        row = quota_for(key)
        if row is None:
            return Missing(key, r.name)
        where = "global" if row.scope == "global" else region or self.regions.get(row.platform, "")
        return QuotaNeed(key, row.platform, row.service, row.quota_name, row.quota_code, getattr(row, "metric", None),
                         row.unit, where, at_min, at_max, max(at_max, at_max if at_update is None else at_update),
                         (r.name,), project, f"{row.source} ({row.as_of})")


def plan(resources: Iterable[Resource], regions: dict[str, str], rules: Mapping[str, QuotaRule]) -> QuotaPlan:
    """Every quota the resources need by `rules` (resource type -> rule: the registry's), summed per quota, region
    and project; the capacity hints; and what the table cannot name."""
    resources = list(resources)
    siblings: dict[str | None, list[Resource]] = {}
    for r in resources:
        siblings.setdefault(r.component, []).append(r)
    ctx = QuotaCtx(regions, siblings)
    out = QuotaPlan()
    summed: dict[tuple[str, str, str | None], QuotaNeed] = {}
    for r in resources:
        rule = rules.get(r.type)
        for item in rule(r, ctx) if rule else []:
            if isinstance(item, CapacityHint):
                out.hints.append(item)
            elif isinstance(item, Missing):
                out.unknown.append(f"{item.resource}: {item.need}")
            else:
                key = (item.need, item.region, item.project)
                before = summed.get(key)
                summed[key] = item if before is None else dataclasses.replace(
                    before, at_min=before.at_min + item.at_min, at_max=before.at_max + item.at_max,
                    at_update=before.at_update + item.at_update, resources=(*before.resources, *item.resources))
    out.needs = sorted(summed.values(), key=lambda n: (n.platform, n.service, n.region, n.need))
    return out


# ---------------------------------------------------------------------------------------------------------
# A need against the quota an account has (what a platform's reader returns: components/<platform>/online/quotas.py)

State = Literal["enough", "short", "unknown"]

# Units counted in whole items: a shortfall of 2.5 GPUs is a request for 3.
WHOLE_UNITS = {"instances", "GPUs", "vCPUs"}
USAGE_UNREPORTED = "usage not reported by this API: enough only if nothing else uses it"


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


# ------------------------------------------------------------------------------------------------------ helpers


def unknown(need: QuotaNeed, note: str, increase: str = "") -> QuotaStatus:
    """The status of a need that could not be read: `note` says why, `increase` how to ask all the same."""
    return QuotaStatus(need, None, None, "unknown", 0.0, note, increase)


def _whole(need: QuotaNeed, amount: float) -> float:
    if amount <= 1e-9:
        return 0.0
    return float(math.ceil(amount - 1e-9)) if need.unit in WHOLE_UNITS else amount


def _num(x: float) -> str:
    return f"{x:g}"


class HttpResponse(Protocol):
    """What a quota reader reads of an HTTP response (httpx's)."""

    status_code: int
    text: str

    def json(self) -> Any: ...


class Http(Protocol):
    """What a platform's quota reader needs of an HTTP client: httpx.Client's `get` (requests.Session's has the same
    shape), injected by tests."""

    def get(self, url: str, *, params: Mapping[str, str] | None = ..., headers: Mapping[str, str] | None = ...
            ) -> HttpResponse: ...


def get_json(http: Http, url: str, params: Mapping[str, str] | None, headers: Mapping[str, str],
             error: type[Exception], explain: Callable[[HttpResponse], str]) -> dict[str, Any]:
    """A quota API's JSON object at `url`: any failure (the transport, an HTTP error with `explain`'s reading of the
    provider's error body, a body that is not a JSON object) is an `error` naming the URL, for the reader to turn
    into an `unknown` status."""
    try:
        r = http.get(url, params=params, headers=headers)
    except Exception as exc:  # noqa: BLE001 - the client is injected: whatever its transport raises
        raise error(f"GET {url}: {type(exc).__name__}: {exc}") from exc
    if r.status_code >= 400:
        raise error(f"GET {url}: HTTP {r.status_code} {explain(r)}")
    try:
        body = r.json()
    except ValueError as exc:
        raise error(f"GET {url}: not JSON: {r.text[:200]}") from exc
    if not isinstance(body, dict):
        raise error(f"GET {url}: unexpected answer: {r.text[:200]}")
    return body


class QuotaReader(ABC):
    """One platform's reader of quotas and their usage (components/quota_check.py asks it)."""

    @abstractmethod
    def check(self, needs: Sequence[Any], client: Any = None) -> list[Any]:
        """A `quota_check.QuotaStatus` per need, in order; `client` stands in for the platform's API client or
        credentials (tests), else the environment's are used."""
