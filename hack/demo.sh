#!/usr/bin/env bash
# make demo: Vidra end to end on this machine, in one command.
#
# Builds the binaries, starts a local Kubernetes control plane (etcd,
# kube-apiserver, kube-controller-manager; built from the Go module proxy the
# first time, ~10 minutes on 2 cores, cached afterwards), a local Infrahub
# stand-in seeded with test/testdata/artifacts, and the operator; creates
# InfrahubSyncs, shows what was synced, then regenerates an artifact and shows
# the change arrive. Ctrl-C tears everything down.
#
# Environment:
#   DEMO_KUBECONFIG=path     use your own cluster instead of a local control
#                            plane (asks for confirmation; `make demo
#                            KUBECONFIG=path` sets it). The Infrahub stand-in
#                            and the operator still run on this machine.
#   DEMO_NONINTERACTIVE=1    exit (and clean up) after showing the change.
#   DEMO_ASSUME_YES=1        skip the confirmation for DEMO_KUBECONFIG.
#   DEMO_CRDS_DIR=dir        KubeVirt/VirtRigaud CRDs (default test/testdata/crds).
#   DEMO_WORK_DIR=dir        where logs and state go (default: a temp dir, removed).
#   DEMO_SKIP_BUILD=1        use bin/ as built by `make build`.
#   DEMO_BIN_DIR=dir         where the binaries are built (default bin/).
#   VIDRA_CACHE_DIR=dir      tool cache (default .cache).
set -o errexit -o nounset -o pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_dir="${VIDRA_CACHE_DIR:-${root}/.cache}"
noninteractive="${DEMO_NONINTERACTIVE:-}"
own_kubeconfig="${DEMO_KUBECONFIG:-}"
crds_dir="${DEMO_CRDS_DIR:-${root}/test/testdata/crds}"
bin="${DEMO_BIN_DIR:-${root}/bin}"
ns=vidra-demo
started=${SECONDS}

if [[ -t 1 ]]; then
	bold=$'\033[1m' dim=$'\033[2m' green=$'\033[32m' yellow=$'\033[33m' reset=$'\033[0m'
else
	bold='' dim='' green='' yellow='' reset=''
fi
say() { printf '\n%s==> %s%s\n' "${bold}" "$*" "${reset}"; }
note() { printf '%s    %s%s\n' "${dim}" "$*" "${reset}"; }
warn() { printf '%s!!  %s%s\n' "${yellow}" "$*" "${reset}" >&2; }
die() { printf '%serror: %s%s\n' "${yellow}" "$*" "${reset}" >&2; exit 1; }
show() { printf '%s$ %s%s\n' "${dim}" "$*" "${reset}"; }
elapsed() { echo "$((SECONDS - started))s"; }

# --- state and teardown --------------------------------------------------------

if [[ -n "${DEMO_WORK_DIR:-}" ]]; then
	work="$(mkdir -p "${DEMO_WORK_DIR}" && cd "${DEMO_WORK_DIR}" && pwd)"
	remove_work=
else
	work="$(mktemp -d "${TMPDIR:-/tmp}/vidra-demo.XXXXXX")"
	remove_work=1
fi
pids=()          # started processes, stopped in reverse order
synced_names=()  # InfrahubSyncs to delete on a user's cluster
kc=''
kubectl_bin=''

k() { KUBECACHEDIR="${work}/kubectl-cache" "${kubectl_bin}" --kubeconfig "${kc}" "$@"; }

stop_pid() { # pid name
	local pid=$1 name=$2 i
	kill -0 "${pid}" 2>/dev/null || return 0
	kill -TERM "${pid}" 2>/dev/null || true
	for ((i = 0; i < 200; i++)); do # up to 20 s
		kill -0 "${pid}" 2>/dev/null || { wait "${pid}" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	warn "${name} (pid ${pid}) did not stop; killing it"
	kill -KILL "${pid}" 2>/dev/null || true
	wait "${pid}" 2>/dev/null || true
}

cleanup() {
	local code=$?
	trap - EXIT INT TERM
	say "Cleaning up"
	if [[ -n "${own_kubeconfig}" && ${#synced_names[@]} -gt 0 ]]; then
		# On a user's cluster, remove what the demo made while the operator
		# still runs, so its finalizers delete the synced objects.
		note "deleting the demo's InfrahubSyncs and what they created…"
		k delete infrahubsync "${synced_names[@]}" --ignore-not-found --wait=false >/dev/null 2>&1 || true
		k delete gitsync "${synced_names[@]}" --ignore-not-found --wait=false >/dev/null 2>&1 || true
		local sel deadline=$((SECONDS + 120))
		sel="infrahub.operators.com/sync in ($(IFS=,; echo "${synced_names[*]}"))"
		# The syncs go last: their finalizer holds them until the operator
		# has deleted their VidraResources.
		while ((SECONDS < deadline)); do
			[[ -z "$(k get vidraresources -l "${sel}" -o name 2>/dev/null)" &&
				-z "$(k get infrahubsync "${synced_names[@]}" --ignore-not-found -o name 2>/dev/null)" &&
				-z "$(k get gitsync "${synced_names[@]}" --ignore-not-found -o name 2>/dev/null)" ]] && break
			sleep 1
		done
		k delete namespace "${ns}" --ignore-not-found --wait=false >/dev/null 2>&1 || true
		note "left in place: the Vidra CRDs (kubectl delete -f ${root}/manifests/crds to remove them)"
	fi
	local i
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		stop_pid "${pids[i]%%:*}" "${pids[i]#*:}"
	done
	if [[ -n "${remove_work}" ]]; then
		rm -rf "${work}"
	fi
	note "done (${code})"
	exit "${code}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start name logfile command...: runs a process in its own session (a
# terminal's Ctrl-C reaches only this script, which stops it in order).
start() {
	local name=$1 log=$2
	shift 2
	setsid "$@" >"${log}" 2>&1 </dev/null &
	pids+=("$!:${name}")
	echo "$!"
}

# wait_until seconds description command...: polls the command until it
# succeeds or the deadline passes.
wait_until() {
	local timeout=$1 what=$2 deadline
	shift 2
	deadline=$((SECONDS + timeout))
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS >= deadline)); then
			die "timed out after ${timeout}s waiting for ${what}"
		fi
		sleep 0.2
	done
}

# address_in_log file pattern: prints the first host:port on a log line
# matching pattern, once it is there (processes listen on port 0 and log the
# address they got, so there is no race for a free port).
address_in_log() {
	local line
	line="$(grep -m1 -e "$2" "$1" 2>/dev/null)" || return 1
	grep -o -m1 -E '127\.0\.0\.1:[0-9]+' <<<"${line}"
}

# with_progress what command...: runs a long build, printing a line every
# 20 s so it does not look hung.
with_progress() {
	local what=$1 pid t=0
	shift
	"$@" &
	pid=$!
	while kill -0 "${pid}" 2>/dev/null; do
		for ((i = 0; i < 200 && t >= 0; i++)); do
			kill -0 "${pid}" 2>/dev/null || break 2
			sleep 0.1
		done
		t=$((t + 20))
		note "${what}: still building (${t}s)…" >&2
	done
	wait "${pid}"
}

# --- 1. build -------------------------------------------------------------------

command -v curl >/dev/null || die "curl is needed"
if [[ -z "${DEMO_SKIP_BUILD:-}" || ! -x "${bin}/vidra-operator" || ! -x "${bin}/fake-infrahub" ]]; then
	say "Building the operator and the Infrahub stand-in"
	mkdir -p "${bin}"
	(cd "${root}" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "${bin}/" ./cmd/vidra-operator ./cmd/fake-infrahub)
fi

vm_crds=()
if [[ -f "${crds_dir}/kubevirt.io_virtualmachines.yaml" ]]; then
	vm_crds=("${crds_dir}/kubevirt.io_virtualmachines.yaml" "${crds_dir}"/infra.virtrigaud.io_*.yaml)
else
	warn "KubeVirt/VirtRigaud CRDs not found in ${crds_dir} (set DEMO_CRDS_DIR); the demo syncs the webserver artifact only"
fi

# --- 2. the cluster -------------------------------------------------------------

if [[ -z "${own_kubeconfig}" ]]; then
	say "Local Kubernetes control plane"
	if [[ ! -f "$("${root}/hack/controlplane/build.sh" --print-dir)/.stamp" ]]; then
		note "first run: building etcd, kube-apiserver, kube-controller-manager and kubectl from the Go"
		note "module proxy — about 10 minutes on 2 cores; cached in ${cache_dir}/controlplane afterwards"
	fi
	with_progress "control plane" "${root}/hack/controlplane/build.sh" >"${work}/bindir"
	kubectl_bin="$(tail -n 1 "${work}/bindir")/kubectl"
	kc="${work}/kubeconfig"
	crd_args=(--crds "${root}/manifests/crds")
	for f in "${vm_crds[@]}"; do crd_args+=(--crds "${f}"); done
	start controlplane "${work}/controlplane.log" \
		"${root}/hack/controlplane.sh" up --name vidra-demo --dir "${work}/controlplane" --kubeconfig-out "${kc}" "${crd_args[@]}" >/dev/null
	wait_until 180 "the control plane (log: ${work}/controlplane.log)" test -s "${kc}"
	wait_until 60 "the API server" k get --raw /readyz
	note "ready after $(elapsed); kubeconfig: ${kc}"
else
	[[ -f "${own_kubeconfig}" ]] || die "DEMO_KUBECONFIG: no file ${own_kubeconfig}"
	kc="$(cd "$(dirname "${own_kubeconfig}")" && pwd)/$(basename "${own_kubeconfig}")"
	if command -v kubectl >/dev/null; then
		kubectl_bin="$(command -v kubectl)"
	else
		note "no kubectl on PATH: building the project's (first run takes several minutes)"
		with_progress "kubectl" "${root}/hack/controlplane/build.sh" >"${work}/bindir"
		kubectl_bin="$(tail -n 1 "${work}/bindir")/kubectl"
	fi
	server="$(k config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
	context="$(k config current-context 2>/dev/null || echo '?')"
	say "Your cluster: context ${context}, server ${server}"
	cat <<-EOF
	The demo will, on that cluster:
	  - install (server-side apply) the Vidra CRDs infrahubsyncs, gitsyncs and vidraresources.infrahub.operators.com
	  - create namespace ${ns} with a credentials Secret, InfrahubSyncs and a GitSync named vidra-demo-*
	  - create ConfigMaps git-demo-frontend and git-demo-backend in namespace default (from the GitSync)
	  - create what the sample artifacts declare: namespace web-shop with a Deployment, Service and Ingress
	    (and the VM samples in namespace vms if the KubeVirt/VirtRigaud CRDs are already installed)
	The operator and the Infrahub stand-in run on this machine. Ctrl-C deletes what the demo created
	(the CRDs stay). If another Vidra operator runs in the cluster it will act on these objects too.
	EOF
	if [[ -z "${DEMO_ASSUME_YES:-}" ]]; then
		[[ -z "${noninteractive}" ]] || die "DEMO_KUBECONFIG with DEMO_NONINTERACTIVE needs DEMO_ASSUME_YES=1"
		read -r -p "Type yes to continue: " answer
		[[ "${answer}" == yes ]] || die "not confirmed"
	fi
	k apply --server-side --field-manager=vidra-demo -f "${root}/manifests/crds" >/dev/null
	k wait --for=condition=Established --timeout=60s crd/infrahubsyncs.infrahub.operators.com crd/gitsyncs.infrahub.operators.com crd/vidraresources.infrahub.operators.com >/dev/null
	if ! k get crd virtualmachines.kubevirt.io virtualmachines.infra.virtrigaud.io >/dev/null 2>&1; then
		vm_crds=()
		note "the KubeVirt/VirtRigaud CRDs are not in your cluster: syncing the webserver only"
	fi
fi

# --- 3. the Infrahub stand-in ---------------------------------------------------

say "Infrahub stand-in (fake Infrahub) with the sample artifacts"
mkdir -p "${work}/seed"
cp "${root}/test/testdata/artifacts/webserver-shop.yaml" "${work}/seed/"
start fake-infrahub "${work}/fake-infrahub.log" \
	"${bin}/fake-infrahub" -listen 127.0.0.1:0 -seed-dir "${work}/seed" \
	-artifact-name Webserver_Manifest -user admin -password infrahub >/dev/null
wait_until 30 "the Infrahub stand-in (log: ${work}/fake-infrahub.log)" address_in_log "${work}/fake-infrahub.log" "fake Infrahub listening"
infrahub="http://$(address_in_log "${work}/fake-infrahub.log" "fake Infrahub listening")"
wait_until 30 "the Infrahub stand-in to answer" curl -fsS "${infrahub}/__fake__/counts"
if [[ ${#vm_crds[@]} -gt 0 ]]; then
	for f in vm-db01 virtrigaud-app01; do
		curl -fsS -X POST --data-binary "@${root}/test/testdata/artifacts/${f}.yaml" \
			"${infrahub}/__fake__/artifacts?name=VirtualMachine_Manifest&target=${f}&kind=KubernetesVirtualMachine&definition=VM_Artifact_Definition" >/dev/null
	done
fi
note "listening on ${infrahub} (user admin, password infrahub)"
show "curl -s ${infrahub}/__fake__/artifacts | jq ."

# --- 4. the operator ------------------------------------------------------------

say "The operator (${bin}/vidra-operator)"
k create namespace "${ns}" --dry-run=client -o yaml | k apply -f - >/dev/null
k -n "${ns}" create secret generic infrahub-credentials \
	--from-literal=username=admin --from-literal=password=infrahub --dry-run=client -o yaml | k apply -f - >/dev/null
start operator "${work}/operator.log" \
	"${bin}/vidra-operator" -kubeconfig "${kc}" -namespace "${ns}" -config-map "" \
	-metrics-bind-address 127.0.0.1:0 -health-probe-bind-address 127.0.0.1:0 >/dev/null
# With the same address the two are served by one server ("health+metrics").
for server in health metrics; do
	wait_until 30 "the operator's ${server} server (log: ${work}/operator.log)" address_in_log "${work}/operator.log" "\"Serving\" server=\"[a-z+]*${server}"
done
health="http://$(address_in_log "${work}/operator.log" '"Serving" server="[a-z+]*health')"
metrics="http://$(address_in_log "${work}/operator.log" '"Serving" server="[a-z+]*metrics')"
wait_until 60 "the operator to be ready (log: ${work}/operator.log)" curl -fsS "${health}/readyz"
note "ready; logs: ${work}/operator.log, metrics: ${metrics}/metrics"

# --- 5. InfrahubSyncs -----------------------------------------------------------

say "Creating InfrahubSyncs"
sync() { # name artifact-name
	local yaml
	yaml="$(cat <<-EOF
	apiVersion: infrahub.operators.com/v1alpha1
	kind: InfrahubSync
	metadata:
	  name: $1
	spec:
	  source:
	    infrahubAPIURL: ${infrahub}
	    targetBranch: main
	    artefactName: $2
	    credentialsSecretRef:
	      name: infrahub-credentials
	  destination:
	    namespace: default
	    reconcileOnEvents: true
	  interval: 30s
	EOF
	)"
	printf '%s\n---\n' "${yaml}"
	printf '%s\n' "${yaml}" | k apply -f - >/dev/null
	synced_names+=("$1")
}
sync vidra-demo-webservers Webserver_Manifest
if [[ ${#vm_crds[@]} -gt 0 ]]; then
	sync vidra-demo-vms VirtualMachine_Manifest
fi
for s in "${synced_names[@]}"; do
	k wait --for=condition=Ready --timeout=120s "infrahubsync/${s}" >/dev/null ||
		{ k get infrahubsync "${s}" -o yaml; die "InfrahubSync ${s} did not become Ready"; }
done
wait_until 60 "the webserver's Deployment" k -n web-shop get deployment shop

say "Synced ($(elapsed) since start)"
show "kubectl get vidra"
k get vidra
show "kubectl -n web-shop get deployments,services,ingresses"
k -n web-shop get deployments,services,ingresses
if [[ ${#vm_crds[@]} -gt 0 ]]; then
	show "kubectl -n vms get virtualmachines.kubevirt.io,virtualmachines.infra.virtrigaud.io,services"
	k -n vms get virtualmachines.kubevirt.io,virtualmachines.infra.virtrigaud.io,services
fi

# --- 6. a change in Infrahub ----------------------------------------------------

say "Regenerating the webserver artifact in Infrahub: 3 replicas, nginx:1.28"
sed -e 's/replicas: 2/replicas: 3/' -e 's/nginx:1.27/nginx:1.28/' \
	"${root}/test/testdata/artifacts/webserver-shop.yaml" >"${work}/webserver-shop-v2.yaml"
show "curl -X POST --data-binary @webserver-shop-v2.yaml '${infrahub}/__fake__/artifacts?name=Webserver_Manifest&target=webserver-shop'"
curl -fsS -X POST --data-binary "@${work}/webserver-shop-v2.yaml" \
	"${infrahub}/__fake__/artifacts?name=Webserver_Manifest&target=webserver-shop" >/dev/null
note "the sync polls every 30s; asking it to look now:"
show "kubectl annotate infrahubsync vidra-demo-webservers infrahub.operators.com/reconcile-requested-at=\$(date +%s) --overwrite"
changed_at=${SECONDS}
k annotate infrahubsync vidra-demo-webservers "infrahub.operators.com/reconcile-requested-at=$(date +%s)" --overwrite >/dev/null
replicas_are_3() { [[ "$(k -n web-shop get deployment shop -o jsonpath='{.spec.replicas}')" == 3 ]]; }
wait_until 60 "the change to arrive" replicas_are_3
printf '%s    the change arrived in %ss%s\n' "${green}" "$((SECONDS - changed_at))" "${reset}"
show "kubectl -n web-shop get deployment shop -o wide"
k -n web-shop get deployment shop -o wide

# --- 7. a GitSync served by a local Git server ---------------------------------

say "A Git repository as a source: GitSync served by a local Git server"
"${root}/hack/git.sh" >/dev/null || die "git is needed for the Git part of the demo (hack/git.sh installs it)"
if [[ ! -x "${bin}/gitserve" || -z "${DEMO_SKIP_BUILD:-}" ]]; then
	(cd "${root}" && CGO_ENABLED=0 go build -trimpath -o "${bin}/gitserve" ./hack/gitserve)
fi
gitroot="${work}/git"
gitwork="${work}/git-work"
g() { git -C "${gitwork}" -c user.name="Vidra demo" -c user.email=demo@vidra.invalid "$@"; }
mkdir -p "${gitroot}" "${gitwork}/apps/frontend" "${gitwork}/apps/backend"
git init --quiet --bare --initial-branch=main "${gitroot}/platform.git"
git init --quiet --initial-branch=main "${gitwork}"
demo_configmap() { # name value
	printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  greeting: "%s"\n' "$1" "$2"
}
demo_configmap git-demo-frontend "hello from Git" >"${gitwork}/apps/frontend/configmap.yaml"
demo_configmap git-demo-backend "hello from Git" >"${gitwork}/apps/backend/configmap.yaml"
g add --all && g commit --quiet -m "Two applications" && g push --quiet "${gitroot}/platform.git" main
start gitserve "${work}/gitserve.log" "${bin}/gitserve" -root "${gitroot}" >/dev/null
wait_until 30 "the Git server (log: ${work}/gitserve.log)" address_in_log "${work}/gitserve.log" "git server listening"
repo_url="http://$(address_in_log "${work}/gitserve.log" "git server listening")/platform.git"
note "serving ${repo_url} (git http-backend); the operator reads it with go-git, no git binary"
gityaml="$(cat <<-EOF
	apiVersion: infrahub.operators.com/v1alpha1
	kind: GitSync
	metadata:
	  name: vidra-demo-git
	spec:
	  url: ${repo_url}
	  ref:
	    branch: main
	  paths: [apps]
	  layout: Directory
	  destination:
	    namespace: default
	  interval: 30s
	EOF
)"
printf '%s\n' "${gityaml}"
printf '%s\n' "${gityaml}" | k apply -f - >/dev/null
synced_names+=(vidra-demo-git)
k wait --for=condition=Ready --timeout=120s gitsync/vidra-demo-git >/dev/null ||
	{ k get gitsync vidra-demo-git -o yaml; die "GitSync vidra-demo-git did not become Ready"; }
show "kubectl get gitsyncs -o wide"
k get gitsyncs -o wide
show "kubectl get configmaps git-demo-frontend git-demo-backend"
k get configmaps git-demo-frontend git-demo-backend

say "A commit changing apps/frontend: only its VidraResource is rewritten"
demo_configmap git-demo-frontend "hello again from Git" >"${gitwork}/apps/frontend/configmap.yaml"
g commit --quiet -am "New frontend greeting" && g push --quiet "${gitroot}/platform.git" main
note "the GitSync asks the repository every 30s (ls-remote only while nothing moved); asking it now:"
show "kubectl annotate gitsync vidra-demo-git infrahub.operators.com/reconcile-requested-at=\$(date +%s) --overwrite"
changed_at=${SECONDS}
k annotate gitsync vidra-demo-git "infrahub.operators.com/reconcile-requested-at=$(date +%s)" --overwrite >/dev/null
greeting_changed() { [[ "$(k get configmap git-demo-frontend -o jsonpath='{.data.greeting}')" == "hello again from Git" ]]; }
wait_until 60 "the commit to arrive" greeting_changed
printf '%s    the commit arrived in %ss%s\n' "${green}" "$((SECONDS - changed_at))" "${reset}"
show "kubectl get gitsync vidra-demo-git -o jsonpath='{.status.commitMessage}'"
k get gitsync vidra-demo-git -o jsonpath='{.status.commitMessage}{"\n"}'

if [[ -n "${noninteractive}" ]]; then
	say "Demo complete in $(elapsed) (non-interactive: cleaning up)"
	exit 0
fi

# --- 8. over to you -------------------------------------------------------------

say "Try it yourself (Ctrl-C here stops everything and cleans up)"
cat <<-EOF
	  export KUBECONFIG=${kc}
	  kubectl get vidra                                   # syncs and resources, with readiness
	  kubectl describe infrahubsync vidra-demo-webservers # conditions and events
	  kubectl describe gitsync vidra-demo-git             # commit, units, conditions and events
	  git -C ${gitwork} commit -am '…' && git -C ${gitwork} push ${gitroot}/platform.git main   # then wait 30s
	  kubectl -n web-shop scale deployment shop --replicas=1   # drift: Vidra puts 3 back at once
	  curl -s -X POST --data-binary @my.yaml '${infrahub}/__fake__/artifacts?name=Webserver_Manifest&target=webserver-shop'
	  curl -s ${metrics}/metrics | grep ^vidra_
	  tail -f ${work}/operator.log
EOF
operator_pid="${pids[${#pids[@]} - 1]%%:*}"
wait "${operator_pid}" || true
die "the operator exited; see ${work}/operator.log"
