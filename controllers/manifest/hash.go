package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/vidra-operator/vidra/apis/infrahub/v1alpha1"
)

// serverMetadata are the metadata fields the API server owns. A manifest
// copied from "kubectl get -o yaml" carries them; they say nothing about
// what is declared.
var serverMetadata = map[string]bool{
	"resourceVersion":            true,
	"uid":                        true,
	"generation":                 true,
	"creationTimestamp":          true,
	"managedFields":              true,
	"selfLink":                   true,
	"deletionTimestamp":          true,
	"deletionGracePeriodSeconds": true,
}

// markerLabels and markerAnnotations are what Vidra itself puts on managed
// objects; they must not change the hash of what the manifest declares.
var (
	markerLabels      = map[string]bool{v1alpha1.LabelManagedBy: true}
	markerAnnotations = map[string]bool{
		v1alpha1.AnnotationManagedBy:   true,
		v1alpha1.AnnotationOwnedBy:     true,
		v1alpha1.AnnotationContentHash: true,
		v1alpha1.AnnotationOwners:      true,
	}
)

// ContentHash is the hex SHA-256 of the object's canonical JSON: keys
// sorted, no insignificant space, integral numbers written as integers (so
// 2 and 2.0 agree). Vidra's own markers, the server-owned metadata fields
// and status are left out, as are labels and annotations left empty by
// that. Two manifests that differ only in key order or formatting hash the
// same.
func ContentHash(u *unstructured.Unstructured) string {
	if u == nil {
		return ""
	}
	sum := sha256.Sum256(appendCanonical(nil, hashInput(u)))
	return hex.EncodeToString(sum[:])
}

// hashInput is the part of u that ContentHash covers. It copies only the
// top level and metadata; u is not changed.
func hashInput(u *unstructured.Unstructured) map[string]any {
	top := make(map[string]any, len(u.Object))
	for k, v := range u.Object {
		if k != "status" {
			top[k] = v
		}
	}
	if md, ok := u.Object["metadata"].(map[string]any); ok {
		clean := make(map[string]any, len(md))
		for k, v := range md {
			switch {
			case serverMetadata[k]:
			case k == "labels":
				setFiltered(clean, k, v, markerLabels)
			case k == "annotations":
				setFiltered(clean, k, v, markerAnnotations)
			default:
				clean[k] = v
			}
		}
		top["metadata"] = clean
	}
	return top
}

// setFiltered copies a label or annotation map without the marker keys,
// leaving it out when nothing is left.
func setFiltered(dst map[string]any, key string, v any, drop map[string]bool) {
	m, ok := v.(map[string]any)
	if !ok {
		if v != nil {
			dst[key] = v
		}
		return
	}
	out := make(map[string]any, len(m))
	for k, e := range m {
		if !drop[k] {
			out[k] = e
		}
	}
	if len(out) > 0 {
		dst[key] = out
	}
}

// appendCanonical writes v as canonical JSON. It cannot fail: values JSON
// cannot hold (NaN, types outside the unstructured set) are still written
// deterministically.
func appendCanonical(b []byte, v any) []byte {
	switch t := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, t)
	case string:
		return appendJSONString(b, t)
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendCanonical(b, t[k])
		}
		return append(b, '}')
	case []any:
		b = append(b, '[')
		for i, e := range t {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCanonical(b, e)
		}
		return append(b, ']')
	}
	if n, ok := toNumber(v); ok {
		return appendNumber(b, n)
	}
	// Not an unstructured value; a typed value put in by hand.
	j, err := json.Marshal(v)
	if err != nil {
		return append(b, strconv.Quote(err.Error())...)
	}
	return append(b, j...)
}

func appendNumber(b []byte, n number) []byte {
	if n.isInt {
		return strconv.AppendInt(b, n.i, 10)
	}
	if i, ok := floatToInt(n.f); ok {
		return strconv.AppendInt(b, i, 10)
	}
	// Written as ECMAScript (and encoding/json) write numbers, so the
	// canonical form is also what JSON Canonicalization (RFC 8785) gives.
	format, abs := byte('f'), math.Abs(n.f)
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, n.f, format, -1, 64)
	if format == 'e' {
		// 1e-07 becomes 1e-7.
		if l := len(b); l >= 4 && b[l-4] == 'e' && b[l-3] == '-' && b[l-2] == '0' {
			b[l-2] = b[l-1]
			b = b[:l-1]
		}
	}
	return b
}

// appendJSONString quotes s the JSON way, escaping only what JSON requires.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// number is a JSON number from any of the Go types it can arrive as.
type number struct {
	i     int64
	f     float64
	isInt bool
}

func toNumber(v any) (number, bool) {
	switch t := v.(type) {
	case int64:
		return number{i: t, isInt: true}, true
	case float64:
		return number{f: t}, true
	case int:
		return number{i: int64(t), isInt: true}, true
	case int32:
		return number{i: int64(t), isInt: true}, true
	case int16:
		return number{i: int64(t), isInt: true}, true
	case int8:
		return number{i: int64(t), isInt: true}, true
	case uint:
		return fromUint(uint64(t)), true
	case uint64:
		return fromUint(t), true
	case uint32:
		return number{i: int64(t), isInt: true}, true
	case uint16:
		return number{i: int64(t), isInt: true}, true
	case uint8:
		return number{i: int64(t), isInt: true}, true
	case float32:
		return number{f: float64(t)}, true
	case json.Number:
		if i, err := strconv.ParseInt(string(t), 10, 64); err == nil {
			return number{i: i, isInt: true}, true
		}
		if f, err := strconv.ParseFloat(string(t), 64); err == nil {
			return number{f: f}, true
		}
	}
	return number{}, false
}

func fromUint(u uint64) number {
	if u <= math.MaxInt64 {
		return number{i: int64(u), isInt: true}
	}
	return number{f: float64(u)}
}

// floatToInt converts f when it is a whole number an int64 holds exactly.
func floatToInt(f float64) (int64, bool) {
	if f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
		return 0, false
	}
	return int64(f), true
}

// equalNumbers compares numerically: 2, 2.0 and json.Number("2") are equal.
func equalNumbers(a, b number) bool {
	switch {
	case a.isInt && b.isInt:
		return a.i == b.i
	case a.isInt:
		i, ok := floatToInt(b.f)
		return ok && i == a.i
	case b.isInt:
		i, ok := floatToInt(a.f)
		return ok && i == b.i
	}
	return a.f == b.f
}
