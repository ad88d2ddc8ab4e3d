#!/usr/bin/env bash
# Makes sure a headless-capable Chromium from Debian's packages is installed,
# for the browser test of `kubectl vidra ui` (test/ui), and prints its path.
#
# Idempotent: when /usr/bin/chromium exists it only prints the path. Else it
# runs `apt-get update` and `apt-get install chromium` (as root, or through
# sudo when available), as CI does on a fresh Debian machine. Concurrent
# callers serialise on a flock.
#
# Usage: hack/chromium.sh [--print-path]
#   Progress goes to stderr; the last line on stdout is the binary's path.
#   --print-path prints the path without installing.
set -o errexit -o nounset -o pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

case "${1:-}" in
--print-path)
	echo "${CHROMIUM}"
	exit 0
	;;
"") ;;
*)
	sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac

if [[ -x "${CHROMIUM}" ]]; then
	echo "${CHROMIUM}"
	exit 0
fi

as_root=()
if [[ "$(id -u)" != 0 ]]; then
	if ! command -v sudo >/dev/null; then
		echo "chromium.sh: ${CHROMIUM} is missing and installing it needs root (or sudo)" >&2
		exit 1
	fi
	as_root=(sudo --non-interactive)
fi

lock="${TMPDIR:-/tmp}/vidra-chromium-install.lock"
exec 9>"${lock}"
if ! flock -n 9; then
	echo "chromium.sh: another install is running, waiting for it…" >&2
	flock 9
fi
if [[ ! -x "${CHROMIUM}" ]]; then
	start=${SECONDS}
	echo "chromium.sh: installing chromium from Debian's packages…" >&2
	export DEBIAN_FRONTEND=noninteractive
	"${as_root[@]}" apt-get update -qq >&2
	"${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
	echo "chromium.sh: installed $("${CHROMIUM}" --version 2>/dev/null || echo chromium) in $((SECONDS - start)) s" >&2
fi
exec 9>&-
echo "${CHROMIUM}"
