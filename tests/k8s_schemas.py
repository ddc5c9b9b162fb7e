"""Check rendered Kubernetes manifests against the real schemas of one Kubernetes minor version.

`problems(manifest, "1.31")` returns the schema violations of one manifest as readable lines (an empty list when it
is valid); `supported_versions()` lists the minor versions it can check against.

- Built-in kinds (apps/v1 Deployment, v1 Service, autoscaling/v2 HorizontalPodAutoscaler, networking.k8s.io/v1
  Ingress, ...) go through `kubernetes_validate` in strict mode: the OpenAPI schemas it ships for every minor
  version, with unknown fields an error. It stops at the first violation, so a built-in manifest yields at most one
  problem at a time.
- The three custom resources, KEDA's ScaledObject (keda.sh/v1alpha1) and the Prometheus Operator's ServiceMonitor
  and PrometheusRule (monitoring.coreos.com/v1), go through `jsonschema` against the `openAPIV3Schema` of their
  published CRDs, stored in tests/data/crds/ (see its README.md for where each came from). The CRD schema is turned
  into JSON Schema the way the API server reads it: unknown fields are errors (as with `kubectl apply
  --validate=strict`) except under `x-kubernetes-preserve-unknown-fields`, `x-kubernetes-int-or-string` takes an
  integer or a string, `nullable` takes null, `x-kubernetes-list-type: set` and `map` forbid duplicates, integer
  formats int32/int64 are range checked, a pattern's `(?i)` (Go's RE2 takes it after `^`, Python only first) moves
  to the front, and the object's `metadata` is checked as the version's ObjectMeta (as the API server does). Each
  `x-kubernetes-validations` (CEL) rule is evaluated by a Python equivalent written below for that exact rule;
  a stored schema with a rule, an `x-kubernetes-*` extension or a pattern this module does not know fails loudly
  when loaded.
- Anything else (another apiVersion or kind, or a built-in one the chosen version does not serve) raises
  `UnknownSchemaError`: a manifest is never passed unchecked.

Not checked by either: string formats (date-time, ...), and what the API server validates in code rather than in
the schema (name and label syntax, a Deployment's selector matching its template, quantities' syntax, ...).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
from kubernetes_validate.utils import VersionNotSupportedError, all_versions, major_minor

__all__ = ["UnknownSchemaError", "problems", "supported_versions"]

CRD_DIR = Path(__file__).resolve().parent / "data" / "crds"

# (apiVersion, kind) -> the stored openAPIV3Schema of that CRD version.
CRD_SCHEMAS: dict[tuple[str, str], Path] = {
    ("keda.sh/v1alpha1", "ScaledObject"): CRD_DIR / "keda.sh_v1alpha1_scaledobject.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): CRD_DIR / "monitoring.coreos.com_v1_servicemonitor.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): CRD_DIR / "monitoring.coreos.com_v1_prometheusrule.json",
}


class UnknownSchemaError(LookupError):
    """No schema is known for the manifest's apiVersion and kind (in the requested Kubernetes version)."""


class UnsupportedSchemaError(RuntimeError):
    """A stored CRD schema uses something this module cannot check (a new CEL rule or x-kubernetes-* extension)."""


@cache
def supported_versions() -> list[str]:
    """The Kubernetes minor versions ("1.25", ..., "1.37") whose schemas the installed kubernetes_validate ships."""
    minors: list[str] = []
    for version in all_versions():  # "1.25.0", ... sorted by version
        minor = major_minor(version)
        if minor not in minors:
            minors.append(minor)
    return minors


def problems(manifest: Mapping[str, Any], version: str) -> list[str]:
    """The schema violations of `manifest` in Kubernetes `version` (a minor version such as "1.31"), as lines
    "path: what is wrong" (path like `spec.template.spec.containers[0].image`); empty when the manifest is valid.

    Raises UnknownSchemaError for an apiVersion/kind without a known schema, ValueError for an unsupported version.
    """
    if not isinstance(manifest, Mapping):
        raise TypeError(f"a manifest is a mapping, not {type(manifest).__name__}")
    _check_version(version)
    api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
    missing = [field for field, value in (("apiVersion", api_version), ("kind", kind)) if not _nonempty_str(value)]
    if missing:
        return [f"{field}: missing (or not a non-empty string), so the object has no schema" for field in missing]
    assert isinstance(api_version, str) and isinstance(kind, str)
    crd = CRD_SCHEMAS.get((api_version, kind))
    if crd is not None:
        return _crd_problems(dict(manifest), crd, api_version, kind, version)
    if _is_builtin_group(api_version):
        return _builtin_problems(dict(manifest), api_version, kind, version)
    known = ", ".join(f"{a} {k}" for a, k in CRD_SCHEMAS)
    raise UnknownSchemaError(
        f"no schema for apiVersion {api_version!r} kind {kind!r}: it is neither a built-in Kubernetes API group "
        f"nor one of the stored CRDs ({known}); add its CRD schema to tests/data/crds/ and CRD_SCHEMAS"
    )


# --- built-in kinds: kubernetes_validate ---------------------------------------------------------------------


def _check_version(version: str) -> None:
    # Checked here because kubernetes_validate compares versions as strings: "1.3" would pass as 1.29, "1.24" (older
    # than it ships) fails with an IndexError, and a version it lacks silently falls back to an older one.
    if version not in supported_versions():
        versions = supported_versions()
        raise ValueError(
            f"Kubernetes version {version!r} is not one kubernetes_validate {kubernetes_validate.__version__} ships "
            f"schemas for: give a minor version from {versions[0]} to {versions[-1]}, such as {versions[-1]!r}"
        )


def _is_builtin_group(api_version: str) -> bool:
    # kubernetes_validate looks a schema up by the group's first label only ("apps.example.com/v1" would be checked
    # as "apps/v1"), so only hand it the groups Kubernetes itself serves: the core group ("v1"), the unqualified
    # ones (apps, batch, policy, autoscaling) and *.k8s.io.
    if "/" not in api_version:
        return True
    group = api_version.split("/", 1)[0]
    return "." not in group or group.endswith(".k8s.io")


def _builtin_problems(manifest: dict[str, Any], api_version: str, kind: str, version: str) -> list[str]:
    try:
        validated = kubernetes_validate.validate(manifest, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return _describe(error)
    except kubernetes_validate.SchemaNotFoundError as error:
        raise UnknownSchemaError(
            f"Kubernetes {version} has no schema for apiVersion {api_version!r} kind {kind!r} (a misspelt kind, or an "
            f"API version that it does not serve, such as one removed before {version}): {error.message}"
        ) from error
    except VersionNotSupportedError as error:  # not reached: _check_version came first
        raise ValueError(error.message) from error
    if validated != version:  # kubernetes_validate fell back to another version's schemas
        raise RuntimeError(f"kubernetes_validate checked against Kubernetes {validated}, not {version}")
    return []


def _object_meta_problems(metadata: dict[str, Any], version: str) -> list[str]:
    # The version's ObjectMeta schema, reached through kubernetes_validate's public API: a ConfigMap (which requires
    # nothing else) carrying the metadata, whose error paths start at `metadata` as in the object itself.
    probe = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}
    return _builtin_problems(probe, "v1", "ConfigMap", version)


# --- custom resources: jsonschema against the stored openAPIV3Schema -------------------------------------------


def _crd_problems(manifest: dict[str, Any], path: Path, api_version: str, kind: str, version: str) -> list[str]:
    validator = _crd_validator(path, api_version, kind)
    found = [line for error in validator.iter_errors(manifest) for line in _describe(error)]
    metadata = manifest.get("metadata")
    if isinstance(metadata, dict):  # otherwise the CRD schema's `metadata: {type: object}` reported it
        found += _object_meta_problems(metadata, version)
    return sorted(found)


# The x-kubernetes-* extensions this module knows: their effect is built into the JSON Schema or checked by
# the keywords below; x-kubernetes-map-type (atomic / granular) only changes how server-side apply merges.
_KNOWN_EXTENSIONS = {
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
}


def _keda_min_le_max(spec: Any) -> bool:
    if not isinstance(spec, dict):
        return True
    low, high = spec.get("minReplicaCount"), spec.get("maxReplicaCount", 100)
    if not isinstance(low, int) or not isinstance(high, int):
        return True  # absent, or a type error reported by the schema itself
    return low <= high


# Each CEL rule of the stored schemas, by its exact text, with a Python equivalent.
_CEL_RULES: dict[str, Callable[[Any], bool]] = {
    # keda.sh/v1alpha1 ScaledObject .spec
    "!has(self.minReplicaCount) || self.minReplicaCount <= (has(self.maxReplicaCount) ? self.maxReplicaCount : 100)": (
        _keda_min_le_max
    ),
}


def _python_pattern(pattern: str, where: str) -> str:
    """A CRD's pattern (Go's RE2 syntax, as the API server reads it) in Python's: RE2 takes a flag group such as
    `(?i)` anywhere and applies it to the rest of the expression, Python only at its start. The PrometheusRule
    schema has `^(?i)(abort|warn)?$`: `^` matches the same either way, so the flag moves to the front."""
    if pattern.startswith("^(?i)"):
        pattern = "(?i)^" + pattern[len("^(?i)"):]
    try:
        re.compile(pattern)
    except re.error as error:
        raise UnsupportedSchemaError(f"{where}: pattern {pattern!r} is not one Python reads ({error})") from error
    return pattern


def _to_json_schema(node: Mapping[str, Any], where: str) -> dict[str, Any]:
    """One node of a structural CRD schema (OpenAPI v3) as the JSON Schema (draft 4) that checks it strictly."""
    unknown = sorted(key for key in node if key.startswith("x-kubernetes-") and key not in _KNOWN_EXTENSIONS)
    if unknown:
        raise UnsupportedSchemaError(f"{where}: tests/k8s_schemas.py does not know how to check {unknown}")
    for rule in node.get("x-kubernetes-validations", []):
        if rule.get("rule") not in _CEL_RULES:
            raise UnsupportedSchemaError(
                f"{where}: CEL rule {rule.get('rule')!r} has no Python equivalent in tests/k8s_schemas.py _CEL_RULES"
            )
    out = {key: value for key, value in node.items() if key not in ("description", "default", "nullable")}
    if isinstance(node.get("pattern"), str):
        out["pattern"] = _python_pattern(node["pattern"], where)
    if "properties" in node:
        out["properties"] = {
            name: _to_json_schema(child, f"{where}.{name}") for name, child in node["properties"].items()
        }
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), Mapping):
            out[key] = _to_json_schema(node[key], f"{where}.{key}")
    for key in ("anyOf", "allOf", "oneOf"):
        if key in node:
            out[key] = [_to_json_schema(child, f"{where}.{key}") for child in node[key]]
    if node.get("x-kubernetes-int-or-string") and "type" not in node and "anyOf" not in node:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    preserve = bool(node.get("x-kubernetes-preserve-unknown-fields"))
    # The API server drops (and with strict field validation, rejects) fields a structural schema does not list,
    # also in an object that lists none; the root's metadata is ObjectMeta, checked on its own.
    if node.get("type") == "object" and "additionalProperties" not in node and not preserve and where != "$.metadata":
        out["additionalProperties"] = False
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        if "anyOf" in out:
            out["anyOf"] = [*out["anyOf"], {"type": "null"}]
    return out


def _list_map_keys(
    validator: Any, keys: list[str], instance: Any, schema: Mapping[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    if schema.get("x-kubernetes-list-type") != "map" or not isinstance(instance, list):
        return
    seen: dict[str, int] = {}
    for index, item in enumerate(instance):
        if not isinstance(item, dict):
            continue
        key = json.dumps([item.get(name) for name in keys])
        if key in seen:
            fields = ", ".join(f"{name}={item.get(name)!r}" for name in keys)
            yield jsonschema.ValidationError(f"duplicate entry ({fields}), as item {seen[key]}", path=[index])
        else:
            seen[key] = index


def _cel_validations(
    validator: Any, rules: list[dict[str, Any]], instance: Any, schema: Mapping[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    for rule in rules:
        if not _CEL_RULES[rule["rule"]](instance):
            yield jsonschema.ValidationError(rule.get("message") or f"failed rule {rule['rule']}")


_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("int32")
def _int32(value: object) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or -(2**31) <= value < 2**31


@_FORMATS.checks("int64")
def _int64(value: object) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or -(2**63) <= value < 2**63


# Draft 4, as OpenAPI 3.0's schema objects: 2.0 is not an integer (the API server reads it as a float too).
_CrdValidator = jsonschema.validators.extend(
    jsonschema.Draft4Validator,
    validators={"x-kubernetes-list-map-keys": _list_map_keys, "x-kubernetes-validations": _cel_validations},
)


@cache
def _crd_validator(path: Path, api_version: str, kind: str) -> Any:
    stored = json.loads(path.read_text())
    schema = _to_json_schema(stored, "$")
    # The object's own apiVersion and kind are the CRD's (dispatch already chose them; this keeps the schema whole).
    schema["properties"]["apiVersion"] = {"type": "string", "enum": [api_version]}
    schema["properties"]["kind"] = {"type": "string", "enum": [kind]}
    schema["required"] = sorted({"apiVersion", "kind", *schema.get("required", [])})
    _CrdValidator.check_schema(schema)
    return _CrdValidator(schema, format_checker=_FORMATS)


# --- messages ----------------------------------------------------------------------------------------------------


def _describe(error: jsonschema.ValidationError) -> list[str]:
    where = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        listed = set(schema.get("properties", {}))
        patterns = list(schema.get("patternProperties", {}))
        extra = [key for key in error.instance if key not in listed and not any(re.search(p, key) for p in patterns)]
        if extra:
            return [f"{_path([*where, key])}: unknown field" for key in extra]
    return [f"{_path(where)}: {error.message}"]


def _path(parts: Iterable[str | int]) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_$][\w$-]*", part):
            text += f".{part}" if text else part
        else:  # a map key such as app.kubernetes.io/name
            text += f"[{json.dumps(part)}]"
    return text or "(the object)"


def _nonempty_str(value: object) -> bool:
    return isinstance(value, str) and bool(value)
