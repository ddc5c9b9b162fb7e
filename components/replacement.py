"""The vocabulary of the plan diff (`selfhost preview --base`; selfhost/plan_diff.py is the engine): when a provider
replaces a resource rather than updating it in place, as each platform states it for its types
(components/<platform>/replacement.py, returned by `Platform.replacement_rules()`).

The offline preview has no provider to ask whether a change replaces a resource, so a rule says it per resource
type, from the provider's own source, each rule citing it (`Rule.source`). A type with no rule shows as `update?`:
the real `pulumi preview` against the stack decides.

Pure: no provider SDK is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass

EVERY = "*"  # a key matching every input path


@dataclass(frozen=True)
class Rule:
    """When a provider replaces a resource of one type rather than updating it in place."""

    replace: tuple[str, ...] = ()
    """Input paths (as the preview's secretInputs write them: `a.b[0].c`) whose change forces a replacement;
    a key covers every path below it. EVERY: all inputs (an immutable resource)."""
    maybe: tuple[str, ...] = ()
    """Paths whose change may force one: the provider decides from values or state the preview lacks."""
    except_: tuple[str, ...] = ()
    """With EVERY: the inputs that still update in place (tags)."""
    complete: bool = True
    """The source lists every replace-on-change input: any other change is an in-place update. False: other
    changes show as `update?`."""
    risk: str | None = None
    """Why a user would not want this replaced (data loss, downtime, a new address): a warning when it is."""
    removal: str | None = None
    """Why its removal hurts: a warning when it is removed."""
    note: str | None = None
    """What a replacement means for this type."""
    updates: tuple[tuple[str, str], ...] = ()
    """(path, what an in-place change of it does)."""
    source: str = ""


PROVIDER_PREFIX = "pulumi:providers:"
"""The type prefix of every explicit provider (Pulumi's own, whatever the package)."""

PROVIDER = Rule(
    maybe=(EVERY,), complete=False,
    risk="every resource this provider manages may be replaced with it",
    source="a provider's configuration change can replace the provider; the offline preview cannot tell")
"""An explicit provider no platform has a rule for."""
