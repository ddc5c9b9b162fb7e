"""`selfhost quota <stack> --check`: the plan's quota needs (components/quotas.py) against the account's applied
quotas, before `pulumi up` finds out halfway through a rollout.

Read-only: nothing here requests an increase, it only says how (the console page and the CLI command, for the
value the plan needs). Every failure to read (no credentials, a denied permission, an API not enabled, a quota the
region does not offer) is a status `unknown` whose note says why, never an exception: the check is a preflight
and a partial answer is still worth printing.

This module is the generic part: the status of a need against a limit and its usage (`evaluate`), and the
dispatch of each need to its platform's reader (`Platform.quota_reader()`, components/targets/registry.py),
which reads that platform's APIs (components/<platform>/online/quotas.py, each saying what it reads and the
permissions that takes). A need whose platform has no reader is `unknown`, saying so.

Usage counts whatever runs now, this stack's own resources included when they already exist: on an update of a
deployed stack the check is conservative by what the stack itself runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from .quotas import QuotaNeed

State = Literal["enough", "short", "unknown"]

# Units counted in whole items: a shortfall of 2.5 GPUs is a request for 3.
WHOLE_UNITS = {"instances", "GPUs", "vCPUs"}
USAGE_UNREPORTED = "usage not reported by this API: enough only if nothing else uses it"
NO_CLIENTS: Mapping[str, Any] = MappingProxyType({})


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


def check(needs: Iterable[QuotaNeed], clients: Mapping[str, Any] = NO_CLIENTS) -> list[QuotaStatus]:
    """Every need's status, in the order given, each read by its platform's reader (`Platform.quota_reader()`).
    `clients`: platform name -> what that reader reads with (its API client or credentials, as the reader's
    `check` documents: the tests pass stand-ins); a platform not in it reads with the environment's."""
    from .targets.registry import PLATFORMS

    needs = list(needs)
    out: dict[int, QuotaStatus] = {}
    by_platform: dict[str, list[int]] = {}
    for i, n in enumerate(needs):
        by_platform.setdefault(n.platform, []).append(i)
    for name, indices in by_platform.items():
        platform = PLATFORMS.get(name)
        reader = platform.quota_reader() if platform is not None else None
        if reader is None:
            why = "no such platform registered" if platform is None else "the platform has no quota reader"
            out.update((i, unknown(needs[i], f"no quota check for platform {name!r} ({why})")) for i in indices)
            continue
        statuses = reader.check([needs[i] for i in indices], clients.get(name))
        out.update(zip(indices, statuses, strict=True))
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
