"""The Pulumi program: `pulumi up -s <env>` runs it, and `selfhost preview <env>` runs it under mocks.

The project is installed in .venv (`make venv` / `make preview`), so its packages import as they are."""

import pulumi

from components.capture import GraphCapture
from components.catalog.pricing import lookup
from components.config import from_pulumi_config
from components.cost import estimate, summary
from components.stack import cost_inputs, declare_environment, regions

env = from_pulumi_config()
# Record every resource as declared, so the cost estimate prices exactly what this run declares.
capture = GraphCapture()
pulumi.runtime.register_stack_transformation(capture)

hf_token = pulumi.Config().get_secret("hfToken") if env.hf_token else None
for key, value in declare_environment(env, hf_token).items():
    pulumi.export(key, value)

pulumi.export("costInputs", cost_inputs(env))
pulumi.export("costEstimate", summary(estimate(capture.resources, regions(env), env.usage, lookup,
                                              env.budget.monthly_usd)))
