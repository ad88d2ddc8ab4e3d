// Command fake-infrahub serves the fake Infrahub of package infrahubtest on
// a fixed address, for demos and manual tests.
//
//	fake-infrahub -listen 127.0.0.1:8000 -seed-dir ./artifacts \
//	    -artifact-name Webserver_Manifest -user admin -password infrahub
//
// Every regular file of -seed-dir becomes one artifact named -artifact-name
// whose target is the file name without extension. Change an artifact live
// with the control API, e.g.
//
//	curl -X POST --data-binary @web-1.yaml \
//	    'http://127.0.0.1:8000/__fake__/artifacts?target=web-1'
//	curl http://127.0.0.1:8000/__fake__/counts
//
// See infrahubtest.Server.ServeHTTP for all control endpoints.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/vidra-operator/vidra/infrahub/infrahubtest"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "fake-infrahub:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("fake-infrahub", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8000", "address to listen on")
	seedDir := fs.String("seed-dir", "", "directory whose files become artifacts (one per file)")
	name := fs.String("artifact-name", infrahubtest.DefaultArtifactName, "name of the seeded artifacts (and default for the control API)")
	definition := fs.String("definition-name", infrahubtest.DefaultDefinitionName, "artifact definition name")
	kind := fs.String("target-kind", infrahubtest.DefaultTargetKind, "kind of the artifacts' target nodes")
	user := fs.String("user", "admin", "login username (empty: no login account)")
	password := fs.String("password", "infrahub", "login password")
	token := fs.String("api-token", "", "API token accepted in X-INFRAHUB-KEY")
	anonymous := fs.Bool("anonymous", true, "allow anonymous reads (Infrahub's default)")
	webhookURL := fs.String("webhook-url", "", "URL receiving signed artifact webhooks")
	secretFile := fs.String("webhook-secret-file", "", "file holding the webhook shared key")
	allBranches := fs.Bool("webhook-all-branches", false, "send webhooks for every branch, not only main")
	branches := fs.String("branches", "", "comma-separated extra branches to create")
	tokenTTL := fs.Duration("access-token-lifetime", time.Hour, "lifetime of access tokens")
	if err := fs.Parse(args); err != nil {
		return err
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv := infrahubtest.NewUnstartedServer(
		infrahubtest.WithLogger(logger),
		infrahubtest.WithWebhookRetryDelay(2*time.Second),
		infrahubtest.WithArtifactDefaults(infrahubtest.ArtifactSpec{Name: *name, DefinitionName: *definition, TargetKind: *kind}),
	)
	if *user != "" {
		srv.AddUser(*user, *password)
	}
	if *token != "" {
		srv.AddAPIToken(*token)
	}
	srv.SetAnonymousAccess(*anonymous)
	srv.SetAccessTokenLifetime(*tokenTTL)
	for _, b := range strings.Split(*branches, ",") {
		if b = strings.TrimSpace(b); b != "" {
			srv.AddBranch(b)
		}
	}
	if *webhookURL != "" {
		if *secretFile == "" {
			return errors.New("-webhook-url needs -webhook-secret-file")
		}
		secret, err := os.ReadFile(*secretFile)
		if err != nil {
			return err
		}
		scope := infrahubtest.ScopeDefaultBranch
		if *allBranches {
			scope = infrahubtest.ScopeAllBranches
		}
		srv.SetWebhooks(infrahubtest.WebhookConfig{URL: *webhookURL, Secret: []byte(strings.TrimSpace(string(secret))), BranchScope: scope})
		logger.Info("webhook configured", "url", *webhookURL, "scope", scope)
	}
	if *seedDir != "" {
		if err := seed(srv, *seedDir, logger); err != nil {
			return err
		}
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv.URL = "http://" + ln.Addr().String()
	hs := &http.Server{Handler: logRequests(srv, logger), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	logger.Info("fake Infrahub listening", "url", srv.URL, "user", *user, "api_token", *token != "", "anonymous", *anonymous)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = hs.Shutdown(sctx)
	_ = srv.FlushWebhooks(sctx)
	return err
}

// statusWriter remembers the status of a response for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// logRequests logs method, path, status and duration; never headers or
// bodies, which carry credentials.
func logRequests(h http.Handler, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			logger.Info("request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
				"duration", time.Since(start).Round(time.Microsecond))
		}()
		h.ServeHTTP(sw, r)
	})
}

func seed(srv *infrahubtest.Server, dir string, logger *slog.Logger) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		content, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		ext := filepath.Ext(e.Name())
		info := srv.SetArtifact("main", infrahubtest.ArtifactSpec{
			TargetLabel: strings.TrimSuffix(e.Name(), ext),
			ContentType: contentType(ext),
			Content:     content,
		})
		logger.Info("seeded artifact", "file", e.Name(), "id", info.ID, "name", info.Name, "checksum", info.Checksum)
	}
	return nil
}

func contentType(ext string) string {
	switch strings.ToLower(ext) {
	case ".json":
		return "application/json"
	case ".yaml", ".yml":
		return "application/yaml"
	case ".xml":
		return "application/xml"
	case ".md":
		return "text/markdown"
	case ".csv":
		return "text/csv"
	case ".svg":
		return "image/svg+xml"
	}
	return "text/plain"
}
