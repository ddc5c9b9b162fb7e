# Two commands set everything up on a fresh machine: `make preview` and `make test`.
# Each bootstraps uv (from PyPI, into .tools/) and the locked environment in .venv when they are missing.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
# What `make lint` (and so `make test`, first) checks: ruff over LINT_PATHS, mypy and pyright over TYPED, the whole
# project, and import-linter's contracts between the packages (pyproject's [tool.importlinter]).
# TYPED is the code that runs: the infrastructure side (the program's __main__.py, components, selfhost, the policy
# pack) and the adapter. One mypy run takes both `__main__.py` files: pyproject's explicit_package_bases names them
# by their path (`__main__`, `policy.__main__`) instead of both `__main__`.
LINT_PATHS := components selfhost policy tests benchmarks containers/adapter/src __main__.py
TYPED := __main__.py components selfhost policy/__main__.py containers/adapter/src/selfhost_adapter
# Never download a Python: use the machine's.
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# llama-cpp-python (the tests' real engine) has no wheel here and builds from source, about 8 minutes on 2 cores
# the first time (uv caches the wheel). Its server is Python, so none of llama.cpp's C++ tools are built.
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF

.PHONY: preview test lint venv checkov litellm mermaid pyright clean containers-requirements

# With bytecode writing on, whatever PYTHONDONTWRITEBYTECODE says (set on many CI images and machines, this one too):
# the preview's install compiles none (see .synced-infra), so the first preview compiles and keeps exactly the modules
# it imports, and every later run, of any command, reads them instead of compiling them again.
preview: $(VENV)/.synced-infra
	env -u PYTHONDONTWRITEBYTECODE $(VENV)/bin/selfhost preview --all

test: $(VENV)/.synced checkov litellm mermaid
	$(MAKE) --no-print-directory lint
	$(VENV)/bin/python -m pytest

# pyright with --warnings: a warning fails the lint too (zero findings). Its settings are pyproject's [tool.pyright],
# whose include is TYPED for an editor or a bare `pyright`; here TYPED, given on the command line, is what it checks.
lint: $(VENV)/.synced pyright
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/mypy $(TYPED)
	$(PYRIGHT) --warnings $(TYPED)
	$(VENV)/bin/lint-imports

venv: $(VENV)/.synced

$(UV):
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target .tools "uv==$(UV_VERSION)"

# Checkov, the scanner that tests/test_export.py and the pull request's plan job run on `selfhost export`'s Terraform
# plans: a tool in a virtualenv of its own, not in uv.lock (it pins dozens of packages that would fight the project's
# own). Reproducible: the pinned release, its dependencies resolved as PyPI had them at CHECKOV_AS_OF. About 270 MB,
# under 10 s to install with uv (bytecode compiled: each scan starts in 3 s, PYTHONDONTWRITEBYTECODE or not).
CHECKOV_VERSION := 3.3.30
CHECKOV_AS_OF := 2026-12-01T00:00:00Z
CHECKOV_ENV := .tools/checkov

checkov: $(CHECKOV_ENV)/.installed-$(CHECKOV_VERSION)

$(CHECKOV_ENV)/.installed-$(CHECKOV_VERSION): | $(UV)
	rm -rf $(CHECKOV_ENV)
	$(UV) venv --quiet --python "$$(command -v $(PYTHON))" $(CHECKOV_ENV)
	$(UV) pip install --quiet --compile-bytecode --python $(CHECKOV_ENV)/bin/python \
		--exclude-newer $(CHECKOV_AS_OF) "checkov==$(CHECKOV_VERSION)"
	touch $@

# LiteLLM, whose price map (model_prices_and_context_window_backup.json, inside the package) is where the API prices
# of cost previews come from: `selfhost prices refresh --api-prices` snapshots it and tests/test_api_prices.py checks
# the snapshot against it. A tool env of its own for the same reason as Checkov: its importlib-metadata>=8 cannot
# coexist with sagemaker-core's <7 in one environment. With its `proxy` extra it is also the hybrid router, run for
# real by tests/adapter/test_hybrid_router.py and test_cloud_router.py as `$(LITELLM_ENV)/bin/litellm --config FILE
# --port P`. The cloud routers need what LiteLLM's proxy image adds to the package: boto3 (SageMaker; already a
# dependency of litellm itself, >=1.43.1), google-auth and google-cloud-aiplatform (Vertex: litellm's vertex_ai
# routes import `vertexai` and take google-auth's default credentials) and prometheus-client (its `prometheus`
# callback). The image's own pins for v1.99.4 (its requirements.txt) could not be read here, so these are the
# versions PyPI resolved with litellm 1.99.4 at CHECKOV_AS_OF. The marker names the version, the extras and these
# packages' versions, so an env installed without them is rebuilt.
LITELLM_VERSION := 1.99.4
LITELLM_EXTRAS := proxy
LITELLM_CLOUD := google-auth==2.63.1 google-cloud-aiplatform==2.7.0 prometheus-client==0.26.0
LITELLM_ENV := .tools/litellm
LITELLM_NOTHING :=
LITELLM_CLOUD_TAG := $(subst $(LITELLM_NOTHING) ,+,$(subst ==,-,$(LITELLM_CLOUD)))
LITELLM_MARKER := $(LITELLM_ENV)/.installed-$(LITELLM_VERSION)-$(LITELLM_EXTRAS)-$(LITELLM_CLOUD_TAG)

litellm: $(LITELLM_MARKER)

$(LITELLM_MARKER): | $(UV)
	rm -rf $(LITELLM_ENV)
	$(UV) venv --quiet --python "$$(command -v $(PYTHON))" $(LITELLM_ENV)
	$(UV) pip install --quiet --compile-bytecode --python $(LITELLM_ENV)/bin/python \
		--exclude-newer $(CHECKOV_AS_OF) "litellm[$(LITELLM_EXTRAS)]==$(LITELLM_VERSION)" $(LITELLM_CLOUD)
	touch $@

# Mermaid's own parser under jsdom (Node.js and npm, the machine's), with which tests/test_charts.py checks the
# break-even chart GitHub renders from `selfhost cost --format markdown`. Pinned by tests/tools/mermaid/package-lock.json.
MERMAID_DIR := tests/tools/mermaid
MERMAID_ENV := .tools/mermaid

mermaid: $(MERMAID_ENV)/.installed

$(MERMAID_ENV)/.installed: $(MERMAID_DIR)/package.json $(MERMAID_DIR)/package-lock.json
	rm -rf $(MERMAID_ENV)
	mkdir -p $(MERMAID_ENV)
	cp $(MERMAID_DIR)/package.json $(MERMAID_DIR)/package-lock.json $(MERMAID_ENV)/
	npm ci --prefix $(MERMAID_ENV) --no-audit --no-fund --loglevel=error
	touch $@

# Pyright, Microsoft's type checker (the npm package, which runs on the machine's Node.js: the PyPI `pyright` wrapper
# downloads it at run time instead), run by `make lint` in typeCheckingMode standard. Pinned by
# tests/tools/pyright/package-lock.json.
PYRIGHT_DIR := tests/tools/pyright
PYRIGHT_ENV := .tools/pyright
PYRIGHT := $(PYRIGHT_ENV)/node_modules/.bin/pyright

pyright: $(PYRIGHT_ENV)/.installed

$(PYRIGHT_ENV)/.installed: $(PYRIGHT_DIR)/package.json $(PYRIGHT_DIR)/package-lock.json
	rm -rf $(PYRIGHT_ENV)
	mkdir -p $(PYRIGHT_ENV)
	cp $(PYRIGHT_DIR)/package.json $(PYRIGHT_DIR)/package-lock.json $(PYRIGHT_ENV)/
	npm ci --prefix $(PYRIGHT_ENV) --no-audit --no-fund --loglevel=error
	touch $@

SYNC := $(UV) sync --frozen --python "$$(command -v $(PYTHON))"

# The preview needs only the infrastructure side: no test tools, no engine to build (`--inexact` keeps them
# when `make test` installed them before). No bytecode compiled at install: a preview imports about 1,900 of the
# 12,900 modules installed, and compiling them all was 37 of a first `make preview`'s 40 s; `preview` above compiles
# what it imports instead.
$(VENV)/.synced-infra: pyproject.toml uv.lock containers/adapter/pyproject.toml | $(UV)
	$(SYNC) --no-dev --inexact
	touch $@

# Everything: the tests, the adapter and its engine (for `selfhost serve` too), and `selfhost cost --plot`'s matplotlib.
# Bytecode compiled at install: the tests start hundreds of processes over all of it, PYTHONDONTWRITEBYTECODE or not.
$(VENV)/.synced: pyproject.toml uv.lock containers/adapter/pyproject.toml | $(UV)
	$(SYNC) --compile-bytecode --extra plot
	touch $@ $(VENV)/.synced-infra

# The serving images install exactly the versions the tests ran (hashes from uv.lock): regenerate after `uv lock`
# (the test suite fails while they are stale).
EXPORT_ADAPTER := $(UV) export --frozen --package selfhost-adapter --no-emit-workspace --no-dev --no-header --format requirements-txt
containers-requirements: | $(UV)
	$(EXPORT_ADAPTER) -o containers/adapter/requirements.txt > /dev/null
	$(EXPORT_ADAPTER) --extra llamacpp -o containers/llamacpp/requirements.txt > /dev/null

clean:
	rm -rf $(VENV) .tools .pytest_cache .import_linter_cache
