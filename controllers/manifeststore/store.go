// Package manifeststore decides how a manifest is stored in a VidraResource
// and reads it back. A small manifest stays readable in spec.manifest; a
// larger one is gzip-compressed into spec.manifestGzip; one whose compressed
// form is still too large for a single object (etcd refuses requests above
// about 1.5 MiB) is split over ConfigMaps in the operator's namespace, which
// are written before the VidraResource that names them. Every reader of a
// VidraResource's manifest goes through Read, so none sees a partial or
// mismatched set of chunks.
package manifeststore

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

const (
	// InlineMax is the largest manifest kept readable in spec.manifest, so
	// `kubectl get -o yaml` shows ordinary manifests as they are.
	InlineMax = 256 << 10
	// GzipInlineMax is the largest compressed manifest kept in
	// spec.manifestGzip; the VidraResource's status (the inventory) needs
	// room in the same object.
	GzipInlineMax = 512 << 10
	// ChunkBytes is the compressed bytes per chunk ConfigMap, below the
	// 1 MiB a ConfigMap may hold.
	ChunkBytes = 768 << 10
	// DefaultMaxBytes is the largest manifest accepted unless the operator
	// is told otherwise (--max-manifest-bytes).
	DefaultMaxBytes = 16 << 20

	// PartKey is the binaryData key of a chunk ConfigMap.
	PartKey = "part"
	// LabelOf names, as a label value, the VidraResource a chunk belongs to.
	LabelOf = "infrahub.operators.com/manifest-of"
	// LabelSHA256 is the first 40 hex digits of the manifest's SHA-256.
	LabelSHA256 = "infrahub.operators.com/manifest-sha256"
	// ReasonUnavailable is the VidraResource condition reason when its
	// manifest cannot be read (a chunk missing or not matching); the sync
	// that wrote it writes it again.
	ReasonUnavailable = "ManifestUnavailable"
)

// TooLargeError says a manifest is above the configured limit.
type TooLargeError struct {
	Size, Limit int64
	// Uncompressed is set when decompression stopped at the limit: the
	// real size is unknown.
	Uncompressed bool
}

func (e *TooLargeError) Error() string {
	if e.Uncompressed {
		return fmt.Sprintf("the manifest decompresses to more than the limit of %s (%d bytes)", HumanBytes(e.Limit), e.Limit)
	}
	return fmt.Sprintf("the manifest is %s (%d bytes), over the limit of %s (%d bytes)", HumanBytes(e.Size), e.Size, HumanBytes(e.Limit), e.Limit)
}

// UnavailableError says a stored manifest cannot be read back as written.
type UnavailableError struct{ Msg string }

func (e *UnavailableError) Error() string { return e.Msg }

// HumanBytes writes a size in KiB or MiB with one decimal.
func HumanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " B"
}

// Layout is how one manifest is stored: exactly one of Manifest, Gzip and
// Parts is set.
type Layout struct {
	Manifest string
	Gzip     []byte
	// Parts are the compressed bytes held by each chunk ConfigMap.
	Parts [][]byte
	// SHA256 and Size describe the uncompressed manifest.
	SHA256 string
	Size   int64
}

// Plan decides where content goes. limit <= 0 means DefaultMaxBytes.
func Plan(content []byte, limit int64) (Layout, error) {
	if limit <= 0 {
		limit = DefaultMaxBytes
	}
	size := int64(len(content))
	if size > limit {
		return Layout{}, &TooLargeError{Size: size, Limit: limit}
	}
	sum := sha256.Sum256(content)
	l := Layout{SHA256: hex.EncodeToString(sum[:]), Size: size}
	if size <= InlineMax {
		l.Manifest = string(content)
		return l, nil
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if _, err := zw.Write(content); err != nil {
		return Layout{}, fmt.Errorf("compress manifest: %w", err)
	}
	if err := zw.Close(); err != nil {
		return Layout{}, fmt.Errorf("compress manifest: %w", err)
	}
	compressed := buf.Bytes()
	if len(compressed) <= GzipInlineMax {
		l.Gzip = compressed
		return l, nil
	}
	for len(compressed) > 0 {
		n := min(ChunkBytes, len(compressed))
		l.Parts = append(l.Parts, compressed[:n:n])
		compressed = compressed[n:]
	}
	return l, nil
}

// SetOn stores the layout in spec; chunks are named for the VidraResource
// vrName in namespace.
func (l Layout) SetOn(spec *v1alpha1.VidraResourceSpec, namespace, vrName string) {
	spec.Manifest, spec.ManifestGzip, spec.ManifestChunks = l.Manifest, l.Gzip, nil
	if len(l.Parts) == 0 {
		return
	}
	names := make([]string, len(l.Parts))
	for i := range l.Parts {
		names[i] = ChunkName(vrName, l.SHA256, i)
	}
	spec.ManifestChunks = &v1alpha1.ManifestChunks{Namespace: namespace, Names: names, SHA256: l.SHA256, Size: l.Size}
}

// ChunkName is the ConfigMap holding part i of a manifest. The name carries
// the content's hash: a new manifest never overwrites the chunks the
// current VidraResource spec still reads.
func ChunkName(vrName, sha string, i int) string {
	prefix := vrName
	if len(prefix) > 200 {
		prefix = strings.TrimRight(prefix[:200], "-.")
	}
	return fmt.Sprintf("%s-m%s-%d", prefix, sha[:12], i)
}

// OfLabel is the LabelOf value for a VidraResource name.
func OfLabel(vrName string) string {
	if len(vrName) <= 63 {
		return vrName
	}
	sum := sha256.Sum256([]byte(vrName))
	return strings.TrimRight(vrName[:40], "-.") + "-" + hex.EncodeToString(sum[:])[:16]
}

// ChunkObjects are the ConfigMaps of a chunked layout, owned by owner so
// they go away with it.
func (l Layout) ChunkObjects(namespace, vrName string, owner metav1.OwnerReference) []*corev1.ConfigMap {
	out := make([]*corev1.ConfigMap, 0, len(l.Parts))
	for i, part := range l.Parts {
		out = append(out, &corev1.ConfigMap{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{
				Name:      ChunkName(vrName, l.SHA256, i),
				Namespace: namespace,
				Labels: map[string]string{
					LabelOf:                       OfLabel(vrName),
					LabelSHA256:                   l.SHA256[:40],
					"app.kubernetes.io/part-of":   "vidra",
					"app.kubernetes.io/component": "manifest-chunk",
				},
				Annotations:     map[string]string{"infrahub.operators.com/vidraresource": vrName},
				OwnerReferences: []metav1.OwnerReference{owner},
			},
			BinaryData: map[string][]byte{PartKey: part},
		})
	}
	return out
}

// Getter reads one ConfigMap.
type Getter interface {
	Get(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
}

// ClientGetter reads ConfigMaps from the API server, uncached: chunks are
// read only when a large manifest is applied, and caching them would keep
// every large manifest in memory.
type ClientGetter struct{ Client kubernetes.Interface }

// Get implements Getter.
func (g ClientGetter) Get(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error) {
	return g.Client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
}

// Read returns the manifest a spec holds, whichever way it is stored. A
// chunked manifest is checked against its recorded size and SHA-256, so a
// missing, stale or edited chunk is an *UnavailableError, never a partial
// manifest. maxBytes <= 0 means DefaultMaxBytes.
func Read(ctx context.Context, spec *v1alpha1.VidraResourceSpec, get Getter, maxBytes int64) ([]byte, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	switch {
	case spec.ManifestChunks != nil:
		return readChunks(ctx, spec.ManifestChunks, get, maxBytes)
	case len(spec.ManifestGzip) > 0:
		data, err := gunzip(spec.ManifestGzip, maxBytes)
		var tl *TooLargeError
		if errors.As(err, &tl) {
			return nil, err
		}
		if err != nil {
			return nil, &UnavailableError{Msg: "spec.manifestGzip: " + err.Error()}
		}
		return data, nil
	}
	if int64(len(spec.Manifest)) > maxBytes {
		return nil, &TooLargeError{Size: int64(len(spec.Manifest)), Limit: maxBytes}
	}
	return []byte(spec.Manifest), nil
}

func readChunks(ctx context.Context, ref *v1alpha1.ManifestChunks, get Getter, maxBytes int64) ([]byte, error) {
	if ref.Size > maxBytes {
		return nil, &TooLargeError{Size: ref.Size, Limit: maxBytes}
	}
	if get == nil {
		return nil, &UnavailableError{Msg: "the manifest is stored in ConfigMaps and no client can read them"}
	}
	var compressed bytes.Buffer
	for i, name := range ref.Names {
		cm, err := get.Get(ctx, ref.Namespace, name)
		if err != nil {
			return nil, &UnavailableError{Msg: fmt.Sprintf("manifest chunk %d of %d, ConfigMap %s/%s: %v", i+1, len(ref.Names), ref.Namespace, name, err)}
		}
		compressed.Write(cm.BinaryData[PartKey])
	}
	data, err := gunzip(compressed.Bytes(), maxBytes)
	var tl *TooLargeError
	if errors.As(err, &tl) {
		return nil, err
	}
	if err != nil {
		return nil, &UnavailableError{Msg: fmt.Sprintf("manifest chunks %s/%s...: %v", ref.Namespace, firstName(ref.Names), err)}
	}
	sum := sha256.Sum256(data)
	if int64(len(data)) != ref.Size || !strings.EqualFold(hex.EncodeToString(sum[:]), ref.SHA256) {
		return nil, &UnavailableError{Msg: fmt.Sprintf("manifest chunks %s/%s...: content does not match spec.manifestChunks (%d bytes, sha256 %s)",
			ref.Namespace, firstName(ref.Names), ref.Size, ref.SHA256)}
	}
	return data, nil
}

func firstName(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	return names[0]
}

func gunzip(data []byte, maxBytes int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	if int64(len(out)) > maxBytes {
		return nil, &TooLargeError{Limit: maxBytes, Uncompressed: true}
	}
	return out, nil
}

// Checksum identifies the stored manifest without reading any chunk: the
// SHA-256 of spec.manifest (as before), of spec.manifestGzip's bytes, or the
// one spec.manifestChunks records.
func Checksum(spec *v1alpha1.VidraResourceSpec) string {
	switch {
	case spec.ManifestChunks != nil:
		return spec.ManifestChunks.SHA256
	case len(spec.ManifestGzip) > 0:
		sum := sha256.Sum256(spec.ManifestGzip)
		return hex.EncodeToString(sum[:])
	}
	sum := sha256.Sum256([]byte(spec.Manifest))
	return hex.EncodeToString(sum[:])
}

// Stored reports whether spec holds any manifest.
func Stored(spec *v1alpha1.VidraResourceSpec) bool {
	return spec.Manifest != "" || len(spec.ManifestGzip) > 0 || spec.ManifestChunks != nil
}

// SameStorage copies the manifest fields of from onto to.
func SameStorage(to *v1alpha1.VidraResourceSpec, from *v1alpha1.VidraResourceSpec) {
	to.Manifest, to.ManifestGzip, to.ManifestChunks = from.Manifest, from.ManifestGzip, from.ManifestChunks.DeepCopy()
}

// ClientStore writes and removes chunk ConfigMaps through the API server.
type ClientStore struct{ Client kubernetes.Interface }

// Get implements Getter.
func (s ClientStore) Get(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error) {
	return ClientGetter(s).Get(ctx, namespace, name)
}

// Write applies the chunk ConfigMaps (server-side apply, so a chunk edited
// by hand is repaired), a few at once: each is most of a megabyte.
func (s ClientStore) Write(ctx context.Context, chunks []*corev1.ConfigMap) error {
	force := true
	errs := make([]error, len(chunks))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, cm := range chunks {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			body, err := json.Marshal(cm)
			if err == nil {
				_, err = s.Client.CoreV1().ConfigMaps(cm.Namespace).Patch(ctx, cm.Name, types.ApplyPatchType, body,
					metav1.PatchOptions{FieldManager: v1alpha1.FieldManager, Force: &force})
			}
			if err != nil {
				errs[i] = fmt.Errorf("write manifest chunk ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Prune removes the chunks of VidraResource vrName in namespace except
// those of the manifest whose SHA-256 is keep ("" removes them all).
func (s ClientStore) Prune(ctx context.Context, namespace, vrName, keep string) error {
	selector := LabelOf + "=" + OfLabel(vrName)
	if keep != "" {
		selector += "," + LabelSHA256 + "!=" + keep[:40]
	}
	err := s.Client.CoreV1().ConfigMaps(namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return fmt.Errorf("remove old manifest chunks of %s: %w", vrName, err)
	}
	return nil
}
