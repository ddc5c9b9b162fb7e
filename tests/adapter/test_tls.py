"""HTTPS on the adapter's port (issue 25): the GPU pools' load balancers talk TLS to it, with a certificate made
on each instance at boot. Here a CA and a server certificate are made with `cryptography`, and applications'
own client, `openai`, calls chat completions over https against llama.cpp: 401 without a valid key, 200 with one.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from selfhost_adapter.settings import SettingsError, parse_settings

from .conftest import KEYS, START_TIMEOUT_SECONDS, Running, start_adapter, stop_process, wait_until

USER = [{"role": "user", "content": "hi"}]


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path


def make_pki(where: Path) -> Pki:
    """A CA, and a server certificate it signs for 127.0.0.1 and localhost (EC P-256, a day long)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "selfhost test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "adapter")])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    where.mkdir(parents=True, exist_ok=True)
    pki = Pki(where / "ca.pem", where / "server.pem", where / "server.key")
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return pki


def https(running: Running) -> str:
    return f"https://127.0.0.1:{running.port}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls(tiny_model: Path, keys_file: Path, pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = start_adapter(tmp_path_factory.mktemp("tls"), "openai", "--engine", "llamacpp", "--model",
                            str(tiny_model), "--api-keys-file", str(keys_file), "--max-tokens-cap", "64",
                            "--max-body-bytes", "65536", wait_ready=False,
                            env={"SELFHOST_TLS_CERT_FILE": str(pki.cert), "SELFHOST_TLS_KEY_FILE": str(pki.key)})
    context = ssl.create_default_context(cafile=str(pki.ca))

    def ready() -> bool:
        if running.proc.poll() is not None:
            return True
        try:
            return httpx.get(https(running) + "/health", verify=context, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, START_TIMEOUT_SECONDS, "adapter ready over https")
        assert running.proc.poll() is None, running.stderr.read_text()[-3000:]
        yield running
    finally:
        stop_process(running.proc)


@pytest.mark.slow
def test_openai_client_over_https_401_without_a_key_200_with_one(tls: Running, pki: Pki) -> None:
    def client(api_key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=https(tls) + "/v1", api_key=api_key, max_retries=0, timeout=30,
                             http_client=httpx.Client(verify=ssl.create_default_context(cafile=str(pki.ca))))

    with pytest.raises(openai.AuthenticationError) as refused:
        client("sk-not-a-key").chat.completions.create(model="tiny", messages=USER, max_tokens=4)
    assert refused.value.status_code == 401
    assert refused.value.body["code"] == "invalid_api_key"
    answer = client(KEYS["team-a"]).chat.completions.create(model="tiny", messages=USER, max_tokens=4)
    assert answer.model == "tiny" and answer.usage is not None and answer.usage.completion_tokens == 4
    stream = client(KEYS["team-b"]).chat.completions.create(model="tiny", messages=USER, max_tokens=4,
                                                           stream=True)
    assert sum(bool(chunk.choices and chunk.choices[0].delta.content) for chunk in stream) == 4
    # No key at all, and an error over TLS, in the usual shape.
    verify = ssl.create_default_context(cafile=str(pki.ca))
    r = httpx.post(https(tls) + "/v1/chat/completions", json={"messages": USER}, verify=verify, timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    r = httpx.post(https(tls) + "/v1/chat/completions", content=b"x" * 200_000, verify=verify, timeout=10,
                   headers={"authorization": f"Bearer {KEYS['team-a']}"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"


@pytest.mark.slow
def test_tls_is_1_2_at_least_and_plain_http_is_not_served(tls: Running, pki: Pki) -> None:
    context = ssl.create_default_context(cafile=str(pki.ca))
    with socket.create_connection(("127.0.0.1", tls.port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
        assert sock.version() in ("TLSv1.2", "TLSv1.3")
    old = ssl.create_default_context(cafile=str(pki.ca))
    with warnings.catch_warnings():  # deprecated: which is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, OSError)), socket.create_connection(("127.0.0.1", tls.port), timeout=5) as raw, \
            old.wrap_socket(raw, server_hostname="127.0.0.1"):
        pass
    with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port: no answer a client could take
        httpx.get(f"http://127.0.0.1:{tls.port}/health", timeout=5).raise_for_status()


def test_tls_settings_both_or_neither_files_and_a_real_pair(tmp_path: Path, pki: Pki) -> None:
    external = ["--engine", "external", "--engine-url", "http://127.0.0.1:1"]
    s = parse_settings([*external, "--tls-cert-file", str(pki.cert), "--tls-key-file", str(pki.key)], {})
    assert (s.tls_cert_file, s.tls_key_file) == (str(pki.cert), str(pki.key))
    s = parse_settings(external, {"SELFHOST_TLS_CERT_FILE": str(pki.cert), "SELFHOST_TLS_KEY_FILE": str(pki.key)})
    assert s.tls_key_file == str(pki.key)
    assert parse_settings(external, {}).tls_cert_file == ""  # off by default: plain HTTP
    with pytest.raises(SettingsError, match="both or neither"):
        parse_settings([*external, "--tls-cert-file", str(pki.cert)], {})
    with pytest.raises(SettingsError, match="is not a file"):
        parse_settings([*external, "--tls-cert-file", str(tmp_path / "nope.pem"), "--tls-key-file", str(pki.key)],
                       {})
    with pytest.raises(SettingsError, match="not a certificate and its key"):
        parse_settings([*external, "--tls-cert-file", str(pki.ca), "--tls-key-file", str(pki.key)], {})  # wrong key
