"""`selfhost quota`: the quotas a stack's previewed plan needs (components/quotas.py), and with --check how the
account's applied quotas compare (components/quota_check.py), as JSON, a table or a pull request's markdown."""

from __future__ import annotations

from typing import Any

from components.cost import regions_of, resources_from_preview
from components.quotas import QuotaNeed, QuotaPlan, plan
from components.targets.registry import quota_rules


def plan_of(graph: dict[str, Any]) -> QuotaPlan:
    """The quota plan of a `selfhost preview --json` stack document, in the regions it exported."""
    return plan(resources_from_preview(graph), regions_of(graph.get("outputs") or {}), quota_rules())


def to_json(stack: str, quota_plan: QuotaPlan, statuses: list[Any] | None = None) -> dict[str, Any]:
    by_need = {id(s.need): s for s in statuses or []}
    return {
        "stack": stack,
        "needs": [{**_need_json(n), **({"check": _status_json(by_need[id(n)])} if id(n) in by_need else {})}
                  for n in quota_plan.needs],
        "capacityHints": [{"resource": h.resource, "severity": h.severity, "message": h.message}
                          for h in quota_plan.hints],
        "unknown": quota_plan.unknown,
        "checked": statuses is not None,
    }


def _need_json(n: QuotaNeed) -> dict[str, Any]:
    return {"need": n.need, "platform": n.platform, "service": n.service, "quotaName": n.quota_name,
            "quotaCode": n.quota_code, "metric": n.metric, "unit": n.unit, "region": n.region, "project": n.project,
            "atMin": n.at_min, "atMax": n.at_max, "atUpdate": n.at_update, "resources": list(n.resources),
            "source": n.source}


def _status_json(s: Any) -> dict[str, Any]:
    return {"state": s.state, "limit": s.limit, "usage": s.usage, "shortBy": s.short_by, "note": s.note,
            "increase": s.increase}


def amount(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def quota_label(n: dict[str, Any]) -> str:
    code = n["quotaCode"] or n["metric"]
    return f"{n['quotaName']} ({code})" if code and code != n["quotaName"] else n["quotaName"]


def markdown(report: dict[str, Any]) -> str:
    """The pull request's "quotas needed" section of one stack."""
    lines = [f"#### Quotas needed: `{report['stack']}`", ""]
    if not report["needs"] and not report["unknown"]:
        lines += ["No cloud quota: nothing in this plan draws on a cloud's per-account quotas.", ""]
        lines += [f"- Capacity: `{h['resource']}`: {h['message']}" for h in report["capacityHints"]]
        return "\n".join([*lines, ""])
    checked = report["checked"]
    head = "| service | quota | region | unit | at min | at max | during an update |"
    lines += [head + (" limit | state |" if checked else ""),
              "|---|---|---|---|---:|---:|---:|" + ("---:|---|" if checked else "")]
    for n in report["needs"]:
        row = (f"| {n['service']} | {quota_label(n)} | {n['region']} | {n['unit']} | {amount(n['atMin'])} | "
               f"{amount(n['atMax'])} | {amount(n['atUpdate'])} |")
        if checked:
            c = n.get("check") or {}
            limit = "unknown" if c.get("limit") is None else amount(c["limit"])
            state = c.get("state", "unknown")
            row += f" {limit} | {'**short by ' + amount(c['shortBy']) + '**' if state == 'short' else state} |"
        lines.append(row)
    lines.append("")
    if not checked:
        lines += ["Offline: these are the amounts to have, not a check of the account "
                  "(`selfhost quota <stack> --check` reads the applied quotas with credentials).", ""]
    for n in report["needs"]:
        c = n.get("check") or {}
        if c.get("state") == "short":
            lines += [f"- `{n['quotaName']}` in {n['region']}: {c['note']} To raise it: {c['increase']}"]
    for u in report["unknown"]:
        lines.append(f"- **No quota known** for {u}: check the provider's quota page by hand.")
    for h in report["capacityHints"]:
        lines.append(f"- {'**Capacity**' if h['severity'] == 'warning' else 'Capacity'}: `{h['resource']}`: "
                     f"{h['message']}")
    lines.append("")
    return "\n".join(lines)
