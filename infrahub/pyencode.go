package infrahub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode"
	"unicode/utf16"
)

// Infrahub signs a webhook payload, not the bytes it sends: it renders the
// payload dict itself and its HTTP client encodes the body separately. The
// renderings differ by release, and from the body as soon as a value holds
// a non-ASCII character. These types re-render a received JSON body the way
// each release rendered the dict it was decoded from. Key order is kept:
// Python dicts keep insertion order and the body was written in that order.

// WebhookEncoding names one way an Infrahub release renders the signed
// payload.
type WebhookEncoding string

// The encodings Verify accepts.
const (
	// EncodingBody: the bytes received. A compact json.dumps of an
	// ASCII-only payload equals the body of httpx >= 0.28.
	EncodingBody WebhookEncoding = "body"
	// EncodingCompactASCII: json.dumps(payload, separators=(",", ":")),
	// ensure_ascii on (\u00e9 escapes). Infrahub 1.11.
	EncodingCompactASCII WebhookEncoding = "json-compact-ascii"
	// EncodingSpacedASCII: json.dumps(payload) with its default ", " and
	// ": " separators. Releases after the str(dict) fix (May 2025) and
	// before compact separators were pinned.
	EncodingSpacedASCII WebhookEncoding = "json-spaced-ascii"
	// EncodingPythonRepr: str(payload), a Python dict literal. Releases
	// before the May 2025 fix (1.2.x and earlier).
	EncodingPythonRepr WebhookEncoding = "python-str"
)

// WebhookEncodings lists every accepted encoding, newest first.
var WebhookEncodings = []WebhookEncoding{EncodingBody, EncodingCompactASCII, EncodingSpacedASCII, EncodingPythonRepr}

// jsonNode is a decoded JSON value that keeps object key order and number
// literals.
type jsonNode struct {
	kind  byte // 'o' object, 'a' array, 's' string, 'n' number, 'b' bool, 'z' null
	str   string
	num   string
	b     bool
	keys  []string
	items []*jsonNode
}

// parseOrdered decodes one JSON value from data, which must hold nothing
// else.
func parseOrdered(data []byte) (*jsonNode, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	n, err := parseNode(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON value")
	}
	return n, nil
}

const maxJSONDepth = 64

func parseNode(dec *json.Decoder, depth int) (*jsonNode, error) {
	if depth > maxJSONDepth {
		return nil, errors.New("JSON nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n := &jsonNode{kind: 'o'}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, errors.New("object key is not a string")
				}
				v, err := parseNode(dec, depth+1)
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k)
				n.items = append(n.items, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return n, nil
		case '[':
			n := &jsonNode{kind: 'a'}
			for dec.More() {
				v, err := parseNode(dec, depth+1)
				if err != nil {
					return nil, err
				}
				n.items = append(n.items, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return n, nil
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case string:
		return &jsonNode{kind: 's', str: t}, nil
	case json.Number:
		return &jsonNode{kind: 'n', num: t.String()}, nil
	case bool:
		return &jsonNode{kind: 'b', b: t}, nil
	case nil:
		return &jsonNode{kind: 'z'}, nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

// PythonJSON renders a JSON document as Python's json.dumps renders the
// value it decodes to: ensure_ascii escapes (\u00e9, surrogate pairs above
// U+FFFF, \u007f), and compact (",", ":") or default (", ", ": ")
// separators. Number literals are kept as written.
func PythonJSON(body []byte, compact bool) ([]byte, error) {
	n, err := parseOrdered(body)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	writePyJSON(&b, n, compact)
	return b.Bytes(), nil
}

// PythonRepr renders a JSON document as Python's str() renders the value
// it decodes to: {'key': 'value', 'n': None, 'ok': True}.
func PythonRepr(body []byte) ([]byte, error) {
	n, err := parseOrdered(body)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	writePyRepr(&b, n)
	return b.Bytes(), nil
}

func writePyJSON(b *bytes.Buffer, n *jsonNode, compact bool) {
	itemSep, keySep := ", ", ": "
	if compact {
		itemSep, keySep = ",", ":"
	}
	switch n.kind {
	case 'o':
		b.WriteByte('{')
		for i, k := range n.keys {
			if i > 0 {
				b.WriteString(itemSep)
			}
			writePyJSONString(b, k)
			b.WriteString(keySep)
			writePyJSON(b, n.items[i], compact)
		}
		b.WriteByte('}')
	case 'a':
		b.WriteByte('[')
		for i, it := range n.items {
			if i > 0 {
				b.WriteString(itemSep)
			}
			writePyJSON(b, it, compact)
		}
		b.WriteByte(']')
	case 's':
		writePyJSONString(b, n.str)
	case 'n':
		b.WriteString(n.num)
	case 'b':
		b.WriteString(strconv.FormatBool(n.b))
	default:
		b.WriteString("null")
	}
}

const hexDigits = "0123456789abcdef"

func writeU4(b *bytes.Buffer, r rune) {
	b.WriteString(`\u`)
	b.WriteByte(hexDigits[r>>12&0xf])
	b.WriteByte(hexDigits[r>>8&0xf])
	b.WriteByte(hexDigits[r>>4&0xf])
	b.WriteByte(hexDigits[r&0xf])
}

// writePyJSONString follows json.encoder.py_encode_basestring_ascii.
func writePyJSONString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r >= ' ' && r <= '~':
			b.WriteRune(r)
		case r > 0xffff:
			hi, lo := utf16.EncodeRune(r)
			writeU4(b, hi)
			writeU4(b, lo)
		default:
			writeU4(b, r)
		}
	}
	b.WriteByte('"')
}

func writePyRepr(b *bytes.Buffer, n *jsonNode) {
	switch n.kind {
	case 'o':
		b.WriteByte('{')
		for i, k := range n.keys {
			if i > 0 {
				b.WriteString(", ")
			}
			writePyReprString(b, k)
			b.WriteString(": ")
			writePyRepr(b, n.items[i])
		}
		b.WriteByte('}')
	case 'a':
		b.WriteByte('[')
		for i, it := range n.items {
			if i > 0 {
				b.WriteString(", ")
			}
			writePyRepr(b, it)
		}
		b.WriteByte(']')
	case 's':
		writePyReprString(b, n.str)
	case 'n':
		b.WriteString(n.num)
	case 'b':
		if n.b {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	default:
		b.WriteString("None")
	}
}

// writePyReprString follows CPython's unicode_repr: single quotes unless
// the text holds a single quote and no double quote; printable characters,
// non-ASCII included, stay as they are.
func writePyReprString(b *bytes.Buffer, s string) {
	quote := byte('\'')
	if bytes.IndexByte([]byte(s), '\'') >= 0 && bytes.IndexByte([]byte(s), '"') < 0 {
		quote = '"'
	}
	b.WriteByte(quote)
	for _, r := range s {
		switch {
		case r == rune(quote) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < ' ' || r == 0x7f:
			b.WriteString(`\x`)
			b.WriteByte(hexDigits[r>>4])
			b.WriteByte(hexDigits[r&0xf])
		case r < 0x7f:
			b.WriteRune(r)
		case !unicode.IsPrint(r):
			switch {
			case r <= 0xff:
				b.WriteString(`\x`)
				b.WriteByte(hexDigits[r>>4])
				b.WriteByte(hexDigits[r&0xf])
			case r <= 0xffff:
				writeU4(b, r)
			default:
				b.WriteString(`\U`)
				for shift := 28; shift >= 0; shift -= 4 {
					b.WriteByte(hexDigits[r>>uint(shift)&0xf])
				}
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(quote)
}
