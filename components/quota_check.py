"""`selfhost quota <stack> --check`: the plan's quota needs (components/quotas.py) against the account's applied
quotas, before `pulumi up` finds out halfway through a rollout.

Read-only: nothing here requests an increase, it only says how (the console page and the CLI command, for the
value the plan needs). Every failure to read (no credentials, a denied permission, an API not enabled, a quota the
region does not offer) is a status `unknown` whose note says why, never an exception: the check is a preflight
and a partial answer is still worth printing.

This module is the dispatch of each need to its platform's reader (`Platform.quota_reader()`,
components/targets/registry.py), which reads that platform's APIs (components/<platform>/online/quotas.py, each
saying what it reads and the permissions that takes) and returns components/quotas.py's `QuotaStatus`, worked out
by `evaluate` there. A need whose platform has no reader is `unknown`, saying so. Online: only `selfhost quota
--check` imports it.

Usage counts whatever runs now, this stack's own resources included when they already exist: on an update of a
deployed stack the check is conservative by what the stack itself runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from .quotas import USAGE_UNREPORTED, WHOLE_UNITS, QuotaNeed, QuotaStatus, desired, evaluate, unknown

NO_CLIENTS: Mapping[str, Any] = MappingProxyType({})
__all__ = ["NO_CLIENTS", "USAGE_UNREPORTED", "WHOLE_UNITS", "QuotaStatus", "check", "desired", "evaluate",
           "unknown"]


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

