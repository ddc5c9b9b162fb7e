"""The Pulumi program: `pulumi up -s <env>` runs it, and `selfhost preview <env>` runs it under mocks."""

import sys
from pathlib import Path

# Pulumi runs this file by path; make the project's packages importable without installing them.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pulumi  # noqa: E402

from components.config import from_pulumi_config  # noqa: E402
from components.stack import declare_environment  # noqa: E402

env = from_pulumi_config()
hf_token = pulumi.Config().get_secret("hfToken") if env.hf_token else None
for key, value in declare_environment(env, hf_token).items():
    pulumi.export(key, value)
