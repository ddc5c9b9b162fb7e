"""The Kubernetes provider (and the Helm and random providers beside it) under the offline preview
(components/mocking.py): every Kubernetes object as the API server returns it, the explicit provider, a Helm
release as deployed, a generated password.

Read through `Platform.mocks()` of the `kubernetes` platform (components/targets/cluster.py).
"""

from __future__ import annotations

from typing import Any

from ..mocking import Ctx, MockFn


def _kubernetes(c: Ctx) -> tuple[str, dict]:
    """A Kubernetes object as the API server returns it: id `namespace/name` (or `name` for cluster-scoped
    objects), the metadata the server fills in; a Service gets its cluster IP."""
    meta = dict(c.inputs.get("metadata") or {})
    name, namespace = meta.get("name") or c.autoname("", lower=True), meta.get("namespace")
    meta |= {"name": name, "uid": c.uuid(), "resourceVersion": str(int(c.hex(6), 16)), "generation": 1,
             "creationTimestamp": "2026-12-01T00:00:00Z"}
    computed: dict[str, Any] = {"metadata": meta}
    if c.inputs.get("kind") == "Service":
        octets = bytes.fromhex(c.hex(4, "ip"))
        computed["spec"] = {**(c.inputs.get("spec") or {}), "clusterIP": f"10.96.{octets[0]}.{octets[1]}"}
    return (f"{namespace}/{name}" if namespace else name), computed


RESOURCES: dict[str, MockFn] = {
    # Every Kubernetes object (a key ending in ':' covers the whole package; the exact types below come first).
    "kubernetes:": _kubernetes,
    # An explicit provider's id is a UUID the engine assigns; it computes nothing.
    "pulumi:providers:kubernetes": lambda c: (c.uuid(), {}),
    # A Helm release: the chart as deployed (`status` of `helm status`).
    "kubernetes:helm.sh/v3:Release": lambda c: (f"{c.inputs.get('namespace')}/{c.inputs.get('name')}", {
        "status": {"name": c.inputs.get("name"), "namespace": c.inputs.get("namespace"),
                   "chart": c.inputs.get("chart"), "version": c.inputs.get("version"), "status": "deployed",
                   "revision": 1, "appVersion": c.inputs.get("version")}}),
    # The random provider's id for a password is "none"; its result is what the SDK marks secret.
    "random:index/randomPassword:RandomPassword": lambda c: ("none", {
        "result": c.hex(int(c.inputs.get("length", 16)), "password"), "bcryptHash": f"$2a$10${c.hex(53, 'bcrypt')}"}),
}
