package manifeststore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

// configMaps builds a manifest of n ConfigMaps, each with about 1 KB of
// random (poorly compressible) data, like the large artifacts.
func configMaps(n int, seed int64) []byte {
	r := rand.New(rand.NewSource(seed))
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b bytes.Buffer
	data := make([]byte, 1000)
	for i := 0; i < n; i++ {
		for j := range data {
			data[j] = letters[r.Intn(len(letters))]
		}
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%05d\n  namespace: default\ndata:\n  value: %s\n", i, data)
	}
	return b.Bytes()
}

// mapGetter serves ConfigMaps from a map, NotFound otherwise.
type mapGetter map[string]*corev1.ConfigMap

func (m mapGetter) Get(_ context.Context, namespace, name string) (*corev1.ConfigMap, error) {
	if cm, ok := m[namespace+"/"+name]; ok {
		return cm, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
}

func (m mapGetter) add(cms []*corev1.ConfigMap) {
	for _, cm := range cms {
		m[cm.Namespace+"/"+cm.Name] = cm
	}
}

func TestPlanChoosesStorageBySize(t *testing.T) {
	small := configMaps(10, 1)
	compressible := bytes.Repeat([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: same\n---\n"), 10000) // ~550 KB, compresses well
	large := configMaps(2000, 2)                                                                                   // ~2.2 MB, compresses to ~1.6 MB
	tests := []struct {
		name       string
		content    []byte
		wantInline bool
		wantGzip   bool
		wantParts  int
	}{
		{name: "small stays readable", content: small, wantInline: true},
		{name: "compressible goes to manifestGzip", content: compressible, wantGzip: true},
		{name: "2 MB of random data is split", content: large, wantParts: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Plan(tc.content, 0)
			assert.NilError(t, err)
			assert.Equal(t, l.Manifest != "", tc.wantInline)
			assert.Equal(t, len(l.Gzip) > 0, tc.wantGzip)
			assert.Equal(t, len(l.Parts), tc.wantParts)
			assert.Equal(t, l.Size, int64(len(tc.content)))
			for _, p := range l.Parts {
				assert.Assert(t, len(p) <= ChunkBytes)
			}

			var spec v1alpha1.VidraResourceSpec
			l.SetOn(&spec, "vidra-system", "web-0123")
			get := mapGetter{}
			get.add(l.ChunkObjects("vidra-system", "web-0123", metav1.OwnerReference{Kind: "InfrahubSync", Name: "web", UID: "u"}))
			got, err := Read(context.Background(), &spec, get, 0)
			assert.NilError(t, err)
			assert.Assert(t, bytes.Equal(got, tc.content), "the manifest reads back as written")
			if tc.wantParts > 0 {
				assert.Equal(t, Checksum(&spec), l.SHA256)
				assert.Equal(t, len(spec.ManifestChunks.Names), tc.wantParts)
			}
		})
	}
}

func TestPlanRefusesAboveLimit(t *testing.T) {
	_, err := Plan(make([]byte, 2000), 1000)
	var tl *TooLargeError
	assert.Assert(t, errors.As(err, &tl))
	assert.Equal(t, err.Error(), "the manifest is 2.0 KiB (2000 bytes), over the limit of 1000 B (1000 bytes)")

	_, err = Plan(make([]byte, 11<<20), 10<<20)
	assert.Assert(t, is.Contains(err.Error(), "11.0 MiB (11534336 bytes), over the limit of 10.0 MiB"))
}

// A missing, stale or edited chunk never yields a partial manifest.
func TestReadRefusesIncompleteChunks(t *testing.T) {
	content := configMaps(2000, 3)
	l, err := Plan(content, 0)
	assert.NilError(t, err)
	assert.Assert(t, len(l.Parts) > 1)
	var spec v1alpha1.VidraResourceSpec
	l.SetOn(&spec, "ns", "vr")
	objs := l.ChunkObjects("ns", "vr", metav1.OwnerReference{})

	for name, damage := range map[string]func(mapGetter){
		"missing last chunk": func(m mapGetter) { delete(m, "ns/"+objs[len(objs)-1].Name) },
		"edited chunk": func(m mapGetter) {
			cm := objs[0].DeepCopy()
			cm.BinaryData[PartKey] = append([]byte(nil), cm.BinaryData[PartKey]...)
			cm.BinaryData[PartKey][len(cm.BinaryData[PartKey])/2] ^= 0xff
			m["ns/"+cm.Name] = cm
		},
		"chunks of another manifest": func(m mapGetter) {
			other, _ := Plan(configMaps(2000, 4), 0)
			for i, cm := range other.ChunkObjects("ns", "vr", metav1.OwnerReference{}) {
				if i < len(objs) {
					cm.Name = objs[i].Name
					m["ns/"+cm.Name] = cm
				}
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			get := mapGetter{}
			get.add(objs)
			damage(get)
			_, err := Read(context.Background(), &spec, get, 0)
			var ua *UnavailableError
			assert.Assert(t, errors.As(err, &ua), "got %v", err)
		})
	}
}

func TestReadBoundsDecompression(t *testing.T) {
	l, err := Plan(bytes.Repeat([]byte("a: b\n"), 200000), 0) // 1 MB, compresses to a few KB
	assert.NilError(t, err)
	var spec v1alpha1.VidraResourceSpec
	l.SetOn(&spec, "ns", "vr")
	assert.Assert(t, len(spec.ManifestGzip) > 0)
	_, err = Read(context.Background(), &spec, nil, 100000)
	var tl *TooLargeError
	assert.Assert(t, errors.As(err, &tl), "got %v", err)
}

func TestNamesFitKubernetesLimits(t *testing.T) {
	long := strings.Repeat("a", 250)
	sha := strings.Repeat("f", 64)
	assert.Assert(t, len(ChunkName(long, sha, 99)) <= 253)
	assert.Assert(t, len(OfLabel(long)) <= 63)
	assert.Equal(t, OfLabel("short"), "short")
	// Inline manifests keep the checksum the VidraResource status already records.
	sum := sha256.Sum256([]byte("kind: List"))
	assert.Equal(t, Checksum(&v1alpha1.VidraResourceSpec{Manifest: "kind: List"}), hex.EncodeToString(sum[:]))
}
