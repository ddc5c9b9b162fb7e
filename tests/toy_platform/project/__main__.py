"""The repository's own program, unchanged: run as `pulumi up` would run it."""

import runpy
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parents[3] / "__main__.py"), run_name="__main__")
