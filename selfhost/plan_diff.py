"""`selfhost preview <env> --base <ref>`: what a change does to a stack's resources, as a pull request reviewer
needs it: what is added, removed and changed, which changes replace a resource instead of updating it in place,
and which of those replacements lose data, cause downtime or give a resource a new address.

Pure functions over two documents of `selfhost preview --json` (the base may be None: the stack is new). Resources
are matched by URN. Inputs are compared in the provider's wire format, flattened to paths such as
`inputs.spec.template.spec.containers[0].image`. Secret values never appear: the preview holds only a marker for
them, so a changed secret is not even visible here.

The offline preview has no provider to ask whether a change replaces a resource, so each platform says it per
resource type of its packages, from the provider's own source, each rule cited (`Platform.replacement_rules()`:
components/<platform>/replacement.py, in components/replacement.py's terms); the registry merges them
(components/targets/registry.py `replacement_rules()`). A type with no rule shows as `update?`: the real
`pulumi preview` against the stack decides.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from components.replacement import EVERY, PROVIDER, PROVIDER_PREFIX, Rule
from components.schema import SECRET_PLACEHOLDER
from components.targets import registry

Effect = Literal["replace", "may-replace", "update", "unknown"]
Action = Literal["create", "delete", "update", "replace", "may-replace"]


def rule_for(type_: str) -> Rule | None:
    """The type's own rule, else the longest prefix rule it starts with (its platform's), else, for an explicit
    provider, the generic one."""
    exact, prefixes = registry.replacement_rules()
    if type_ in exact:
        return exact[type_]
    rule = next((rule for prefix, rule in prefixes if type_.startswith(prefix)), None)
    return PROVIDER if rule is None and type_.startswith(PROVIDER_PREFIX) else rule


def _deletes_first(type_: str) -> bool:
    """Its provider deletes one of that type before creating its replacement (Platform.deletes_before_replace)."""
    owner = registry.owner_of_type(type_)
    return owner is not None and owner.deletes_before_replace(type_)


def _notes(types: list[str]) -> list[str]:
    """What the owners of these types say once under the sources (Platform.replacement_note), each once."""
    notes: list[str] = []
    for t in types:
        owner = registry.owner_of_type(t)
        note = owner.replacement_note(t) if owner is not None else None
        if note and note not in notes:
            notes.append(note)
    return notes


@dataclass(frozen=True)
class InputChange:
    path: str
    """As shown: `inputs.primaryContainer.image`, `inputs.policy<json>.Statement[0].Action`, `options.protect`."""
    old: str | None
    """Shown value, "[secret]" for secrets, None when absent."""
    new: str | None
    effect: Effect
    raw: str = ""
    """The input property path the replacement table matches (`primaryContainer.image`, `policy`)."""


@dataclass
class ResourceChange:
    urn: str
    type: str
    name: str
    action: Action
    inputs: list[InputChange] = field(default_factory=list)
    known: bool = True
    """False: the type is not in the replacement table, or not all of its changed inputs are: an update may still
    turn out to be a replacement."""
    protect: bool = False
    risky: bool = False
    why: str | None = None
    """Why the replacement or removal hurts (risky), or what a replacement means."""
    notes: list[str] = field(default_factory=list)
    follows: list[str] = field(default_factory=list)
    """Names of replaced resources this change follows (its inputs hold their ids)."""

    @property
    def label(self) -> str:
        return "update?" if self.action == "update" and not self.known else self.action


@dataclass
class PlanDiff:
    stack: str
    base_ref: str | None
    new_stack: bool
    changes: list[ResourceChange]
    warnings: list[str]
    served: list[str] = field(default_factory=list)
    """What the targets serve that changed, in words: weights and LoRA adapters added, removed or moved to another
    source or revision (from the endpoint records' `weights` and `adapters`), so a reviewer need not read it out of
    an environment variable."""

    def count(self, *actions: Action) -> int:
        return sum(c.action in actions for c in self.changes)

    def summary(self) -> str:
        replaced, maybe = self.count("replace"), self.count("may-replace")
        return (f"{self.count('create')} to add, {self.count('update', 'replace', 'may-replace')} to change "
                f"({replaced} replaced{f', {maybe} may be replaced' if maybe else ''}), "
                f"{self.count('delete')} to remove")


ORDER: dict[str, int] = {"replace": 0, "may-replace": 1, "update": 2, "create": 3, "delete": 4}


# The temporary worktree previews_at_ref (selfhost/cost_report.py) previews the base in: absolute paths in the base
# (a docker build context) start with it where the head's start with the project root.
BASE_TREE = re.compile(r'(?:/[^/"\\\s]+)*?/selfhost-base-[^/"\\\s]+/tree(?=[/"])')


def plan_diff(base: dict[str, Any] | None, head: dict[str, Any], base_ref: str | None = None,
              project_root: str | None = None) -> PlanDiff:
    """What `head` changes against `base` (None: the stack does not exist at the base). Only custom resources
    count: components own no cloud object. With `project_root`, the base's worktree paths read as the project's,
    so where the base was previewed is not a change."""
    if base is not None and project_root:
        root = json.dumps(project_root)[1:-1]
        base = json.loads(BASE_TREE.sub(lambda _: root, json.dumps(base)))
    old = {r["urn"]: r for r in (base or {}).get("resources", []) if r.get("custom")}
    new = {r["urn"]: r for r in head["resources"] if r.get("custom")}
    changes: dict[str, ResourceChange] = {}
    for urn, r in new.items():
        if urn not in old:
            changes[urn] = ResourceChange(urn, r["type"], r["name"], "create", protect=bool(r.get("protect")))
        elif inputs := _input_changes(old[urn], r):
            changes[urn] = _classified(ResourceChange(urn, r["type"], r["name"], "update", inputs,
                                                      protect=bool(r.get("protect"))))
    for urn, r in old.items():
        if urn not in new:
            changes[urn] = ResourceChange(urn, r["type"], r["name"], "delete", protect=bool(r.get("protect")))
    _follow_replacements(changes, new)
    _moved(changes)
    ordered = sorted(changes.values(), key=lambda c: (ORDER[c.action], c.name, c.type))
    for c in ordered:
        _assess(c, new)
    return PlanDiff(stack=head["stack"], base_ref=base_ref, new_stack=base is None, changes=ordered,
                    warnings=[w for c in ordered if (w := _warning(c))],
                    served=served_changes(base.get("outputs") if base else None, head.get("outputs") or {}))


def served_changes(base: dict[str, Any] | None, head: dict[str, Any]) -> list[str]:
    """Each target's weights and adapters that differ between the two previews' stack outputs (`endpoints.<target>.
    weights`, `.adapters`: name -> where from). A new stack, or a new target, changes nothing here: it is all new."""
    if base is None:
        return []
    old_targets, new_targets = base.get("endpoints") or {}, head.get("endpoints") or {}
    lines: list[str] = []
    for target, record in new_targets.items():
        before = old_targets.get(target)
        if not isinstance(before, dict) or not isinstance(record, dict):
            continue
        if before.get("weights") != record.get("weights") and before.get("weights") and record.get("weights"):
            lines.append(f"{target}: weights {before['weights']} -> {record['weights']}")
        old, new = before.get("adapters") or {}, record.get("adapters") or {}
        lines += [f"{target}: adapter '{name}' added ({new[name]})" for name in new if name not in old]
        lines += [f"{target}: adapter '{name}' removed (was {old[name]})" for name in old if name not in new]
        lines += [f"{target}: adapter '{name}' {old[name]} -> {new[name]}" for name in new
                  if name in old and old[name] != new[name]]
    return lines


def _input_changes(old: dict[str, Any], new: dict[str, Any]) -> list[InputChange]:
    rule = rule_for(new["type"])
    secrets = set(old.get("secretInputs") or []) | set(new.get("secretInputs") or [])
    before, after = _leaves(old.get("inputs") or {}), _leaves(new.get("inputs") or {})
    out = []
    for path in [*after, *(p for p in before if p not in after)]:
        (raw_old, a), (raw_new, b) = before.get(path, ("", _ABSENT)), after.get(path, ("", _ABSENT))
        if a == b and type(a) is type(b):  # 1 == True == 1.0: a type change is a change
            continue
        raw = raw_new or raw_old
        hidden = _secret(raw, secrets) or SECRET_PLACEHOLDER in (a, b)
        out.append(InputChange(path, _shown(a, hidden), _shown(b, hidden), _effect(rule, raw), raw))
    # `protect` is Pulumi's own state: no provider call.
    if bool(old.get("protect")) != bool(new.get("protect")):
        out.append(InputChange("options.protect", _shown(bool(old.get("protect"))), _shown(bool(new.get("protect"))),
                               "update"))
    # Another explicit provider may be another cluster or account (the default providers are not recorded).
    if (old.get("provider") or None) != (new.get("provider") or None):
        out.append(InputChange("options.provider", _shown(old.get("provider") or _ABSENT),
                               _shown(new.get("provider") or _ABSENT), "may-replace"))
    return out


_ABSENT = object()
_PLAIN_KEY = re.compile(r"[A-Za-z_$][\w$-]*")


def _leaves(value: Any, shown: str = "inputs", raw: str = "", in_json: bool = False,
            out: dict[str, tuple[str, Any]] | None = None) -> dict[str, tuple[str, Any]]:
    """Shown path -> (input property path, value) for every scalar (and empty container) in `value`. A string
    holding a JSON document (IAM policies, dashboards) is flattened too, so a change inside it reads as the one
    statement that changed; its paths keep the property's own for the replacement table."""
    out = {} if out is None else out
    if isinstance(value, dict) and value:
        for k, v in value.items():
            key = f"{shown}.{k}" if _PLAIN_KEY.fullmatch(k) else f"{shown}[{json.dumps(k)}]"
            _leaves(v, key, raw if in_json else f"{raw}.{k}" if raw else k, in_json, out)
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            _leaves(v, f"{shown}[{i}]", raw if in_json else f"{raw}[{i}]", in_json, out)
    elif isinstance(value, str) and value[:1] in ("{", "[") and isinstance(doc := _json(value), dict | list) and doc:
        _leaves(doc, f"{shown}<json>", raw, True, out)
    else:
        out[shown] = (raw, value)
    return out


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _secret(raw: str, secrets: set[str]) -> bool:
    """`raw` is a secret input or lies within one (the preview's secretInputs paths; "." is all inputs)."""
    return any(s == "." or raw == s or raw.startswith((f"{s}.", f"{s}[")) for s in secrets)


MAX_VALUE = 80


def _shown(value: Any, hidden: bool = False) -> str | None:
    if value is _ABSENT:
        return None
    if hidden:
        return SECRET_PLACEHOLDER
    text = json.dumps(value, ensure_ascii=False)
    # The middle goes: the ends of image URIs, ARNs and hashes are what differ.
    return text if len(text) <= MAX_VALUE else f"{text[:48]}...{text[-(MAX_VALUE - 51):]}"


def _covers(key: str, raw: str) -> bool:
    return key == EVERY or raw == key or raw.startswith((f"{key}.", f"{key}["))


def _effect(rule: Rule | None, raw: str) -> Effect:
    if rule is None:
        return "unknown"
    top = re.split(r"[.\[]", raw, maxsplit=1)[0]
    if any(_covers(k, raw) for k in rule.replace) and not (EVERY in rule.replace and top in rule.except_):
        return "replace"
    if any(_covers(k, raw) for k in rule.maybe):
        return "may-replace"
    return "update" if rule.complete else "unknown"


def _classified(c: ResourceChange) -> ResourceChange:
    effects = {i.effect for i in c.inputs}
    c.action = "replace" if "replace" in effects else "may-replace" if "may-replace" in effects else "update"
    c.known = "unknown" not in effects
    return c


def _follow_replacements(changes: dict[str, ResourceChange], resources: dict[str, dict[str, Any]]) -> None:
    """A replaced resource gets a new id (and ARN) unless its name is given; the resources whose inputs hold it
    change with it, and may be replaced in turn (a SageMaker model replaced: its endpoint configuration is
    replaced, the endpoint updated). The offline preview cannot see this: its ids come from the URN."""
    queue = [u for u, c in changes.items() if c.action == "replace"]
    while queue:
        source = resources[queue.pop(0)]
        sid = str(source.get("id") or "")
        if len(sid) < 6 or _keeps_id(source):
            continue
        for urn, r in resources.items():
            if source["urn"] not in (r.get("dependencies") or []):
                continue
            c = changes.get(urn) or ResourceChange(urn, r["type"], r["name"], "update",
                                                   protect=bool(r.get("protect")))
            changed = {i.path for i in c.inputs}
            rule = rule_for(r["type"])
            refs = [InputChange(path, _shown(v), f"(known after {source['name']} is replaced)", _effect(rule, raw),
                                raw)
                    for path, (raw, v) in _leaves(r.get("inputs") or {}).items()
                    if path not in changed and isinstance(v, str) and (sid in v or v == source["urn"])]
            if not refs:
                continue
            was = c.action
            c.inputs += refs
            c.follows.append(source["name"])
            changes[urn] = _classified(c)
            if c.action == "replace" and was != "replace":
                queue.append(urn)


def _keeps_id(r: dict[str, Any]) -> bool:
    """The id ends with a name given in the inputs (a fixed name, a Kubernetes `namespace/name`, a dataset id):
    a replacement keeps it, so what refers to it does not change."""
    last = re.split(r"[/:]", str(r.get("id") or ""))[-1]
    return any(v == last for _, v in _leaves(r.get("inputs") or {}).values())


def _moved(changes: dict[str, ResourceChange]) -> None:
    """A resource removed and one added with the same type and name: its URN changed (a new parent)."""
    added = {(c.type, c.name): c for c in changes.values() if c.action == "create"}
    for c in [c for c in changes.values() if c.action == "delete"]:
        if twin := added.get((c.type, c.name)):
            for x in (c, twin):
                x.notes.append("its URN changed (a new parent or name): without an `aliases` option Pulumi "
                               "deletes the old one and creates a new one")


def _assess(c: ResourceChange, resources: dict[str, dict[str, Any]]) -> None:
    """The why and the notes of a change, and whether it is risky."""
    if c.action in ("replace", "may-replace", "delete") and c.protect:
        c.risky = True
        c.notes.append("protected: `pulumi up` refuses to delete it, so the update fails until `protect` is "
                       "lifted")
    r = resources.get(c.urn)
    if c.action == "replace" and r and not _deletes_first(c.type) and _keeps_id(r):
        c.notes.append("its name is fixed: Pulumi creates the replacement before it deletes the old one (unless "
                       "the resource sets deleteBeforeReplace), and the two may not share the name")
    rule = rule_for(c.type)
    if rule is None:
        return
    if c.action in ("replace", "may-replace"):
        c.why = rule.risk or rule.note
        c.risky = c.risky or rule.risk is not None
        if c.type.startswith(PROVIDER_PREFIX):
            users = sum(x.get("provider") == c.urn for x in resources.values())
            c.notes.append(f"{users} resources use this provider")
    elif c.action == "delete":
        c.why = rule.removal
        c.risky = c.risky or rule.removal is not None
    for path, what in rule.updates:
        if c.action == "update" and any(_covers(path, i.raw) for i in c.inputs):
            c.notes.append(f"{path}: {what}")
    if c.action == "replace" and rule.note and rule.risk:
        c.notes.append(rule.note)


def _warning(c: ResourceChange) -> str | None:
    if not c.risky:
        return None
    what = {"replace": "is replaced", "may-replace": "may be replaced", "delete": "is removed"}[c.action]
    forced = [i.path for i in c.inputs if i.effect in ("replace", "may-replace")]
    by = f" (by {', '.join(forced[:3])}{', ...' if len(forced) > 3 else ''})" if forced else ""
    reasons = [r for r in (c.why, "protected: `pulumi up` will fail until `protect` is lifted" if c.protect else None)
               if r]
    return f"{c.name} ({c.type}) {what}{by}: {'; '.join(reasons)}"


MAX_PATHS = 12  # per resource in the renderers; the rest is counted


def _effect_label(i: InputChange) -> str:
    return {"replace": "forces replacement", "may-replace": "may force replacement", "update": "",
            "unknown": ""}[i.effect]


def text(d: PlanDiff) -> str:
    """The diff for a terminal or a CI log."""
    against = f" against {d.base_ref}" if d.base_ref else ""
    head = f"Plan for {d.stack}{against}: " + ("new stack, " if d.new_stack else "")
    if not d.changes:
        return head + "no changes\n"
    lines = [head + d.summary()]
    lines += [f"warning: {w}" for w in d.warnings]
    lines += [f"serves: {line}" for line in d.served]
    for c in d.changes:
        follows = f"  (follows {', '.join(c.follows)})" if c.follows else ""
        lines.append(f"  {c.label:11} {c.name}  {c.type}{follows}")
        for i in c.inputs[:MAX_PATHS]:
            effect = f"  ({_effect_label(i)})" if _effect_label(i) else ""
            lines.append(f"      {i.path}: {i.old or '(none)'} -> {i.new or '(none)'}{effect}")
        if len(c.inputs) > MAX_PATHS:
            lines.append(f"      ... and {len(c.inputs) - MAX_PATHS} more changed inputs")
        if c.why and not c.risky:
            lines.append(f"      {c.why}")
        lines += [f"      {n}" for n in c.notes]
    if any(not c.known for c in d.changes):
        lines.append("update?: the type, or one of its changed inputs, is not in the replacement table "
                     "(components/*/replacement.py); `pulumi preview` decides")
    return "\n".join(lines) + "\n"


def markdown(d: PlanDiff) -> str:
    """The diff as a pull request comment section: the summary, the warnings first, then each change."""
    against = f" against `{d.base_ref}`" if d.base_ref else ""
    lines = [f"### selfhost-llm plan: `{d.stack}`{against}", ""]
    if not d.changes:
        return "\n".join([*lines, "No changes.", ""]) + "\n"
    lines += [("New stack: " if d.new_stack else "") + f"**{d.summary()}**", ""]
    if d.warnings:
        lines += ["> [!WARNING]", *(f"> - {_md(w)}" for w in d.warnings), ""]
    if d.served:
        lines += ["#### What the targets serve", "", *(f"- {_md(line)}" for line in d.served), ""]
    sections = (("Replaced", ("replace", "may-replace")), ("Updated in place", ("update",)),
                ("Added", ("create",)), ("Removed", ("delete",)))
    for title, actions in sections:
        items = [c for c in d.changes if c.action in actions]
        if not items:
            continue
        body = [line for c in items for line in _md_change(c)]
        if len(items) > 10:  # a new stack: the list folds away
            lines += [f"<details><summary>{title} ({len(items)})</summary>", "", *body, "", "</details>", ""]
        else:
            lines += [f"#### {title}", "", *body, ""]
    used = sorted({c.type for c in d.changes if c.action in ("replace", "may-replace") and rule_for(c.type)})
    if used:
        lines += ["<details><summary>Why these are replacements</summary>", ""]
        lines += [f"- `{t}`: {_md(rule.source)}" for t in used if (rule := rule_for(t)) and rule.source]
        lines += [f"- {_md(note)}" for note in _notes(used)]
        lines += ["", "</details>", ""]
    lines.append("<sub>Replacements per resource type from its platform's table (components/*/replacement.py, each "
                 "cited there); `update?`: not in it, the real `pulumi preview` decides. Secret values are never shown "
                 "or compared.</sub>")
    return "\n".join(lines) + "\n"


def _md_change(c: ResourceChange) -> list[str]:
    follows = f" (follows {', '.join(f'`{n}`' for n in c.follows)})" if c.follows else ""
    out = [f"- **{c.label}** `{c.name}` `{c.type}`{follows}"]
    for i in c.inputs[:MAX_PATHS]:
        effect = f" **{_effect_label(i)}**" if _effect_label(i) else ""
        out.append(f"  - {_code(i.path)}: {_code(i.old or '(none)')} → {_code(i.new or '(none)')}{effect}")
    if len(c.inputs) > MAX_PATHS:
        out.append(f"  - ... and {len(c.inputs) - MAX_PATHS} more changed inputs")
    if c.why and not c.risky:
        out.append(f"  - {_md(c.why)}")
    out += [f"  - {_md(n)}" for n in c.notes]
    return out


def _code(text: str) -> str:
    """An inline code span that survives any value (a backtick inside one would end it)."""
    return f"`{text.replace('`', chr(39))}`"


def _md(text: str) -> str:
    return text.replace("<", "&lt;")
