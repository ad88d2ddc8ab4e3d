#!/usr/bin/env bash
# Runs every fuzz target in the module for a short while: the argument is a
# -fuzztime, 20000 inputs each by default (a count; see the Makefile).
# The seed corpora under testdata/fuzz also run as plain tests in `go test`.
set -o errexit -o nounset -o pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fuzztime="${1:-20000x}"
found=0
while IFS= read -r file; do
  pkg="./$(dirname "${file}")"
  while IFS= read -r target; do
    found=$((found + 1))
    echo "fuzz ${pkg} ${target} (${fuzztime})"
    if ! out="$(go test -run '^$' -fuzz "^${target}\$" -fuzztime "${fuzztime}" "${pkg}" 2>&1)"; then
      echo "${out}" >&2
      exit 1
    fi
  done < <(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(f \*testing\.F).*/\1/p' "${file}")
done < <(git ls-files --cached --others --exclude-standard '*_test.go')
echo "fuzzed ${found} targets"
