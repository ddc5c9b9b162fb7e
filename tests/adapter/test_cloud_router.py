"""The router on a cloud, run for real: the config components/litellm.py renders for a SageMaker backend and
callers with their own keys and limits, loaded by the LiteLLM proxy (`make litellm`), driven by the `openai`
client.

SageMaker's runtime API is a local stand-in that accepts only requests SigV4-signed for `sagemaker`, the
configured region and endpoint (recomputed with botocore from the fake credentials the proxy is given), and answers
through a real adapter (`selfhost serve` on the tiny model): /invocations as is, and the streamed route re-framed
as the AWS event stream SageMaker sends. The callers' keys and the master key are files of a secrets directory.
Also: an OpenAI-compatible backend on HTTPS with a certificate of the stack's own CA, trusted through the CA bundle.
And a Vertex AI backend (components/litellm.py VertexBackend): the proxy authenticates with a service account's key
file, whose token endpoint is a local stand-in of Google's OAuth that checks the signed assertion, and posts the
OpenAI chat body to a stand-in of the Vertex prediction API that checks that token and hands the body, as Vertex
does, to a real adapter's predict route. And the routers of the shipped stacks as their platforms run them: the
container aws-prod's task definition declares (its entry point, its command, its environment and secrets, HTTPS) and
the one gcp-prod's Cloud Run service declares, each run as a host process against those stand-ins. All on
127.0.0.1, every wait bounded, every process stopped."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import struct
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer
from openai.types.chat import ChatCompletion

from components.litellm import (
    MASTER_KEY_FILE,
    READINESS_ROUTE,
    ROUTER_MODULE,
    Backend,
    Caller,
    SageMakerBackend,
    SecretSource,
    VertexBackend,
    caller_key_file,
    litellm_config,
    router_module_text,
)

from .conftest import Running, free_port, start_adapter, stop_process, wait_until
from .test_hybrid_router import LITELLM, SELFHOST, SERVED, serve, write_secrets

MODEL = "tiny"
ENDPOINT = "selfhost-tiny"
REGION = "eu-west-1"
ACCESS_KEY, SECRET_KEY = "AKIDSELFHOSTTEST0001", "fake/secret/for/the/stand-in/0123456789"
ADAPTER_KEY = "sk-adapter-unused-by-sagemaker-000"
CALLER_KEYS = {"web": "sk-web-0123456789abcdef", "batch": "sk-batch-fedcba9876543210"}
MASTER_KEY = "sk-router-master-7777777777"
BATCH_RPM = 2
PROMPT_MARK = "purple-elephant-prompt-text"  # must never appear in the router's output
START_SECONDS, REQUEST_SECONDS = 60.0, 30.0


def event_message(payload: bytes) -> bytes:
    """One AWS event-stream message as SageMaker sends a PayloadPart: a prelude (total and headers length, its
    CRC32), the headers (name length, name, type 7 = string, value length, value), the payload, the message's
    CRC32."""
    headers = b"".join(
        bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(value)) + value.encode()
        for name, value in ((":event-type", "PayloadPart"), (":content-type", "application/octet-stream"),
                            (":message-type", "event")))
    prelude = struct.pack(">II", 12 + len(headers) + len(payload) + 4, len(headers))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + headers + payload
    return message + struct.pack(">I", binascii.crc32(message))


def test_the_event_stream_encoder_round_trips_through_botocore():
    stream = EventStreamBuffer()
    payloads = [b'data: {"a": 1}\n\n', b"", "é".encode() * 300]
    for payload in payloads:
        stream.add_data(event_message(payload))
    events = list(stream)
    assert [e.payload for e in events] == payloads
    assert all(e.headers == {":event-type": "PayloadPart", ":content-type": "application/octet-stream",
                             ":message-type": "event"} for e in events)
    corrupt = bytearray(event_message(b"x"))
    corrupt[-6] ^= 1
    broken = EventStreamBuffer()
    broken.add_data(bytes(corrupt))
    with pytest.raises(Exception, match="(?i)crc|checksum"):
        list(broken)


@dataclass
class FakeSageMaker:
    """SageMaker's runtime API for one endpoint, in front of a real adapter."""

    adapter: Running
    endpoint: str = ENDPOINT
    region: str = REGION
    server: ThreadingHTTPServer = field(init=False)
    seen: list[dict] = field(default_factory=list)
    """(path, stream, status) of each request, once answered."""

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                problem = fake.signature_problem(self.command, self.path, dict(self.headers.items()), body)
                if problem:
                    fake.seen.append({"path": self.path, "status": 403, "problem": problem})
                    self._whole(403, json.dumps({"message": problem}).encode())
                    return
                request = json.loads(body)
                # With the endpoint URL overridden, litellm sends streamed requests to it too (components/litellm.py
                # SageMakerBackend.endpoint_url); its body says which it is.
                streamed = self.path.endswith("/invocations-response-stream") or request.get("stream") is True
                fake.seen.append({"path": self.path, "stream": streamed, "status": 200, "body": request})
                if not streamed:
                    r = httpx.post(fake.adapter.url + "/invocations", content=body,
                                   headers={"content-type": "application/json"}, timeout=REQUEST_SECONDS)
                    self._whole(r.status_code, r.content)
                    return
                with httpx.stream("POST", fake.adapter.url + "/invocations-response-stream", content=body,
                                  headers={"content-type": "application/json"}, timeout=REQUEST_SECONDS) as r:
                    if r.status_code != 200:
                        self._whole(r.status_code, r.read())
                        return
                    self.send_response(200)
                    self.send_header("content-type", "application/vnd.amazon.eventstream")
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    # One PayloadPart per server-sent event, as the adapter writes them: litellm's decoder
                    # parses each part's payload as one JSON chunk (llms/sagemaker/common_utils.py aiter_bytes),
                    # and reads must not merge what the container sent separately.
                    pending = b""
                    for part in r.iter_raw():
                        pending += part
                        while b"\n\n" in pending:
                            event, pending = pending.split(b"\n\n", 1)
                            message = event_message(event + b"\n\n")
                            self.wfile.write(f"{len(message):x}\r\n".encode() + message + b"\r\n")
                            self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")

            def _whole(self, status: int, content: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/endpoints/{self.endpoint}/invocations"

    def signature_problem(self, method: str, path: str, headers: dict[str, str], body: bytes) -> str | None:
        """Why the request is not SigV4-signed for this endpoint with the test's credentials; None if it is."""
        if not re.fullmatch(f"/endpoints/{self.endpoint}/invocations(-response-stream)?", path):
            return f"no such endpoint: {path}"
        lower = {k.lower(): v for k, v in headers.items()}
        m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                         r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})", lower.get("authorization", ""))
        if not m:
            return "not SigV4-signed"
        access_key, day, region, service, signed, signature = m.groups()
        if (access_key, region, service) != (ACCESS_KEY, self.region, "sagemaker"):
            return f"signed for {(access_key, region, service)}"
        amz_date = lower.get("x-amz-date", "")
        if not amz_date.startswith(day) or "host" not in signed.split(";"):
            return "the date or the host is not signed"
        request = AWSRequest(method=method, url=f"http://{lower['host']}{path}", data=body,
                             headers={name: lower[name] for name in signed.split(";")})
        request.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "sagemaker", self.region)
        expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
        return None if expected == signature else "signature mismatch"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_proxy(config: dict, workdir: Path, secrets_dir: Path, **env: str) -> tuple[subprocess.Popen, str, Path]:
    """The LiteLLM proxy on `config`, with the router module beside it, reading secrets from `secrets_dir` only,
    with `env` added and no AWS settings of the machine's; (process, URL, log) once ready."""
    if not LITELLM.exists():
        pytest.fail(f"{LITELLM} is missing: run `make litellm`")
    config_dir = workdir / "config"
    config_dir.mkdir()
    (config_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (config_dir / f"{ROUTER_MODULE}.py").write_text(router_module_text())
    port, log = free_port(), workdir / "litellm.log"
    # Nor Google's: a developer's application-default credentials must not stand in for the test's.
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("AWS_", "DATABASE_URL", "SSL_", "GOOGLE_", "CLOUDSDK_", "GCE_"))}
    clean |= {"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
              "AWS_EC2_METADATA_DISABLED": "true", "LITELLM_OIDC_ALLOWED_CREDENTIAL_DIRS": str(secrets_dir),
              "LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1", **env}
    proc = subprocess.Popen([str(LITELLM), "--config", str(config_dir / "config.yaml"), "--host", "127.0.0.1",
                             "--port", str(port), "--telemetry", "False"], cwd=workdir,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=clean)
    url = f"http://127.0.0.1:{port}"
    until_ready(proc, url, log, "LiteLLM proxy")
    return proc, url, log


def until_ready(proc: subprocess.Popen, url: str, log: Path, what: str, verify: str | bool = True) -> None:
    """Wait for the proxy of `proc` to answer its readiness route at `url` (its TLS trusted with `verify`); stop it
    when it does not in time, and say why (its log's end) when it exited instead."""
    def ready() -> bool:
        try:
            return proc.poll() is not None or httpx.get(url + READINESS_ROUTE, verify=verify,
                                                        timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, START_SECONDS, f"{what} ready", interval=0.2)
    except TimeoutError:
        stop_process(proc, timeout_seconds=10)
        raise
    if proc.poll() is not None:
        raise RuntimeError(f"{what} exited:\n{log.read_text()[-3000:]}")


@dataclass
class CloudRouter:
    proc: subprocess.Popen
    url: str
    log: Path
    fake: FakeSageMaker

    def client(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0, timeout=REQUEST_SECONDS)

    def usage(self) -> list[dict]:
        lines = [line for line in self.log.read_text().splitlines() if '"selfhost_router_usage"' in line]
        return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def cloud(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudRouter]:
    workdir = tmp_path_factory.mktemp("cloud-router")
    adapter = serve(workdir / "adapter", free_port(), ADAPTER_KEY, tiny_model)
    fake = FakeSageMaker(adapter)
    proc = None
    try:
        secrets_dir = write_secrets(workdir / "secrets", {
            MASTER_KEY_FILE: MASTER_KEY, **{caller_key_file(c): key for c, key in CALLER_KEYS.items()}})
        backend = SageMakerBackend("sagemaker", ENDPOINT, REGION, endpoint_url=fake.url, served_model=SERVED)
        config = litellm_config(MODEL, [backend], secrets=SecretSource.files(str(secrets_dir)),
                                callers=[Caller("web", rpm_limit=100), Caller("batch", rpm_limit=BATCH_RPM)],
                                timeout_seconds=REQUEST_SECONDS)
        proc, url, log = start_proxy(config, workdir, secrets_dir, AWS_ACCESS_KEY_ID=ACCESS_KEY,
                                     AWS_SECRET_ACCESS_KEY=SECRET_KEY)
        yield CloudRouter(proc, url, log, fake)
    finally:
        if proc is not None:
            stop_process(proc, timeout_seconds=10)
        fake.stop()
        stop_process(adapter.proc, timeout_seconds=10)


def ask(client: openai.OpenAI, text: str) -> ChatCompletion:
    return client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}], max_tokens=8)


@pytest.mark.slow
def test_a_caller_reaches_sagemaker_signed_streamed_or_not(cloud: CloudRouter):
    started = time.monotonic()
    web = cloud.client(CALLER_KEYS["web"])
    answer = ask(web, f"{PROMPT_MARK} one")
    assert answer.choices[0].message.content and answer.usage and answer.usage.completion_tokens == 8
    stream = web.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"{PROMPT_MARK} 2"}],
                                         max_tokens=8, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text) == 8, chunks  # the tiny model's tokens are one character each
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
    # Both went to the endpoint's own routes, signed; nothing was refused.
    assert [(s["stream"], s["status"]) for s in cloud.fake.seen] == [(False, 200), (True, 200)], cloud.fake.seen
    assert cloud.fake.seen[0]["body"]["messages"][0]["content"] == f"{PROMPT_MARK} one"
    # The adapter served both: OpenAI chat, one streamed.
    log = [e for e in cloud.fake.adapter.access_log() if e["status"] == 200]
    assert len(log) == 2, log
    # A request signed with other credentials is refused by the stand-in (so its check can fail).
    body = json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode()
    forged = AWSRequest(method="POST", url=cloud.fake.url, data=body,
                        headers={"content-type": "application/json"})
    SigV4Auth(Credentials(ACCESS_KEY, "not-the-secret"), "sagemaker", REGION).add_auth(forged)
    r = httpx.post(cloud.fake.url, content=body, headers=dict(forged.headers.items()), timeout=5)
    assert r.status_code == 403 and "signature mismatch" in r.text
    print(f"\nsagemaker: plain and streamed through the router in {time.monotonic() - started:.1f} s")


@pytest.mark.slow
def test_callers_need_their_key_and_stay_within_their_limit(cloud: CloudRouter):
    # No key (the openai client insists on one, so plain HTTP), a wrong one, a caller's less its last character.
    body = {"model": MODEL, "messages": [{"role": "user", "content": "no"}], "max_tokens": 8}
    assert httpx.post(cloud.url + "/v1/chat/completions", json=body, timeout=10).status_code == 401
    for key in ("sk-wrong-key-000000000000", CALLER_KEYS["web"][:-1]):
        with pytest.raises(openai.AuthenticationError):
            ask(cloud.client(key), "no")
    # The master key administers and does not call the models; a caller's key calls the models only.
    with pytest.raises(openai.PermissionDeniedError):
        ask(cloud.client(MASTER_KEY), "admin")

    def status(path: str, key: str) -> int:
        return httpx.get(cloud.url + path, headers={"authorization": f"Bearer {key}"}, timeout=5).status_code

    assert [status("/v1/models", k) for k in (MASTER_KEY, CALLER_KEYS["web"])] == [403, 200]
    # (/metrics answers through litellm's own auth middleware, which reports any refusal as 401.)
    assert [status(path, CALLER_KEYS["web"]) for path in ("/metrics/", "/key/list", "/config/yaml")] == [
        401, 403, 403]
    served_before = len(cloud.fake.seen)
    batch, web = cloud.client(CALLER_KEYS["batch"]), cloud.client(CALLER_KEYS["web"])
    for i in range(BATCH_RPM):
        ask(batch, f"{PROMPT_MARK} batch {i}")
    with pytest.raises(openai.RateLimitError):
        ask(batch, f"{PROMPT_MARK} one too many")
    ask(web, f"{PROMPT_MARK} web is not limited by batch")
    # The refused ones never reached the backend.
    assert len(cloud.fake.seen) == served_before + BATCH_RPM + 1

    def usage_of(caller: str, status: str) -> list[dict]:
        return [u for u in cloud.usage() if u["caller"] == caller and u["status"] == status]

    wait_until(lambda: len(usage_of("batch", "success")) == BATCH_RPM and len(usage_of("batch", "failure")) == 1
               and len(usage_of("web", "success")) >= 1, 10, "usage lines")
    # The refusal is on record too, for the caller, with nothing served.
    assert [(u["deployment"], u["completion_tokens"]) for u in usage_of("batch", "failure")] == [("", 0)]
    for line in usage_of("batch", "success"):
        assert line["status"] == "success" and line["deployment"] == "sagemaker" and line["model_group"] == MODEL
        assert line["prompt_tokens"] > 0 and line["completion_tokens"] == 8 and line["latency_seconds"] > 0
    # Prometheus series per caller, on /metrics, for a key only.
    assert httpx.get(cloud.url + "/metrics/", timeout=5).status_code == 401
    metrics = httpx.get(cloud.url + "/metrics/", headers={"authorization": f"Bearer {MASTER_KEY}"}, timeout=5)
    assert metrics.status_code == 200

    def requests_of(caller: str, status: int) -> float:
        pattern = (r'litellm_proxy_total_requests_metric_total\{[^}]*api_key_alias="' + caller
                   + r'"[^}]*status_code="' + str(status) + r'"[^}]*\} (\S+)')
        return sum(float(value) for value in re.findall(pattern, metrics.text))

    assert (requests_of("batch", 200), requests_of("batch", 429)) == (BATCH_RPM, 1), metrics.text[-3000:]
    output = cloud.log.read_text()
    assert PROMPT_MARK not in output, "a prompt is in the router's output"
    assert not any(key in output for key in (*CALLER_KEYS.values(), MASTER_KEY)), "a key is in the router's output"


def test_the_config_names_callers_keys_by_reference_only():
    sagemaker = [SageMakerBackend("sm", ENDPOINT, REGION, served_model=SERVED)]
    callers = [Caller("web", rpm_limit=60, max_parallel_requests=4), Caller("batch", tpm_limit=100_000)]
    ecs = litellm_config(MODEL, sagemaker, callers=callers,
                         secrets=SecretSource.environment("ROUTER_"))
    assert ecs["model_list"][0]["litellm_params"] == {"model": f"sagemaker_chat/{ENDPOINT}",
                                                      "aws_region_name": REGION, "hf_model_name": SERVED,
                                                      "order": 1}
    settings = ecs["general_settings"]
    assert settings["master_key"] == "os.environ/ROUTER_MASTER_KEY"
    assert settings["custom_auth"] == f"{ROUTER_MODULE}.user_api_key_auth"
    assert settings["selfhost_callers"] == {
        "web": {"key": "os.environ/ROUTER_CALLER_WEB_KEY", "rpm_limit": 60, "max_parallel_requests": 4},
        "batch": {"key": "os.environ/ROUTER_CALLER_BATCH_KEY", "tpm_limit": 100_000}}
    assert ecs["litellm_settings"]["callbacks"] == [f"{ROUTER_MODULE}.usage_logger", "prometheus"]
    files = litellm_config(MODEL, sagemaker, callers=callers[:1],
                           secrets=SecretSource.files("/secrets"))
    assert files["general_settings"]["selfhost_callers"]["web"]["key"] == "os.environ/oidc/file//secrets/caller-web.key"
    # No callers: the master key is the one key, no custom auth (the hybrid stack's router).
    plain = litellm_config(MODEL, sagemaker)
    assert "custom_auth" not in plain["general_settings"] and "callbacks" not in plain["litellm_settings"]
    with pytest.raises(ValueError, match="caller ids are not unique"):
        litellm_config(MODEL, sagemaker, callers=[Caller("a"), Caller("a")])
    # Vertex: rendered for litellm's OpenAI-compatible Vertex route (run for real in the Vertex tests below).
    vertex = litellm_config(MODEL, [VertexBackend("vx", "1234567890", "proj", "europe-west4", 2,
                                                  api_base="https://10.1.2.3/v1beta1/projects/proj/locations/"
                                                           "europe-west4/endpoints/1234567890/")])
    assert vertex["model_list"][0]["litellm_params"] == {
        "model": "vertex_ai/openai/1234567890", "vertex_project": "proj", "vertex_location": "europe-west4",
        "api_base": "https://10.1.2.3/v1beta1/projects/proj/locations/europe-west4/endpoints/1234567890", "order": 2}
    with pytest.raises(ValueError, match="not a Vertex endpoint id"):
        VertexBackend("vx", "projects/p/endpoints/1", "proj", "europe-west4")
    with pytest.raises(ValueError, match="not an AWS region"):
        SageMakerBackend("sm", ENDPOINT, "Europe", served_model=SERVED)
    with pytest.raises(ValueError, match="below 1"):
        Caller("web", rpm_limit=0)
    with pytest.raises(ValueError, match="not an absolute path"):
        SecretSource.files("relative")
    assert "def user_api_key_auth" in router_module_text()


def issue_tls(directory: Path) -> tuple[Path, Path, Path]:
    """A CA of the stack's own (not a public one) and a certificate it issued for 127.0.0.1: (CA, cert, key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "selfhost test stack CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(hours=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pool")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "pool.pem", directory / "pool.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


POOL_KEY = "sk-pool-0123456789abcdef"


def tls_backend(cert: Path, key: Path) -> ThreadingHTTPServer:
    """An OpenAI-compatible backend on HTTPS with the stack's certificate, answering one canned chat completion
    to its key."""
    import ssl

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            ok = self.path == "/v1/chat/completions" and self.headers.get("authorization") == f"Bearer {POOL_KEY}"
            body = json.dumps({"id": "c", "object": "chat.completion", "created": 1, "model": SERVED, "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "over TLS"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}} if ok else {}).encode()
            self.send_response(200 if ok else 401)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.slow
def test_a_backend_with_the_stacks_own_certificate_is_trusted_through_the_ca_bundle(tmp_path: Path):
    """With `ca_bundle_file`, the proxy verifies a backend's certificate against that bundle (the stack's CA); without
    it, against the public roots, which refuse it."""
    ca, cert, key = issue_tls(tmp_path)
    server = tls_backend(cert, key)
    secrets_dir = write_secrets(tmp_path / "secrets", {MASTER_KEY_FILE: MASTER_KEY, "pool.key": POOL_KEY})
    backend = Backend("pool", f"https://127.0.0.1:{server.server_address[1]}/v1", SERVED, "pool.key")
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    results = []
    try:
        for bundle in (str(ca), None):
            workdir = tmp_path / ("with-bundle" if bundle else "without")
            workdir.mkdir()
            config = litellm_config(MODEL, [backend], secrets=SecretSource.files(str(secrets_dir)),
                                    ca_bundle_file=bundle, num_retries=0, timeout_seconds=REQUEST_SECONDS)
            proc, url, log = start_proxy(config, workdir, secrets_dir)
            try:
                r = httpx.post(url + "/v1/chat/completions", json=body, timeout=REQUEST_SECONDS,
                               headers={"authorization": f"Bearer {MASTER_KEY}"})
                results.append((r.status_code, r.text if r.status_code == 200 else log.read_text()))
            finally:
                stop_process(proc, timeout_seconds=10)
    finally:
        server.shutdown()
        server.server_close()
    (trusted, answer), (refused, error) = results
    assert trusted == 200 and json.loads(answer)["choices"][0]["message"]["content"] == "over TLS", answer
    assert refused >= 500 and "CERTIFICATE_VERIFY_FAILED" in error, error[-3000:]


# --- Vertex AI: a service account's token, the OpenAI-compatible route, the adapter's predict route ---------------

PROJECT, VERTEX_REGION = "selfhost-test", "europe-west4"
ENDPOINT_ID, DEPLOYED_MODEL_ID = "1234567890123456789", "4242"
# What Vertex sets in the container for its predict route (AIP_PREDICT_ROUTE), not the adapter's default /predict.
PREDICT_ROUTE = f"/v1/endpoints/{ENDPOINT_ID}/deployedModels/{DEPLOYED_MODEL_ID}:predict"
VERTEX_CHAT_PATH = f"/v1beta1/projects/{PROJECT}/locations/{VERTEX_REGION}/endpoints/{ENDPOINT_ID}/chat/completions"
SERVICE_ACCOUNT = f"router@{PROJECT}.iam.gserviceaccount.com"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
# google-auth puts Google's token endpoint in every service-account assertion's `aud`, whatever the key file's
# token_uri (google/oauth2/service_account.py _make_authorization_grant_assertion).
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_jwt(key, claims: dict) -> str:
    """An RS256 JWT of `claims` signed by `key` (an RSA private key), as google-auth writes one."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signed = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode()) + "." + b64url(json.dumps(claims).encode())
    return signed + "." + b64url(key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256()))


def respond(handler: BaseHTTPRequestHandler, status: int, doc: dict) -> None:
    content = json.dumps(doc).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(content)))
    handler.end_headers()
    handler.wfile.write(content)


def serve_in_thread(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class FakeGoogleOAuth:
    """Google's OAuth token endpoint for one service account: a JWT-bearer grant whose assertion that account's
    key signed, for the cloud-platform scope, gets an access token."""

    public_key: object
    issued: set[str] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer = field(init=False)

    def __post_init__(self) -> None:
        fake = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                form = urllib.parse.parse_qs(self.rfile.read(int(self.headers.get("content-length", 0))).decode())
                problem = fake.grant_problem(self.path, {k: v[0] for k, v in form.items()})
                if problem:
                    fake.refused.append(problem)
                    respond(self, 400, {"error": "invalid_grant", "error_description": problem})
                    return
                token = "ya29.test-" + secrets.token_urlsafe(24)
                fake.issued.add(token)
                respond(self, 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

        self.server = serve_in_thread(Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def grant_problem(self, path: str, form: dict[str, str]) -> str | None:
        """Why the grant is refused; None if its assertion is the service account's, signed by its key."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        if path != "/token" or form.get("grant_type") != JWT_BEARER:
            return f"not a JWT-bearer grant: {path} {form.get('grant_type')}"
        parts = form.get("assertion", "").split(".")
        if len(parts) != 3:
            return "the assertion is not a JWT"
        header, claims = json.loads(unb64url(parts[0])), json.loads(unb64url(parts[1]))
        if header.get("alg") != "RS256":
            return f"alg {header.get('alg')}"
        try:
            self.public_key.verify(unb64url(parts[2]), f"{parts[0]}.{parts[1]}".encode(),  # type: ignore[attr-defined]
                                   padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return "the assertion is not signed by the service account's key"
        if (claims.get("iss"), claims.get("aud")) != (SERVICE_ACCOUNT, GOOGLE_TOKEN_AUDIENCE):
            return f"issued by {claims.get('iss')} for {claims.get('aud')}"
        if CLOUD_PLATFORM not in str(claims.get("scope", "")).split() or claims.get("exp", 0) < time.time():
            return "not for the cloud-platform scope, or expired"
        return None

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class FakeVertex:
    """The Vertex prediction API for one endpoint, in front of a real adapter: a caller with a token the OAuth
    stand-in issued may post to the endpoint's OpenAI-compatible chat route, and the body goes, unchanged, to the
    container's predict route, its answer (server-sent events when streamed) back as it comes."""

    adapter: Running
    oauth: FakeGoogleOAuth
    chat_path: str = VERTEX_CHAT_PATH
    predict_route: str = PREDICT_ROUTE
    seen: list[dict] = field(default_factory=list)
    """(path, stream, status, body) of each request, once answered."""
    server: ThreadingHTTPServer = field(init=False)

    def __post_init__(self) -> None:
        fake = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.path != fake.chat_path:
                    fake.seen.append({"path": self.path, "status": 404})
                    respond(self, 404, {"error": {"code": 404, "message": f"no such endpoint: {self.path}"}})
                    return
                token = self.headers.get("authorization", "").removeprefix("Bearer ")
                if token not in fake.oauth.issued:
                    fake.seen.append({"path": self.path, "status": 403})
                    respond(self, 403, {"error": {"code": 403, "message": "permission denied"}})
                    return
                request = json.loads(body)
                streamed = request.get("stream") is True
                fake.seen.append({"path": self.path, "stream": streamed, "status": 200, "body": request})
                with httpx.stream("POST", fake.adapter.url + fake.predict_route, content=body,
                                  headers={"content-type": "application/json"}, timeout=REQUEST_SECONDS) as r:
                    self.send_response(r.status_code)
                    self.send_header("content-type", r.headers.get("content-type", "application/json"))
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    for part in r.iter_raw():
                        self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")

        self.server = serve_in_thread(Handler)

    @property
    def api_base(self) -> str:
        """The endpoint's base, as a private endpoint's is configured (VertexBackend.api_base)."""
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.chat_path.removesuffix('/chat/completions')}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class VertexRouter:
    url: str
    log: Path
    fake: FakeVertex
    other_key: object
    """An RSA key that is not the service account's."""

    def client(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0, timeout=REQUEST_SECONDS)


def service_account_file(path: Path, key, token_uri: str) -> Path:
    """A service account's key file as the IAM console writes it, with its token endpoint at `token_uri`."""
    from cryptography.hazmat.primitives import serialization

    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": PROJECT, "private_key_id": "0123456789abcdef", "private_key": pem,
        "client_email": SERVICE_ACCOUNT, "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri}))
    path.chmod(0o400)
    return path


@pytest.fixture(scope="module")
def vertex(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VertexRouter]:
    from cryptography.hazmat.primitives.asymmetric import rsa

    workdir = tmp_path_factory.mktemp("vertex-router")
    (workdir / "adapter").mkdir()
    keys = workdir / "adapter" / "api-keys"
    keys.write_text(f"router:{ADAPTER_KEY}\n")  # the OpenAI routes stay closed; Vertex authenticates on predict
    adapter = start_adapter(workdir / "adapter", "--model", str(tiny_model), "--api-keys-file", str(keys),
                            "--model-name", SERVED, "--max-tokens-cap", "64", command=[str(SELFHOST), "serve"],
                            env={"AIP_PREDICT_ROUTE": PREDICT_ROUTE})
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    oauth = FakeGoogleOAuth(key.public_key())
    fake = FakeVertex(adapter, oauth)
    proc = None
    try:
        secrets_dir = write_secrets(workdir / "secrets", {
            MASTER_KEY_FILE: MASTER_KEY, **{caller_key_file(c): key for c, key in CALLER_KEYS.items()}})
        credentials = service_account_file(workdir / "service-account.json", key, oauth.url)
        backend = VertexBackend("vertex", ENDPOINT_ID, PROJECT, VERTEX_REGION, api_base=fake.api_base)
        config = litellm_config(MODEL, [backend], secrets=SecretSource.files(str(secrets_dir)),
                                callers=[Caller("web", rpm_limit=100)], timeout_seconds=REQUEST_SECONDS)
        # google-auth's default credentials: the key file; no metadata server to look for (NO_GCE_CHECK).
        proc, url, log = start_proxy(config, workdir, secrets_dir, GOOGLE_APPLICATION_CREDENTIALS=str(credentials),
                                     GOOGLE_CLOUD_PROJECT=PROJECT, NO_GCE_CHECK="True")
        yield VertexRouter(url, log, fake, rsa.generate_private_key(public_exponent=65537, key_size=2048))
    finally:
        if proc is not None:
            stop_process(proc, timeout_seconds=10)
        fake.stop()
        oauth.stop()
        stop_process(adapter.proc, timeout_seconds=10)


@pytest.mark.slow
def test_a_caller_reaches_vertex_with_the_service_accounts_token_streamed_or_not(vertex: VertexRouter):
    started = time.monotonic()
    web = vertex.client(CALLER_KEYS["web"])
    answer = ask(web, f"{PROMPT_MARK} one")
    assert answer.choices[0].message.content and answer.usage and answer.usage.completion_tokens == 8
    stream = web.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"{PROMPT_MARK} 2"}],
                                         max_tokens=8, stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text) == 8, chunks  # the tiny model's tokens are one character each
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
    # Both went to the endpoint's chat route with a token the service account's signed assertion got.
    fake = vertex.fake
    assert [(s["stream"], s["status"]) for s in fake.seen] == [(False, 200), (True, 200)], fake.seen
    assert fake.oauth.issued and not fake.oauth.refused
    first = fake.seen[0]["body"]
    assert first["model"] == "" and first["messages"][0]["content"] == f"{PROMPT_MARK} one"
    # The adapter answered both on its Vertex predict route, one streamed.
    log = [(e["route"], e["status"], e["stream"]) for e in fake.adapter.access_log() if e["route"] != "unknown"]
    assert log == [("vertex_predict", 200, False), ("vertex_predict", 200, True)], log
    # The stand-ins' checks can fail: no token or one it did not issue is refused, and so is an assertion
    # signed by another key, or by the right key for another account.
    body = {"model": "", "messages": [{"role": "user", "content": "x"}]}
    for headers in ({}, {"authorization": "Bearer ya29.not-issued-by-the-stand-in"}):
        r = httpx.post(fake.api_base + "/chat/completions", json=body, headers=headers, timeout=5)
        assert r.status_code == 403, r.text
    claims = {"iss": SERVICE_ACCOUNT, "aud": GOOGLE_TOKEN_AUDIENCE, "scope": CLOUD_PLATFORM,
              "iat": int(time.time()), "exp": int(time.time()) + 600}
    r = httpx.post(fake.oauth.url, data={"grant_type": JWT_BEARER, "assertion": sign_jwt(vertex.other_key, claims)},
                   timeout=5)
    assert r.status_code == 400 and "not signed by the service account's key" in r.text
    assert len(fake.seen) == 4 and len(fake.oauth.issued) == 1
    print(f"\nvertex: plain and streamed through the router in {time.monotonic() - started:.1f} s")


@pytest.mark.slow
def test_vertex_callers_need_their_key(vertex: VertexRouter):
    served_before = len(vertex.fake.seen)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "no"}], "max_tokens": 8}
    assert httpx.post(vertex.url + "/v1/chat/completions", json=body, timeout=10).status_code == 401
    with pytest.raises(openai.AuthenticationError):
        ask(vertex.client("sk-wrong-key-000000000000"), "no")
    assert len(vertex.fake.seen) == served_before  # refused by the router: Vertex never saw them
    output = vertex.log.read_text()
    assert PROMPT_MARK not in output, "a prompt is in the router's output"
    assert not any(token in output for token in vertex.fake.oauth.issued), "an access token is in the router's output"


# --- The routers exactly as the shipped stacks run them ---------------------------------------------------------


@dataclass(frozen=True)
class AsHost:
    """A container of a shipped stack, run as a host process: its paths under `root`, LiteLLM's own executables
    (`make litellm`) for the image's, its port a free one on 127.0.0.1."""

    root: Path
    port: int
    container_port: int

    def local(self, arg: str) -> str:
        # Paths (the writer's folder, the proxy's config, the TLS files) under the temporary directory.
        arg = arg.replace("/tmp/", f"{self.root}/")
        return {"litellm": str(LITELLM), "python3": str(LITELLM.with_name("python")), "0.0.0.0": "127.0.0.1",
                str(self.container_port): str(self.port)}.get(arg, arg)

    def start(self, argv: list[str], env: dict[str, str], url: str, verify: Path | None = None
              ) -> subprocess.Popen:
        """The process, once its proxy is ready at `url` (its CA: `verify`); the machine's cloud and TLS settings
        left out of `env`'s base, so only what the test gives counts."""
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("AWS_", "SSL_", "GOOGLE_", "CLOUDSDK_", "GCE_", "LITELLM_"))}
        log = self.root.parent / "container.log"
        proc = subprocess.Popen(argv, cwd=self.root, env={**base, **env, "NO_PROXY": "127.0.0.1",
                                                          "no_proxy": "127.0.0.1"},
                                stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        until_ready(proc, url, log, "the container's proxy", str(verify) if verify else True)
        return proc


def as_host(tmp_path: Path, container_port: int) -> AsHost:
    root = tmp_path / "task"
    root.mkdir()
    return AsHost(root, free_port(), container_port)


def a_caller_is_answered_and_no_key_is_refused(url: str, key: str, model: str, alias: str,
                                               verify: Path | None = None) -> None:
    """A caller's key: plain and streamed (by the model's alias) answers of 8 tokens; no key: 401."""
    http = httpx.Client(verify=str(verify)) if verify else None
    client = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=REQUEST_SECONDS,
                           http_client=http)
    answer = client.chat.completions.create(model=model, max_tokens=8,
                                            messages=[{"role": "user", "content": "hello"}])
    assert answer.choices[0].message.content and answer.usage and answer.usage.completion_tokens == 8
    stream = client.chat.completions.create(model=alias, max_tokens=8, stream=True,
                                            messages=[{"role": "user", "content": "hello"}])
    assert len("".join(c.choices[0].delta.content or "" for c in stream if c.choices)) == 8
    refused = httpx.post(url + "/v1/chat/completions", verify=str(verify) if verify else True, timeout=REQUEST_SECONDS,
                         json={"model": alias, "messages": [{"role": "user", "content": "x"}]})
    assert refused.status_code == 401, refused.text


@pytest.mark.slow
def test_the_aws_prod_routers_own_task_runs_and_answers_a_caller(previews, tiny_model: Path, tmp_path: Path):
    """The container the aws-prod stack's task definition declares, run as a host process: its entry point (the TLS
    files from its environment) and command (the config and the auth module written from theirs, then the proxy),
    with its plain environment as declared and each of its secrets given a value, as the ECS agent does. The only
    changes: paths under a temporary directory, the proxy's own executable, a free port on 127.0.0.1, the stand-in
    of SageMaker's runtime as the endpoint's URL (the config is otherwise as rendered), a certificate for
    127.0.0.1. A caller's key is answered over HTTPS, plain and streamed, through SigV4; no key: 401."""
    graph = previews["aws-prod"].to_json()
    task = next(r for r in graph["resources"] if r["type"] == "aws:ecs/taskDefinition:TaskDefinition")
    (container,) = [c for c in json.loads(task["inputs"]["containerDefinitions"]) if c["name"] == "litellm"]
    environment = {e["name"]: e["value"] for e in container["environment"]}
    secret_names = [x["name"] for x in container["secrets"]]
    config = yaml.safe_load(environment["SELFHOST_ROUTER_CONFIG"])
    (deployment,) = config["model_list"]
    endpoint, region = deployment["litellm_params"]["model"].split("/", 1)[1], deployment["litellm_params"][
        "aws_region_name"]
    callers = config["general_settings"]["selfhost_callers"]
    key_variable = callers["support-bot"]["key"].removeprefix("os.environ/")
    assert key_variable in secret_names and not any(name in environment for name in secret_names)

    # The tiny model, under the name the stack's endpoint serves its model by.
    adapter = serve(tmp_path / "adapter", free_port(), ADAPTER_KEY, tiny_model,
                    name=deployment["litellm_params"]["hf_model_name"])
    fake = FakeSageMaker(adapter, endpoint=endpoint, region=region)
    proc = None
    try:
        deployment["litellm_params"]["sagemaker_base_url"] = fake.url
        environment["SELFHOST_ROUTER_CONFIG"] = yaml.safe_dump(config, sort_keys=False)
        ca, cert, key = issue_tls(tmp_path)
        values = {name: f"sk-{name.lower()}-0123456789" for name in secret_names}
        values["SELFHOST_TLS_KEY"] = key.read_text()
        environment["SELFHOST_TLS_CERT"] = cert.read_text()
        host = as_host(tmp_path, container["portMappings"][0]["containerPort"])
        for name in ("SSL_CERTFILE_PATH", "SSL_KEYFILE_PATH"):
            environment[name] = host.local(environment[name])
        argv = [*container["entryPoint"], *(host.local(a) for a in container["command"])]
        url = f"https://127.0.0.1:{host.port}"
        proc = host.start(argv, {**environment, **values, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                                 "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_CONFIG_FILE": "/dev/null",
                                 "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true"},
                          url, verify=ca)
        # What the proxy runs with: the TLS key and the written files left its environment on the way (the entry
        # point unsets the key, the writer pops the files); the callers' keys are there, as ECS put them.
        proxy_env = dict(item.split("=", 1) for item in
                         Path(f"/proc/{proc.pid}/environ").read_text().split("\0") if "=" in item)
        assert "SELFHOST_TLS_KEY" not in proxy_env and "SELFHOST_ROUTER_CONFIG" not in proxy_env
        assert proxy_env[key_variable] == values[key_variable]
        a_caller_is_answered_and_no_key_is_refused(url, values[key_variable], deployment["model_name"],
                                                   "mistral-7b", verify=ca)
        assert [(x["stream"], x["status"]) for x in fake.seen] == [(False, 200), (True, 200)], fake.seen
        # Files as the command wrote them: the config and the auth module beside it.
        written = host.root / "selfhost-router"
        assert (written / "selfhost_router.py").read_text() == router_module_text()
    finally:
        if proc is not None:
            stop_process(proc, timeout_seconds=10)
        fake.stop()
        stop_process(adapter.proc, timeout_seconds=10)


@pytest.mark.slow
def test_the_gcp_prod_routers_own_container_runs_and_answers_a_caller(previews, tiny_model: Path, tmp_path: Path):
    """The container the gcp-prod stack's Cloud Run service declares, run as a host process: its command (the config
    and the auth module written from its environment, then the proxy) with its plain environment as declared and
    each secret reference given a value, as Cloud Run does; the service account's credentials from a key file whose
    token endpoint is the OAuth stand-in (Cloud Run: the metadata server). The only changes: paths under a temporary
    directory, the proxy's own executable, a free port on 127.0.0.1, the Vertex stand-in's address in place of the
    endpoint's host (the path, the endpoint id and the rest of the config as rendered). A caller's key is answered,
    plain and streamed, through the service account's token; no key: 401."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    graph = previews["gcp-prod"].to_json()
    service = next(r for r in graph["resources"] if r["type"] == "gcp:cloudrunv2/service:Service")
    (container,) = service["inputs"]["template"]["containers"]
    plain = {e["name"]: e["value"] for e in container["envs"] if "value" in e}
    secret_names = [e["name"] for e in container["envs"] if "valueSource" in e]
    config = yaml.safe_load(plain["SELFHOST_ROUTER_CONFIG"])
    (deployment,) = config["model_list"]
    params = deployment["litellm_params"]
    key_variable = config["general_settings"]["selfhost_callers"]["support-bot"]["key"].removeprefix("os.environ/")
    assert key_variable in secret_names and params["model"].startswith("vertex_ai/openai/")

    endpoint_path = urllib.parse.urlparse(params["api_base"]).path
    predict_route = f"/v1/endpoints/{params['model'].rsplit('/', 1)[1]}/deployedModels/1:predict"
    (tmp_path / "adapter").mkdir()
    keys = tmp_path / "adapter" / "api-keys"
    keys.write_text(f"router:{ADAPTER_KEY}\n")
    adapter = start_adapter(tmp_path / "adapter", "--model", str(tiny_model), "--api-keys-file", str(keys),
                            "--model-name", deployment["model_name"], "--max-tokens-cap", "64",
                            command=[str(SELFHOST), "serve"], env={"AIP_PREDICT_ROUTE": predict_route})
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    oauth = FakeGoogleOAuth(key.public_key())
    fake = FakeVertex(adapter, oauth, chat_path=endpoint_path + "/chat/completions", predict_route=predict_route)
    proc = None
    try:
        params["api_base"] = fake.api_base
        plain["SELFHOST_ROUTER_CONFIG"] = yaml.safe_dump(config, sort_keys=False)
        values = {name: f"sk-{name.lower()}-0123456789" for name in secret_names}
        credentials = service_account_file(tmp_path / "service-account.json", key, oauth.url)
        host = as_host(tmp_path, container["ports"]["containerPort"])
        argv = [host.local(a) for a in [*container["commands"], *container.get("args", [])]]
        url = f"http://127.0.0.1:{host.port}"
        proc = host.start(argv, {**plain, **values, "GOOGLE_APPLICATION_CREDENTIALS": str(credentials),
                                 "GOOGLE_CLOUD_PROJECT": params["vertex_project"], "NO_GCE_CHECK": "True"}, url)
        a_caller_is_answered_and_no_key_is_refused(url, values[key_variable], deployment["model_name"],
                                                   "llama-3-1-8b")
        assert [(x["stream"], x["status"]) for x in fake.seen] == [(False, 200), (True, 200)], fake.seen
        assert oauth.issued and not oauth.refused
    finally:
        if proc is not None:
            stop_process(proc, timeout_seconds=10)
        fake.stop()
        oauth.stop()
        stop_process(adapter.proc, timeout_seconds=10)
