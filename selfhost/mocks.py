"""The offline preview's engine: Pulumi mocks that answer as the real providers would, and a monitor that records
what the program declares.

The answers come from the platforms (components/targets/registry.py): `registry.mocks()` maps a resource type (or a
whole package, by a key ending in ':') to its mock (components/mocking.py); the owner of a type's package says
where its resources live (`mock_location`) and answers its provider functions (`mock_call`). The values follow each
provider's formats (ids, ARNs, names, URLs), so the preview's outputs read as a real deployment's would. They are
derived from a hash of the resource's URN: the same program gives the same preview.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks

from components.mocking import Ctx, MockCallCtx, MockFn
from components.schema import SECRET_PLACEHOLDER, UNKNOWN
from components.targets import registry

SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
SPECIAL_SIG = "4dabf18193072939515e22adb298388d"
RESOURCE_REF_SIG = "5cf8f73096256a8f31e491e813e4eb8e"


class UnmockedCall(Exception):
    """The program called a provider function the offline preview cannot answer faithfully."""


@dataclass
class Recorded:
    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]
    secret_paths: list[str]
    dependencies: list[str]
    protect: bool
    id: str = ""
    computed: dict[str, Any] = field(default_factory=dict)
    provider: str = ""
    """The explicit provider's URN, where one is given (an empty string: the default provider)."""
    outputs: dict[str, Any] = field(default_factory=dict)


class PreviewMocks(Mocks):
    def __init__(self, config: dict[str, str]):
        self.config = config
        self.table = registry.mocks()
        # Keys ending in ':' cover every type they start with (components/mocking.py): the longest first.
        self.prefixes = sorted((key for key in self.table if key.endswith(":")), key=len, reverse=True)
        self.memo: dict[str, Any] = {}
        """Per preview: what the platforms' mocks keep between resources (Ctx.memo)."""
        self.unmocked: set[str] = set()
        self._locations: dict[str, tuple[str, str]] = {}
        # The SDK registers resources from a thread pool; each registration keeps its URN and computed
        # values in its own thread.
        self.current = threading.local()

    def location(self, token: str) -> tuple[str, str]:
        """(region, project) a resource or function of that type runs in, as its platform reads the config."""
        if token not in self._locations:
            owner = registry.owner_of_type(token)
            self._locations[token] = owner.mock_location(self.config) if owner is not None else ("", "")
        return self._locations[token]

    def mock_for(self, token: str) -> MockFn | None:
        """A resource type's mock: its own entry, else the longest prefix key it starts with."""
        if token in self.table:
            return self.table[token]
        return next((self.table[key] for key in self.prefixes if token.startswith(key)), None)

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict]:
        if not args.custom:
            return "", {}
        make = self.mock_for(args.typ)
        if make is None:
            self.unmocked.add(args.typ)
            return f"{args.name}-{hashlib.sha256(args.name.encode()).hexdigest()[:8]}", dict(args.inputs)
        region, project = self.location(args.typ)
        rid, computed = make(Ctx(self.current.urn, args.name, args.inputs, region, project, self.memo))
        self.current.computed = computed
        return rid, {**args.inputs, **computed}

    def call(self, args: MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        """The function's result, and no check failures."""
        owner = registry.owner_of_type(args.token)
        result = None
        if owner is not None:
            region, project = self.location(args.token)
            result = owner.mock_call(args.token, args.args, MockCallCtx(region, project))
        if result is None:
            raise UnmockedCall(args.token)
        return result, []


class RecordingMonitor(MockMonitor):
    """The mock monitor, also keeping each registration as the engine would see it: parent, dependencies,
    options and inputs, with secret inputs redacted and their paths noted."""

    def __init__(self, mocks: PreviewMocks):
        super().__init__(mocks)
        # The base class keeps them as `Mocks`; ours, with the per-registration state, under their own type.
        self.preview_mocks = mocks
        self.recorded: dict[str, Recorded] = {}

    def RegisterResource(self, request):
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        self.preview_mocks.current.urn = urn
        self.preview_mocks.current.computed = {}
        response = super().RegisterResource(request)
        inputs, secrets = redact(json_format.MessageToDict(request.object))
        self.recorded[urn] = Recorded(
            urn=urn, type=request.type, name=request.name, parent=request.parent or None, custom=request.custom,
            inputs=inputs, secret_paths=secrets, dependencies=sorted(set(request.dependencies)),
            protect=bool(request.protect), id=response.id, computed=dict(self.preview_mocks.current.computed),
            # A provider reference is `<urn>::<id>`.
            provider=request.provider.rsplit("::", 1)[0],
        )
        return response

    def RegisterResourceOutputs(self, request):
        if request.urn in self.recorded:
            self.recorded[request.urn].outputs, _ = redact(json_format.MessageToDict(request.outputs))
        return super().RegisterResourceOutputs(request)


def redact(value: Any, path: str = "") -> tuple[Any, list[str]]:
    """Replace secret values by a marker, resource references by their URN and unknowns by a note.
    Returns the cleaned value and the paths of the secrets found."""
    if isinstance(value, dict):
        sig = value.get(SPECIAL_SIG)
        if sig == SECRET_SIG:
            return SECRET_PLACEHOLDER, [path or "."]
        if sig == RESOURCE_REF_SIG:
            return value.get("urn"), []
        out, secrets = {}, []
        for k, v in value.items():
            out[k], found = redact(v, f"{path}.{k}" if path else k)
            secrets += found
        return out, secrets
    if isinstance(value, list):
        items, secrets = [], []
        for i, v in enumerate(value):
            item, found = redact(v, f"{path}[{i}]")
            items.append(item)
            secrets += found
        return items, secrets
    if value == UNKNOWN:
        return "(known after apply)", []
    if isinstance(value, float) and value.is_integer():  # protobuf Struct holds every number as a double
        return int(value), []
    return value, []
