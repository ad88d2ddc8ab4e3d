// Package controlplane runs a real Kubernetes control plane for tests: etcd,
// kube-apiserver and kube-controller-manager, built from the Go module proxy
// by hack/controlplane/build.sh and started as child processes on 127.0.0.1.
//
// The controller manager gives tests real garbage collection, namespace
// deletion and service accounts. There is no scheduler and no kubelet: Pods
// are never scheduled or run, so workloads never become available on their
// own.
//
// Every process runs in its own process group and receives SIGKILL when the
// test binary dies (Linux), so a panicking or timed-out test leaves nothing
// behind; Stop kills the groups and removes the temp dir.
package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Config describes a control plane to start. The zero value is usable.
type Config struct {
	// Name appears in logs and in the temp dir's name.
	Name string
	// CRDPaths are CRD files (YAML or JSON, multi-document allowed) or
	// directories of them. They are installed and waited for before
	// kube-controller-manager starts, because its garbage collector only
	// knows the resources present at its start (later CRDs take up to ~40 s
	// to be seen).
	CRDPaths []string
	// Logf receives progress lines (start, timings, stop). Optional.
	Logf func(format string, args ...any)
	// Dir is where the control plane keeps its files (PKI, etcd data,
	// kubeconfig, logs). Optional: by default a new temp dir, removed by Stop.
	// A given Dir is not removed, but the files in it are recreated by Start,
	// so every start is a fresh cluster.
	Dir string
	// APIServerFlags and ControllerManagerFlags are appended to the harness's
	// flags (a repeated flag overrides the earlier value), e.g. feature gates.
	APIServerFlags         []string
	ControllerManagerFlags []string
}

// KeepDirEnv names an environment variable: when set to 1, Stop keeps the
// temp dir (logs, etcd data) and logs where it is, for debugging.
const KeepDirEnv = "VIDRA_CONTROLPLANE_KEEP"

const (
	serviceCIDR = "10.0.0.0/16" // room for the benchmarks' thousands of Services
	// defaultStartTimeout bounds a start after the binaries exist; a cold
	// start takes about 5 s on two cores, parallel test packages make it
	// slower.
	defaultStartTimeout = 3 * time.Minute
	// Client rate limits for tests: client-go's defaults (5/10) would make
	// tests measure the client's throttling instead of the code under test.
	testQPS   = 200
	testBurst = 400
)

// ControlPlane is a running control plane. Its methods are safe for
// concurrent use.
type ControlPlane struct {
	name         string
	binDir       string
	dir          string
	removeDir    bool
	logf         func(format string, args ...any)
	cfg          Config
	pki          *pki
	apiPort      int
	etcdURL      string
	kubeconfig   string
	restConfig   *rest.Config
	registryPath string

	mu        sync.Mutex
	etcd      *process
	apiserver *process
	kcm       *process
	stopped   bool
	stopErr   error
}

// Start builds the binaries if needed (see BinDir), starts etcd,
// kube-apiserver, installs cfg.CRDPaths, starts kube-controller-manager and
// returns once the API server is ready, the CRDs are Established and the
// default/default ServiceAccount exists (proof that the controller manager
// works). If ctx has no deadline, the start (not a cold build) is limited to
// 3 minutes. On failure everything started is stopped and the error contains
// the tail of the failing process's log.
func Start(ctx context.Context, cfg Config) (*ControlPlane, error) {
	begin := time.Now()
	name := cfg.Name
	if name == "" {
		name = "vidra"
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	binDir, err := BinDir(ctx)
	if err != nil {
		return nil, err
	}
	registryDir := defaultRegistryDir()
	if killed, err := cleanStale(registryDir); err != nil {
		logf("controlplane %s: cleaning up after earlier runs: %v", name, err)
	} else if len(killed) > 0 {
		logf("controlplane %s: killed processes left by a crashed run: %s", name, strings.Join(killed, ", "))
	}

	cp := &ControlPlane{name: name, binDir: binDir, logf: logf, cfg: cfg}
	if cfg.Dir != "" {
		cp.dir, err = filepath.Abs(cfg.Dir)
		if err == nil {
			err = os.MkdirAll(cp.dir, 0o700)
		}
	} else {
		cp.dir, err = os.MkdirTemp("", "vidra-cp-"+sanitize(name)+"-")
		cp.removeDir = true
	}
	if err != nil {
		return nil, fmt.Errorf("creating control-plane dir: %w", err)
	}
	cp.registryPath = filepath.Join(registryDir, fmt.Sprintf("%d-%s.json", os.Getpid(), filepath.Base(cp.dir)))

	ctx, cancel := withDefaultTimeout(ctx, defaultStartTimeout)
	defer cancel()
	if err := cp.start(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("starting control plane %s: %w", name, err), cp.Stop())
	}
	logf("controlplane %s: ready in %s at %s (dir %s)", name, time.Since(begin).Round(time.Millisecond), cp.restConfig.Host, cp.dir)
	return cp, nil
}

func (cp *ControlPlane) start(ctx context.Context) error {
	// Only the harness's own files are cleared, so a Config.Dir chosen by a
	// human never loses anything else.
	for _, sub := range []string{"pki", "etcd-data", "apiserver-certs", "kcm-certs", "flexvolume", "home", "kubectl-cache"} {
		if err := os.RemoveAll(cp.path(sub)); err != nil {
			return fmt.Errorf("clearing %s: %w", sub, err)
		}
		if err := os.MkdirAll(cp.path(sub), 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", sub, err)
		}
	}
	for _, log := range []string{"etcd.log", "kube-apiserver.log", "kube-controller-manager.log"} {
		if err := os.Remove(cp.path(log)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("clearing %s: %w", log, err)
		}
	}
	if err := cp.saveRecord(); err != nil {
		return err
	}

	_, svcNet, err := net.ParseCIDR(serviceCIDR)
	if err != nil {
		return fmt.Errorf("parsing service CIDR: %w", err)
	}
	firstServiceIP := svcNet.IP.To4()
	firstServiceIP[3]++
	if cp.pki, err = newPKI(cp.path("pki"), firstServiceIP); err != nil {
		return err
	}

	t := time.Now()
	if err := cp.startEtcd(ctx); err != nil {
		return err
	}
	cp.logf("controlplane %s: etcd healthy in %s", cp.name, time.Since(t).Round(time.Millisecond))

	t = time.Now()
	if err := cp.startAPIServerFirstTime(ctx); err != nil {
		return err
	}
	cp.logf("controlplane %s: kube-apiserver ready in %s", cp.name, time.Since(t).Round(time.Millisecond))

	if len(cp.cfg.CRDPaths) > 0 {
		t = time.Now()
		if err := cp.InstallCRDs(ctx, cp.cfg.CRDPaths...); err != nil {
			return err
		}
		cp.logf("controlplane %s: CRDs established in %s", cp.name, time.Since(t).Round(time.Millisecond))
	}

	t = time.Now()
	if err := cp.startControllerManager(ctx); err != nil {
		return err
	}
	cp.logf("controlplane %s: kube-controller-manager working in %s", cp.name, time.Since(t).Round(time.Millisecond))
	return nil
}

func (cp *ControlPlane) path(name string) string { return filepath.Join(cp.dir, name) }

// portAttempts bounds retries when a free port found by the harness is taken
// by someone else before the child binds it (parallel test packages).
const portAttempts = 4

func (cp *ControlPlane) startEtcd(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(2)
		if err != nil {
			return err
		}
		client := "http://127.0.0.1:" + strconv.Itoa(ports[0])
		peer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
		args := []string{
			"--name=vidra",
			"--data-dir=" + cp.path("etcd-data"),
			"--listen-client-urls=" + client,
			"--advertise-client-urls=" + client,
			"--listen-peer-urls=" + peer,
			"--initial-advertise-peer-urls=" + peer,
			"--initial-cluster=vidra=" + peer,
			"--initial-cluster-state=new",
			// Tests never survive a power loss; fsync would dominate write latency.
			"--unsafe-no-fsync=true",
			"--log-level=warn",
		}
		p, err := cp.startChild(&cp.etcd, "etcd", args)
		if err != nil {
			return err
		}
		err = cp.waitFor(ctx, p, "etcd to be healthy", func(ctx context.Context) error { return etcdHealthy(ctx, client) })
		if err == nil {
			cp.etcdURL = client
			return nil
		}
		if attempt < portAttempts && portConflict(p) {
			cp.logf("controlplane %s: etcd port taken, retrying with other ports", cp.name)
			if err := cp.stopChild(&cp.etcd); err != nil {
				return err
			}
			// A fresh member: the old data dir names the old peer URL.
			if err := os.RemoveAll(cp.path("etcd-data")); err != nil {
				return fmt.Errorf("clearing etcd data: %w", err)
			}
			continue
		}
		return err
	}
}

func etcdHealthy(ctx context.Context, clientURL string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientURL+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body := make([]byte, 512)
	n, _ := resp.Body.Read(body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body[:n]), `"health":"true"`) {
		return fmt.Errorf("etcd /health: %s %s", resp.Status, body[:n])
	}
	return nil
}

func (cp *ControlPlane) apiServerArgs() []string {
	p := cp.pki.path
	args := []string{
		"--etcd-servers=" + cp.etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(cp.apiPort),
		// Without --cert-dir it writes to /var/run/kubernetes.
		"--cert-dir=" + cp.path("apiserver-certs"),
		"--tls-cert-file=" + p("apiserver.crt"),
		"--tls-private-key-file=" + p("apiserver.key"),
		"--client-ca-file=" + p("ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p("sa.pub"),
		"--service-account-signing-key-file=" + p("sa.key"),
		"--service-cluster-ip-range=" + serviceCIDR,
		// RBAC, as in real clusters; it also lets anonymous clients read /readyz.
		"--authorization-mode=RBAC",
		// The "kubernetes" Endpoints would point at 127.0.0.1, which the API
		// server rejects every 10 s in its log.
		"--endpoint-reconciler-type=none",
	}
	return append(args, cp.cfg.APIServerFlags...)
}

func (cp *ControlPlane) startAPIServerFirstTime(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(1)
		if err != nil {
			return err
		}
		cp.apiPort = ports[0]
		if err := cp.writeKubeconfigs(); err != nil {
			return err
		}
		p, err := cp.startChild(&cp.apiserver, "kube-apiserver", cp.apiServerArgs())
		if err != nil {
			return err
		}
		err = cp.waitAPIServerReady(ctx, p)
		if err == nil {
			return nil
		}
		if attempt < portAttempts && portConflict(p) {
			cp.logf("controlplane %s: kube-apiserver port taken, retrying with another port", cp.name)
			if err := cp.stopChild(&cp.apiserver); err != nil {
				return err
			}
			continue
		}
		return err
	}
}

func (cp *ControlPlane) waitAPIServerReady(ctx context.Context, p *process) error {
	client, err := rest.HTTPClientFor(cp.RESTConfig())
	if err != nil {
		return fmt.Errorf("creating HTTP client: %w", err)
	}
	defer client.CloseIdleConnections()
	url := cp.restConfig.Host + "/readyz"
	return cp.waitFor(ctx, p, "kube-apiserver /readyz", func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body := make([]byte, 4096)
		n, _ := resp.Body.Read(body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s %s", resp.Status, body[:n])
		}
		return nil
	})
}

func (cp *ControlPlane) startControllerManager(ctx context.Context) error {
	p := cp.pki.path
	args := []string{
		"--kubeconfig=" + cp.path("kube-controller-manager.kubeconfig"),
		// No HTTPS endpoint: nothing needs its health or metrics, and it is
		// one port less to allocate.
		"--secure-port=0",
		"--cert-dir=" + cp.path("kcm-certs"),
		"--leader-elect=false",
		"--controllers=*",
		// Each controller uses its own service account, as in real clusters,
		// so RBAC problems surface in tests.
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + p("sa.key"),
		"--root-ca-file=" + p("ca.crt"),
		"--cluster-signing-cert-file=" + p("ca.crt"),
		"--cluster-signing-key-file=" + p("ca.key"),
		"--service-cluster-ip-range=" + serviceCIDR,
		// Without it the controller manager creates /usr/libexec/kubernetes.
		"--flex-volume-plugin-dir=" + cp.path("flexvolume"),
		// The defaults (20/30) make it start about twice as slowly.
		"--kube-api-qps=100",
		"--kube-api-burst=200",
	}
	args = append(args, cp.cfg.ControllerManagerFlags...)
	proc, err := cp.startChild(&cp.kcm, "kube-controller-manager", args)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cp.RESTConfig())
	if err != nil {
		return fmt.Errorf("creating clientset: %w", err)
	}
	// The service-account controller creating default/default proves the
	// controller manager is connected, authorised and running controllers.
	return cp.waitFor(ctx, proc, "the default/default ServiceAccount (kube-controller-manager)", func(ctx context.Context) error {
		_, err := cs.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return errors.New("not created yet")
		}
		return err
	})
}

// startChild starts a harness binary with its log in the control plane's dir
// and records it in *slot and in the registry.
func (cp *ControlPlane) startChild(slot **process, name string, args []string) (*process, error) {
	p, err := startProcess(name, filepath.Join(cp.binDir, name), args, childEnv(cp.path("home")), cp.path(name+".log"))
	if err != nil {
		return nil, err
	}
	cp.mu.Lock()
	if cp.stopped { // Stop ran meanwhile (e.g. StartAPIServer racing Stop)
		cp.mu.Unlock()
		return nil, errors.Join(errors.New("control plane is stopped"), p.kill())
	}
	*slot = p
	cp.mu.Unlock()
	if err := cp.saveRecord(); err != nil {
		return nil, err
	}
	return p, nil
}

func (cp *ControlPlane) stopChild(slot **process) error {
	cp.mu.Lock()
	p := *slot
	*slot = nil
	cp.mu.Unlock()
	if p == nil {
		return nil
	}
	err := p.kill()
	return errors.Join(err, cp.saveRecord())
}

// waitFor polls check until it succeeds, failing early when p exits; errors
// carry the tail of p's log.
func (cp *ControlPlane) waitFor(ctx context.Context, p *process, what string, check func(context.Context) error) error {
	var last error
	err := poll(ctx, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		if done, exitErr := p.exited(); done {
			return false, fmt.Errorf("%s exited (%v)", p.name, exitErr)
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		last = check(cctx)
		return last == nil, nil
	})
	if err == nil {
		return nil
	}
	if last != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (last check: %v)", err, last)
	}
	return fmt.Errorf("waiting for %s: %w\n--- last lines of %s:\n%s", what, err, p.logPath, p.logTail())
}

func portConflict(p *process) bool {
	return strings.Contains(p.logTail(), "address already in use")
}

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment ago.
// All listeners stay open until all ports are picked, so they differ.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (cp *ControlPlane) writeKubeconfigs() error {
	host := "https://127.0.0.1:" + strconv.Itoa(cp.apiPort)
	cp.restConfig = &rest.Config{
		Host: host,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   cp.pki.caPEM,
			CertData: cp.pki.adminCertPEM,
			KeyData:  cp.pki.adminKeyPEM,
		},
		QPS:   testQPS,
		Burst: testBurst,
	}
	cp.kubeconfig = cp.path("kubeconfig")
	write := func(path, user string, cert, key []byte) error {
		cfg := clientcmdapi.NewConfig()
		cfg.Clusters["vidra"] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: cp.pki.caPEM}
		cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
		cfg.Contexts["vidra"] = &clientcmdapi.Context{Cluster: "vidra", AuthInfo: user, Namespace: metav1.NamespaceDefault}
		cfg.CurrentContext = "vidra"
		if err := clientcmd.WriteToFile(*cfg, path); err != nil {
			return fmt.Errorf("writing kubeconfig %s: %w", path, err)
		}
		return nil
	}
	return errors.Join(
		write(cp.kubeconfig, "vidra-admin", cp.pki.adminCertPEM, cp.pki.adminKeyPEM),
		write(cp.path("kube-controller-manager.kubeconfig"), "kube-controller-manager", cp.pki.controllerCertPEM, cp.pki.controllerKeyPEM),
	)
}

func (cp *ControlPlane) saveRecord() error {
	rec := record{Dir: cp.dir, RemoveDir: cp.removeDir, OwnerPID: os.Getpid()}
	rec.OwnerStart, _ = procStartTime(rec.OwnerPID)
	cp.mu.Lock()
	for _, p := range []*process{cp.etcd, cp.apiserver, cp.kcm} {
		if p != nil {
			rec.Processes = append(rec.Processes, recordEntry{Name: p.name, PID: p.pid(), Path: p.path})
		}
	}
	cp.mu.Unlock()
	return writeRecord(cp.registryPath, rec)
}

// RESTConfig returns a new admin (system:masters) client configuration with
// QPS 200 and burst 400. Callers may modify it.
func (cp *ControlPlane) RESTConfig() *rest.Config { return rest.CopyConfig(cp.restConfig) }

// KubeconfigPath is an admin kubeconfig with the CA, client certificate and
// key embedded; the server is https://127.0.0.1:<port>.
func (cp *ControlPlane) KubeconfigPath() string { return cp.kubeconfig }

// Dir is the directory holding the control plane's files, including the logs
// etcd.log, kube-apiserver.log and kube-controller-manager.log.
func (cp *ControlPlane) Dir() string { return cp.dir }

// KubectlPath is the kubectl built with the control plane (same version).
func (cp *ControlPlane) KubectlPath() string { return filepath.Join(cp.binDir, "kubectl") }

// KubectlEnv is the environment for running kubectl (or other tools) against
// this control plane: KUBECONFIG, and KUBECACHEDIR and HOME pointing into the
// control plane's dir so nothing is written to the real home directory.
func (cp *ControlPlane) KubectlEnv() []string {
	return childEnv(cp.path("home"), "KUBECONFIG="+cp.kubeconfig, "KUBECACHEDIR="+cp.path("kubectl-cache"))
}

// KubectlCmd prepares a kubectl command against this control plane, for
// callers that need stdin or streaming output.
func (cp *ControlPlane) KubectlCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, cp.KubectlPath(), args...)
	cmd.Env = cp.KubectlEnv()
	return cmd
}

// Kubectl runs kubectl against this control plane. A failure's error includes
// kubectl's stderr.
func (cp *ControlPlane) Kubectl(ctx context.Context, args ...string) (stdout, stderr []byte, err error) {
	cmd := cp.KubectlCmd(ctx, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errOut
	if err := cmd.Run(); err != nil {
		return out.Bytes(), errOut.Bytes(),
			fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(errOut.Bytes()))
	}
	return out.Bytes(), errOut.Bytes(), nil
}

// StopAPIServer kills kube-apiserver, leaving etcd and the controller manager
// running: the cluster looks down to clients ("connection refused"), as a
// remote cluster would. StartAPIServer brings it back.
func (cp *ControlPlane) StopAPIServer() error {
	if err := cp.stopChild(&cp.apiserver); err != nil {
		return fmt.Errorf("stopping kube-apiserver: %w", err)
	}
	cp.logf("controlplane %s: kube-apiserver stopped", cp.name)
	return nil
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, on the same
// port with the same certificates and etcd data, and waits for /readyz. It
// does nothing if the API server is running. If another process took the port
// meanwhile (unlikely: it is not handed out while in use, and the kernel picks
// free ports at random) it fails with the API server's log.
func (cp *ControlPlane) StartAPIServer(ctx context.Context) error {
	cp.mu.Lock()
	running, stopped := cp.apiserver != nil, cp.stopped
	cp.mu.Unlock()
	if stopped {
		return errors.New("control plane is stopped")
	}
	if running {
		return nil
	}
	ctx, cancel := withDefaultTimeout(ctx, defaultStartTimeout)
	defer cancel()
	t := time.Now()
	p, err := cp.startChild(&cp.apiserver, "kube-apiserver", cp.apiServerArgs())
	if err != nil {
		return err
	}
	if err := cp.waitAPIServerReady(ctx, p); err != nil {
		return fmt.Errorf("restarting kube-apiserver: %w", err)
	}
	cp.logf("controlplane %s: kube-apiserver restarted in %s", cp.name, time.Since(t).Round(time.Millisecond))
	return nil
}

// Processes maps each running child ("etcd", "kube-apiserver",
// "kube-controller-manager") to its PID.
func (cp *ControlPlane) Processes() map[string]int {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	m := map[string]int{}
	for _, p := range []*process{cp.etcd, cp.apiserver, cp.kcm} {
		if p != nil {
			m[p.name] = p.pid()
		}
	}
	return m
}

// LogTails returns the last lines of each process's log, for failure
// reports.
func (cp *ControlPlane) LogTails(lines int) string {
	var b strings.Builder
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		fmt.Fprintf(&b, "--- last lines of %s:\n%s\n", cp.path(name+".log"), fileTail(cp.path(name+".log"), lines))
	}
	return b.String()
}

// Stop kills every process the control plane started (whole process groups)
// and removes its temp dir. It is idempotent; later calls return the first
// call's result.
func (cp *ControlPlane) Stop() error {
	cp.mu.Lock()
	if cp.stopped {
		cp.mu.Unlock()
		return cp.stopErr
	}
	cp.stopped = true
	procs := []*process{cp.kcm, cp.apiserver, cp.etcd}
	cp.kcm, cp.apiserver, cp.etcd = nil, nil, nil
	cp.mu.Unlock()

	var errs []error
	for _, p := range procs {
		if p != nil {
			errs = append(errs, p.kill())
		}
	}
	if err := os.Remove(cp.registryPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("removing registry record: %w", err))
	}
	switch {
	case !cp.removeDir:
	case os.Getenv(KeepDirEnv) == "1":
		cp.logf("controlplane %s: keeping %s (%s=1)", cp.name, cp.dir, KeepDirEnv)
	default:
		if err := os.RemoveAll(cp.dir); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", cp.dir, err))
		}
	}
	cp.stopErr = errors.Join(errs...)
	if cp.stopErr != nil {
		cp.stopErr = fmt.Errorf("stopping control plane %s: %w", cp.name, cp.stopErr)
	}
	cp.logf("controlplane %s: stopped", cp.name)
	return cp.stopErr
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

func sanitize(name string) string {
	s := unsafeChars.ReplaceAllString(name, "-")
	if len(s) > 40 {
		s = s[:40]
	}
	return s
}

func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
