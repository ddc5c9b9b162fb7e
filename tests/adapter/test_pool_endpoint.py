"""A GPU pool's endpoint, end to end (issue 25, "done when"): 401 without a key, 200 with one.

The aws-pool stack is previewed (the real program, under mocks, through the `selfhost` CLI) and its launch
template's user data, the boot script exactly as an instance gets it, is parsed, not re-implemented: where the
API-key file is written, by which fetch (and so in which format), under which umask; what the `docker run` line
mounts where; which SELFHOST_* variables it passes. Those files are laid out the same way in a tmp dir, a CA and
a server certificate are made as the stack's private CA (components/tls.py) issues them for the load balancer,
and the adapter is started with exactly the script's SELFHOST_* variables (paths remapped into the tmp dir), in
front of llama.cpp on the tiny model. Applications' own client, `openai`, trusting the CA certificate, calls the
endpoint record's `openaiBaseUrl` as it is.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import re
import secrets
import shlex
import ssl
import string
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .conftest import ROOT, START_TIMEOUT_SECONDS, Running, free_port, stop_process, wait_until

USER = [{"role": "user", "content": "hi"}]
PREVIEW_TIMEOUT_SECONDS = 180
CLIENT_TIMEOUT_SECONDS = 30
# The variables that pick and configure the engine and its weights (vLLM and a Hugging Face model on the
# instance): here llama.cpp on the tiny model takes their place. Everything else SELFHOST_* is passed as is.
ENGINE_VARIABLES = {"SELFHOST_ENGINE", "SELFHOST_ENGINE_ARGS", "SELFHOST_MODEL", "SELFHOST_MODEL_NAME", "HF_MODEL_ID",
                    "HF_HOME", "HF_TOKEN_PATH"}
# Options of `docker run` that take a value, and those that do not: any other one is a layout this test does
# not know yet.
DOCKER_VALUE_OPTIONS = {"--name", "--restart", "--gpus", "--shm-size", "-p", "-v", "-e", "--log-driver", "--log-opt"}
DOCKER_FLAGS = {"-d"}


def layout_changed(what: str, script: str) -> AssertionError:
    return AssertionError(f"the pool's boot script changed its layout ({what}); update this test.\n{script}")


# --------------------------------------------------------------------------------------------------------------
# The stack, previewed


@dataclass(frozen=True)
class PoolPreview:
    script: str
    """The launch template's user data, decoded: the boot script."""
    keys_secret_arn: str
    keys_version_id: str
    key_ids: list[str]
    """The callers' key ids, from the stack's RandomPassword resources (`<pool>-key-<id>`)."""
    password_inputs: dict
    alb_dns_name: str
    openai_base_url: str
    ca_inputs: dict
    """The CA certificate's inputs (tls SelfSignedCert), and the load balancer's request and certificate."""
    leaf_request_inputs: dict
    leaf_cert_inputs: dict


def preview_aws_pool() -> PoolPreview:
    run = subprocess.run([str(ROOT / ".venv" / "bin" / "selfhost"), "preview", "aws-pool", "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=PREVIEW_TIMEOUT_SECONDS, check=False)
    assert run.returncode == 0, f"selfhost preview aws-pool failed:\n{run.stderr[-3000:]}"
    plan = json.loads(run.stdout)
    resources = plan["resources"]

    def one(token: str, name_suffix: str = "") -> dict:
        found = [r for r in resources if r["type"] == token and r["name"].endswith(name_suffix)]
        assert len(found) == 1, f"expected one {token} named *{name_suffix}, found {[r['name'] for r in found]}"
        return found[0]

    (pool,) = [r for r in resources if r["type"] == "selfhost:aws:GpuInstancePool"]
    template = one("aws:ec2/launchTemplate:LaunchTemplate")
    passwords = [r for r in resources if r["type"] == "random:index/randomPassword:RandomPassword"
                 and r["name"].startswith(f"{pool['name']}-key-")]
    assert passwords, "the pool generates no API keys"
    assert len({json.dumps(p["inputs"], sort_keys=True) for p in passwords}) == 1
    version = one("aws:secretsmanager/secretVersion:SecretVersion", "-api-keys-version")
    (endpoint,) = [e for e in plan["outputs"]["endpoints"].values() if e["kind"] == "aws-pool"]
    lb = one("aws:lb/loadBalancer:LoadBalancer")
    assert endpoint["loadBalancerDns"] == lb["computed"]["dnsName"]
    return PoolPreview(
        script=base64.b64decode(template["inputs"]["userData"]).decode(),
        keys_secret_arn=version["inputs"]["secretId"], keys_version_id=version["computed"]["versionId"],
        key_ids=sorted(p["name"].removeprefix(f"{pool['name']}-key-") for p in passwords),
        password_inputs=passwords[0]["inputs"], alb_dns_name=lb["computed"]["dnsName"],
        openai_base_url=endpoint["openaiBaseUrl"], ca_inputs=one("tls:index/selfSignedCert:SelfSignedCert")["inputs"],
        leaf_request_inputs=one("tls:index/certRequest:CertRequest")["inputs"],
        leaf_cert_inputs=one("tls:index/locallySignedCert:LocallySignedCert")["inputs"])


# --------------------------------------------------------------------------------------------------------------
# The boot script, parsed


@dataclass(frozen=True)
class BootLayout:
    private_dirs: dict[str, int]
    """`install -d -m MODE DIR` lines: dir -> mode."""
    key_file: str
    """Where the fetch writes the API keys on the host."""
    key_fetch: list[str]
    """The command whose output is the key file."""
    key_file_mode: int
    """What the umask in force at that line leaves of 0666."""
    tls_cert_file: str
    tls_key_file: str
    """Where the instance's certificate and key are on the host."""
    tls_file_mode: int
    """What the umask in force at the openssl line leaves of 0666."""
    mounts: dict[str, str]
    """Container path -> host path (`-v host:container[:ro]`)."""
    read_only: set[str]
    env: dict[str, str]
    """Every `-e NAME=value` of the `docker run` line."""
    published: tuple[int, int]
    """`-p host:container`."""
    command: list[str]
    """The image's arguments (after the image)."""

    def host_path_of(self, variable: str) -> str:
        container = self.env[variable]
        assert container in self.mounts, f"{variable}={container} is not a mounted path: {self.mounts}"
        return self.mounts[container]


def parse_boot_script(script: str) -> BootLayout:
    lines = script.splitlines()
    umask: int | None = None
    private_dirs: dict[str, int] = {}
    writes: dict[str, tuple[list[str], int | None]] = {}  # host file -> (command, umask then)
    openssl: list[str] | None = None
    openssl_umask: int | None = None
    docker: list[str] | None = None
    for line in lines:
        # A command substitution (`$(cat ...instance-id)` in a log option) is one word to the shell.
        words = shlex.split(re.sub(r"\$\([^()]*\)", "SUBSTITUTED", line)) if not line.startswith("#!") else []
        if not words:
            continue
        if words[0] == "umask":
            umask = int(words[1], 8)
        elif words[:2] == ["install", "-d"] and "-m" in words:
            private_dirs[words[-1]] = int(words[words.index("-m") + 1], 8)
        elif words[0] == "openssl":
            openssl, openssl_umask = words, umask
        elif words[:2] == ["docker", "run"]:
            docker = words
        elif len(words) >= 3 and words[-2] == ">":
            writes[words[-1]] = (words[:-2], umask)
    if docker is None:
        raise layout_changed("no `docker run` line", script)

    mounts: dict[str, str] = {}
    read_only: set[str] = set()
    env: dict[str, str] = {}
    published: tuple[int, int] | None = None
    rest = docker[2:]
    i = 0
    while i < len(rest) and rest[i].startswith("-"):
        option = rest[i]
        if option in DOCKER_FLAGS:
            i += 1
            continue
        if option not in DOCKER_VALUE_OPTIONS:
            raise layout_changed(f"`docker run` takes {option}, which this test does not know", script)
        value = rest[i + 1]
        if option == "-v":
            host, container, *mode = value.split(":")
            mounts[container] = host
            if mode == ["ro"]:
                read_only.add(container)
        elif option == "-e":
            name, sep, val = value.partition("=")
            if not sep:
                raise layout_changed(f"`-e {value}` passes a variable from the host's environment", script)
            env[name] = val
        elif option == "-p":
            host_port, container_port = value.split(":")
            published = (int(host_port), int(container_port))
        i += 2
    image, *command = rest[i:]
    if published is None:
        raise layout_changed("`docker run` publishes no port", script)

    layout_env = {"SELFHOST_API_KEYS_FILE", "SELFHOST_TLS_CERT_FILE", "SELFHOST_TLS_KEY_FILE", "SELFHOST_PORT"}
    if missing := layout_env - env.keys():
        raise layout_changed(f"`docker run` no longer passes {sorted(missing)}", script)
    for variable in ("SELFHOST_API_KEYS_FILE", "SELFHOST_TLS_CERT_FILE", "SELFHOST_TLS_KEY_FILE"):
        if env[variable] not in mounts or env[variable] not in read_only:
            raise layout_changed(f"{variable}={env[variable]} is not a read-only mount", script)
    key_file = mounts[env["SELFHOST_API_KEYS_FILE"]]
    if key_file not in writes:
        raise layout_changed(f"no line writes the key file {key_file}", script)
    key_fetch, key_umask = writes[key_file]
    if key_umask is None:
        raise layout_changed(f"{key_file} is written with no umask set", script)
    tls_cert, tls_key = mounts[env["SELFHOST_TLS_CERT_FILE"]], mounts[env["SELFHOST_TLS_KEY_FILE"]]
    if openssl is None or openssl[openssl.index("-out") + 1] != tls_cert \
            or openssl[openssl.index("-keyout") + 1] != tls_key:
        raise layout_changed("the openssl line does not make the mounted certificate and key", script)
    if openssl_umask is None:
        raise layout_changed("the instance's key is made with no umask set", script)
    return BootLayout(private_dirs=private_dirs, key_file=key_file, key_fetch=key_fetch,
                      key_file_mode=0o666 & ~key_umask, tls_cert_file=tls_cert, tls_key_file=tls_key,
                      tls_file_mode=0o666 & ~openssl_umask, mounts=mounts,
                      read_only=read_only, env=env, published=published, command=command)


def fetched_value(fetch: list[str], preview: PoolPreview, secret_string: str) -> str:
    """What the key fetch writes: `aws secretsmanager get-secret-value ... --query SecretString --output text`
    prints the secret's string and a newline (the AWS CLI's text output of a scalar, awscli/text.py): with the
    stack's own trailing newline, the file ends in a blank line, which the adapter's key parser skips."""
    def option(name: str) -> str:
        assert name in fetch, f"the key fetch has no {name}: {shlex.join(fetch)}"
        return fetch[fetch.index(name) + 1]

    assert fetch[:3] == ["aws", "secretsmanager", "get-secret-value"], f"the keys come from {shlex.join(fetch)}"
    assert option("--secret-id") == preview.keys_secret_arn
    assert option("--version-id") == preview.keys_version_id
    assert (option("--query"), option("--output")) == ("SecretString", "text")
    return secret_string + "\n"


# --------------------------------------------------------------------------------------------------------------
# The stack's CA, as components/tls.py's PrivateCa issues it


@dataclass(frozen=True)
class Pki:
    ca: Path
    """The exported CA certificate (the endpoint record's caCertificate)."""
    chain: Path
    """The load balancer's certificate and the CA, as ACM serves the imported one."""
    key: Path


def subject(fields: dict) -> x509.Name:
    names = {"commonName": NameOID.COMMON_NAME, "organization": NameOID.ORGANIZATION_NAME,
             "organizationalUnit": NameOID.ORGANIZATIONAL_UNIT_NAME}
    unknown = fields.keys() - names.keys()
    assert not unknown, f"the stack's certificate subjects have fields this test does not make: {unknown}"
    return x509.Name([x509.NameAttribute(names[k], v) for k, v in fields.items()])


def key_usage(allowed: list[str]) -> x509.KeyUsage:
    known = {"cert_signing", "crl_signing", "digital_signature", "key_encipherment", "server_auth"}
    assert set(allowed) <= known, f"allowed uses this test does not make: {set(allowed) - known}"
    return x509.KeyUsage(digital_signature="digital_signature" in allowed, content_commitment=False,
                         key_encipherment="key_encipherment" in allowed, data_encipherment=False, key_agreement=False,
                         key_cert_sign="cert_signing" in allowed, crl_sign="crl_signing" in allowed,
                         encipher_only=False, decipher_only=False)


def make_stack_pki(preview: PoolPreview, where: Path) -> Pki:
    """An ECDSA P-256 CA and a leaf it signs, with the subjects, names, uses and lifetimes the preview's tls
    resources ask for (the private keys are ECDSA P-256 in the stack: tls.PrivateKey)."""
    ca_in, csr_in, cert_in = preview.ca_inputs, preview.leaf_request_inputs, preview.leaf_cert_inputs
    assert ca_in["isCaCertificate"] is True
    assert csr_in["dnsNames"] == [preview.alb_dns_name], "the stack's CA no longer issues for the ALB's DNS name"
    now = datetime.datetime.now(datetime.UTC)
    start = now - datetime.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = subject(ca_in["subject"])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(start)
          .not_valid_after(now + datetime.timedelta(hours=ca_in["validityPeriodHours"]))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(key_usage(ca_in["allowedUses"]), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(subject(csr_in["subject"])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(now + datetime.timedelta(hours=cert_in["validityPeriodHours"]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in csr_in["dnsNames"]]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage(cert_in["allowedUses"]), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    where.mkdir(parents=True, exist_ok=True)
    pki = Pki(where / "ca.pem", where / "alb-chain.pem", where / "alb.key")
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return pki


# --------------------------------------------------------------------------------------------------------------
# The endpoint


class ToLocalAdapter(httpx.HTTPTransport):
    """Sends what is addressed to the load balancer (its DNS name, port 443) to the adapter on 127.0.0.1, still
    sending and verifying TLS for the load balancer's name (SNI and hostname check): the client uses the endpoint
    record's URL as it is, and the certificate is checked for the name the stack issues it for."""

    def __init__(self, name: str, port: int, verify: ssl.SSLContext) -> None:
        super().__init__(verify=verify, retries=0)
        self.name, self.port = name, port

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert request.url.host == self.name and request.url.port in (None, 443), request.url
        request.url = request.url.copy_with(host="127.0.0.1", port=self.port)
        request.extensions = {**request.extensions, "sni_hostname": self.name}
        return super().handle_request(request)


@dataclass(frozen=True)
class Endpoint:
    running: Running
    preview: PoolPreview
    layout: BootLayout
    pki: Pki
    keys: dict[str, str]
    """key id -> key, as the stack's secret holds them."""

    def http(self, verify: ssl.SSLContext | None = None) -> httpx.Client:
        context = verify or ssl.create_default_context(cafile=str(self.pki.ca))
        return httpx.Client(transport=ToLocalAdapter(self.preview.alb_dns_name, self.running.port, context),
                            timeout=CLIENT_TIMEOUT_SECONDS)

    def client(self, api_key: str, verify: ssl.SSLContext | None = None) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.preview.openai_base_url, api_key=api_key, max_retries=0,
                             timeout=CLIENT_TIMEOUT_SECONDS, http_client=self.http(verify))


def remap(host_path: str, root: Path) -> Path:
    return root / host_path.lstrip("/")


@pytest.fixture(scope="module")
def endpoint(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    preview = preview_aws_pool()
    layout = parse_boot_script(preview.script)
    root = tmp_path_factory.mktemp("instance")  # the instance's / for the files the boot script makes

    for directory, mode in layout.private_dirs.items():
        remap(directory, root).mkdir(parents=True, exist_ok=True)
        remap(directory, root).chmod(mode)
    # The secret's value as the stack composes it (components.aws.pool.keys_file over its RandomPasswords), with
    # known keys of the RandomPassword's shape; written as the fetch writes it, with the mode its umask leaves.
    from components.aws.pool import keys_file

    inputs = preview.password_inputs
    assert inputs.get("special") is False and inputs["length"] >= 32, inputs
    alphabet = string.ascii_letters + string.digits
    keys = {key_id: "".join(secrets.choice(alphabet) for _ in range(inputs["length"])) for key_id in preview.key_ids}
    secret_string = keys_file(list(keys), list(keys.values()))
    key_file = remap(layout.key_file, root)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(fetched_value(layout.key_fetch, preview, secret_string))
    key_file.chmod(layout.key_file_mode)

    # The load balancer terminates TLS with the certificate the stack's CA issues for its DNS name and speaks
    # HTTPS to the instance, whose boot script makes a self-signed certificate the load balancer does not verify.
    # Here the adapter stands for both: at the instance's certificate paths it serves the load balancer's
    # certificate (the one a client verifies), and the client reaches it on 127.0.0.1 under the load balancer's
    # name (ToLocalAdapter), so the leaf keeps the stack's one DNS name and needs no localhost or IP SAN.
    pki = make_stack_pki(preview, tmp_path_factory.mktemp("stack-ca"))
    for host_path, made in ((layout.tls_cert_file, pki.chain), (layout.tls_key_file, pki.key)):
        target = remap(host_path, root)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(made.read_bytes())
        target.chmod(layout.tls_file_mode)

    # Exactly the script's variables; container paths become the tmp dir's copies of their host files, and the
    # port a free one (the script's own may be taken here). The engine's take llama.cpp on the tiny model.
    port = free_port()
    env: dict[str, str] = {}
    for name, value in layout.env.items():
        if name in ENGINE_VARIABLES:
            continue
        if value in layout.mounts:
            value = str(remap(layout.mounts[value], root))
        elif value.startswith("/"):
            raise layout_changed(f"{name}={value} names a path that is not mounted", preview.script)
        env[name] = value
    assert env["SELFHOST_PORT"] == str(layout.published[1]) == str(layout.published[0])
    env["SELFHOST_PORT"] = str(port)
    assert "SELFHOST_HOST" not in env  # the container listens on every address; here, 127.0.0.1 only
    env |= {"SELFHOST_HOST": "127.0.0.1", "SELFHOST_ENGINE": "llamacpp", "SELFHOST_MODEL": str(tiny_model)}

    workdir = tmp_path_factory.mktemp("pool-adapter")
    stdout, stderr = workdir / "stdout.log", workdir / "stderr.log"
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("SELFHOST_", "AIP_", "SAGEMAKER_", "HF_", "OPENAI_"))}
    proc = subprocess.Popen([sys.executable, "-m", "selfhost_adapter", *layout.command], cwd=ROOT,
                            stdout=stdout.open("wb"), stderr=stderr.open("wb"), stdin=subprocess.DEVNULL,
                            env={**clean, **env})
    running = Running(proc, port, stdout, stderr)
    ep = Endpoint(running, preview, layout, pki, keys)
    base = preview.openai_base_url.removesuffix("/v1")

    def ready() -> bool:
        if proc.poll() is not None:
            return True
        try:
            with ep.http() as http:
                return http.get(base + "/health").status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, START_TIMEOUT_SECONDS, "the pool's adapter ready over https", interval=0.2)
        assert proc.poll() is None, f"adapter exited with {proc.returncode}:\n{stderr.read_text()[-3000:]}"
        yield ep
    finally:
        stop_process(proc)


# --------------------------------------------------------------------------------------------------------------
# The tests


def test_the_boot_script_lays_out_keys_and_tls_for_the_adapter() -> None:
    """What the endpoint test relies on, from the stack's own boot script (and a clear failure if it moves)."""
    preview = preview_aws_pool()
    layout = parse_boot_script(preview.script)
    assert layout.key_file_mode == layout.tls_file_mode == 0o600
    assert any(layout.key_file.startswith(d.rstrip("/") + "/") and mode == 0o700
               for d, mode in layout.private_dirs.items()), layout.private_dirs
    assert layout.command == ["openai"]
    assert preview.openai_base_url == f"https://{preview.alb_dns_name}/v1"
    assert preview.key_ids and all(":" not in k for k in preview.key_ids)  # `<id>:<key>` lines parse back


@pytest.mark.slow
def test_the_pool_answers_401_without_a_key_and_200_with_one(endpoint: Endpoint) -> None:
    (key_id, key), *_ = endpoint.keys.items()
    with pytest.raises(openai.AuthenticationError) as refused:
        endpoint.client("sk-not-a-key").chat.completions.create(model="tiny", messages=USER, max_tokens=4)
    assert refused.value.status_code == 401 and refused.value.body["code"] == "invalid_api_key"
    # The key id is not the key.
    with pytest.raises(openai.AuthenticationError):
        endpoint.client(key_id).chat.completions.create(model="tiny", messages=USER, max_tokens=4)
    # No key at all.
    with endpoint.http() as http:
        r = http.post(endpoint.preview.openai_base_url + "/chat/completions", json={"messages": USER,
                                                                                  "max_tokens": 4})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"

    raw = endpoint.client(key).chat.completions.with_raw_response.create(model="tiny", messages=USER, max_tokens=4)
    assert raw.http_response.status_code == 200
    answer = raw.parse()
    assert answer.model == "tiny" and answer.choices[0].message.content
    assert answer.usage is not None and answer.usage.completion_tokens == 4

    stream = endpoint.client(key).chat.completions.create(model="tiny", messages=USER, max_tokens=4, stream=True)
    assert sum(bool(chunk.choices and chunk.choices[0].delta.content) for chunk in stream) == 4


@pytest.mark.slow
def test_a_client_not_trusting_the_stacks_ca_or_calling_another_name_is_refused(endpoint: Endpoint) -> None:
    def verify_failed(error: BaseException) -> bool:
        seen: BaseException | None = error
        while seen is not None:
            if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
                return True
            seen = seen.__cause__ or seen.__context__
        return False

    _, key = next(iter(endpoint.keys.items()))
    system_trust = ssl.create_default_context()  # the system's CAs, not the stack's
    with pytest.raises(openai.APIConnectionError) as refused:
        endpoint.client(key, verify=system_trust).chat.completions.create(model="tiny", messages=USER, max_tokens=4)
    assert verify_failed(refused.value), repr(refused.value)
    # The stack's CA trusted, but another name than the load balancer's: the certificate is not for it.
    trusted = ssl.create_default_context(cafile=str(endpoint.pki.ca))
    with pytest.raises(httpx.ConnectError) as wrong_name:
        httpx.get(f"https://127.0.0.1:{endpoint.running.port}/health", verify=trusted, timeout=10)
    assert verify_failed(wrong_name.value), repr(wrong_name.value)
