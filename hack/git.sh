#!/usr/bin/env bash
# Makes sure Debian's git is installed, for the loopback Git server the
# tests of the Git source run (test/gitserver: `git http-backend` and
# `git upload-pack` on the server side; the operator itself needs no git),
# and prints the path of its exec directory (where git-http-backend is).
#
# Idempotent: when git and git-http-backend exist it only prints the path.
# Else it runs `apt-get update` and `apt-get install git` (as root, or
# through sudo when available), as CI does on a fresh Debian machine.
# Concurrent callers serialise on a flock.
#
# Usage: hack/git.sh
#   Progress goes to stderr; the last line on stdout is git's exec path.
set -o errexit -o nounset -o pipefail

case "${1:-}" in
"") ;;
*)
	sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac

installed() {
	command -v git >/dev/null && [[ -x "$(git --exec-path)/git-http-backend" ]]
}

if installed; then
	git --exec-path
	exit 0
fi

as_root=()
if [[ "$(id -u)" != 0 ]]; then
	if ! command -v sudo >/dev/null; then
		echo "git.sh: git is missing and installing it needs root (or sudo)" >&2
		exit 1
	fi
	as_root=(sudo --non-interactive)
fi

lock="${TMPDIR:-/tmp}/vidra-git-install.lock"
exec 9>"${lock}"
if ! flock -n 9; then
	echo "git.sh: another install is running, waiting for it…" >&2
	flock 9
fi
if ! installed; then
	start=${SECONDS}
	echo "git.sh: installing git from Debian's packages…" >&2
	export DEBIAN_FRONTEND=noninteractive
	"${as_root[@]}" apt-get update -qq >&2
	"${as_root[@]}" apt-get install -y -qq --no-install-recommends git >&2
	echo "git.sh: installed $(git --version) in $((SECONDS - start)) s" >&2
fi
exec 9>&-
git --exec-path
