"""A stack's own private certificate authority (pulumi_tls): the certificates a stack's internal endpoints present
when no certificate of the organization's is given (an internal load balancer's HTTPS listener, ...), and the CA
certificate the endpoint's callers trust (the endpoint record's `caCertificate`).

Everything here is computed by the tls provider at deploy time, locally, and kept in the stack's state: private keys
are secrets there (the provider marks `private_key_pem` secret; the preview records them as secret paths). The CA is
cloud-neutral: AWS and Google Cloud pools alike issue from it.

    ca = PrivateCa("prod-ca", PrivateCaArgs(common_name="selfhost-llm prod internal CA", tags=tags))
    cert = ca.issue("alb", [alb.dns_name])        # IssuedCert: .cert_pem, .private_key_pem (secret)
    ca.certificate_pem                            # what callers trust
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pulumi
import pulumi_tls as tls

CA_VALIDITY_HOURS = 10 * 365 * 24
"""The CA certificate's lifetime: 10 years (replacing the CA means every caller trusting it anew)."""
CERT_VALIDITY_HOURS = 365 * 24
"""An issued certificate's lifetime: 1 year."""
CERT_EARLY_RENEWAL_HOURS = 30 * 24
"""An issued certificate is renewed by the first `pulumi up` in its last 30 days."""


@dataclass(frozen=True)
class PrivateCaArgs:
    common_name: str
    """The CA certificate's subject CN (`selfhost-llm <stack> internal CA`)."""
    organization: str = "selfhost-llm"
    """The subject's O, on the CA and on every certificate it issues."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """The environment's tags or labels. tls resources take none (they live in the stack's state, not in a cloud);
    the `environment` tag, when given, becomes the subjects' OU, so a certificate tells which stack issued it."""


@dataclass(frozen=True)
class IssuedCert:
    """One certificate issued by a `PrivateCa`."""

    cert_pem: pulumi.Output[str]
    """The certificate, PEM."""
    private_key_pem: pulumi.Output[str]
    """Its private key, PEM (ECDSA P-256): a secret."""


class PrivateCa(pulumi.ComponentResource):
    """An ECDSA P-256 key and a self-signed CA certificate (cert_signing, crl_signing; 10 years)."""

    if TYPE_CHECKING:  # not at run time: the SDK reads a resource class's annotations on every registration
        certificate_pem: pulumi.Output[str]
        """The CA certificate, PEM: what callers trust."""

    def __init__(self, name: str, args: PrivateCaArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("selfhost:tls:PrivateCa", name, None, opts)
        self._name = name
        self._args = args
        unit = args.tags.get("environment")
        self._subject: dict[str, str] = {"organization": args.organization,
                                         **({"organizational_unit": unit} if unit else {})}
        self._key = tls.PrivateKey(f"{name}-key", algorithm="ECDSA", ecdsa_curve="P256",
                                   opts=pulumi.ResourceOptions(parent=self))
        self._cert = tls.SelfSignedCert(
            f"{name}-cert", private_key_pem=self._key.private_key_pem,
            subject=tls.SelfSignedCertSubjectArgs(common_name=args.common_name, **self._subject),
            is_ca_certificate=True, validity_period_hours=CA_VALIDITY_HOURS,
            allowed_uses=["cert_signing", "crl_signing"],
            opts=pulumi.ResourceOptions(parent=self))
        self.certificate_pem = self._cert.cert_pem
        self.register_outputs({"certificatePem": self.certificate_pem})

    def issue(self, role: str, dns_names: Sequence[pulumi.Input[str]],
              ip_addresses: Sequence[pulumi.Input[str]] = ()) -> IssuedCert:
        """A server certificate (server_auth; 1 year, renewed in its last 30 days) for `dns_names` (and
        `ip_addresses`: IP SANs, for endpoints called by address), its subject CN the first of them; `role` names
        its resources (`<ca>-<role>-key`, ...), unique per CA."""
        key = tls.PrivateKey(f"{self._name}-{role}-key", algorithm="ECDSA", ecdsa_curve="P256",
                             opts=pulumi.ResourceOptions(parent=self))
        request = tls.CertRequest(
            f"{self._name}-{role}-csr", private_key_pem=key.private_key_pem, dns_names=list(dns_names),
            ip_addresses=list(ip_addresses) or None,
            subject=tls.CertRequestSubjectArgs(
                common_name=dns_names[0] if dns_names else ip_addresses[0] if ip_addresses else role, **self._subject),
            opts=pulumi.ResourceOptions(parent=self))
        cert = tls.LocallySignedCert(
            f"{self._name}-{role}-cert", cert_request_pem=request.cert_request_pem,
            ca_private_key_pem=self._key.private_key_pem, ca_cert_pem=self._cert.cert_pem,
            validity_period_hours=CERT_VALIDITY_HOURS, early_renewal_hours=CERT_EARLY_RENEWAL_HOURS,
            allowed_uses=["digital_signature", "key_encipherment", "server_auth"],
            opts=pulumi.ResourceOptions(parent=self))
        secret_key: pulumi.Output[str] = pulumi.Output.secret(key.private_key_pem)
        return IssuedCert(cert_pem=cert.cert_pem, private_key_pem=secret_key)
