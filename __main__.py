"""The Pulumi program: `pulumi up -s <env>` runs it, and `selfhost preview <env>` runs it under mocks.

The project is installed in .venv (`make venv` / `make preview`), so its packages import as they are."""

import pulumi

from components.capture import GraphCapture
from components.catalog.pricing import lookup
from components.config import from_pulumi_config, stack_secrets
from components.cost import estimate, summary, with_owner_rates
from components.stack import cost_inputs, declare_environment, regions

env = from_pulumi_config()
# Record every resource as declared, so the cost estimate prices exactly what this run declares.
capture = GraphCapture()
pulumi.runtime.register_stack_transformation(capture)

for key, value in declare_environment(env, stack_secrets(env)).items():
    pulumi.export(key, value)

inputs = cost_inputs(env)
pulumi.export("costInputs", inputs)
pulumi.export("costEstimate", summary(estimate(capture.resources, regions(env), env.usage,
                                              with_owner_rates(lookup, inputs.get("platforms") or {}),
                                              env.budget.monthly_usd, inputs.get("routing"))))
