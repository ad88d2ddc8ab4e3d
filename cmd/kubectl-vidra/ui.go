package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const uiUsage = `Serve a live dashboard of Vidra on this machine: every InfrahubSync, the
VidraResources it wrote and the objects they manage, as a tree with their
readiness, health, last change and recent events, updated as the cluster
changes. From a sync, the page previews what its branch (or another) would
change, as 'kubectl vidra diff' does.

The page is served on 127.0.0.1 only, by this process, with your kubeconfig
and your permissions: nothing is installed or started in the cluster. It
stops with Ctrl-C.

The branch diff reads Infrahub with the credentials in the operator's
namespace, exactly as 'kubectl vidra diff' with the same flags does.

Usage:
  kubectl vidra ui [--port N]

Examples:
  kubectl vidra ui
  kubectl vidra ui --port 8765 --context prod`

//go:embed ui
var uiAssets embed.FS

// uiDebounce gathers the changes of a burst (a sync writing many objects)
// into one page update.
const uiDebounce = 150 * time.Millisecond

func runUI(ctx context.Context, a *app, args []string) error {
	f := a.newFlags("ui", uiUsage)
	port := f.Int("port", 0, "port on 127.0.0.1 to serve on (default: a free port)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("ui", "ui takes no arguments")
	}
	if *port < 0 || *port > 65535 {
		return usagef("ui", "--port must be between 0 and 65535")
	}
	c, err := a.clients()
	if err != nil {
		return err
	}
	// Watches last longer than any request timeout.
	watchCfg := rest.CopyConfig(c.config)
	watchCfg.Timeout = 0
	dyn, err := dynamic.NewForConfig(watchCfg)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	kube, err := kubernetes.NewForConfig(c.config)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)))
	if err != nil {
		return fmt.Errorf("listen on 127.0.0.1:%d: %w", *port, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := newWatcher(ctx, dyn, kube.Discovery())
	s := newUIServer(ctx, w, c.config.Host, a.diffRunner())
	go s.publish(ctx, w.changed)

	addr := ln.Addr().(*net.TCPAddr)
	srv := &http.Server{
		Handler:           s.handler(addr.Port),
		ReadHeaderTimeout: 10 * time.Second,
	}
	fmt.Fprintf(a.stdout, "Vidra dashboard: http://127.0.0.1:%d/ (Ctrl-C to stop)\n", addr.Port)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	cancel() // ends the event streams, so shutdown does not wait for them
	shutdownCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}

// diffFunc previews a sync on a branch and point in time and returns what
// `kubectl vidra diff` prints and its exit code.
type diffFunc func(ctx context.Context, sync, branch, at string) diffResult

type diffResult struct {
	ExitCode int    `json:"exitCode"`
	Output   string `json:"output"`
	Messages string `json:"messages"`
}

// diffRunner runs the diff command line itself, with this invocation's
// flags (the cluster, the operator's namespace) and its output captured, so
// the page shows exactly what `kubectl vidra diff` prints and its exit code
// (0: no changes, 1: changes, more: it could not tell).
func (a *app) diffRunner() diffFunc {
	var mu sync.Mutex // one preview at a time: each reads every artifact
	return func(ctx context.Context, syncName, branch, at string) diffResult {
		mu.Lock()
		defer mu.Unlock()
		var stdout, stderr bytes.Buffer
		sub := *a
		sub.stdout, sub.stderr, sub.isTTY = &stdout, &stderr, false
		args := []string{"diff", syncName, "--color", "never"}
		if branch != "" {
			args = append(args, "--branch", branch)
		}
		if at != "" {
			args = append(args, "--at", at)
		}
		code := run(ctx, args, &sub)
		return diffResult{ExitCode: code, Output: stdout.String(), Messages: stderr.String()}
	}
}

// uiServer serves the page, its data as JSON and a stream of updates.
type uiServer struct {
	ctx     context.Context
	w       interface{ page() pageModel }
	cluster string
	diff    diffFunc

	mu       sync.Mutex
	revision int64
	current  []byte // the latest page as JSON
	// lastComparable is the latest page without revision and time, to
	// tell whether anything shown changed.
	lastComparable []byte
	subs           map[chan struct{}]bool
}

func newUIServer(ctx context.Context, w interface{ page() pageModel }, clusterHost string, diff diffFunc) *uiServer {
	s := &uiServer{ctx: ctx, w: w, cluster: clusterHost, diff: diff, subs: map[chan struct{}]bool{}}
	s.refresh()
	return s
}

// publish rebuilds the page after each burst of changes and wakes the
// streams.
func (s *uiServer) publish(ctx context.Context, changed <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(uiDebounce):
		}
		s.refresh()
	}
}

// refresh builds the page; when it differs from the last one, it becomes a
// new revision and the streams are woken.
func (s *uiServer) refresh() {
	page := s.w.page()
	page.Cluster = s.cluster
	s.mu.Lock()
	defer s.mu.Unlock()
	page.Revision, page.GeneratedAt = 0, time.Time{}
	same, err := json.Marshal(page)
	if err != nil {
		return
	}
	if s.current != nil && bytes.Equal(same, s.lastComparable) {
		return
	}
	s.lastComparable = same
	s.revision++
	page.Revision = s.revision
	page.GeneratedAt = time.Now().UTC()
	data, err := json.Marshal(page)
	if err != nil {
		return
	}
	s.current = data
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (s *uiServer) latest() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

func (s *uiServer) subscribe() (chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs[ch] = true
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}
}

func (s *uiServer) handler(port int) http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(uiAssets, "ui")
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("GET /api/page", s.servePage)
	mux.HandleFunc("GET /api/stream", s.serveStream)
	mux.HandleFunc("GET /api/diff", s.serveDiff)
	return loopbackOnly(port, mux)
}

// loopbackOnly refuses requests whose Host is not this server's loopback
// address: a web page the user visits elsewhere cannot reach the
// dashboard through a name that resolves to 127.0.0.1 (DNS rebinding).
func loopbackOnly(port int, next http.Handler) http.Handler {
	p := strconv.Itoa(port)
	allowed := map[string]bool{"127.0.0.1:" + p: true, "localhost:" + p: true}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed[strings.ToLower(r.Host)] {
			http.Error(w, "forbidden host", http.StatusForbidden)
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:")
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

func (s *uiServer) servePage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.latest())
}

// serveStream sends the page as a server-sent event now and after every
// change, with a comment every 15 seconds to keep proxies and the browser
// from timing out.
func (s *uiServer) serveStream(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch, unsubscribe := s.subscribe()
	defer unsubscribe()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Connection", "keep-alive")
	w.WriteHeader(http.StatusOK)
	send := func() bool {
		if _, err := fmt.Fprintf(w, "event: page\ndata: %s\n\n", s.latest()); err != nil {
			return false
		}
		flusher.Flush()
		return true
	}
	if !send() {
		return
	}
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		case <-keepAlive.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			flusher.Flush()
		case <-ch:
			if !send() {
				return
			}
		}
	}
}

func (s *uiServer) serveDiff(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("sync")
	if name == "" {
		http.Error(w, "sync is required", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Minute)
	defer cancel()
	res := s.diff(ctx, name, strings.TrimSpace(q.Get("branch")), strings.TrimSpace(q.Get("at")))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}
