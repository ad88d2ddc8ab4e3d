package infrahub

import (
	"context"
	"crypto/md5" //nolint:gosec // Infrahub's checksum is MD5
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// FetchContent downloads the content of a, from the object store by storage
// id when a has one (immutable per id), else from /api/artifact/{id} on
// opts.Branch as of opts.At. The MD5 of what arrived must equal a.Checksum.
// An artifact without a checksum has never been generated: KindNotFound.
//
// With a relative opts.At, call opts.Resolve once per sync so the listing
// and the downloads read the same instant.
func (c *Client) FetchContent(ctx context.Context, a Artifact, opts ListOptions) ([]byte, error) {
	if a.ID == "" && a.StorageID == "" {
		return nil, &Error{Kind: KindBadRequest, Message: "artifact has neither id nor storage id"}
	}
	if a.Checksum == "" {
		return nil, &Error{Kind: KindNotFound, Message: fmt.Sprintf("artifact %s has no content yet (status %q)", a.ID, a.Status)}
	}
	if a.StorageID != "" {
		data, err := c.fetch(ctx, endpointStorage, "/api/storage/object/"+url.PathEscape(a.StorageID), nil)
		if err == nil {
			return verified(a, data)
		}
		if !IsNotFound(err) || a.ID == "" {
			return nil, err
		}
		// The stored object is gone; the artifact endpoint may still serve it.
	}
	at, err := atParam(opts.At, c.now())
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if opts.Branch != "" {
		q.Set("branch", opts.Branch)
	}
	if at != "" {
		q.Set("at", at)
	}
	data, err := c.fetch(ctx, endpointArtifact, "/api/artifact/"+url.PathEscape(a.ID), q)
	if err != nil {
		return nil, err
	}
	return verified(a, data)
}

func (c *Client) fetch(ctx context.Context, endpoint, path string, q url.Values) ([]byte, error) {
	resp, err := c.do(ctx, request{endpoint: endpoint, method: http.MethodGet, path: path, query: q, auth: true})
	if err != nil {
		return nil, err
	}
	return resp.body, nil
}

// Checksum returns Infrahub's checksum of content: lowercase hex MD5.
func Checksum(content []byte) string {
	sum := md5.Sum(content) //nolint:gosec // Infrahub's checksum is MD5
	return hex.EncodeToString(sum[:])
}

func verified(a Artifact, data []byte) ([]byte, error) {
	got := Checksum(data)
	if !strings.EqualFold(got, a.Checksum) {
		return nil, &Error{Kind: KindChecksumMismatch,
			Message: fmt.Sprintf("artifact %s: content has MD5 %s, listing announced %s", a.ID, got, a.Checksum)}
	}
	return data, nil
}
