"""`selfhost export`: a previewed plan in the shape of Terraform's plan JSON (`terraform show -json <plan>`), so that
the scanners a team already runs on Terraform plans read a Pulumi stack's plan: Checkov's `terraform_plan` framework
(tests/test_export.py runs it on the exports), and any other reader of the format.

What comes out is Terraform's format 1.2 (developer.hashicorp.com/terraform/internals/json-format): `planned_values`
with each resource's address, type, name, provider and values; `resource_changes` with a create for each;
`configuration` with the providers and, per resource, the references between resources. Each Pulumi type maps to
the Terraform resource type of the same cloud object: each platform says which, and which Terraform provider that
is (`Platform.terraform()`: components/<platform>/terraform.py, in components/terraform.py's terms), and the
registry merges them (components/targets/registry.py `terraform()`). A provider bridged from Terraform's takes each
Terraform argument in camelCase, with two differences this undoes: a nested block that holds at most one item is an
object (Terraform: a list of one), and a repeatable block has a plural name (`rules`; Terraform: `rule`), which the
type's `renames` map back. Map arguments (tags, labels, annotations, ...) keep their keys.

References: where an input is a value the provider computes for a resource this one depends on (an id, an ARN, an
auto-generated name), Terraform would not know it at plan time: the value is left out of `values`, marked in
`after_unknown`, and the configuration records the reference (`aws_s3_bucket.<name>.id`). Scanners build their
resource graph from those references (Checkov: an S3 bucket's encryption, versioning and logging are the resources
that reference it). A value the dependency's own inputs determine is known at plan time and stays.

Secrets: the preview already replaces every secret with "[secret]"; those stay as they are and are marked in
`sensitive_values`. Values only the provider computes (the mocks' ids, ARNs, generated passwords) are never written.

Types with no Terraform resource (the Pulumi program's own provider objects, Docker builds, local commands) are
not written: their owner's "not mapped" table says why, and the document lists them under
`selfhost_export.not_mapped`.

TYPES, PROVIDERS and NOT_MAPPED, read from this module, are the registry's merged tables. `checkov_failures` reads
the scanner's report back for `selfhost check --checkov`, which says why each finding stands.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.schema import SECRET_PLACEHOLDER, UNKNOWN
from components.targets import registry
from components.terraform import TfType

FORMAT_VERSION = "1.2"
# The Terraform release whose `terraform show -json` output this follows (plan format 1.2); scanners require the key.
TERRAFORM_VERSION = "1.9.8"
# Map arguments in every provider: their keys are data (tag names, label keys), kept as they are.
MAPS = frozenset({"tags", "tags_all", "labels", "annotations", "match_labels", "node_selector", "limits", "requests"})
# The outputs a resource is referred to by, besides its id (Pulumi's names; Terraform's are their snake_case).
IDENTITY_OUTPUTS = ("arn", "bucket", "keyId", "name", "selfLink", "selfLinkUnique", "email", "member",
                    "instanceGroup")


def __getattr__(name: str) -> Any:
    """TYPES (Pulumi type -> TfType), PROVIDERS (Terraform provider -> its registry address) and NOT_MAPPED (type
    -> why it has no Terraform resource): the registry's merged tables, as they are now."""
    tables = dict(zip(("TYPES", "PROVIDERS", "NOT_MAPPED"), registry.terraform(), strict=True))
    if name in tables:
        return tables[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class Export:
    document: dict[str, Any]
    addresses: dict[str, str]
    """Pulumi URN -> Terraform address, for every resource written."""
    not_mapped: list[dict[str, str]]


def snake(name: str) -> str:
    """camelCase -> snake_case, as the Terraform bridge names arguments (`kmsKeyId` -> `kms_key_id`)."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def convert(inputs: dict[str, Any], t: TfType) -> dict[str, Any]:
    """A resource's Pulumi inputs as Terraform's plan values: snake_case arguments, nested blocks as lists."""
    if t.manifest:
        return {"manifest": inputs}
    raw = t.adapt(inputs) if t.adapt else inputs
    return {k: v for k, v in _block(raw, t).items() if k not in t.drop}


def _block(obj: dict[str, Any], t: TfType) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if value == UNKNOWN:
            continue
        name = snake(key)
        name = t.renames.get(name, name)
        if isinstance(value, dict):
            out[name] = value if name in MAPS or name in t.maps else [_block(value, t)]
        elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
            out[name] = [_block(v, t) if isinstance(v, dict) else v for v in value]
        else:
            out[name] = value
    return out


def _address_name(name: str, taken: set[str], tf_type: str) -> str:
    """A Terraform resource name (letters, digits, `_` and `-`, not starting with a digit), unique in its type."""
    clean = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    if not re.match(r"[A-Za-z_]", clean):
        clean = f"_{clean}"
    candidate, n = clean, 1
    while f"{tf_type}.{candidate}" in taken:
        n += 1
        candidate = f"{clean}_{n}"
    return candidate


def _leaves(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_leaves(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_leaves(v) for v in value)) if value else set()
    return {value} if isinstance(value, str) else set()


def _identities(resources: list[dict[str, Any]], addresses: dict[str, str]) -> dict[str, dict[str, list[str]]]:
    """Per URN: each value the provider computes for that resource and a dependent might refer to -> the
    Terraform references to it (`aws_kms_key.k.arn`, `aws_kms_key.k`). Values the resource's own inputs
    determine are known at plan time and left out."""
    out: dict[str, dict[str, list[str]]] = {}
    for r in resources:
        address = addresses.get(r["urn"])
        if not address:
            continue
        known = _leaves(r["inputs"])
        refs: dict[str, list[str]] = {}
        candidates = [("id", r.get("id"))] + [(snake(k), (r.get("computed") or {}).get(k)) for k in IDENTITY_OUTPUTS]
        for attr, value in candidates:
            if isinstance(value, str) and len(value) > 3 and value not in known and value not in refs:
                refs[value] = [f"{address}.{attr}", address]
        out[r["urn"]] = refs
    return out


def _unknowns(values: dict[str, Any], refs: dict[str, list[str]], maps: frozenset[str]
              ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Takes the values that are references out of a block: (known values, expressions, after_unknown)."""
    known: dict[str, Any] = {}
    expressions: dict[str, Any] = {}
    unknown: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, str) and value in refs:
            expressions[key] = {"references": refs[value]}
            unknown[key] = True
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            parts = [_unknowns(v, refs, maps) for v in value]
            known[key] = [p[0] for p in parts]
            if any(p[1] for p in parts):
                expressions[key] = [p[1] for p in parts]
                unknown[key] = [p[2] for p in parts]
        elif isinstance(value, list) and key not in maps and any(isinstance(v, str) and v in refs for v in value):
            known[key] = [None if isinstance(v, str) and v in refs else v for v in value]
            expressions[key] = {"references": [ref for v in value if isinstance(v, str) and v in refs
                                               for ref in refs[v]]}
            unknown[key] = [isinstance(v, str) and v in refs for v in value]
        else:
            known[key] = value
    return known, expressions, unknown


def _sensitive(value: Any) -> Any:
    """Terraform's sensitive_values: the shape of the values, `true` where a secret is."""
    if isinstance(value, dict):
        return {k: s for k, v in value.items() if (s := _sensitive(v)) not in (False, {}, [])}
    if isinstance(value, list):
        marks = [_sensitive(v) for v in value]
        return marks if any(m not in (False, {}, []) for m in marks) else []
    return value == SECRET_PLACEHOLDER


def terraform_plan(graph: dict[str, Any]) -> Export:
    """The preview graph (`selfhost preview --json`) as a Terraform plan JSON document."""
    types, provider_addresses, reasons = registry.terraform()
    resources = [r for r in graph["resources"] if r.get("custom")]
    addresses: dict[str, str] = {}
    not_mapped: list[dict[str, str]] = []
    for r in resources:
        t = types.get(r["type"])
        if t is None:
            not_mapped.append({"urn": r["urn"], "type": r["type"],
                               "reason": reasons.get(r["type"], "no Terraform type in its platform's table "
                                                                "(Platform.terraform)")})
            continue
        taken = set(addresses.values())
        addresses[r["urn"]] = f"{t.type}.{_address_name(r['name'], taken, t.type)}"
    identities = _identities(resources, addresses)

    planned: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    config: list[dict[str, Any]] = []
    providers: dict[str, dict[str, str]] = {}
    for r in resources:
        address = addresses.get(r["urn"])
        if address is None:
            continue
        t = types[r["type"]]
        tf_type, name = address.split(".", 1)
        refs: dict[str, list[str]] = {}
        for dep in r.get("dependencies") or []:
            for value, ref in identities.get(dep, {}).items():
                refs.setdefault(value, ref)
        values, expressions, unknown = _unknowns(convert(r["inputs"], t), refs, MAPS | t.maps)
        sensitive = _sensitive(values)
        head = {"address": address, "mode": "managed", "type": tf_type, "name": name,
                "provider_name": provider_addresses[t.provider]}
        planned.append({**head, "schema_version": 0, "values": values, "sensitive_values": sensitive})
        changes.append({**head, "change": {
            "actions": ["create"], "before": None, "after": values, "after_unknown": {"id": True, **unknown},
            "before_sensitive": False, "after_sensitive": sensitive}})
        config.append({"address": address, "mode": "managed", "type": tf_type, "name": name,
                       "provider_config_key": t.provider, "expressions": expressions, "schema_version": 0})
        providers[t.provider] = {"name": t.provider, "full_name": provider_addresses[t.provider]}

    document = {
        "format_version": FORMAT_VERSION,
        "terraform_version": TERRAFORM_VERSION,
        "planned_values": {"root_module": {"resources": planned}},
        "resource_changes": changes,
        "configuration": {"provider_config": dict(sorted(providers.items())), "root_module": {"resources": config}},
        "applyable": True,
        "complete": True,
        "errored": False,
        # Ours (consumers of the format ignore keys they do not know): where the plan came from, what is not in it.
        "selfhost_export": {
            "project": graph.get("project"), "stack": graph.get("stack"),
            "source": "selfhost preview: the Pulumi program run under Pulumi's mocks, no cloud account",
            "not_mapped": not_mapped,
        },
    }
    return Export(document, addresses, not_mapped)


def checkov_failures(report: str) -> dict[str, list[tuple[str, str]]]:
    """A Checkov JSON report (`checkov -o json`: one framework's object, or a list of them) as stack -> the
    (check id, resource address) pairs it failed, the stack being the scanned file's name (`<stack>.json`); a
    stack it checked and failed nothing has an empty list."""
    try:
        doc = json.loads(report)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    reports = doc if isinstance(doc, list) else [doc]
    if not all(isinstance(r, dict) and "results" in r for r in reports):
        raise ValueError("not a Checkov JSON report (no `results`): write it with `checkov -o json`")
    failed: dict[str, list[tuple[str, str]]] = {}
    for r in reports:
        for state in ("passed_checks", "failed_checks"):
            for c in r["results"].get(state) or []:
                stack = Path(c["file_path"]).name.removesuffix(".json")
                failed.setdefault(stack, [])
                if state == "failed_checks":
                    failed[stack].append((c["check_id"], c["resource"]))
    for stack in failed:
        failed[stack].sort()
    return failed
