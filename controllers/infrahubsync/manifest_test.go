package infrahubsync

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
	"github.com/vidra-operator/vidra/controllers/manifeststore"
	"github.com/vidra-operator/vidra/infrahub"
)

// contentSource serves one content for every artifact.
type contentSource struct {
	countingSource
	content []byte
}

func (s *contentSource) Source(infrahub.Config) (Source, error) { return s, nil }

func (s *contentSource) FetchContent(context.Context, infrahub.Artifact, infrahub.ListOptions) ([]byte, error) {
	s.mu.Lock()
	s.downloads++
	s.mu.Unlock()
	return s.content, nil
}

// recordingChunks is a ManifestChunkStore that keeps the chunks and logs
// every call in order, next to the VidraResource writes.
type recordingChunks struct {
	mu     sync.Mutex
	log    *[]string
	stored map[string]*corev1.ConfigMap
}

func (r *recordingChunks) Write(_ context.Context, chunks []*corev1.ConfigMap) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, cm := range chunks {
		r.stored[cm.Name] = cm
	}
	*r.log = append(*r.log, fmt.Sprintf("write %d chunks", len(chunks)))
	return nil
}

func (r *recordingChunks) Prune(_ context.Context, _, vrName, keep string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, cm := range r.stored {
		if cm.Labels[manifeststore.LabelOf] == manifeststore.OfLabel(vrName) && (keep == "" || cm.Labels[manifeststore.LabelSHA256] != keep[:40]) {
			delete(r.stored, name)
		}
	}
	*r.log = append(*r.log, "prune keep="+keep)
	return nil
}

func (r *recordingChunks) Get(_ context.Context, _, name string) (*corev1.ConfigMap, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cm, ok := r.stored[name]; ok {
		return cm, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
}

// randomConfigMaps is n ConfigMaps of about 1 KB of poorly compressible data.
func randomConfigMaps(n int, seed int64) []byte {
	r := rand.New(rand.NewSource(seed))
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b bytes.Buffer
	data := make([]byte, 1000)
	for i := 0; i < n; i++ {
		for j := range data {
			data[j] = letters[r.Intn(len(letters))]
		}
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%05d\ndata:\n  value: %s\n", i, data)
	}
	return b.Bytes()
}

func newChunkFixture(t *testing.T, content []byte, limit int64) (*decisionFixture, *contentSource, *recordingChunks, *[]string) {
	source := &contentSource{content: content}
	source.artifacts = []infrahub.Artifact{{ID: "a1", Name: "Webserver_Manifest", Status: infrahub.StatusReady,
		Checksum: infrahub.Checksum(content), StorageID: "s1", TargetLabel: "one"}}
	f := newDecisionFixture(t, &source.countingSource)
	f.c.sources = source
	log := &[]string{}
	chunks := &recordingChunks{log: log, stored: map[string]*corev1.ConfigMap{}}
	f.c.opts.Manifests, f.c.opts.MaxManifestBytes, f.c.opts.Namespace = chunks, limit, "vidra-system"
	f.client.PrependReactor("patch", "vidraresources", func(action k8stesting.Action) (bool, runtime.Object, error) {
		*log = append(*log, "write VidraResource")
		return false, nil, nil
	})
	return f, source, chunks, log
}

// A 2 MB artifact of random data: chunks first, then the VidraResource
// naming them, which reads back to exactly the artifact.
func TestLargeArtifactIsWrittenInChunksFirst(t *testing.T) {
	content := randomConfigMaps(2000, 1)
	f, _, chunks, log := newChunkFixture(t, content, 0)
	f.pass()
	assert.DeepEqual(t, *log, []string{"write 3 chunks", "write VidraResource"})
	vr := f.applied[ResourceName("web", "a1")]
	assert.Assert(t, vr != nil)
	assert.Equal(t, vr.Spec.Manifest, "")
	assert.Equal(t, len(vr.Spec.ManifestGzip), 0)
	assert.Equal(t, vr.Spec.ManifestChunks.Namespace, "vidra-system")
	for _, cm := range chunks.stored {
		assert.Equal(t, cm.OwnerReferences[0].UID, f.obj.UID, "owned by the sync, which exists before the VidraResource")
	}
	got, err := manifeststore.Read(context.Background(), &vr.Spec, chunks, 0)
	assert.NilError(t, err)
	assert.Assert(t, bytes.Equal(got, content))

	// The next pass with the same artifact writes nothing.
	seedWritten(f, vr)
	*log = nil
	f.pass()
	assert.Equal(t, len(*log), 0, "%v", *log)

	// New content: new chunks, the VidraResource, then the old chunks go.
	oldSHA := vr.Spec.ManifestChunks.SHA256
	next := randomConfigMaps(2000, 2)
	f.c.sources.(*contentSource).content = next
	f.c.sources.(*contentSource).artifacts[0].Checksum = infrahub.Checksum(next)
	f.c.sources.(*contentSource).artifacts[0].StorageID = "s2"
	f.c.Trigger("web")
	f.pass()
	vr = f.applied[ResourceName("web", "a1")]
	assert.DeepEqual(t, *log, []string{"write 3 chunks", "write VidraResource", "prune keep=" + vr.Spec.ManifestChunks.SHA256})
	assert.Assert(t, vr.Spec.ManifestChunks.SHA256 != oldSHA)
	assert.Equal(t, len(chunks.stored), 3, "only the new chunks are left")
	got, err = manifeststore.Read(context.Background(), &vr.Spec, chunks, 0)
	assert.NilError(t, err)
	assert.Assert(t, bytes.Equal(got, next))
}

// A VidraResource that reports its chunks unreadable is written again.
func TestUnavailableChunksAreRewritten(t *testing.T) {
	content := randomConfigMaps(2000, 1)
	f, _, chunks, log := newChunkFixture(t, content, 0)
	f.pass()
	vr := f.applied[ResourceName("web", "a1")]
	chunks.stored = map[string]*corev1.ConfigMap{}
	vr.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse,
		Reason: manifeststore.ReasonUnavailable, ObservedGeneration: vr.Generation}}
	seedWritten(f, vr)
	*log = nil
	f.c.Trigger("web")
	f.pass()
	assert.DeepEqual(t, *log, []string{"write 3 chunks", "write VidraResource"})
	_, err := manifeststore.Read(context.Background(), &vr.Spec, chunks, 0)
	assert.NilError(t, err)
}

// A compressible 500 KB artifact goes to spec.manifestGzip, no ConfigMap.
func TestMediumArtifactIsCompressedInline(t *testing.T) {
	content := bytes.Repeat([]byte("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: same\n"), 9000)
	f, _, _, log := newChunkFixture(t, content, 0)
	f.pass()
	assert.DeepEqual(t, *log, []string{"write VidraResource"})
	vr := f.applied[ResourceName("web", "a1")]
	assert.Assert(t, len(vr.Spec.ManifestGzip) > 0 && vr.Spec.Manifest == "" && vr.Spec.ManifestChunks == nil)
	seedWritten(f, vr)
	*log = nil
	f.pass()
	assert.Equal(t, len(*log), 0, "same content, nothing written: %v", *log)
}

// Above the limit: nothing is written, the VidraResource of before stays,
// and the sync says why with the size and the limit.
func TestArtifactAboveLimitTouchesNothing(t *testing.T) {
	content := randomConfigMaps(20, 1)
	f, _, _, log := newChunkFixture(t, content, 10000)
	a := infrahub.Artifact{ID: "a1", Name: "Webserver_Manifest", Status: infrahub.StatusReady, Checksum: goodSum, StorageID: "s0", TargetLabel: "one"}
	before := &v1alpha1.VidraResource{ObjectMeta: metav1.ObjectMeta{Name: ResourceName("web", "a1"), UID: "vr-uid", Generation: 1,
		Labels: resourceLabels(f.obj, a)}, Spec: desiredSpec(f.obj, a, "main")}
	before.Spec.Manifest = string(fixedContent)
	f.seed(before)
	current := f.obj.DeepCopy()
	_, err := settle(t, f.c, func() *v1alpha1.InfrahubSync { return current })
	assert.NilError(t, err, "not retried: only new content in Infrahub can change it")
	assert.Equal(t, len(*log), 0, "%v", *log)
	assert.Equal(t, len(f.applied), 0)
	cond := f.ready()
	assert.Equal(t, cond.Reason, ReasonArtifactTooLarge)
	assert.Assert(t, is.Contains(cond.Message, fmt.Sprintf("(%d bytes), over the limit of 9.8 KiB (10000 bytes)", len(content))))
	assert.Assert(t, is.Contains(strings.Join(f.events(), "\n"), "Warning ArtifactTooLarge"))
}

func seedWritten(f *decisionFixture, vr *v1alpha1.VidraResource) {
	f.t.Helper()
	vr = vr.DeepCopy()
	vr.UID = "vr-uid"
	f.seed(vr)
	f.applied = map[string]*v1alpha1.VidraResource{}
}
