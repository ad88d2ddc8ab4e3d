// Package gitserver runs a real Git server on loopback for tests: Debian's
// `git http-backend` behind Go's net/http/cgi (smart HTTP, optional basic
// auth) and an SSH endpoint (golang.org/x/crypto/ssh) that runs
// `git upload-pack` for clients' fetches. Git itself answers, not a mock.
// It counts ref advertisements and upload-pack fetches, so a test can prove
// that polling an unchanged ref fetched nothing, and it can be switched to
// refuse connections, to refuse credentials or to hang.
//
// git comes from hack/git.sh (Debian's package), which New runs when git is
// missing. Only tests import this package; golang.org/x/crypto/ssh serves
// the SSH side.
package gitserver

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh"
)

// Mode switches how the server answers.
type Mode int32

const (
	// Normal serves Git.
	Normal Mode = iota
	// Unreachable closes every connection without a byte (HTTP and SSH).
	Unreachable
	// Unauthorized answers 401 to every HTTP request and refuses every SSH
	// key, whatever the credentials.
	Unauthorized
	// Hang holds every request until the client gives up or the server
	// closes.
	Hang
)

// Options configure a Server.
type Options struct {
	// Username and Password, when Password is set, are required as HTTP
	// basic auth.
	Username, Password string
}

// Server is a loopback Git server over HTTP and SSH. Its repositories are
// bare repositories under Root.
type Server struct {
	// Root holds the bare repositories, "<name>.git".
	Root string
	// KnownHosts is a known_hosts line for the SSH endpoint's host key.
	KnownHosts []byte
	// ClientKey is the PEM private key the SSH endpoint accepts.
	ClientKey []byte

	opts    Options
	execDir string
	env     []string
	http    *httptest.Server
	sshLn   net.Listener
	sshConf *ssh.ServerConfig
	mode    atomic.Int32
	done    chan struct{}
	wg      sync.WaitGroup

	advertisements atomic.Int64
	fetches        atomic.Int64
}

// New starts a Server for the test; it stops when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	execDir, err := gitExecDir()
	if err != nil {
		t.Fatalf("gitserver: %v", err)
	}
	home := t.TempDir()
	s := &Server{
		Root:    t.TempDir(),
		opts:    opts,
		execDir: execDir,
		done:    make(chan struct{}),
		// A clean environment: no user or system git configuration.
		env: []string{"HOME=" + home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
			"PATH=" + os.Getenv("PATH"), "GIT_TERMINAL_PROMPT=0"},
	}
	s.http = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	if err := s.startSSH(); err != nil {
		s.http.Close()
		t.Fatalf("gitserver: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Close stops both endpoints.
func (s *Server) Close() {
	select {
	case <-s.done:
		return
	default:
	}
	close(s.done)
	s.http.CloseClientConnections()
	s.http.Close()
	s.sshLn.Close()
	s.wg.Wait()
}

// SetMode switches how the server answers from now on.
func (s *Server) SetMode(m Mode) { s.mode.Store(int32(m)) }

// Advertisements counts ref advertisements served (ls-remote and the first
// step of every fetch), over HTTP and SSH.
func (s *Server) Advertisements() int64 { return s.advertisements.Load() }

// Fetches counts upload-pack negotiations that asked for objects.
func (s *Server) Fetches() int64 { return s.fetches.Load() }

// URL is the smart HTTP URL of the repository name.
func (s *Server) URL(name string) string { return s.http.URL + "/" + name + ".git" }

// SSHURL is the ssh:// URL of the repository name.
func (s *Server) SSHURL(name string) string {
	return "ssh://git@" + s.sshLn.Addr().String() + "/" + name + ".git"
}

// gitExecDir finds git's exec directory, running hack/git.sh (which
// installs Debian's git) when git or git-http-backend is missing.
func gitExecDir() (string, error) {
	if out, err := exec.Command("git", "--exec-path").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(dir, "git-http-backend")); err == nil {
			return dir, nil
		}
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("bash", filepath.Join(root, "hack", "git.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("hack/git.sh: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1], nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch Mode(s.mode.Load()) {
	case Unreachable:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		http.Error(w, "unreachable", http.StatusBadGateway)
		return
	case Unauthorized:
		w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	case Hang:
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return
	}
	if s.opts.Password != "" {
		user, password, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(s.opts.Username)) != 1 ||
			subtle.ConstantTimeCompare([]byte(password), []byte(s.opts.Password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
	}
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/info/refs") && r.URL.Query().Get("service") == "git-upload-pack":
		s.advertisements.Add(1)
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack"):
		// A stateless request carries the wants; one without any (a
		// client that only listed refs) is no fetch.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		if bytes.Contains(body, []byte("want ")) {
			s.fetches.Add(1)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	case strings.HasSuffix(r.URL.Path, "/git-receive-pack") || r.URL.Query().Get("service") == "git-receive-pack":
		http.Error(w, "push is not served", http.StatusForbidden)
		return
	}
	h := &cgi.Handler{
		Path: filepath.Join(s.execDir, "git-http-backend"),
		Dir:  s.Root,
		Env: append([]string{"GIT_PROJECT_ROOT=" + s.Root, "GIT_HTTP_EXPORT_ALL=1", "REMOTE_USER=" + s.opts.Username},
			s.env...),
	}
	h.ServeHTTP(w, r)
}

// startSSH listens for SSH on loopback with a fresh ed25519 host key and
// accepts one fresh ed25519 client key.
func (s *Server) startSSH() error {
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		return err
	}
	clientPub, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	block, err := ssh.MarshalPrivateKey(clientPriv, "gitserver client")
	if err != nil {
		return err
	}
	s.ClientKey = pem.EncodeToMemory(block)
	authorized, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		return err
	}
	s.sshConf = &ssh.ServerConfig{
		PublicKeyCallback: func(conn ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if Mode(s.mode.Load()) == Unauthorized || !bytes.Equal(key.Marshal(), authorized.Marshal()) {
				return nil, fmt.Errorf("key not authorized")
			}
			return &ssh.Permissions{}, nil
		},
	}
	s.sshConf.AddHostKey(hostSigner)
	s.sshLn, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := s.sshLn.Addr().(*net.TCPAddr)
	s.KnownHosts = []byte(fmt.Sprintf("[127.0.0.1]:%d %s", addr.Port, ssh.MarshalAuthorizedKey(hostSigner.PublicKey())))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			conn, err := s.sshLn.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serveSSH(conn)
			}()
		}
	}()
	return nil
}

// OtherHostKnownHosts is a known_hosts line naming the SSH endpoint's
// address with a key that is not its host key: a client trusting it must
// refuse the server.
func (s *Server) OtherHostKnownHosts() []byte {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	key, _ := ssh.NewPublicKey(pub)
	port := s.sshLn.Addr().(*net.TCPAddr).Port
	return []byte(fmt.Sprintf("[127.0.0.1]:%d %s", port, ssh.MarshalAuthorizedKey(key)))
}

func (s *Server) serveSSH(conn net.Conn) {
	defer conn.Close()
	switch Mode(s.mode.Load()) {
	case Unreachable:
		return
	case Hang:
		<-s.done
		return
	}
	sconn, chans, reqs, err := ssh.NewServerConn(conn, s.sshConf)
	if err != nil {
		return
	}
	defer sconn.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveSession(ch, chReqs)
		}()
	}
}

// serveSession runs `git upload-pack <repo>` for an exec request of
// "git-upload-pack '<repo>'"; anything else is refused.
func (s *Server) serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		switch req.Type {
		case "env":
			req.Reply(true, nil)
			continue
		case "exec":
		default:
			req.Reply(false, nil)
			continue
		}
		var payload struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
			req.Reply(false, nil)
			return
		}
		dir, ok := s.uploadPackDir(payload.Command)
		if !ok {
			req.Reply(false, nil)
			return
		}
		req.Reply(true, nil)
		status := s.uploadPack(ch, dir)
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
		return
	}
}

// uploadPackDir parses "git-upload-pack '/name.git'" into the repository's
// directory under Root.
func (s *Server) uploadPackDir(command string) (string, bool) {
	rest, ok := strings.CutPrefix(command, "git-upload-pack ")
	if !ok {
		rest, ok = strings.CutPrefix(command, "git upload-pack ")
	}
	if !ok {
		return "", false
	}
	repo := strings.Trim(strings.TrimSpace(rest), "'\"")
	clean := filepath.Clean("/" + repo)
	dir := filepath.Join(s.Root, clean)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return "", false
	}
	return dir, true
}

func (s *Server) uploadPack(ch ssh.Channel, dir string) uint32 {
	s.advertisements.Add(1)
	cmd := exec.Command(filepath.Join(s.execDir, "git-upload-pack"), "--strict", dir)
	cmd.Env = s.env
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 1
	}
	if err := cmd.Start(); err != nil {
		return 1
	}
	// Copied by hand: Wait would otherwise wait for the client to close
	// its side, which a client waiting for the exit status never does.
	go func() {
		io.Copy(stdin, &wantSpotter{r: bufio.NewReader(ch), onWant: func() { s.fetches.Add(1) }})
		stdin.Close()
	}()
	if err := cmd.Wait(); err != nil {
		if exit, ok := err.(*exec.ExitError); ok {
			return uint32(exit.ExitCode())
		}
		return 1
	}
	return 0
}

// wantSpotter passes the client's side of upload-pack through and calls
// onWant once when the client asks for objects.
type wantSpotter struct {
	r      io.Reader
	seen   bool
	tail   []byte
	onWant func()
}

func (w *wantSpotter) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if !w.seen && n > 0 {
		// The word may straddle two reads: look at the last bytes too.
		window := append(w.tail, p[:n]...)
		if bytes.Contains(window, []byte("want ")) {
			w.seen = true
			w.onWant()
		}
		if len(window) > 8 {
			window = window[len(window)-8:]
		}
		w.tail = append([]byte(nil), window...)
	}
	return n, err
}
