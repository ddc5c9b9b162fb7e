"""Our serving images (containers/): what to build, and a content tag that changes only when they do."""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .catalog.engines import Flag, lora_flags, vllm_flags
from .schema import ModelSpec
from .sizing import GPU_MEMORY_UTILIZATION
from .weights import Location, Scheme

CONTAINERS = Path(__file__).resolve().parents[1] / "containers"


@dataclass(frozen=True)
class ImageSpec:
    name: str
    dockerfile: str
    """Relative to CONTAINERS, which is the build context."""
    cuda: tuple[int, int] | None
    """CUDA of the base image (vllm/vllm-openai v0.11.0 is built on CUDA 12.8): picks the SageMaker host AMI."""


# Per engine: the image that runs it behind our adapter.
IMAGES: dict[str, ImageSpec] = {
    "vllm": ImageSpec("selfhost-vllm", "vllm/Dockerfile", (12, 8)),
    "llamacpp": ImageSpec("selfhost-llamacpp", "llamacpp/Dockerfile", None),
}
# Where each image keeps its programs (its Dockerfile's virtual environment).
PROGRAMS = {"vllm": "/opt/adapter/bin", "llamacpp": "/opt/venv/bin"}


def content_tag(root: Path | None = None) -> str:
    """A tag from the hash of every file of the build context (what `.dockerignore` leaves in): registries keep
    tags immutable, so a new tag appears exactly when what the images are built from changes, and re-running
    `pulumi up` on the same code builds nothing (a README edit changes no image). The project's own containers/
    is hashed once per process (every target of every stack names the tag, and the files do not change under a
    running preview); another `root` every time."""
    return _project_tag() if root is None else _hash_tree(root)


@functools.cache
def _project_tag() -> str:
    return _hash_tree(CONTAINERS)


def _hash_tree(root: Path) -> str:
    ignore = root / ".dockerignore"
    patterns = [line.strip() for line in ignore.read_text().splitlines()
                if line.strip() and not line.startswith("#")] if ignore.is_file() else []

    def ignored(relative: str) -> bool:
        # Docker's patterns: `**/x` matches x at any depth, a pattern on a folder covers what is inside it.
        parts = relative.split("/")
        candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        return any(fnmatch.fnmatchcase(c, p) or (p.startswith("**/") and fnmatch.fnmatchcase(c.split("/")[-1], p[3:]))
                   for p in patterns for c in candidates)

    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = str(path.relative_to(root))
        if ignored(relative):
            continue
        digest.update(relative.encode())
        digest.update(path.read_bytes())
    return f"src-{digest.hexdigest()[:16]}"


def engine_args(flags: list[Flag]) -> str:
    """The engine's flags as our adapter's `--engine-args` takes them (the adapter names the model itself)."""
    def item(flag: str, value: str | tuple[str, ...] | None) -> str:
        values = (value,) if isinstance(value, str) else value or ()
        return " ".join((flag, *(shlex.quote(v) for v in values)))

    return " ".join(item(flag, value) for flag, value in flags if flag != "--model")


def adapters_setting(adapters: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> str:
    """Our adapter's SELFHOST_ADAPTERS: the LoRA adapters it serves, `name=path` items joined by commas (paths
    in the container: a PEFT folder for vLLM, a GGUF file for llama.cpp)."""
    return ",".join(f"{name}={path}" for name, path in adapters)


def adapter_environment(model_id: str, flags: list[Flag],
                        adapters: list[tuple[str, str]] | tuple[tuple[str, str], ...] = ()) -> dict[str, str]:
    """Environment our adapter reads (containers/adapter settings): the engine, the weights, the engine's flags
    (from catalog.engines.vllm_flags) and the LoRA adapters it loads and routes to (SELFHOST_ADAPTERS)."""
    env = {"SELFHOST_ENGINE": "vllm", "HF_MODEL_ID": model_id, "SELFHOST_ENGINE_ARGS": engine_args(flags)}
    if adapters:
        env["SELFHOST_ADAPTERS"] = adapters_setting(adapters)
    return env


# What our image listens on, on a VM; Docker's default /dev/shm (64 MB) is too small for vLLM's workers.
PORT = 8080
SHM = "16g"
TOKEN_FILE = "/run/selfhost/hf_token"
API_KEYS_FILE = "/run/selfhost/api_keys"
TLS_CERT_FILE = "/run/selfhost/tls.crt"
TLS_KEY_FILE = "/run/selfhost/tls.key"


# Where a GPU VM's copies of a team's own weights are mounted, read-only, in the container: the same layout on every
# cloud (WEIGHTS_MOUNT/model, WEIGHTS_MOUNT/adapters/<name>).
WEIGHTS_MOUNT = "/weights"


@dataclass(frozen=True)
class WeightsOnDisk:
    """Weights a GPU VM copies from the team's own bucket at boot, before the container starts (a fine-tuned
    checkpoint, LoRA adapters), with the VM's own identity and its cloud's CLI: the container gets them as a
    read-only folder and needs no cloud credentials. Hub adapters stay with the Hub (our adapter downloads
    `hf://repo@commit` at start, pinned)."""

    commands: tuple[str, ...]
    """The copy commands, run by the boot script before the container starts."""
    weights: str | None
    """The model's folder in the container; None: the Hub's, at the model's revision."""
    adapters: tuple[tuple[str, str], ...]
    """(name, source) for SELFHOST_ADAPTERS: a folder in the container, or hf://repo@commit."""
    mounts: tuple[tuple[str, str], ...]
    """(VM path, container path), mounted read-only."""


def weights_on_disk(model: ModelSpec, scheme: Scheme, host_dir: str,
                    copy: Callable[[Location, str], str]) -> WeightsOnDisk:
    """Where the boot script puts the model's and adapters' weights of `scheme` (the VM's cloud's buckets):
    `host_dir`/model and `host_dir`/adapters/<name>, each by the command `copy(location, folder)` returns."""
    commands: list[str] = []

    def local(location: Location, to: str) -> str:
        commands.append(copy(location, f"{host_dir}/{to}"))
        return f"{WEIGHTS_MOUNT}/{to}"

    weights = local(model.location, "model") if model.location.scheme == scheme else None
    adapters = tuple((a.name, local(a.location, f"adapters/{a.name}") if a.location.scheme == scheme
                      else a.origin) for a in model.adapters)
    return WeightsOnDisk(tuple(commands), weights, adapters, ((host_dir, WEIGHTS_MOUNT),) if commands else ())


def boot_script(image: str, model: ModelSpec, gpus: int, cache_dir: str, *, prepare: list[str],
                fetch_token: str | None, login: str, log_options: list[str], fetch_keys: str | None = None,
                tls: bool = False, container_uid: int = 0, on_disk: WeightsOnDisk | None = None) -> str:
    """A GPU VM's boot script, the same on every cloud: `prepare` the cache, fetch the Hugging Face token with
    the VM's own identity into a root-only file in memory (`fetch_token` prints it; the token is never in this
    script, the template or the container's environment: the container reads it as a mounted file), `login`
    to the registry, and run the adapter in front of vLLM with the engine catalog's flags.

    `fetch_keys`: a command that prints the callers' API keys file (`<id>:<key>` lines, the adapter's
    `--api-keys-file` format), run with the VM's own identity; its output goes to a root-only file in memory
    (/run/selfhost/api_keys, umask 077), mounted read-only into the container, which is told its path
    (SELFHOST_API_KEYS_FILE): the keys are never in this script, the template or the container's environment.
    None: the adapter takes no keys. `tls`: make a self-signed ECDSA P-256 key and certificate on the VM at boot
    (openssl, into /run/selfhost, root-only), mounted read-only, so the adapter serves HTTPS
    (SELFHOST_TLS_CERT_FILE / SELFHOST_TLS_KEY_FILE) to a load balancer that does not verify backends: the key
    never leaves the VM. `container_uid`: the user the image runs as (APP_UID; 0: root): the files it reads are
    handed to it, still unreadable to any other user.

    `on_disk`: the team's own weights the boot script copies first (its commands run after `prepare`), mounted
    read-only; the model's copy is served under the model's id, and the adapters (there, or `hf://repo@commit`)
    are the adapter's SELFHOST_ADAPTERS, the engine then getting vLLM's LoRA slots and rank."""
    on_disk = on_disk or WeightsOnDisk((), None, (), ())
    weights, adapters = on_disk.weights, on_disk.adapters
    lora = lora_flags(model.lora_slots, model.max_adapter_rank) if model.adapters else None
    flags = vllm_flags(weights or model.id, None if weights else model.revision, model.max_context, gpus,
                       model.quantization, GPU_MEMORY_UTILIZATION, model.kv_cache_dtype, lora=lora)
    env = {**adapter_environment(model.id, flags, adapters), "HF_HOME": "/cache", "SELFHOST_PORT": str(PORT)}
    if weights is not None:
        env |= {"SELFHOST_MODEL": weights, "SELFHOST_MODEL_NAME": model.id}
    lines = ["#!/bin/bash", "set -euo pipefail", *prepare, *on_disk.commands, "install -d -m 700 /run/selfhost"]
    token_mount = []
    if fetch_token is not None or fetch_keys is not None or tls:
        lines.append("umask 077")
    if fetch_token is not None:
        lines.append(f"{fetch_token} > {TOKEN_FILE}")
        token_mount = [f"-v {TOKEN_FILE}:/run/secrets/hf_token:ro", "-e HF_TOKEN_PATH=/run/secrets/hf_token"]
    if fetch_keys is not None:
        lines.append(f"{fetch_keys} > {API_KEYS_FILE}")
        token_mount += [f"-v {API_KEYS_FILE}:/run/secrets/api_keys:ro",
                        "-e SELFHOST_API_KEYS_FILE=/run/secrets/api_keys"]
    if tls:
        lines.append(f"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 "
                     f"-subj /CN=selfhost-instance -keyout {TLS_KEY_FILE} -out {TLS_CERT_FILE}")
        token_mount += [f"-v {TLS_CERT_FILE}:/run/secrets/tls.crt:ro", f"-v {TLS_KEY_FILE}:/run/secrets/tls.key:ro",
                        "-e SELFHOST_TLS_CERT_FILE=/run/secrets/tls.crt",
                        "-e SELFHOST_TLS_KEY_FILE=/run/secrets/tls.key"]
    owned = [f for f, wanted in ((TOKEN_FILE, fetch_token), (API_KEYS_FILE, fetch_keys), (TLS_CERT_FILE, tls),
                                 (TLS_KEY_FILE, tls)) if wanted]
    if container_uid and owned:
        lines.append(f"chown {container_uid}:{container_uid} {' '.join(owned)}")
    lines += [login, " ".join([
        "docker run -d --name selfhost --restart unless-stopped --gpus all", f"--shm-size {SHM}",
        f"-p {PORT}:{PORT}", f"-v {cache_dir}/hf:/cache", *(f"-v {h}:{c}:ro" for h, c in on_disk.mounts), *token_mount,
        *(f"-e {k}={shlex.quote(v)}" for k, v in env.items()), *log_options, image, "openai",
    ])]
    return "\n".join(lines) + "\n"
