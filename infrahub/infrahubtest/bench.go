package infrahubtest

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/vidra-operator/vidra/infrahub"
)

// Benchmark bodies, exported so that other packages (test/bench) can run
// them too; infrahub's own Benchmark functions call them.

// SeedArtifacts creates n Ready artifacts named DefaultArtifactName on main,
// each a small multi-document manifest of about 700 bytes.
func (s *Server) SeedArtifacts(n int) []ArtifactInfo {
	out := make([]ArtifactInfo, 0, n)
	for i := range n {
		out = append(out, s.SetArtifact("main", ArtifactSpec{
			TargetLabel: fmt.Sprintf("web-%04d", i),
			Content:     []byte(sampleManifest(i)),
		}))
	}
	return out
}

func sampleManifest(i int) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: ns-web-%04[1]d
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: dep-web-%04[1]d
  namespace: ns-web-%04[1]d
  labels: {app: l-web-%04[1]d}
spec:
  replicas: 2
  selector: {matchLabels: {app: l-web-%04[1]d}}
  template:
    metadata: {labels: {app: l-web-%04[1]d}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata:
  name: svc-web-%04[1]d
  namespace: ns-web-%04[1]d
spec:
  selector: {app: l-web-%04[1]d}
  ports: [{port: 80, targetPort: 80}]
`, i)
}

func benchClient(b *testing.B, s *Server, pageSize int) *infrahub.Client {
	b.Helper()
	s.AddAPIToken("bench-token")
	c, err := infrahub.New(infrahub.Config{BaseURL: s.URL, APIToken: "bench-token", PageSize: pageSize})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// RunListBenchmark lists n artifacts per iteration with the default page
// size, checking the number of GraphQL requests made.
func RunListBenchmark(b *testing.B, n int) {
	s := NewServer()
	defer s.Close()
	s.SeedArtifacts(n)
	c := benchClient(b, s, 0)
	pages := (n + infrahub.DefaultPageSize - 1) / infrahub.DefaultPageSize
	opts := infrahub.ListOptions{Name: DefaultArtifactName}
	ctx := context.Background()
	s.ResetCounts()
	iterations := 0
	b.ReportAllocs()
	for b.Loop() {
		arts, err := c.ListArtifacts(ctx, opts)
		if err != nil {
			b.Fatal(err)
		}
		if len(arts) != n {
			b.Fatalf("listed %d artifacts, want %d", len(arts), n)
		}
		iterations++
	}
	if got := s.Count(EndpointGraphQL); got != iterations*pages {
		b.Fatalf("%d GraphQL requests for %d listings, want %d each", got, iterations, pages)
	}
	b.ReportMetric(float64(pages), "requests/op")
}

// RunResyncBenchmark measures a sync where nothing changed: n artifacts in
// one page, all content already cached. Every iteration must make exactly
// one list request and no download.
func RunResyncBenchmark(b *testing.B, n int) {
	s := NewServer()
	defer s.Close()
	s.SeedArtifacts(n)
	c := benchClient(b, s, n)
	fetcher := infrahub.NewFetcher(infrahub.NewCache(infrahub.DefaultCacheBytes))
	opts := infrahub.ListOptions{Name: DefaultArtifactName}
	ctx := context.Background()
	sync := func() {
		arts, err := c.ListArtifacts(ctx, opts)
		if err != nil {
			b.Fatal(err)
		}
		if len(arts) != n {
			b.Fatalf("listed %d artifacts, want %d", len(arts), n)
		}
		for _, a := range arts {
			if _, err := fetcher.Fetch(ctx, c, a, opts); err != nil {
				b.Fatal(err)
			}
		}
	}
	sync() // warm the cache
	want := map[string]int{EndpointGraphQL: 1}
	b.ReportAllocs()
	for b.Loop() {
		s.ResetCounts()
		sync()
		if got := s.Counts(); !maps.Equal(got, want) {
			b.Fatalf("a sync without changes made requests %v, want %v", got, want)
		}
	}
	b.ReportMetric(0, "downloads/op")
}

// RunCacheHitBenchmark measures a Fetch served from the cache.
func RunCacheHitBenchmark(b *testing.B) {
	s := NewServer()
	defer s.Close()
	info := s.SeedArtifacts(1)[0]
	c := benchClient(b, s, 0)
	fetcher := infrahub.NewFetcher(infrahub.NewCache(infrahub.DefaultCacheBytes))
	a := infrahub.Artifact{ID: info.ID, Name: info.Name, Status: info.Status, Checksum: info.Checksum, StorageID: info.StorageID}
	ctx := context.Background()
	if _, err := fetcher.Fetch(ctx, c, a, infrahub.ListOptions{}); err != nil {
		b.Fatal(err)
	}
	s.ResetCounts()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fetcher.Fetch(ctx, c, a, infrahub.ListOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	if got := s.Counts(); len(got) != 0 {
		b.Fatalf("cache hits made requests: %v", got)
	}
}
