package gitrepo_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vidra-operator/vidra/controllers/gitsync/gitrepo"
	"github.com/vidra-operator/vidra/test/gitserver"
)

// BenchmarkPoll compares a poll of an unchanged ref (Resolve only, what
// the GitSync controller does every interval) with a poll that fetches
// (Resolve and a shallow Fetch of 20 files), against the loopback server.
// It reports the server's fetches per poll: 0 for the unchanged ref.
//
//	go test -run '^$' -bench BenchmarkPoll -benchtime 50x ./controllers/gitsync/gitrepo/
func BenchmarkPoll(b *testing.B) {
	s := gitserver.New(b, gitserver.Options{})
	repo := s.NewRepo(b, "bench")
	files := map[string]string{}
	for i := 0; i < 20; i++ {
		files[fmt.Sprintf("apps/app%02d/deploy.yaml", i)] = fmt.Sprintf("kind: Deployment\nmetadata:\n  name: app%02d\n", i)
	}
	repo.Commit(b, "main", files, nil, "apps")
	c := gitrepo.New(gitrepo.Limits{Timeout: time.Minute, MaxBytes: 16 << 20})
	ctx := context.Background()
	ref := gitrepo.Ref{Branch: "main"}

	b.Run("unchanged", func(b *testing.B) {
		before := s.Fetches()
		for i := 0; i < b.N; i++ {
			if _, err := c.Resolve(ctx, s.URL("bench"), gitrepo.Auth{}, ref); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(s.Fetches()-before)/float64(b.N), "fetches/op")
	})
	b.Run("fetch", func(b *testing.B) {
		before := s.Fetches()
		for i := 0; i < b.N; i++ {
			res, err := c.Resolve(ctx, s.URL("bench"), gitrepo.Auth{}, ref)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.Fetch(ctx, s.URL("bench"), gitrepo.Auth{}, res, []string{"apps"}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(s.Fetches()-before)/float64(b.N), "fetches/op")
	})
}
