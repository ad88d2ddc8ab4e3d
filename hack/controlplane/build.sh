#!/usr/bin/env bash
# Builds the test control plane's binaries (etcd, kube-apiserver,
# kube-controller-manager, kubectl) from the Go module proxy into a cache
# directory keyed by version:
#
#   ${VIDRA_CACHE_DIR:-<repo>/.cache}/controlplane/<k8s-version>-etcd<etcd-version>/
#
# Idempotent: when every binary is present and the stamp matches the build
# modules (go.mod, go.sum, mains) and the build flags, it only prints the
# directory. Concurrent callers (parallel test packages) serialise on a flock,
# and binaries are built under temporary names and renamed into place, so a
# reader never sees a half-written file.
#
# Usage: build.sh [--print-dir]
#   Progress goes to stderr; the last line on stdout is the bin directory.
#   --print-dir prints the directory without building.
set -o errexit -o nounset -o pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${here}/../.." && pwd)"

# The versions come from the build modules themselves, so go.mod stays the
# single place to change a pin.
required_version() { # module go.mod: prints the required version of module
	awk -v m="$1" '$1 == "require" { $1 = "" ; $0 = $0 } $1 == m && $2 ~ /^v/ { print $2; exit }' "$2"
}
k8s_version="$(required_version k8s.io/kubernetes "${here}/kube/go.mod")"
etcd_version="$(required_version go.etcd.io/etcd/server/v3 "${here}/etcd/go.mod")"
if [[ -z "${k8s_version}" || -z "${etcd_version}" ]]; then
	echo "build.sh: cannot read the pinned versions from ${here}/{kube,etcd}/go.mod" >&2
	exit 1
fi

cache_dir="${VIDRA_CACHE_DIR:-${root}/.cache}"
bin_dir="${cache_dir}/controlplane/${k8s_version}-etcd${etcd_version#v}"

if [[ "${1:-}" == "--print-dir" ]]; then
	echo "${bin_dir}"
	exit 0
elif [[ $# -gt 0 ]]; then
	echo "usage: $0 [--print-dir]" >&2
	exit 2
fi

binaries=(etcd kube-apiserver kube-controller-manager kubectl)

# -trimpath keeps the Go build cache key independent of the clone directory
# (CI builds in a fresh clone on the same machine); -s -w shrink the binaries
# by about a third. The flags are part of the cache key: keep them stable.
ver_minor="${k8s_version#v1.}"
ver_minor="${ver_minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X ${pkg}.gitVersion=${k8s_version} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${ver_minor}"
	ldflags+=" -X ${pkg}.gitTreeState=clean"
done
build_flags=(-trimpath -buildvcs=false -ldflags "${ldflags}")

stamp_value() {
	{
		echo "recipe=1 CGO_ENABLED=0 ${build_flags[*]}"
		cat "${here}/kube/go.mod" "${here}/kube/go.sum" "${here}/etcd/go.mod" "${here}/etcd/go.sum"
		find "${here}/kube" "${here}/etcd" -name '*.go' -type f | LC_ALL=C sort | xargs cat
	} | sha256sum | cut -d' ' -f1
}

up_to_date() {
	local b
	for b in "${binaries[@]}"; do
		[[ -x "${bin_dir}/${b}" ]] || return 1
	done
	[[ -f "${bin_dir}/.stamp" && "$(cat "${bin_dir}/.stamp")" == "${want_stamp}" ]]
}

want_stamp="$(stamp_value)"
if up_to_date; then
	echo "${bin_dir}"
	exit 0
fi

mkdir -p "${bin_dir}"
exec 9>"${bin_dir}/.lock"
if ! flock -n 9; then
	echo "build.sh: another build of ${bin_dir} is running, waiting for it…" >&2
	flock 9
fi
# Someone else may have finished the build while we waited.
if up_to_date; then
	echo "${bin_dir}"
	exit 0
fi

tmp="$(mktemp -d "${bin_dir}/.build.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT

# A go.work above the repo must not pull these modules into a workspace, and
# CGO stays off so the binaries are static and the cache key is stable.
export GOWORK=off CGO_ENABLED=0
start=${SECONDS}

echo "build.sh: building etcd ${etcd_version} (first run takes a few minutes)…" >&2
(cd "${here}/etcd" && go build "${build_flags[@]}" -o "${tmp}/etcd" .)

echo "build.sh: building kube-apiserver, kube-controller-manager and kubectl ${k8s_version} (first run takes several minutes)…" >&2
(cd "${here}/kube" && go build "${build_flags[@]}" -o "${tmp}/" ./kube-apiserver ./kube-controller-manager ./kubectl)

for b in "${binaries[@]}"; do
	mv -f "${tmp}/${b}" "${bin_dir}/${b}"
done
echo "${want_stamp}" >"${tmp}/.stamp"
mv -f "${tmp}/.stamp" "${bin_dir}/.stamp"
echo "build.sh: built ${bin_dir} in $((SECONDS - start)) s" >&2
echo "${bin_dir}"
