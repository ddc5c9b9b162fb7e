"""Captures what the program declares, as the engine would receive it, for the in-program cost estimate.

An SDK-side stack transformation sees every resource's inputs at declaration, before any value is resolved:
plain values as written, computed ones (Outputs) as Pulumi's unknown marker, exactly what `pulumi preview`
knows. The cost engine prices this list the same way it prices a captured preview graph.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi import _types

from .cost import UNKNOWN, Resource


class GraphCapture:
    def __init__(self) -> None:
        self.resources: list[Resource] = []

    def __call__(self, args: pulumi.ResourceTransformationArgs) -> None:
        if isinstance(args.resource, pulumi.CustomResource):
            parent = args.opts.parent if args.opts is not None else None
            names = _types.resource_py_to_pulumi_names(type(args.resource))
            inputs = {names.get(k, k): wire(v) for k, v in dict(args.props).items() if v is not None}
            self.resources.append(Resource(args.type_, args.name, getattr(parent, "_name", None), inputs))
        return None  # observe only: never change what is declared


def wire(value: Any) -> Any:
    """Inputs in the provider's wire names (camelCase), unknowns as Pulumi's marker."""
    if isinstance(value, pulumi.Output):
        return UNKNOWN
    if _types.is_input_type(type(value)):
        value = _types.input_type_to_dict(value)
    if isinstance(value, dict):
        return {k: wire(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [wire(v) for v in value]
    return value
