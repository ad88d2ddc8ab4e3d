package manifest

import "testing"

// BenchmarkParse parses the four-document webserver artifact (Namespace,
// Deployment, Service, Ingress).
func BenchmarkParse(b *testing.B) {
	manifest := readTestdata(b, "webserver-shop.yaml")
	b.SetBytes(int64(len(manifest)))
	b.ReportAllocs()
	for b.Loop() {
		docs, err := Parse(manifest)
		if err != nil || len(docs) != 4 {
			b.Fatalf("got %d documents, %v", len(docs), err)
		}
	}
}

// BenchmarkEquivalent compares a Deployment with its server-defaulted
// self, the check the controller makes before every apply.
func BenchmarkEquivalent(b *testing.B) {
	desired := parseOne(b, string(readTestdata(b, "deployment-desired.yaml")))
	live := parseOne(b, string(readTestdata(b, "deployment-live.yaml")))
	b.ReportAllocs()
	for b.Loop() {
		if !Equivalent(desired, live) {
			b.Fatal("not equivalent")
		}
	}
}

func BenchmarkContentHash(b *testing.B) {
	desired := parseOne(b, string(readTestdata(b, "deployment-desired.yaml")))
	b.ReportAllocs()
	for b.Loop() {
		ContentHash(desired)
	}
}
