#!/usr/bin/env bash
# Fails when anything generated from apis/ is stale: regenerates into a scratch
# copy of the tree and compares.
set -o errexit -o nounset -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
SCRATCH="$(mktemp -d)"
trap 'rm -rf "${SCRATCH}"' EXIT

tar -C "${ROOT}" --exclude=./.git --exclude=./.cache --exclude=./bin -cf - . | tar -C "${SCRATCH}" -xf -
CODEGEN_OUT="${SCRATCH}" "${ROOT}/hack/update-codegen.sh" >/dev/null

status=0
for path in generated manifests/crds chart/vidra/crds; do
  [[ -e "${ROOT}/${path}" || -e "${SCRATCH}/${path}" ]] || continue
  if ! diff -r "${ROOT}/${path}" "${SCRATCH}/${path}" >/dev/null 2>&1; then
    echo "stale: ${path} (run hack/update-codegen.sh)" >&2
    diff -r "${ROOT}/${path}" "${SCRATCH}/${path}" | head -20 >&2 || true
    status=1
  fi
done
while IFS= read -r f; do
  rel="${f#"${ROOT}/"}"
  if ! cmp -s "${f}" "${SCRATCH}/${rel}"; then
    echo "stale: ${rel} (run hack/update-codegen.sh)" >&2
    status=1
  fi
done < <(find "${ROOT}/apis" -name 'zz_generated.*.go')
[[ ${status} -eq 0 ]] && echo "generated code is up to date"
exit ${status}
