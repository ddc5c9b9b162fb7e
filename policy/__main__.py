"""The selfhost-llm policy pack: every rule of components/policies.py, as one stack policy each, mandatory or
advisory as the rule says. `selfhost check` runs the same rules offline on the previewed graph. It runs in the
project's .venv (PulumiPolicy.yaml), where the project is installed, so `components` imports as it is."""

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from components import policies
from components.catalog.pricing import lookup
from components.cost import Resource, estimate_from_outputs

STACK = "pulumi:pulumi:Stack"


def _resources(args: StackValidationArgs) -> list[Resource]:
    return [Resource(r.resource_type, r.name, r.parent.name if r.parent else None, dict(r.props))
            for r in args.resources if r.resource_type != STACK and not r.resource_type.startswith("selfhost:")]


def _stack_outputs(args: StackValidationArgs) -> dict:
    root = next((r for r in args.resources if r.resource_type == STACK), None)
    return dict(root.props) if root is not None else {}


def _policy(rule: policies.Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        resources, outputs = _resources(args), _stack_outputs(args)
        # The budget rule prices the plan as the program's `costEstimate` and `selfhost cost` do: the one
        # estimate function, on this graph, with the inputs the stack exports.
        estimate = estimate_from_outputs(resources, outputs, lookup) if rule.id == "monthly-budget" else None
        for finding in rule.run(policies.Plan(resources, estimate, outputs)):
            if finding.exempt is None:  # exemptions are the platform's, not a violation (`selfhost check` lists them)
                report(f"{finding.resource or 'stack'}: {finding.message}. Fix: {rule.fix}", None)

    also = f" (Checkov {', '.join(rule.checkov)})" if rule.checkov else ""
    return StackValidationPolicy(
        name=rule.id, description=f"[{rule.severity}] {rule.description}{also}", validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY if rule.mandatory else EnforcementLevel.ADVISORY)


PolicyPack(name="selfhost-llm", enforcement_level=EnforcementLevel.MANDATORY,
           policies=[_policy(rule) for rule in policies.RULES])
