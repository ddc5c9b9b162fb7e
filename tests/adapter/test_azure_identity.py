"""The Hugging Face token from Key Vault with Azure ML's managed identity (azure_identity.py), against a local
stand-in for both the identity endpoint (MSI_ENDPOINT) and Key Vault: what is sent, the private file and
HF_TOKEN_PATH, retries, the errors an operator reads, and that no token is ever printed or logged."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from selfhost_adapter import azure_identity
from selfhost_adapter.__main__ import main
from selfhost_adapter.fetch import FetchError
from selfhost_adapter.settings import SettingsError, parse_settings

from .conftest import ROOT

HF_TOKEN = "hf_KeyVaultTokenForTests0123456789"
ACCESS_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.access-token-for-tests"
MSI_SECRET = "msi-secret-for-tests-42"
CLIENT_ID = "0b5b9a86-7a0c-4f6e-9a55-4e6b2f0d1c11"
SECRET_PATH = "/secrets/hf-token"


@dataclass
class Azure:
    """The identity endpoint at /msi/token and Key Vault at /secrets/<name>[/<version>], on one local port."""

    secrets: dict[str, str] = field(default_factory=lambda: {SECRET_PATH: HF_TOKEN})
    identity_fail: list[int] = field(default_factory=list)
    """Statuses the identity endpoint answers the next requests with, one each."""
    vault_fail: list[tuple[int, dict]] = field(default_factory=list)
    """(status, JSON body) Key Vault answers the next requests with, one each."""
    requests: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)
    """(path, query, headers with lowercase names) of every request."""
    url: str = ""

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        query = dict(parse_qsl(parts.query))
        self.requests.append((parts.path, query, {k.lower(): v for k, v in h.headers.items()}))
        if parts.path == "/msi/token":
            if self.identity_fail:
                return self._answer(h, self.identity_fail.pop(0), {"error": "unavailable"})
            if h.headers.get("secret") != MSI_SECRET:
                return self._answer(h, 401, {"error": "invalid secret"})
            if query.get("clientid", CLIENT_ID) != CLIENT_ID:
                return self._answer(h, 400, {"error": "invalid_request", "error_description": "no such identity"})
            return self._answer(h, 200, {"access_token": ACCESS_TOKEN, "expires_on": "1767225600",
                                         "resource": query.get("resource"), "token_type": "Bearer"})
        if self.vault_fail:
            status, body = self.vault_fail.pop(0)
            return self._answer(h, status, body)
        if h.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return self._answer(h, 401, {"error": {"code": "Unauthorized", "message": "no token"}})
        if parts.path.rstrip("/") not in self.secrets:
            return self._answer(h, 404, {"error": {"code": "SecretNotFound", "message": "not found"}})
        return self._answer(h, 200, {"value": self.secrets[parts.path.rstrip("/")],
                                     "id": f"{self.url}{parts.path}", "attributes": {"enabled": True}})

    def _answer(self, h: BaseHTTPRequestHandler, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        if status == 302:
            h.send_header("Location", f"{self.url}/elsewhere")
        h.end_headers()
        h.wfile.write(data)

    def identity(self) -> list[tuple[str, dict[str, str], dict[str, str]]]:
        return [r for r in self.requests if r[0] == "/msi/token"]

    def vault(self) -> list[tuple[str, dict[str, str], dict[str, str]]]:
        return [r for r in self.requests if r[0] != "/msi/token"]


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Azure]:
    state = Azure()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.handle(self)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    for name in ("HF_TOKEN", "HF_TOKEN_PATH", "AZURE_CLIENT_ID", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                 "all_proxy", *(k for k in os.environ if k.startswith(("SELFHOST_", "AIP_", "SAGEMAKER_")))):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MSI_ENDPOINT", f"{state.url}/msi/token")
    monkeypatch.setenv("MSI_SECRET", MSI_SECRET)
    monkeypatch.setenv("DEFAULT_IDENTITY_CLIENT_ID", CLIENT_ID)
    monkeypatch.setattr(azure_identity, "RETRY_DELAYS_SECONDS", (0.01, 0.02, 0.02, 0.02, 0.02))
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def env() -> dict[str, str]:
    return dict(os.environ)


def no_token_in(*texts: str) -> None:
    for text in texts:
        assert HF_TOKEN not in text and ACCESS_TOKEN not in text and MSI_SECRET not in text


def test_reads_the_secret_into_a_private_file(azure: Azure, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    environ = env()
    path = azure_identity.install_hf_token(azure.url + SECRET_PATH, environ, tmp_path)
    [(_, query, headers)] = azure.identity()
    assert query == {"api-version": "2017-09-01", "resource": "https://vault.azure.net", "clientid": CLIENT_ID}
    assert headers["secret"] == MSI_SECRET
    [(vault_path, vault_query, vault_headers)] = azure.vault()
    assert (vault_path, vault_query) == (SECRET_PATH, {"api-version": "7.4"})
    assert vault_headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert path.read_text() == HF_TOKEN and environ["HF_TOKEN_PATH"] == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700 and path.parent.parent == tmp_path
    out = capsys.readouterr()
    no_token_in(caplog.text, out.out, out.err)
    assert SECRET_PATH in caplog.text  # the log says where it came from, not what it is


def test_client_id_and_sovereign_resource(azure: Azure, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """AZURE_CLIENT_ID names a user-assigned identity over DEFAULT_IDENTITY_CLIENT_ID; without either, no
    clientid (the endpoint's own identity). The resource follows the vault's cloud."""
    environ = {**env(), "AZURE_CLIENT_ID": "not-the-default"}
    with pytest.raises(FetchError, match=r"400: it knows no such identity \(identity not-the-default\).*"
                                         "AZURE_CLIENT_ID"):
        azure_identity.install_hf_token(azure.url + SECRET_PATH, environ, tmp_path)
    assert azure.identity()[-1][1]["clientid"] == "not-the-default"
    environ = {k: v for k, v in env().items() if k != "DEFAULT_IDENTITY_CLIENT_ID"}
    azure_identity.install_hf_token(azure.url + SECRET_PATH + "/", environ, tmp_path)
    assert "clientid" not in azure.identity()[-1][1]
    # Azure ML's placeholder where no identity is enabled is no client id.
    azure_identity.install_hf_token(azure.url + SECRET_PATH, {**environ, "DEFAULT_IDENTITY_CLIENT_ID": "clientid"},
                                    tmp_path)
    assert "clientid" not in azure.identity()[-1][1]
    assert azure_identity.resource_for("https://kv-1.vault.azure.cn/secrets/x") == "https://vault.azure.cn"
    assert azure_identity.resource_for("https://kv-1.vault.usgovcloudapi.net/secrets/x") == (
        "https://vault.usgovcloudapi.net")


def test_retries_503_and_connection_errors_then_succeeds(azure: Azure, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    azure.identity_fail = [503, 503]
    azure.vault_fail = [(503, {}), (429, {})]
    environ = env()
    path = azure_identity.install_hf_token(azure.url + SECRET_PATH, environ, tmp_path)
    assert path.read_text() == HF_TOKEN
    assert len(azure.identity()) == 3 and len(azure.vault()) == 3
    assert "answered 503; trying again" in caplog.text
    no_token_in(caplog.text)


def test_connection_refused_is_retried_and_bounded(azure: Azure, tmp_path: Path) -> None:
    environ = {**env(), "MSI_ENDPOINT": "http://127.0.0.1:9/msi/token"}  # nothing listens on the discard port
    with pytest.raises(FetchError, match=r"cannot reach 127.0.0.1:9.*gave up after 6 tries"):
        azure_identity.install_hf_token(azure.url + SECRET_PATH, environ, tmp_path)
    azure.vault_fail = [(503, {})] * 6
    with pytest.raises(FetchError, match=r"answered 503 \(gave up after 6 tries\)"):
        azure_identity.install_hf_token(azure.url + SECRET_PATH, env(), tmp_path)
    assert not list(tmp_path.iterdir())  # no file without a token


def run_main(azure: Azure, url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(["openai", "--engine", "external", "--engine-url", "http://127.0.0.1:9", "--host", "127.0.0.1",
              "--port", "0", "--hf-token-keyvault-url", url])
    out = capsys.readouterr()
    assert out.out == ""
    return int(exited.value.code or 0), out.err


@pytest.mark.parametrize(("status", "body", "says"), [
    (403, {"error": {"code": "Forbidden", "message": "Caller is not authorized",
                     "innererror": {"code": "ForbiddenByRbac"}}},
     "403: the identity lacks the Key Vault Secrets User role on that secret"),
    (403, {"error": {"code": "Forbidden", "message": "Public network access is disabled",
                     "innererror": {"code": "ForbiddenByConnection"}}},
     "403: the vault refuses this network (ForbiddenByConnection)"),
    (404, {"error": {"code": "SecretNotFound", "message": "not found"}}, "404: no such secret"),
])
def test_vault_errors_exit_1_and_say_why(azure: Azure, capsys: pytest.CaptureFixture[str],
                                         caplog: pytest.LogCaptureFixture, status: int, body: dict,
                                         says: str) -> None:
    azure.vault_fail = [(status, body)]
    code, err = run_main(azure, azure.url + SECRET_PATH, capsys)
    assert code == 1
    assert f"Key Vault secret {azure.url}{SECRET_PATH}: {says}" in err
    assert "HF_TOKEN_PATH" not in os.environ
    no_token_in(err, caplog.text)


def test_no_identity_endpoint_exits_1(azure: Azure, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("MSI_ENDPOINT")
    code, err = run_main(azure, azure.url + SECRET_PATH, capsys)
    assert code == 1 and "no managed identity endpoint (MSI_ENDPOINT and MSI_SECRET are unset)" in err
    assert not azure.requests


def test_the_identity_endpoint_is_asked_directly_not_through_a_proxy(azure: Azure, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """MSI_SECRET goes to the node's identity endpoint only, never to an http_proxy (here one that does not
    answer); Key Vault is asked as the environment says (no_proxy covers it here)."""
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("no_proxy", "localhost")
    # Openers read the proxy variables when they are built (at import in the container): build them again.
    monkeypatch.setattr(azure_identity, "_OPENER", urllib.request.build_opener(azure_identity._NoRedirects))
    path = azure_identity.install_hf_token(azure.url.replace("127.0.0.1", "localhost") + SECRET_PATH, env(), tmp_path)
    assert path.read_text() == HF_TOKEN and len(azure.identity()) == 1


def test_a_redirect_is_not_followed(azure: Azure, tmp_path: Path) -> None:
    """The bearer token goes to the URL given and nowhere else."""
    azure.vault_fail = [(302, {})]
    with pytest.raises(FetchError, match=r": 302: unexpected answer"):
        azure_identity.install_hf_token(azure.url + SECRET_PATH, env(), tmp_path)
    assert [r[0] for r in azure.vault()] == [SECRET_PATH]


def test_an_empty_or_odd_secret_is_refused(azure: Azure, tmp_path: Path) -> None:
    azure.secrets = {SECRET_PATH: " ", "/secrets/spaced": "hf_a b"}
    with pytest.raises(FetchError, match="the secret is empty"):
        azure_identity.install_hf_token(azure.url + SECRET_PATH, env(), tmp_path)
    with pytest.raises(FetchError, match="spaces or control characters") as raised:
        azure_identity.install_hf_token(azure.url + "/secrets/spaced", env(), tmp_path)
    assert "hf_a b" not in str(raised.value)


@pytest.mark.parametrize("url", [
    "https://kv-prod.vault.azure.net/secrets/hf-token",
    "https://kv-prod.vault.azure.net/secrets/hf-token/0123456789abcdef0123456789abcdef",
    "https://kv-prod.vault.azure.cn/secrets/hf-token",
    "https://KV-Prod.vault.usgovcloudapi.net:443/secrets/hf-token/",
    "http://localhost:8200/secrets/hf-token",
])
def test_key_vault_urls_accepted(url: str) -> None:
    assert parse_settings(["--engine", "external", "--engine-url", "http://x"],
                          {"SELFHOST_HF_TOKEN_KEYVAULT_URL": url}).hf_token_keyvault_url == url


@pytest.mark.parametrize("url", [
    "http://kv-prod.vault.azure.net/secrets/hf-token",          # plain http off the machine
    "https://kv-prod.vault.azure.net.evil.example/secrets/x",   # not Key Vault
    "https://evil.example/?.vault.azure.net/secrets/x",
    "https://a.b.vault.azure.net/secrets/x",                    # a vault name has no dots
    "https://kv-prod.vault.azure.net/keys/hf-token",            # not a secret
    "https://kv-prod.vault.azure.net/secrets/hf-token/v1",      # a version is 32 hex digits
    "https://kv-prod.vault.azure.net/secrets/hf-token?api-version=7.4",
    "https://user@kv-prod.vault.azure.net/secrets/hf-token",
    "https://kv-prod.vault.azure.net:8443/secrets/hf-token",
    "http://169.254.169.254/secrets/hf-token",
    "kv-prod/hf-token",
])
def test_other_urls_are_settings_errors(url: str) -> None:
    with pytest.raises(SettingsError) as raised:
        parse_settings(["--engine", "external", "--engine-url", "http://x"],
                       {"SELFHOST_HF_TOKEN_KEYVAULT_URL": url})
    message = str(raised.value)
    assert f"SELFHOST_HF_TOKEN_KEYVAULT_URL (--hf-token-keyvault-url): {url!r}" in message
    assert "allowed: https://<vault>.{vault.azure.net, vault.azure.cn, vault.usgovcloudapi.net}" in message


def test_hf_token_beside_the_vault_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="HF_TOKEN are both set"):
        parse_settings(["--engine", "external", "--engine-url", "http://x"],
                       {"SELFHOST_HF_TOKEN_KEYVAULT_URL": "https://kv-1.vault.azure.net/secrets/t", "HF_TOKEN": "x"})


def test_the_program_exits_2_on_a_bad_url(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SELFHOST_", "AIP_", "SAGEMAKER_"))}
    done = subprocess.run([sys.executable, "-m", "selfhost_adapter", "openai", "--engine", "external",
                           "--engine-url", "http://127.0.0.1:9"], cwd=ROOT, capture_output=True, text=True,
                          timeout=30, env={**clean, "SELFHOST_HF_TOKEN_KEYVAULT_URL": "https://example.com/secrets/t"})
    assert done.returncode == 2, done.stderr
    assert "SELFHOST_HF_TOKEN_KEYVAULT_URL (--hf-token-keyvault-url): 'https://example.com/secrets/t'" in done.stderr
