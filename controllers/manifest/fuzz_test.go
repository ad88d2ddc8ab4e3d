package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks Parse never panics and that what it returns is
// consistent: errors are all *ParseError, documents are valid and survive a
// round trip through JSON unchanged. Seeds: testdata/fuzz/FuzzParse and the
// artifacts in testdata. Run with
//
//	go test ./controllers/manifest -run '^$' -fuzz FuzzParse -fuzztime 1m
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(cmA + "---\n" + cmB))
	f.Add([]byte(`[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}]{"apiVersion":"v1","kind":"List","items":[]}`))

	f.Fuzz(func(t *testing.T, manifest []byte) {
		docs, err := Parse(manifest)
		if err != nil {
			checkParseError(t, docs, err)
			return
		}
		prev := 0
		var stream bytes.Buffer
		for _, d := range docs {
			if d.Index < prev || d.Index < 1 || d.Item < 0 || d.Line < 1 {
				t.Fatalf("bad position %+v after index %d", d, prev)
			}
			prev = d.Index
			k := d.Key()
			if d.Object.GetAPIVersion() == "" || k.Kind == "" || k.Name == "" {
				t.Fatalf("%s: accepted without apiVersion, kind or name", d.Position())
			}
			if !Equivalent(d.Object, d.Object) || len(Diff(d.Object, d.Object)) != 0 {
				t.Fatalf("%s: not equivalent to itself: %v", d.Position(), Diff(d.Object, d.Object))
			}
			b, err := json.Marshal(d.Object.Object)
			if err != nil {
				t.Fatalf("%s: cannot marshal: %v", d.Position(), err)
			}
			stream.Write(b)
			stream.WriteByte('\n')
		}

		again, err := Parse(stream.Bytes())
		if err != nil {
			t.Fatalf("re-parsing the documents as JSON: %v\n%s", err, stream.Bytes())
		}
		if len(again) != len(docs) {
			t.Fatalf("round trip gave %d documents, want %d", len(again), len(docs))
		}
		for i := range docs {
			a, b := docs[i].Object, again[i].Object
			if !Equivalent(a, b) || !Equivalent(b, a) || ContentHash(a) != ContentHash(b) {
				t.Fatalf("%s changed in a round trip: %v / %v", docs[i].Position(), Diff(a, b), Diff(b, a))
			}
		}

		// Ordering keeps every document.
		Sort(again)
		SortForDeletion(again)
		if len(again) != len(docs) {
			t.Fatal("sorting lost documents")
		}
		_ = Duplicates(docs)
	})
}

func checkParseError(t *testing.T, docs []Document, err error) {
	t.Helper()
	if docs != nil {
		t.Fatalf("documents returned with an error: %v", err)
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	if len(errs) > DefaultMaxErrors+1 {
		t.Fatalf("%d errors, more than the cap", len(errs))
	}
	for _, e := range errs {
		var pe *ParseError
		if !errors.As(e, &pe) {
			t.Fatalf("not a *ParseError: %T %v", e, e)
		}
		if len(pe.Msg) > 400 {
			t.Fatalf("message too long: %q", pe.Msg)
		}
	}
}

// FuzzEquivalent checks that Equivalent and Diff agree and never panic on
// whatever two manifests hold.
func FuzzEquivalent(f *testing.F) {
	f.Add([]byte(cmA+"data: {a: b}\n"), []byte(cmA+"data: {a: c}\n"))
	f.Add([]byte("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {a: b}\n"), []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {a: Yg==}\n"))
	f.Add([]byte("apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q}\nspec: {hard: {cpu: 0.5}}\n"), []byte("apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q}\nspec: {hard: {cpu: 500m}}\n"))
	f.Fuzz(func(t *testing.T, desired, live []byte) {
		d, err := Parse(desired)
		if err != nil || len(d) == 0 {
			return
		}
		l, err := Parse(live)
		if err != nil || len(l) == 0 {
			return
		}
		eq := Equivalent(d[0].Object, l[0].Object)
		diff := Diff(d[0].Object, l[0].Object)
		if eq != (len(diff) == 0) {
			t.Fatalf("Equivalent %v but Diff %v", eq, diff)
		}
		if len(diff) > MaxDiffPaths+1 {
			t.Fatalf("Diff not capped: %d paths", len(diff))
		}
		if !Equivalent(l[0].Object, l[0].Object) {
			t.Fatalf("not equivalent to itself: %v", Diff(l[0].Object, l[0].Object))
		}
	})
}
