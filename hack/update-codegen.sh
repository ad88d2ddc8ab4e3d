#!/usr/bin/env bash
# Regenerates everything derived from apis/: deepcopy and register code, the
# typed clientset, listers, informers and apply configurations (generated/),
# and the CRD manifests (manifests/crds/, chart/vidra/crds/).
#
# The generators are tools, not dependencies: they are built from the Go
# module proxy at the pinned versions below into .cache/, never into go.mod.
set -o errexit -o nounset -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
MODULE="github.com/vidra-operator/vidra"
CODEGEN_VERSION="${CODEGEN_VERSION:-v0.37.2}"
CONTROLLER_TOOLS_VERSION="${CONTROLLER_TOOLS_VERSION:-v0.23.0}"
# Output root; verify-codegen.sh points it at a scratch copy of the tree.
OUT="${CODEGEN_OUT:-${ROOT}}"

export GOBIN="${ROOT}/.cache/codegen-bin/${CODEGEN_VERSION}"
mkdir -p "${GOBIN}"

# Locate code-generator in the module cache without touching go.mod.
CODEGEN_PKG="$(cd "$(mktemp -d)" && GOFLAGS= go mod download -json "k8s.io/code-generator@${CODEGEN_VERSION}" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')"
[[ -d "${CODEGEN_PKG}" ]] || { echo "cannot find k8s.io/code-generator@${CODEGEN_VERSION}" >&2; exit 1; }

# shellcheck source=/dev/null
source "${CODEGEN_PKG}/kube_codegen.sh"

cd "${OUT}"
BOILERPLATE="${ROOT}/hack/boilerplate.go.txt"

kube::codegen::gen_helpers --boilerplate "${BOILERPLATE}" "${OUT}/apis"
kube::codegen::gen_register --boilerplate "${BOILERPLATE}" "${OUT}/apis"

kube::codegen::gen_client \
  --with-watch \
  --with-applyconfig \
  --output-dir "${OUT}/generated" \
  --output-pkg "${MODULE}/generated" \
  --boilerplate "${BOILERPLATE}" \
  "${OUT}/apis"

# CRDs from the kubebuilder markers. controller-gen runs as a pinned tool.
rm -rf "${OUT}/manifests/crds.tmp" && mkdir -p "${OUT}/manifests/crds.tmp"
GOFLAGS= go run "sigs.k8s.io/controller-tools/cmd/controller-gen@${CONTROLLER_TOOLS_VERSION}" \
  crd:crdVersions=v1 paths="./apis/..." output:crd:artifacts:config="${OUT}/manifests/crds.tmp"
rm -rf "${OUT}/manifests/crds" && mv "${OUT}/manifests/crds.tmp" "${OUT}/manifests/crds"
if [[ -d "${OUT}/chart/vidra" ]]; then
  rm -rf "${OUT}/chart/vidra/crds" && mkdir -p "${OUT}/chart/vidra/crds"
  cp "${OUT}"/manifests/crds/*.yaml "${OUT}/chart/vidra/crds/"
fi
