"""The serving images: hadolint-clean, pinned bases, the adapter as exec-form entrypoint with `serve`, non-root
by default, and exactly the package versions the tests ran (the requirement files are uv.lock's export)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = ROOT / "containers"  # the build context of both images
IMAGES = {"vllm": CONTEXT / "vllm" / "Dockerfile", "llamacpp": CONTEXT / "llamacpp" / "Dockerfile"}
# requirement file -> the `uv export` options that produce it (as the Makefile's containers-requirements does)
REQUIREMENTS = {"adapter/requirements.txt": [], "llamacpp/requirements.txt": ["--extra", "llamacpp"]}


def uv() -> str:
    found = ROOT / ".tools" / "bin" / "uv"
    path = str(found) if found.is_file() else shutil.which("uv")
    assert path, "uv is needed (make bootstraps it into .tools/)"
    return path


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_dockerfile_is_hadolint_clean(image: str) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), "--no-color", str(IMAGES[image])], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_dockerfile_shape(image: str) -> None:
    text = IMAGES[image].read_text()
    bases = re.findall(r"^ARG (\w+_IMAGE)=(\S+)$", text, re.M)
    assert bases, "base images are build args with pinned defaults"
    for _, ref in bases:
        tag = ref.rsplit(":", 1)[-1]
        assert ":" in ref and tag != "latest" and re.search(r"\d", tag), ref
    assert re.search(r'^ENTRYPOINT \["/opt/\w+/bin/selfhost-adapter"\]$', text, re.M)  # exec form
    assert re.search(r'^CMD \["serve"\]$', text, re.M)  # SageMaker runs `<image> serve`
    assert "ARG APP_UID=10001" in text and text.rstrip().count("USER ${APP_UID}") == 1
    assert "EXPOSE 8080" in text
    for source in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
        assert (CONTEXT / source).exists(), f"{source} is not in the build context containers/"
    assert "--require-hashes" in text


@pytest.mark.parametrize("name", sorted(REQUIREMENTS))
def test_image_requirements_are_the_locked_versions(name: str) -> None:
    exported = subprocess.run(
        [uv(), "export", "--frozen", "--package", "selfhost-adapter", "--no-emit-workspace", "--no-dev",
         "--no-header", "--format", "requirements-txt", *REQUIREMENTS[name]],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True).stdout
    assert (CONTEXT / name).read_text() == exported, "stale: run `make containers-requirements`"
