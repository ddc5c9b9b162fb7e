"""The Pulumi program: `pulumi up -s <env>` runs it, and `selfhost preview <env>` runs it under mocks.

The project is installed in .venv (`make venv` / `make preview`), so its packages import as they are."""

import pulumi

from components.capture import GraphCapture
from components.catalog.pricing import lookup
from components.config import from_pulumi_config, stack_secrets
from components.cost import estimate_from_outputs, to_json
from components.stack import cost_inputs, declare_environment

env = from_pulumi_config()
# Record every resource as declared, so the cost estimate prices exactly what this run declares.
capture = GraphCapture()
pulumi.runtime.register_stack_transformation(capture)

outputs = declare_environment(env, stack_secrets(env))
outputs["costInputs"] = cost_inputs(env)
# The cost of what this run declares, priced from the inputs the stack exports (its regions, costInputs) by the
# function `selfhost cost` and the policy pack price theirs with: the headline is what `pulumi preview` shows.
outputs["costEstimate"] = to_json(None, estimate_from_outputs(capture.resources, outputs, lookup), full=False)
for key, value in outputs.items():
    pulumi.export(key, value)
