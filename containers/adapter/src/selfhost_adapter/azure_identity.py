"""The Hugging Face token from Azure Key Vault, read with the managed identity of an Azure ML online deployment.

On an Azure ML managed online endpoint nothing can be mounted into the container, and an environment variable is
visible to whoever can read the deployment. So the deployment names a Key Vault secret,
`SELFHOST_HF_TOKEN_KEYVAULT_URL=https://<vault>.vault.azure.net/secrets/<name>[/<version>]`, and before the engine
starts the adapter:

1. gets an access token for Key Vault from Azure ML's managed identity endpoint: `GET $MSI_ENDPOINT?api-version=
   2017-09-01&resource=https://vault.azure.net[&clientid=<id>]` with the header `secret: $MSI_SECRET`, answered
   `{"access_token": ..., "expires_on": ..., ...}` (the protocol of azure-identity's `AzureMLCredential`, MSAL's and
   azure-sdk-for-go's Azure ML sources; the client id is `AZURE_CLIENT_ID` if set, else the
   `DEFAULT_IDENTITY_CLIENT_ID` Azure ML sets, else none);
2. reads the secret: `GET <url>?api-version=7.4` with `Authorization: Bearer <access token>`, answered
   `{"value": ..., ...}`;
3. writes it to a file only this user can read (0600, in a fresh 0700 directory under the temp dir) and points
   `HF_TOKEN_PATH` at it: huggingface_hub, vLLM and our fetch of hf:// adapters read the token from there.

The token is never logged, printed or put in an error. Failures are a `FetchError` (exit 1) that names the URL,
the status and the cause; connection errors, 429 and 5xx are tried again with backoff (the identity endpoint may
take a few seconds to answer after the container starts). Only standard library: the adapter's images carry no
Azure SDK.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import re
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, MutableMapping
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from .fetch import FetchError

log = logging.getLogger("selfhost_adapter.azure_identity")

ENV = "SELFHOST_HF_TOKEN_KEYVAULT_URL"
FLAG = "--hf-token-keyvault-url"
KEYVAULT_DOMAINS = ("vault.azure.net", "vault.azure.cn", "vault.usgovcloudapi.net")
"""Key Vault's DNS suffixes: Azure public, Azure China, Azure Government. The token's resource is
`https://<suffix>`."""
LOCAL_HOSTS = ("127.0.0.1", "localhost")
"""Plain http is accepted only to these (a stand-in for Key Vault in tests)."""
IDENTITY_API_VERSION = "2017-09-01"
KEYVAULT_API_VERSION = "7.4"
TIMEOUT_SECONDS = 10.0
RETRY_DELAYS_SECONDS: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 8.0)
"""The waits before each new try after a connection error, a 429 or a 5xx: six tries over about 23 s."""
MAX_RETRY_AFTER_SECONDS = 10.0
ALLOWED = (f"https://<vault>.{{{', '.join(KEYVAULT_DOMAINS)}}}/secrets/<name>[/<version>], or "
           f"http://{{{', '.join(LOCAL_HOSTS)}}}[:port]/secrets/<name>[/<version>] (tests)")

_VAULT = re.compile(r"[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]")  # Key Vault names: 3-24 letters, digits, '-'
_SECRET_PATH = re.compile(r"/secrets/[A-Za-z0-9-]{1,127}(?:/[0-9A-Fa-f]{32})?/?")
_TOKEN = re.compile(r"[\x21-\x7e]+")  # what an HTTP header (and huggingface_hub) takes
_GUID = re.compile(r"[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}")


class _Transient(Exception):
    """Worth another try: the connection broke or timed out, or the server answered 429 or 5xx."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a new request: the bearer token goes to no other URL."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)  # Key Vault: https_proxy and no_proxy count
_LOCAL_OPENER = urllib.request.build_opener(_NoRedirects, urllib.request.ProxyHandler({}))
"""For the identity endpoint, which is on the node: MSI_SECRET goes to no proxy."""


def url_problem(url: str) -> str | None:
    """Why `url` is not a Key Vault secret URL this adapter reads from, or None when it is one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a URL"
    host = (parts.hostname or "").lower()
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        return "no user, query or fragment may be given"
    if not _SECRET_PATH.fullmatch(parts.path):
        return "the path must be /secrets/<name> or /secrets/<name>/<32-hex version>"
    if parts.scheme == "http" and host in LOCAL_HOSTS:
        return None
    if parts.scheme != "https":
        return "only https (plain http only to 127.0.0.1 or localhost)"
    vault, _, domain = host.partition(".")
    if domain not in KEYVAULT_DOMAINS or not _VAULT.fullmatch(vault):
        return f"{host!r} is not a Key Vault host (<vault>.{' / '.join(KEYVAULT_DOMAINS)})"
    if port not in (None, 443):
        return "Key Vault answers on port 443 only"
    return None


def settings_problems(url: str, environ: Mapping[str, str]) -> list[str]:
    """The settings errors of the Key Vault setting (empty: none, or not set)."""
    if not url:
        return []
    problem = url_problem(url)
    if problem:
        return [f"{ENV} ({FLAG}): {url!r}: {problem}; allowed: {ALLOWED}"]
    if environ.get("HF_TOKEN", "").strip():
        return [f"{ENV} ({FLAG}) and HF_TOKEN are both set: HF_TOKEN would win over the Key Vault secret; "
                "unset one"]
    return []


def resource_for(url: str) -> str:
    """The token audience of the vault `url` names: `https://vault.azure.net` and its sovereign twins."""
    host = (urlsplit(url).hostname or "").lower()
    domain = host.partition(".")[2]
    return f"https://{domain if domain in KEYVAULT_DOMAINS else KEYVAULT_DOMAINS[0]}"


def _retry_after(headers: Message) -> float | None:
    value = (headers.get("Retry-After") or "").strip()
    return float(value) if value.isdigit() else None


def _error_detail(exc: urllib.error.HTTPError) -> tuple[str, str]:
    """(code, message) of an Azure error body, `{"error": {"code", "message", "innererror": {"code"}}}` (Key
    Vault), or `{"error": "...", "error_description": "..."}` (identity endpoints); empty when there is none."""
    with contextlib.suppress(Exception):
        body = json.loads(exc.read(65536))
        error = body.get("error")
        if isinstance(error, dict):
            inner = error.get("innererror") or {}
            code = inner.get("code") if isinstance(inner, dict) and inner.get("code") else error.get("code")
            return str(code or ""), str(error.get("message") or "")[:300]
        return str(error or body.get("statusCode") or ""), str(body.get("error_description")
                                                               or body.get("message") or "")[:300]
    return "", ""


def _get_json(url: str, headers: Mapping[str, str], what: str, explain: Any,
              opener: urllib.request.OpenerDirector = _OPENER) -> dict[str, Any]:
    """GET `url` and parse its JSON answer; tried again after a connection error, a 429 or a 5xx. `explain`
    turns any other error status into the FetchError to raise."""
    host = urlsplit(url).netloc
    for tried in range(len(RETRY_DELAYS_SECONDS) + 1):
        request = urllib.request.Request(url, headers={"User-Agent": "selfhost-adapter"})
        for name, value in headers.items():
            request.add_unredirected_header(name, value)
        try:
            with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
                body = response.read(1 << 20)
            try:
                answer = json.loads(body)
            except ValueError:
                raise FetchError(f"{what}: the answer of {host} is not JSON") from None
            if not isinstance(answer, dict):
                raise FetchError(f"{what}: the answer of {host} is not a JSON object")
            return answer
        except urllib.error.HTTPError as exc:
            if exc.code == 429 or exc.code >= 500:
                problem = _Transient(f"{what}: {host} answered {exc.code}", _retry_after(exc.headers))
                exc.close()
            else:
                code, message = _error_detail(exc)
                exc.close()
                raise explain(exc.code, code, message) from None
        except urllib.error.URLError as exc:
            problem = _Transient(f"{what}: cannot reach {host}: {exc.reason}")
        except (OSError, http.client.HTTPException) as exc:
            problem = _Transient(f"{what}: cannot reach {host}: {exc or type(exc).__name__}")
        if tried == len(RETRY_DELAYS_SECONDS):
            raise FetchError(f"{problem} (gave up after {tried + 1} tries)")
        delay = RETRY_DELAYS_SECONDS[tried]
        if problem.retry_after is not None:
            delay = max(delay, min(problem.retry_after, MAX_RETRY_AFTER_SECONDS))
        log.warning("%s; trying again in %g s", problem, delay)
        time.sleep(delay)
    raise AssertionError("unreachable")


def _client_id(environ: Mapping[str, str]) -> str:
    """The identity to ask for: AZURE_CLIENT_ID (a user-assigned identity), else the DEFAULT_IDENTITY_CLIENT_ID Azure
    ML sets, which its endpoint wants even for the system-assigned identity (azure-sdk-for-go and MSAL send it; on a
    compute without an identity it holds the placeholder `clientid`, which is no id)."""
    explicit = environ.get("AZURE_CLIENT_ID", "").strip()
    if explicit:
        return explicit
    default = environ.get("DEFAULT_IDENTITY_CLIENT_ID", "").strip()
    if default and not _GUID.fullmatch(default):
        log.warning("DEFAULT_IDENTITY_CLIENT_ID is %r, not a client id: asking without one", default)
        return ""
    return default


def access_token(resource: str, environ: Mapping[str, str]) -> str:
    """An access token for `resource` from Azure ML's managed identity endpoint (MSI_ENDPOINT, MSI_SECRET)."""
    endpoint, secret = environ.get("MSI_ENDPOINT", "").strip(), environ.get("MSI_SECRET", "").strip()
    if not (endpoint and secret):
        raise FetchError(f"{ENV} is set, but this container has no managed identity endpoint (MSI_ENDPOINT and "
                         "MSI_SECRET are unset): the secret is read with the identity of an Azure ML online "
                         "deployment, which Azure ML gives its containers")
    query = {"api-version": IDENTITY_API_VERSION, "resource": resource}
    client_id = _client_id(environ)
    if client_id:
        query["clientid"] = client_id  # the 2017-09-01 API's spelling
    url = f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(query)}"
    what = f"token for {resource} from the managed identity endpoint (MSI_ENDPOINT)"
    which = f"identity {client_id}" if client_id else "the endpoint's identity"

    def explain(status: int, code: str, message: str) -> FetchError:
        why = {400: f"it knows no such identity ({which}): check AZURE_CLIENT_ID or DEFAULT_IDENTITY_CLIENT_ID, "
                    "or give the endpoint an identity",
               401: "it refused MSI_SECRET",
               403: "it refused MSI_SECRET",
               404: f"it knows no such identity ({which})"}.get(status, "unexpected answer")
        detail = f" ({code}: {message})" if code or message else ""
        return FetchError(f"{what}: {status}: {why}{detail}")

    answer = _get_json(url, {"secret": secret, "Metadata": "true"}, what, explain, _LOCAL_OPENER)
    token = answer.get("access_token")
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise FetchError(f"{what}: the answer has no access_token")
    return token


def read_secret(url: str, environ: Mapping[str, str]) -> str:
    """The value of the Key Vault secret `url` names, read with the deployment's managed identity."""
    token = access_token(resource_for(url), environ)
    base = url.rstrip("/")
    what = f"Key Vault secret {base}"

    def explain(status: int, code: str, message: str) -> FetchError:
        if status == 403:
            if code in ("ForbiddenByFirewall", "ForbiddenByConnection", "ForbiddenByPolicy") or "network" in (
                    message.lower()):
                why = (f"the vault refuses this network ({code}): its firewall or public network access is off; "
                       "reach it through a private endpoint (a managed network's private endpoint outbound rule)")
            else:
                why = ("the identity lacks the Key Vault Secrets User role on that secret (or its vault), or the "
                       f"vault uses access policies without a get permission for it{f' ({code})' if code else ''}")
        elif status == 404:
            why = "no such secret (or version) in that vault"
        elif status == 401:
            why = f"the vault refused the access token{f' ({code}: {message})' if code or message else ''}"
        elif status == 400:
            why = f"bad request{f' ({code}: {message})' if code or message else ''}"
        else:
            why = f"unexpected answer{f' ({code}: {message})' if code or message else ''}"
        return FetchError(f"{what}: {status}: {why}")

    answer = _get_json(f"{base}?api-version={KEYVAULT_API_VERSION}", {"Authorization": f"Bearer {token}"},
                       what, explain)
    value = answer.get("value")
    if not isinstance(value, str) or not value.strip():
        raise FetchError(f"{what}: the secret is empty")
    value = value.strip()
    if not _TOKEN.fullmatch(value):
        raise FetchError(f"{what}: the secret has spaces or control characters: it is not a Hugging Face token")
    return value


def write_token_file(token: str, base: Path | None = None) -> Path:
    """`token` in a new file readable by this user only (0600), in a new private (0700) directory under `base`
    (default: the temp dir, $TMPDIR else /tmp: HOME in our images)."""
    directory = Path(tempfile.mkdtemp(prefix="selfhost-hf-token-", dir=base))  # 0700, a name nobody guessed
    path = directory / "token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(token)
    return path


def install_hf_token(url: str, environ: MutableMapping[str, str], base: Path | None = None) -> Path:
    """Read the Hugging Face token from the Key Vault secret `url`, write it to a private file and set
    HF_TOKEN_PATH to it in `environ` (os.environ: the engine inherits it). Returns the file. Raises FetchError."""
    token = read_secret(url, environ)
    try:
        path = write_token_file(token, base)
    except OSError as exc:
        raise FetchError(f"cannot write the Hugging Face token under {base or tempfile.gettempdir()}: "
                         f"{exc.strerror}") from None
    environ["HF_TOKEN_PATH"] = str(path)
    log.info("Hugging Face token read from %s into %s (HF_TOKEN_PATH)", url, path)
    return path
