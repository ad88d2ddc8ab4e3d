#!/usr/bin/env bash
# Builds helm from the Go module proxy into a cache directory keyed by
# version, for the chart tests and for anyone who wants to install the chart
# without a system helm:
#
#   ${VIDRA_CACHE_DIR:-<repo>/.cache}/helm/<version>/helm
#
# Idempotent: when the binary is present and its stamp matches the recipe it
# only prints the path. Concurrent callers (parallel test packages) serialise
# on a flock; the binary is built under a temporary name and renamed into
# place. The first build takes about 3 minutes on 2 cores.
#
# Usage: hack/helm.sh [--print-path | -- helm-args...]
#   Progress goes to stderr; the last line on stdout is the binary's path.
#   --print-path prints the path without building.
#   -- ARGS runs helm with ARGS after building, with HELM_*_HOME pointed at
#   the cache so nothing is written to the home directory.
set -o errexit -o nounset -o pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${here}/.." && pwd)"

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
# The Kubernetes version helm assumes for .Capabilities when it has no
# cluster (lint, template). Keep it at the test control plane's minor.
KUBE_MAJOR=1
KUBE_MINOR=36

cache_dir="${VIDRA_CACHE_DIR:-${root}/.cache}"
bin_dir="${cache_dir}/helm/${HELM_VERSION}"
helm="${bin_dir}/helm"

mode=build
case "${1:-}" in
--print-path) mode=print ;;
--) mode=run; shift ;;
"") ;;
*)
	sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac

if [[ "${mode}" == print ]]; then
	echo "${helm}"
	exit 0
fi

ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
	ldflags+=" -X ${pkg}.k8sVersionMajor=${KUBE_MAJOR} -X ${pkg}.k8sVersionMinor=${KUBE_MINOR}"
done
want_stamp="recipe=1 CGO_ENABLED=0 -trimpath -ldflags ${ldflags}"

up_to_date() {
	[[ -x "${helm}" && -f "${bin_dir}/.stamp" && "$(cat "${bin_dir}/.stamp")" == "${want_stamp}" ]]
}

if ! up_to_date; then
	mkdir -p "${bin_dir}"
	exec 9>"${bin_dir}/.lock"
	if ! flock -n 9; then
		echo "helm.sh: another build of ${bin_dir} is running, waiting for it…" >&2
		flock 9
	fi
	if ! up_to_date; then
		tmp="$(mktemp -d "${bin_dir}/.build.XXXXXX")"
		trap 'rm -rf "${tmp}"' EXIT
		start=${SECONDS}
		echo "helm.sh: building helm ${HELM_VERSION} from the Go module proxy (first run takes about 3 minutes)…" >&2
		# Outside any module and workspace: helm's dependencies never touch
		# the project's go.mod.
		(cd "${tmp}" && GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 GOBIN="${tmp}" \
			go install -trimpath -ldflags "${ldflags}" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}")
		mv -f "${tmp}/helm" "${helm}"
		echo "${want_stamp}" >"${tmp}/.stamp"
		mv -f "${tmp}/.stamp" "${bin_dir}/.stamp"
		echo "helm.sh: built ${helm} in $((SECONDS - start)) s" >&2
	fi
	exec 9>&-
fi

if [[ "${mode}" == run ]]; then
	home="${cache_dir}/helm/home"
	mkdir -p "${home}"
	HELM_CACHE_HOME="${home}/cache" HELM_CONFIG_HOME="${home}/config" HELM_DATA_HOME="${home}/data" \
		exec "${helm}" "$@"
fi
echo "${helm}"
