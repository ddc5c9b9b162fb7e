"""The policy rules every plan is checked against: one rule set, two runners. The policy pack (policy/) runs them in
`pulumi preview --policy-pack policy`; `selfhost check` runs them offline on the previewed graph.

`RULES` is the generic rules, declared here (every stack: the budget, the GPU types allowed, the environment's
tags, no secret in plain text), then each registered platform's own (`Platform.policy_rules`, declared in
components/<platform>/policies.py), in registry order. The vocabulary rules are written in (`Rule`, `Plan`,
`Finding`, the `@rule` decorator) is components/policy.py; what a generic rule needs to know about a platform's
resources, it asks the registry (where their tags go, which carry a boot script or a container's environment).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .cost import Estimate, Resource, total_text
from .policy import Finding, Plan, Rule, Severity, dig, rule_decorator
from .targets.registry import KINDS, boot_scripts, container_environments, policy_rules, scanner_notes, tag_field

__all__ = ["BY_ID", "GENERIC_RULES", "RULES", "SCANNER_NOTES", "Finding", "Plan", "Report", "Rule", "Severity",
           "check", "explain"]

# A token's own shape (Hugging Face `hf_...`, OpenAI-style `sk-...`), or a token variable given a value.
_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{30,}|\bsk-[A-Za-z0-9_-]{20,}|\b(HF_TOKEN|HUGGING_FACE_HUB_TOKEN)=[^\s/]")

GENERIC_RULES: list[Rule] = []
"""The rules of every stack, whatever it stands on, in declaration order."""
rule = rule_decorator(GENERIC_RULES)


# ---------------------------------------------------------------------------------------------------------
# Stack-wide


@rule("monthly-budget", "The expected monthly cost of the plan stays within the stack's budget.monthlyUsd.",
      "high", "Raise selfhost-llm:budget.monthlyUsd, or shrink the plan (`selfhost cost <env>` shows where).")
def _budget(plan: Plan) -> Iterator[tuple[None, str]]:
    est = plan.estimate
    if est is not None and est.over_budget:
        low, expected, high = est.total()
        unpriced = est.unpriced_count()
        yield None, (f"expected monthly cost {total_text(expected, unpriced)} (min {total_text(low, unpriced)}, "
                     f"max {total_text(high, unpriced)}) is over the budget ${est.budget_monthly_usd:,.2f} "
                     "(selfhost-llm:budget.monthlyUsd)")


def _gpus_of(endpoint: dict[str, Any]) -> set[str]:
    """The catalog names of the GPUs an endpoint record says it runs on (its kind reads its record)."""
    kind = KINDS.get(str(endpoint.get("kind")))
    return kind.gpus(endpoint) if kind else set()


@rule("allowed-gpu-types", "Endpoints run only on the GPU types the environment allows (selfhost-llm:allowedGpus).",
      "medium", "Choose an instance or machine type with an allowed GPU, or add the type to allowedGpus.")
def _allowed_gpus(plan: Plan) -> Iterator[tuple[None, str]]:
    allowed = (plan.outputs.get("policyInputs") or {}).get("allowedGpus")
    if allowed is None:
        return
    for name, endpoint in (plan.outputs.get("endpoints") or {}).items():
        refused = sorted(_gpus_of(endpoint) - set(allowed))
        if refused:
            yield None, f"endpoint {name} runs on {', '.join(refused)}; allowed: {', '.join(allowed) or 'none'}"


REQUIRED_TAGS = ("environment", "owner", "managed-by", "project")


@rule("environment-tags", "Every taggable resource carries the environment, owner, managed-by and project tags "
      "(labels on Google Cloud and Kubernetes).", "low",
      "Declare the resource with the environment's tags (TargetKind.identity_tags).")
def _tags(plan: Plan) -> Iterator[tuple[Resource, str]]:
    for r in plan.resources:
        path = tag_field(r.type)  # the resource's platform knows where its tags go
        if path is None:
            continue
        tags = dig(r.inputs, *path) or {}
        if isinstance(tags, list):  # an Auto Scaling group's tags: [{key, value, propagateAtLaunch}]
            tags = {t.get("key"): t.get("value") for t in tags if isinstance(t, dict)}
        missing = [t for t in REQUIRED_TAGS if t not in tags]
        if missing:
            yield r, f"{path[-1]} lack {', '.join(missing)}"


@rule("secrets-not-in-user-data", "No token or key in plain text in instance user data or startup scripts: they "
      "fetch secrets at boot with the instance's identity.", "critical",
      "Read the secret at boot (Secrets Manager, Secret Manager) into a file the container mounts.",
      checkov=("CKV_AWS_46",))
def _user_data(plan: Plan) -> Iterator[tuple[Resource, str]]:
    scripts = boot_scripts()  # the resource's platform knows where its boot script is, and how it is encoded
    for r in plan.resources:
        read = scripts.get(r.type)
        if read is None:
            continue
        script = read(r.inputs)
        if script == "[secret]" or _TOKEN.search(script):
            yield r, "its boot script carries a secret value"


TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_TOKEN", "OPENAI_API_KEY", "API_KEY")


@rule("secrets-not-in-container-env", "No token or key in a serving container's environment, where anyone allowed "
      "to describe the model reads it (sagemaker:DescribeModel).", "critical",
      "Stage the weights in the bucket (models[].source: s3: `pulumi up` copies them, and the endpoint then runs "
      "with network isolation and no token), or serve our image, which reads the token from a mounted file.")
def _container_env(plan: Plan) -> Iterator[tuple[Resource, str]]:
    environments = container_environments()  # the resource's platform knows where its containers' variables are
    for r in plan.resources:
        read = environments.get(r.type)
        if read is None:
            continue
        for name, value in read(r.inputs):
            if name in TOKEN_VARIABLES or value == "[secret]" or _TOKEN.search(str(value)):
                yield r, f"container environment variable {name} holds a secret"


@rule("secrets-not-in-outputs", "No token or key in a stack output in plain text: outputs are shown to everyone who "
      "can read the stack.", "critical", "Export it with pulumi.Output.secret (or not at all).")
def _outputs(plan: Plan) -> Iterator[tuple[None, str]]:
    def walk(value: Any, path: str) -> Iterator[str]:
        if isinstance(value, dict):
            for k, v in value.items():
                yield from walk(v, f"{path}.{k}" if path else k)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                yield from walk(v, f"{path}[{i}]")
        elif isinstance(value, str) and _TOKEN.search(value):
            yield path
    for path in walk(plan.outputs, ""):
        yield None, f"output {path} holds a token in plain text"


# ---------------------------------------------------------------------------------------------------------
# Running them


@dataclass
class Report:
    violations: list[Finding] = field(default_factory=list)
    advisories: list[Finding] = field(default_factory=list)
    exemptions: list[Finding] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.violations


RULES: list[Rule] = [*GENERIC_RULES, *policy_rules().values()]
"""Every rule: the generic ones, then each registered platform's (the shipped ones and SELFHOST_PLUGINS', as
registered when this module is first imported), in registry order."""
BY_ID = {r.id: r for r in RULES}
if len(BY_ID) != len(RULES):  # the registry refuses an id two platforms declare; here, a generic one's again
    _ids = [r.id for r in RULES]
    raise ValueError(f"two policy rules share an id: {', '.join(sorted({i for i in _ids if _ids.count(i) > 1}))}")


SCANNER_NOTES: dict[str, str] = scanner_notes()
"""Checkov check id -> why its findings stand though no rule reports them (`Platform.scanner_notes`)."""


def explain(check_id: str, resource: str, report: Report) -> tuple[str, str]:
    """Why Checkov's `check_id` fails `resource` (its Pulumi name), as (verdict, why): a rule of ours that names the
    check reports it there (a violation, an advisory, or an exemption the platform forces), or a platform's scanner
    note; else ("unexplained", ...)."""
    for verdict, findings in (("violation", report.violations), ("advisory", report.advisories),
                              ("exempt", report.exemptions)):
        for f in findings:
            if f.resource == resource and check_id in BY_ID[f.rule].checkov:
                return verdict, f"{f.rule}: {f.exempt or f.message}"
    if check_id in SCANNER_NOTES:
        return "noted", SCANNER_NOTES[check_id]
    return "unexplained", "no rule of ours reports it here and no platform notes it"


def check(resources: list[Resource], estimate: Estimate | None, outputs: dict[str, Any] | None = None) -> Report:
    """Every rule on the plan: mandatory violations, advisory ones, and the exemptions the platforms force."""
    plan, report = Plan(resources, estimate, outputs or {}), Report()
    for r in RULES:
        for finding in r.run(plan):
            if finding.exempt:
                report.exemptions.append(finding)
            elif r.mandatory:
                report.violations.append(finding)
            else:
                report.advisories.append(finding)
    return report
