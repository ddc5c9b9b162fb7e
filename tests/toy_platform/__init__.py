"""A toy platform and a toy kind, added from outside the project's code: the proof that a new platform touches no
file but its own package. `SELFHOST_PLUGINS=tests.toy_platform` makes every `selfhost` command (and the program)
load it; this one call registers both."""

from components.targets.registry import register

from .kind import ToyGpu
from .platform import ToyCloud

register(ToyCloud(), ToyGpu())
