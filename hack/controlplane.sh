#!/usr/bin/env bash
# Local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)
# built from the Go module proxy; see test/controlplane.
#
#   hack/controlplane.sh build
#       Build (or find cached) binaries; prints their directory.
#   hack/controlplane.sh up [--crds PATH]... [--dir DIR] [--kubeconfig-out PATH] [--name NAME]
#       Start a control plane, print its kubeconfig and `export KUBECONFIG=…`,
#       run until Ctrl-C or SIGTERM, then tear everything down.
set -o errexit -o nounset -o pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cmd="${1:-}"
[[ $# -gt 0 ]] && shift

case "${cmd}" in
build)
	exec "${root}/hack/controlplane/build.sh" "$@"
	;;
up)
	bin_dir="$("${root}/hack/controlplane/build.sh" | tail -n 1)"
	cache_dir="${VIDRA_CACHE_DIR:-${root}/.cache}/controlplane"
	mkdir -p "${cache_dir}"
	# Built, then exec'ed (not `go run`), so Ctrl-C and SIGTERM reach the
	# program itself and it can tear the control plane down. No -trimpath:
	# the same build-cache entries as `go test` keep this to a few seconds.
	echo "controlplane.sh: building vidra-controlplane…" >&2
	tmp="$(mktemp "${cache_dir}/.vidra-controlplane.XXXXXX")"
	(cd "${root}" && go build -o "${tmp}" ./test/controlplane/cmd/vidra-controlplane) || { rm -f "${tmp}"; exit 1; }
	mv -f "${tmp}" "${cache_dir}/vidra-controlplane"
	VIDRA_CONTROLPLANE_BIN_DIR="${bin_dir}" exec "${cache_dir}/vidra-controlplane" "$@"
	;;
*)
	sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
