"""The Pulumi program: `pulumi up -s <env>` runs it, and `selfhost preview <env>` runs it under mocks."""

import sys
from pathlib import Path

# Pulumi runs this file by path; make the project's packages importable without installing them.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pulumi  # noqa: E402

from components.capture import GraphCapture  # noqa: E402
from components.catalog.pricing import lookup  # noqa: E402
from components.config import from_pulumi_config  # noqa: E402
from components.cost import estimate, summary, usage_profile  # noqa: E402
from components.stack import cost_inputs, declare_environment, regions  # noqa: E402

env = from_pulumi_config()
# Record every resource as declared, so the cost estimate prices exactly what this run declares.
capture = GraphCapture()
pulumi.runtime.register_stack_transformation(capture)

hf_token = pulumi.Config().get_secret("hfToken") if env.hf_token else None
for key, value in declare_environment(env, hf_token).items():
    pulumi.export(key, value)

pulumi.export("costInputs", cost_inputs(env))
pulumi.export("costEstimate", summary(estimate(capture.resources, regions(env), usage_profile(env.usage), lookup,
                                              env.budget.monthly_usd)))
