package infrahubsync

import (
	"context"

	"github.com/vidra-operator/vidra/infrahub"
)

// PoolSources is the production Sources: one shared client per connection
// from the pool, with content downloaded through the process-wide cache.
type PoolSources struct {
	Pool    *infrahub.Pool
	Fetcher *infrahub.Fetcher
}

// Source returns the client for cfg, reusing its login.
func (p *PoolSources) Source(cfg infrahub.Config) (Source, error) {
	client, err := p.Pool.Get(cfg)
	if err != nil {
		return nil, err
	}
	return &cachedSource{client: client, fetcher: p.Fetcher}, nil
}

type cachedSource struct {
	client  *infrahub.Client
	fetcher *infrahub.Fetcher
}

func (s *cachedSource) ListArtifacts(ctx context.Context, opts infrahub.ListOptions) ([]infrahub.Artifact, error) {
	return s.client.ListArtifacts(ctx, opts)
}

func (s *cachedSource) FetchContent(ctx context.Context, a infrahub.Artifact, opts infrahub.ListOptions) ([]byte, error) {
	return s.fetcher.Fetch(ctx, s.client, a, opts)
}

func (s *cachedSource) ResolveBranch(ctx context.Context, name string) (string, error) {
	return s.client.ResolveBranch(ctx, name)
}
