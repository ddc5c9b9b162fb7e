"""The vocabulary of the offline preview's mocks (selfhost/mocks.py is the engine): what a platform's mocks
(components/<platform>/mocks.py, returned by `Platform.mocks()` and `Platform.mock_call()`) are written in, and the
mocks of the tools no one platform owns.

A mock answers as the real provider would: ids, ARNs, names and URLs in the provider's own formats, so the preview's
outputs read as a real deployment's would. Values are derived from a hash of the resource's URN (`Ctx.hex`): the
same program gives the same preview.

A platform's mock table maps a resource type token (`aws:s3/bucket:Bucket`) to its mock. A key that ends in ':'
(`kubernetes:`) is a prefix: it covers every type that starts with it, a whole package, or a module of one
(`kubernetes:helm.sh/`). The engine looks a type up exactly first, then takes the longest prefix key that matches.

Pure: no provider SDK is imported here.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Ctx:
    """What a mock needs to fabricate one resource's provider-computed values."""

    urn: str
    name: str
    inputs: dict[str, Any]
    region: str
    """The region the resource's platform runs in (`Platform.mock_location`)."""
    project: str = ""
    """The project (account, ...) it runs in, where the platform has one."""
    memo: dict[str, Any] = field(default_factory=dict)
    """State shared by every mock of one preview, for values a provider derives from another resource (a Google
    Cloud subnetwork's range, which addresses are taken from). Keys are the platform's own: prefix them with its
    name (`gcp:subnets`)."""

    def hex(self, n: int, salt: str = "") -> str:
        return hashlib.sha256(f"{self.urn}{salt}".encode()).hexdigest()[:n]

    def uuid(self) -> str:
        return str(uuid.UUID(self.hex(32)))

    def autoname(self, key: str, lower: bool = False) -> str:
        """Pulumi's auto-naming: the logical name plus a 7-character random suffix, unless a name was given."""
        given = self.inputs.get(key)
        name = given or f"{self.name}-{self.hex(7, 'name')}"
        return name.lower() if lower and not given else name


MockFn = Callable[[Ctx], tuple[str, dict]]
"""A resource type's mock: (its id, the outputs its provider computes). The inputs are echoed back as outputs
besides, as providers do."""


@dataclass(frozen=True)
class MockCallCtx:
    """Where a provider function call runs (`Platform.mock_location`)."""

    region: str
    project: str = ""


def _pem(label: str, body: str) -> str:
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


# The tools every platform's foundation may use (components/targets/shared.py owns their types).
SHARED_RESOURCES: dict[str, MockFn] = {
    # A local command's id is random; its output is what the command printed (the API's JSON, not kept).
    "command:local:Command": lambda c: (c.hex(16), {"stdout": "", "stderr": ""}),
    # docker-build pushes and reports the manifest digest; `ref` is the first tag at that digest.
    "docker-build:index:Image": lambda c: (lambda digest: (digest, {
        "digest": digest, "ref": f"{str((c.inputs.get('tags') or [''])[0]).split(':')[0]}@{digest}"}))(
        f"sha256:{c.hex(64, 'digest')}"),
    # The tls provider computes keys and certificates locally (components/tls.py): PEM-shaped placeholders here.
    "tls:index/privateKey:PrivateKey": lambda c: (c.hex(40), {
        "privateKeyPem": _pem("EC PRIVATE KEY", c.hex(64, "key")), "publicKeyPem": _pem("PUBLIC KEY", c.hex(64, "pub")),
        "publicKeyFingerprintSha256": f"SHA256:{c.hex(43, 'fp')}"}),
    "tls:index/selfSignedCert:SelfSignedCert": lambda c: (str(int(c.hex(16, "serial"), 16)), {
        "certPem": _pem("CERTIFICATE", c.hex(64, "cert")), "readyForRenewal": False,
        "validityStartTime": "2026-01-01T00:00:00Z", "validityEndTime": "2036-01-01T00:00:00Z"}),
    "tls:index/certRequest:CertRequest": lambda c: (c.hex(40), {
        "certRequestPem": _pem("CERTIFICATE REQUEST", c.hex(64, "csr"))}),
    "tls:index/locallySignedCert:LocallySignedCert": lambda c: (str(int(c.hex(16, "serial"), 16)), {
        "certPem": _pem("CERTIFICATE", c.hex(64, "cert")), "readyForRenewal": False,
        "validityStartTime": "2026-01-01T00:00:00Z", "validityEndTime": "2027-01-01T00:00:00Z"}),
}
