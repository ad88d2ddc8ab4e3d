package infrahubtest

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// FuzzGraphQL feeds arbitrary documents and variables to the fake's GraphQL
// parser and executor: they must answer (data or errors), never panic, and
// always produce JSON.
func FuzzGraphQL(f *testing.F) {
	f.Add(listQuery, []byte(`{"names":"Webserver_Manifest","offset":0,"limit":2}`))
	f.Add(ArtifactIDsQuery, []byte(`{"artifactname":["Webserver_Manifest"]}`))
	f.Add(`{ CoreArtifact(ids: ["x"], partial_match: true, name__value: "Web") { count edges { node { id status { value updated_at } parameters { value } object { properties { is_visible } node { id } } } } } }`, []byte(`{}`))
	f.Add(`query ($a: [ID!]! = ["1"]) { Branch(ids: $a) { name } }`, []byte(`{"a": 5}`))
	f.Add(`query Q { ...F } fragment F on Query { ...F }`, []byte(`null`))
	f.Add(`{ a(b: """block""", c: {d: [1, 2.5, true]}) @include(if: $x) }`, []byte(`{"x": true}`))
	f.Add(`mutation { x }`, []byte(``))
	s := NewUnstartedServer(WithClock(func() time.Time { return time.Date(2026, 8, 20, 10, 0, 0, 0, time.UTC) }))
	for i := range 3 {
		s.SetArtifact("main", ArtifactSpec{TargetLabel: string(rune('a' + i)), Content: []byte{byte(i)},
			Parameters: map[string]any{"i": i}})
	}
	f.Fuzz(func(t *testing.T, query string, rawVars []byte) {
		var vars map[string]any
		dec := json.NewDecoder(bytes.NewReader(rawVars))
		dec.UseNumber()
		_ = dec.Decode(&vars)
		s.mu.Lock()
		res := s.runGraphQL(query, "", vars, s.st.branches["main"], time.Time{})
		s.mu.Unlock()
		if res.data == nil && len(res.errs) == 0 && res.hasData {
			t.Fatal("no data and no errors")
		}
		if _, err := marshalCompact(res.data); err != nil {
			t.Fatalf("data does not encode: %v", err)
		}
		for _, e := range res.errs {
			if e.Message == "" {
				t.Fatal("error without message")
			}
		}
	})
}
