package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
)

// health answers the probes.
//
// Liveness (/healthz, /livez): the process serves HTTP and, when electing,
// the leader has not failed to renew its lease for longer than it should
// (client-go's HealthzAdaptor); a stuck leader is restarted.
//
// Readiness (/readyz): a leader (or a process running without leader
// election) is ready once its informer caches have synced. A standby that
// takes part in the election is ready too: it is healthy and will take over
// when needed, and a rolling update of a Deployment with several replicas
// must be able to bring up a new standby while the old leader still runs
// (otherwise the rollout would wait forever). Nothing is ready while shutting
// down. Whoever routes work by readiness (the webhook receiver) must
// therefore check isLeader itself.
type health struct {
	electing     bool
	leading      atomic.Bool
	standingBy   atomic.Bool
	shuttingDown atomic.Bool
	synced       func() bool
	// leaseCheck is the leader election watchdog; nil without election.
	leaseCheck func(*http.Request) error
}

func (h *health) isLeader() bool { return !h.electing || h.leading.Load() }

// ready returns nil when ready, else why not.
func (h *health) ready() error {
	switch {
	case h.shuttingDown.Load():
		return errors.New("shutting down")
	case h.electing && !h.leading.Load():
		if h.standingBy.Load() {
			return nil
		}
		return errors.New("leader election not started")
	case h.synced == nil || !h.synced():
		return errors.New("informer caches not synced yet")
	}
	return nil
}

func (h *health) live(r *http.Request) error {
	if h.leaseCheck != nil {
		if err := h.leaseCheck(r); err != nil {
			return fmt.Errorf("leader election: %w", err)
		}
	}
	return nil
}

func (h *health) role() string {
	switch {
	case !h.electing:
		return "single"
	case h.leading.Load():
		return "leader"
	default:
		return "standby"
	}
}

func (h *health) register(mux *http.ServeMux) {
	probe := func(check func(*http.Request) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("X-Vidra-Role", h.role())
			if err := check(r); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "not ok: %v\n", err)
				return
			}
			fmt.Fprintf(w, "ok (%s)\n", h.role())
		}
	}
	mux.Handle("/healthz", probe(h.live))
	mux.Handle("/livez", probe(h.live))
	mux.Handle("/readyz", probe(func(*http.Request) error { return h.ready() }))
}

// server is one HTTP listener.
type server struct {
	name string
	srv  *http.Server
	ln   net.Listener
}

// listen binds addr now, so a taken port fails the start-up rather than
// surfacing later.
func listen(name, addr string, handler http.Handler) (*server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s server: %w", name, err)
	}
	return &server{
		name: name,
		ln:   ln,
		srv: &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
		},
	}, nil
}

func (s *server) serve(logger klog.Logger) {
	logger.Info("Serving", "server", s.name, "address", s.ln.Addr().String())
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error(err, "HTTP server stopped", "server", s.name)
	}
}

func (s *server) shutdown(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
}
