package ownership

import (
	"encoding/json"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

// Owner identifies a VidraResource. The UID tells a VidraResource apart
// from a later one recreated under the same name.
type Owner struct {
	Name string
	UID  types.UID
}

// Claim is what one owner declares about a shared object.
type Claim struct {
	// UID of the owner that made the claim; empty in records written
	// before claims were bound to owners.
	UID types.UID `json:"uid,omitempty"`
	// Hash is the content hash the owner declares.
	Hash string `json:"hash"`
}

// Record is the shared-ownership record of an object: each owner's claim,
// by owner name.
type Record map[string]Claim

// ReadRecord returns an object's ownership record. Objects written before
// the record existed list only names in AnnotationOwnedBy; each of those
// owners is read as declaring the content the object carries, which is
// what the earlier rule guaranteed. Names listed in AnnotationOwnedBy but
// missing from the record (an edit by hand) are read the same way.
func ReadRecord(u *unstructured.Unstructured) Record {
	annotations := u.GetAnnotations()
	rec := Record{}
	if raw := annotations[v1alpha1.AnnotationOwners]; raw != "" {
		var stored Record
		if err := json.Unmarshal([]byte(raw), &stored); err == nil {
			for name, c := range stored {
				if name = strings.TrimSpace(name); name != "" {
					rec[name] = c
				}
			}
		}
	}
	for _, name := range Normalize(strings.Split(annotations[v1alpha1.AnnotationOwnedBy], ",")) {
		if _, ok := rec[name]; !ok {
			rec[name] = Claim{Hash: annotations[v1alpha1.AnnotationContentHash]}
		}
	}
	return rec
}

// Names returns the owners of a record, sorted.
func (r Record) Names() []string {
	out := make([]string, 0, len(r))
	for name := range r {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Equal reports whether two records hold the same claims.
func (r Record) Equal(o Record) bool {
	if len(r) != len(o) {
		return false
	}
	for name, c := range r {
		if oc, ok := o[name]; !ok || oc != c {
			return false
		}
	}
	return true
}

// Without returns a copy of the record without the named owner.
func (r Record) Without(name string) Record {
	out := make(Record, len(r))
	for n, c := range r {
		if n != name {
			out[n] = c
		}
	}
	return out
}

// encode is the annotation value: JSON with sorted keys, so the same
// record always reads the same and an unchanged record is no change.
func (r Record) encode() string {
	data, err := json.Marshal(r)
	if err != nil {
		// A map of strings always marshals.
		panic(err)
	}
	return string(data)
}

// Annotations returns the ownership annotations of a record, for a patch
// that changes only the record.
func (r Record) Annotations() map[string]string {
	return map[string]string{
		v1alpha1.AnnotationOwnedBy: strings.Join(r.Names(), ","),
		v1alpha1.AnnotationOwners:  r.encode(),
	}
}

// MarkRecord adds Vidra's markers to an object about to be applied: the
// ownership record and the hash of the content it is applied with.
func MarkRecord(u *unstructured.Unstructured, rec Record, contentHash string) {
	labels := u.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[v1alpha1.LabelManagedBy] = v1alpha1.ManagedByVidra
	u.SetLabels(labels)
	annotations := u.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[v1alpha1.AnnotationManagedBy] = v1alpha1.ManagedByVidra
	for k, v := range rec.Annotations() {
		annotations[k] = v
	}
	annotations[v1alpha1.AnnotationContentHash] = contentHash
	u.SetAnnotations(annotations)
}

// Verdict is what an owner may do with an object it declares.
type Verdict int

const (
	// Write: apply the declared content with the new record.
	Write Verdict = iota
	// Conflict: other live owners declare other content. The content must
	// not change: only the record may be written (so they see this
	// owner's claim), and the content the object holds re-applied by an
	// owner declaring it.
	Conflict
	// NotOwned: the object is not Vidra's and is not adopted.
	NotOwned
)

// Decision is the outcome of Decide.
type Decision struct {
	Verdict Verdict
	// Record is the record to write: the live owners still alive, with
	// this owner's claim.
	Record Record
	// Disagreeing lists, sorted, the live owners declaring other content.
	Disagreeing []string
}

// Alive reports whether an owner still exists. A claim without a UID is
// alive when a VidraResource of that name exists; with one, only when
// that very VidraResource does.
type Alive func(name string, uid types.UID) bool

// Decide applies the sharing rules to one object. live is the object as
// read, nil when it does not exist. Owners that are gone are dropped from
// the record; this owner's claim (whatever an earlier VidraResource of
// the same name claimed) is replaced by the hash it declares now. The
// content is written only when every other live owner declares the same
// hash: owners who agree converge, owners who disagree leave the content
// as it is until they agree or let go.
func Decide(live *unstructured.Unstructured, me Owner, hash string, adopt bool, alive Alive) Decision {
	if live == nil {
		return Decision{Verdict: Write, Record: Record{me.Name: {UID: me.UID, Hash: hash}}}
	}
	if !Managed(live) && !adopt {
		return Decision{Verdict: NotOwned}
	}
	next := Record{}
	var disagreeing []string
	for name, c := range ReadRecord(live) {
		if name == me.Name || !alive(name, c.UID) {
			continue
		}
		next[name] = c
		if c.Hash != hash {
			disagreeing = append(disagreeing, name)
		}
	}
	next[me.Name] = Claim{UID: me.UID, Hash: hash}
	sort.Strings(disagreeing)
	if len(disagreeing) > 0 {
		return Decision{Verdict: Conflict, Record: next, Disagreeing: disagreeing}
	}
	return Decision{Verdict: Write, Record: next}
}
