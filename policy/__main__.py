"""The selfhost-llm policy pack. The rules live in components/guardrails.py; `selfhost check` runs the same
rules offline on the previewed graph. It runs in the project's .venv (PulumiPolicy.yaml), where the project is
installed, so `components` imports as it is."""

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from components import guardrails
from components.catalog.pricing import lookup
from components.cost import Resource, estimate_from_outputs

STACK = "pulumi:pulumi:Stack"


def _resources(args: StackValidationArgs) -> list[Resource]:
    return [Resource(r.resource_type, r.name, r.parent.name if r.parent else None, dict(r.props))
            for r in args.resources if r.resource_type != STACK and not r.resource_type.startswith("selfhost:")]


def _stack_outputs(args: StackValidationArgs) -> dict:
    root = next((r for r in args.resources if r.resource_type == STACK), None)
    return dict(root.props) if root is not None else {}


def _report(violations: list[guardrails.Violation], report: ReportViolation) -> None:
    for v in violations:
        report(v.message, None)


def monthly_budget(args: StackValidationArgs, report: ReportViolation) -> None:
    _report(guardrails.budget(estimate_from_outputs(_resources(args), _stack_outputs(args), lookup)), report)


PolicyPack(
    name="selfhost-llm",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        StackValidationPolicy(
            name="monthly-budget",
            description="The expected monthly cost of the plan stays within the stack's budget.monthlyUsd.",
            validate=monthly_budget,
        ),
        StackValidationPolicy(
            name="least-privilege-iam",
            description="No wildcard IAM actions; '*' resources only where AWS allows nothing narrower; "
                        "no basic roles.",
            validate=lambda args, report: _report(guardrails.least_privilege_iam(_resources(args)), report),
        ),
        StackValidationPolicy(
            name="environment-tags",
            description="Every taggable resource carries the environment, owner, managed-by and project tags.",
            validate=lambda args, report: _report(guardrails.environment_tags(_resources(args)), report),
        ),
    ],
)
