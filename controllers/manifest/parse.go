package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/validation/path"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

const (
	// DefaultMaxBytes caps a manifest: the operator's default
	// --max-manifest-bytes (manifeststore.DefaultMaxBytes), so kubectl
	// vidra reads every artifact the operator would apply. The limit keeps a
	// runaway template from costing the operator its memory.
	DefaultMaxBytes = 16 << 20
	// DefaultMaxErrors caps how many problems one Parse reports, so the
	// error fits in a status condition and a file of garbage is given up
	// on early.
	DefaultMaxErrors = 20
)

// ParseOptions tunes ParseWithOptions. The zero value means the defaults.
type ParseOptions struct {
	// MaxBytes is the largest manifest accepted; 0 means DefaultMaxBytes.
	MaxBytes int
	// MaxErrors is how many problems are reported before Parse stops
	// looking; 0 means DefaultMaxErrors.
	MaxErrors int
}

// Document is one object of a manifest and where it came from.
type Document struct {
	Object *unstructured.Unstructured
	// Index is the 1-based number of the document in the manifest. Empty
	// and comment-only documents are not counted; each value of a JSON
	// stream is a document.
	Index int
	// Item is the 1-based position inside a List document or a JSON array,
	// or 0 when the document is the object itself.
	Item int
	// Line is the 1-based line of the manifest where the document starts.
	Line int
}

// Position names the document for messages, e.g. "document 3 (item 2)".
func (d Document) Position() string { return position(d.Index, d.Item) }

// Key is the identity of the document's object.
func (d Document) Key() Key { return KeyOf(d.Object) }

func position(index, item int) string {
	if item > 0 {
		return fmt.Sprintf("document %d (item %d)", index, item)
	}
	return fmt.Sprintf("document %d", index)
}

// ParseError is one problem in a manifest. Msg names positions and fields
// but never quotes a field's value.
type ParseError struct {
	// Document is the 1-based document number, 0 for the manifest as a whole.
	Document int
	// Item is the 1-based item of a List document, 0 if none.
	Item int
	// Line is the line where the document starts, 0 if unknown.
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Document == 0 {
		return "manifest: " + e.Msg
	}
	var b strings.Builder
	fmt.Fprintf(&b, "document %d", e.Document)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	if e.Item > 0 {
		fmt.Fprintf(&b, ", item %d", e.Item)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Parse reads a manifest with the default options. See ParseWithOptions.
func Parse(manifest []byte) ([]Document, error) {
	return ParseWithOptions(manifest, ParseOptions{})
}

// ParseWithOptions reads a manifest: multi-document YAML, one JSON value or a
// stream of them, in any mix. JSON arrays and List kinds (kind: List, or
// FooList with items) are expanded into their items. Empty, null and
// comment-only documents are skipped.
//
// Every problem is collected and returned at once, joined with errors.Join;
// each is a *ParseError. On any problem no documents are returned: applying
// part of a manifest would prune what the broken part declares.
func ParseWithOptions(manifest []byte, opts ParseOptions) ([]Document, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxErrors <= 0 {
		opts.MaxErrors = DefaultMaxErrors
	}
	if len(manifest) > opts.MaxBytes {
		return nil, &ParseError{Msg: fmt.Sprintf("%d bytes is over the limit of %d bytes", len(manifest), opts.MaxBytes)}
	}
	p := &parser{maxErrors: opts.MaxErrors}
	data := normalize(manifest)
	p.unicodeBreaks = hasUnicodeBreaks(data)
	for _, c := range p.split(data) {
		if p.stopped {
			// A manifest of garbage would otherwise cost a YAML parse per
			// line for nothing.
			if off, _ := p.content(c.text); off >= 0 {
				p.skipped = true
				break
			}
			continue
		}
		p.chunk(c)
	}
	if p.skipped {
		p.errs = append(p.errs, &ParseError{Msg: fmt.Sprintf("stopped after %d problems; the rest was not checked", len(p.errs))})
	}
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return p.docs, nil
}

type parser struct {
	maxErrors     int
	unicodeBreaks bool
	index         int
	docs          []Document
	errs          []error
	stopped       bool // maxErrors reached
	skipped       bool // and something was left unchecked
}

func (p *parser) fail(index, item, line int, format string, args ...any) {
	if p.stopped {
		p.skipped = true
		return
	}
	p.errs = append(p.errs, &ParseError{Document: index, Item: item, Line: line, Msg: fmt.Sprintf(format, args...)})
	p.stopped = len(p.errs) >= p.maxErrors
}

var bom = []byte("\xef\xbb\xbf")

// normalize drops a byte order mark and turns CRLF and lone CR into LF. YAML
// treats all three as line breaks, and the splitter must see every break
// YAML sees or a "---" after a CR would hide the rest of the manifest.
func normalize(in []byte) []byte {
	in = bytes.TrimPrefix(in, bom)
	if bytes.IndexByte(in, '\r') >= 0 {
		in = bytes.ReplaceAll(in, []byte("\r\n"), []byte("\n"))
		in = bytes.ReplaceAll(in, []byte("\r"), []byte("\n"))
	}
	return in
}

// YAML 1.1 also breaks lines at NEL, LS and PS, and the YAML library reads
// only the first document of what it is given, so the splitter must honour
// them too.
var (
	nel = []byte("\u0085")
	ls  = []byte("\u2028")
	ps  = []byte("\u2029")
)

func hasUnicodeBreaks(data []byte) bool {
	return bytes.Contains(data, nel) || bytes.Contains(data, ls) || bytes.Contains(data, ps)
}

// lineEnd returns the end of the line starting at pos and the start of the
// next one.
func lineEnd(data []byte, pos int, unicodeBreaks bool) (end, next int) {
	if !unicodeBreaks {
		i := bytes.IndexByte(data[pos:], '\n')
		if i < 0 {
			return len(data), len(data)
		}
		return pos + i, pos + i + 1
	}
	for i := pos; i < len(data); i++ {
		switch data[i] {
		case '\n':
			return i, i + 1
		case 0xc2:
			if i+1 < len(data) && data[i+1] == 0x85 {
				return i, i + 2
			}
		case 0xe2:
			if i+2 < len(data) && data[i+1] == 0x80 && (data[i+2] == 0xa8 || data[i+2] == 0xa9) {
				return i, i + 3
			}
		}
	}
	return len(data), len(data)
}

// chunk is the text of one YAML document, or of a JSON stream, and the
// manifest line its first byte is on.
type chunk struct {
	text []byte
	line int
}

// split cuts the manifest at document markers: "---" and "..." at the start
// of a line, followed by a blank or the end of the line. That is exactly
// where YAML ends a document, even inside a block scalar, and JSON text can
// have no line starting with either. Text after "---" on the marker line
// belongs to the new document.
func (p *parser) split(data []byte) []chunk {
	var chunks []chunk
	start, startLine, line := 0, 1, 1
	for pos := 0; pos < len(data); line++ {
		end, next := lineEnd(data, pos, p.unicodeBreaks)
		l := data[pos:end]
		skip := 0
		if bytes.HasPrefix(l, bom) { // concatenated files each with a BOM
			skip = len(bom)
		}
		if isMarker(l[skip:]) {
			chunks = append(chunks, chunk{text: data[start:pos], line: startLine})
			start, startLine = pos+skip+3, line
		}
		pos = next
	}
	return append(chunks, chunk{text: data[start:], line: startLine})
}

func isMarker(l []byte) bool {
	if !bytes.HasPrefix(l, []byte("---")) && !bytes.HasPrefix(l, []byte("...")) {
		return false
	}
	return len(l) == 3 || l[3] == ' ' || l[3] == '\t'
}

// content returns the offset and chunk-relative line (1-based) of the first
// character that is not blank, in a comment or in a directive, or -1.
func (p *parser) content(text []byte) (off, line int) {
	line = 1
	for pos := 0; pos < len(text); line++ {
		end, next := lineEnd(text, pos, p.unicodeBreaks)
		l := text[pos:end]
		i := 0
		for i < len(l) && (l[i] == ' ' || l[i] == '\t') {
			i++
		}
		if i < len(l) && l[i] != '#' && !(i == 0 && l[0] == '%') {
			return pos + i, line
		}
		pos = next
	}
	return -1, 0
}

func (p *parser) chunk(c chunk) {
	off, rel := p.content(c.text)
	if off < 0 {
		return
	}
	docLine := c.line + rel - 1
	var jerr *jsonProblem
	if b := c.text[off]; b == '{' || b == '[' {
		if jerr = p.jsonStream(c.text[off:], docLine); jerr == nil {
			return
		}
		// Not JSON from the start: it may be YAML flow style, {a: b}.
	}
	v, err := yamlValue(c.text)
	switch {
	case err == nil && !singleNode(c.text[off:]):
		p.index++
		p.fail(p.index, 0, docLine, "text after the end of the object; separate documents with ---")
	case err == nil:
		p.value(v, false, docLine)
	case jerr != nil:
		p.index++
		p.fail(p.index, 0, docLine, "%s", jerr.msg)
	default:
		p.index++
		p.fail(p.index, 0, docLine, "%s", p.yamlProblem(err, c))
	}
}

// singleNode guards against the YAML library's habit of reading one
// top-level flow collection, {a: b} or [a], possibly after a tag or anchor,
// and ignoring whatever follows it: a second object would be lost.
func singleNode(text []byte) bool {
	i := 0
	for i < len(text) && (text[i] == '!' || text[i] == '&') {
		for i < len(text) && !isBlank(text[i]) {
			i++
		}
		for i < len(text) && (isBlank(text[i]) || text[i] == '#') {
			if text[i] == '#' {
				for i < len(text) && text[i] != '\n' {
					i++
				}
				continue
			}
			i++
		}
	}
	if i < len(text) && (text[i] == '{' || text[i] == '[') {
		return onlyOneFlowCollection(text[i:])
	}
	return true
}

func isBlank(b byte) bool { return b == ' ' || b == '\t' || b == '\n' }

type jsonProblem struct{ msg string }

// onlyOneFlowCollection reports whether text is one YAML flow collection
// followed by nothing but blanks and comments. It tracks brackets outside
// quoted scalars and comments; when in doubt it says no, which turns a
// document into an error rather than losing part of it.
func onlyOneFlowCollection(text []byte) bool {
	depth := 0
	for i := 0; i < len(text); i++ {
		switch c := text[i]; c {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return onlyBlanksAndComments(text[i+1:])
			}
		case '"', '\'':
			// A quote opens a scalar only where a scalar can start.
			j := i - 1
			for j >= 0 && (text[j] == ' ' || text[j] == '\t' || text[j] == '\n') {
				j--
			}
			if j >= 0 && !strings.ContainsRune("{[,:?", rune(text[j])) {
				continue
			}
			for i++; i < len(text); i++ {
				if c == '"' && text[i] == '\\' {
					i++
				} else if text[i] == c {
					break
				}
			}
		case '#':
			if i > 0 && (text[i-1] == ' ' || text[i-1] == '\t' || text[i-1] == '\n') {
				for i < len(text) && text[i] != '\n' {
					i++
				}
			}
		}
	}
	return false
}

// onlyBlanksAndComments reports whether text, which follows a closing
// bracket, holds nothing else. A "#" starts a comment only after a blank.
func onlyBlanksAndComments(text []byte) bool {
	comment := false
	for i, c := range text {
		switch {
		case c == '\n':
			comment = false
		case comment || c == ' ' || c == '\t':
		case c == '#' && i > 0 && (text[i-1] == ' ' || text[i-1] == '\t' || text[i-1] == '\n'):
			comment = true
		default:
			return false
		}
	}
	return true
}

// jsonStream decodes a stream of JSON values. A failure on the first value is
// returned so the caller can try YAML; later failures are reported. base is
// the manifest line of body's first byte.
func (p *parser) jsonStream(body []byte, base int) *jsonProblem {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	line, counted, n := base, 0, 0
	for {
		off := int(dec.InputOffset())
		for off < len(body) && isJSONSpace(body[off]) {
			off++
		}
		if off >= len(body) {
			return nil
		}
		if p.stopped {
			p.skipped = true
			return nil
		}
		line += bytes.Count(body[counted:off], []byte("\n"))
		counted = off
		var v any
		err := dec.Decode(&v)
		if err == nil {
			v, err = convertNumbers(v)
		}
		if err != nil {
			msg := jsonMessage(err, body, base)
			if n == 0 {
				return &jsonProblem{msg: msg}
			}
			p.index++
			p.fail(p.index, 0, line, "%s", msg)
			return nil
		}
		n++
		p.value(v, true, line)
	}
}

func isJSONSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

var errNumberRange = errors.New("a number is too large")

// jsonMessage describes a JSON error without quoting input. base is the
// manifest line of body's first byte.
func jsonMessage(err error, body []byte, base int) string {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		off := int(se.Offset) - 1
		off = max(0, min(off, len(body)))
		return fmt.Sprintf("invalid JSON at line %d: %s", base+bytes.Count(body[:off], []byte("\n")), scrub(se.Error()))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("invalid JSON at line %d: unexpected end of input", base+bytes.Count(body, []byte("\n")))
	case errors.Is(err, errNumberRange):
		return "invalid JSON: " + err.Error()
	default:
		return "invalid JSON: " + scrub(err.Error())
	}
}

// yamlValue converts one YAML document to JSON-compatible values, the same
// conversion kubectl uses (sigs.k8s.io/yaml), then makes numbers int64 or
// float64 as unstructured objects need.
func yamlValue(text []byte) (any, error) {
	j, err := yaml.YAMLToJSON(text)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return convertNumbers(v)
}

func convertNumbers(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			c, err := convertNumbers(e)
			if err != nil {
				return nil, err
			}
			t[k] = c
		}
	case []any:
		for i, e := range t {
			c, err := convertNumbers(e)
			if err != nil {
				return nil, err
			}
			t[i] = c
		}
	case json.Number:
		if i, err := strconv.ParseInt(string(t), 10, 64); err == nil {
			return i, nil
		}
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil {
			return nil, errNumberRange
		}
		return f, nil
	}
	return v, nil
}

var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// The YAML parser, unlike its scanner, reports 0-based lines.
var yamlParserMessages = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// yamlProblem turns a YAML error into a message with a manifest line and
// without any quoted input.
func (p *parser) yamlProblem(err error, c chunk) string {
	if errors.Is(err, errNumberRange) {
		return "invalid YAML: " + err.Error()
	}
	msg, _, _ := strings.Cut(err.Error(), "\n")
	for _, prefix := range []string{"error converting YAML to JSON: ", "yaml: ", "json: "} {
		msg = strings.TrimPrefix(msg, prefix)
	}
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if yamlParserMessages[msg] {
			line++
		}
	}
	msg = scrubYAML(msg)
	if line == 0 {
		return "invalid YAML: " + msg
	}
	if p.tabIndented(c.text, line) {
		msg += " (YAML does not allow tabs for indentation)"
	}
	return fmt.Sprintf("invalid YAML at line %d: %s", c.line+line-1, msg)
}

// tabIndented reports whether line n (1-based) of text is indented with a tab.
func (p *parser) tabIndented(text []byte, n int) bool {
	pos := 0
	for i := 1; i < n && pos < len(text); i++ {
		_, pos = lineEnd(text, pos, p.unicodeBreaks)
	}
	for ; pos < len(text); pos++ {
		switch text[pos] {
		case '\t':
			return true
		case ' ':
		default:
			return false
		}
	}
	return false
}

// scrubYAML rewrites the YAML library messages that quote input; a Secret's
// value can be the quoted part.
func scrubYAML(msg string) string {
	switch {
	case strings.HasPrefix(msg, "unknown anchor"):
		return "unknown alias (a value starting with '*' must be quoted)"
	case strings.HasPrefix(msg, "anchor") && strings.HasSuffix(msg, "value contains itself"):
		return "an anchor contains itself"
	case strings.HasPrefix(msg, "invalid map key"), strings.HasPrefix(msg, "unsupported map key"):
		return "a map key is not a string, number or boolean"
	}
	return scrub(msg)
}

var quoted = regexp.MustCompile("'(?:[^'\\\\]|\\\\.)+'|\"(?:[^\"\\\\]|\\\\.)+\"|`[^`]+`")

// scrub removes quoted text from a library's message. One quoted character
// is the grammar's own ("expected ',' or ']'") and stays, except in JSON's
// "invalid character 'x'", where it is the input's.
func scrub(msg string) string {
	if strings.Contains(msg, "exceeded max depth") {
		return "nested too deeply"
	}
	all := strings.HasPrefix(msg, "invalid character")
	msg = quoted.ReplaceAllStringFunc(msg, func(s string) string {
		if all || len(s) > 3 {
			return ""
		}
		return s
	})
	msg = strings.Join(strings.Fields(msg), " ")
	if r := []rune(msg); len(r) > 200 {
		msg = string(r[:200]) + "..."
	}
	return msg
}

// value turns one decoded value into documents.
func (p *parser) value(v any, fromJSON bool, line int) {
	p.index++
	switch t := v.(type) {
	case nil:
		// "~" or "null": an empty document.
	case map[string]any:
		p.object(t, line)
	case []any:
		if !fromJSON {
			p.fail(p.index, 0, line, "document is a list, not an object; use one document per object, or kind: List with items")
			return
		}
		p.items(t, line, "", "")
	default:
		p.fail(p.index, 0, line, "document is %s, not an object", describe(t))
	}
}

func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64, float64:
		return "a number"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("a %T", v)
}

func (p *parser) object(m map[string]any, line int) {
	kind, _ := m["kind"].(string)
	if !isList(m, kind) {
		p.accept(m, 0, line)
		return
	}
	switch items := m["items"].(type) {
	case nil:
	case []any:
		itemKind := ""
		if kind != "List" {
			itemKind = strings.TrimSuffix(kind, "List")
		}
		apiVersion, _ := m["apiVersion"].(string)
		p.items(items, line, apiVersion, itemKind)
	default:
		p.fail(p.index, 0, line, "items of a %s must be a list", kind)
	}
}

// isList tells a List from a custom kind that happens to end in "List": a
// real list has no metadata.name, and a FooList always has items.
func isList(m map[string]any, kind string) bool {
	if kind == "List" {
		return true
	}
	if !strings.HasSuffix(kind, "List") {
		return false
	}
	if _, ok := m["items"]; !ok {
		return false
	}
	md, _ := m["metadata"].(map[string]any)
	return md["name"] == nil
}

// items expands a list. A typed list (ConfigMapList) may omit apiVersion and
// kind on its items, as the API server's own lists do; they default to the
// list's.
func (p *parser) items(items []any, line int, apiVersion, kind string) {
	for i, it := range items {
		obj, ok := it.(map[string]any)
		if !ok {
			p.fail(p.index, i+1, line, "item is %s, not an object", describe(it))
			continue
		}
		if kind != "" {
			if v, ok := obj["kind"]; !ok || v == nil || v == "" {
				obj["kind"] = kind
			}
			if v, ok := obj["apiVersion"]; apiVersion != "" && (!ok || v == nil || v == "") {
				obj["apiVersion"] = apiVersion
			}
		}
		if k, _ := obj["kind"].(string); isList(obj, k) {
			p.fail(p.index, i+1, line, "a list inside a list is not supported")
			continue
		}
		p.accept(obj, i+1, line)
	}
}

func (p *parser) accept(m map[string]any, item, line int) {
	probs := validate(m)
	for _, msg := range probs {
		p.fail(p.index, item, line, "%s", msg)
	}
	if len(probs) == 0 {
		p.docs = append(p.docs, Document{Object: &unstructured.Unstructured{Object: m}, Index: p.index, Item: item, Line: line})
	}
}

// validate checks what Vidra needs to identify and track an object. The API
// server validates the rest when the object is applied.
func validate(m map[string]any) []string {
	var missing, probs []string
	check := func(field string, v any, valid func(string) string) {
		switch s := v.(type) {
		case nil:
			missing = append(missing, field)
		case string:
			if s == "" {
				missing = append(missing, field)
			} else if msg := valid(s); msg != "" {
				probs = append(probs, msg)
			}
		default:
			probs = append(probs, field+" must be a string")
		}
	}
	check("apiVersion", m["apiVersion"], checkAPIVersion)
	check("kind", m["kind"], checkKind)
	switch md := m["metadata"].(type) {
	case nil:
		missing = append(missing, "metadata.name")
	case map[string]any:
		if v := md["name"]; v == nil || v == "" {
			if gn, _ := md["generateName"].(string); gn != "" {
				probs = append(probs, "metadata.generateName is not supported: set metadata.name, Vidra tracks objects by name")
			} else {
				missing = append(missing, "metadata.name")
			}
		}
		probs = append(probs, checkMetadata(md)...)
	default:
		probs = append(probs, "metadata must be an object")
	}
	switch len(missing) {
	case 0:
		return probs
	case 1:
		return append([]string{missing[0] + " is missing"}, probs...)
	}
	last := len(missing) - 1
	return append([]string{strings.Join(missing[:last], ", ") + " and " + missing[last] + " are missing"}, probs...)
}

func checkAPIVersion(s string) string {
	group, version, found := strings.Cut(s, "/")
	if !found {
		group, version = "", s
	}
	switch {
	case found && group == "":
		return fmt.Sprintf("apiVersion %s is not valid: the group before '/' is empty", short(s))
	case strings.Contains(version, "/"):
		return fmt.Sprintf("apiVersion %s is not valid: it must be version or group/version", short(s))
	case len(validation.IsDNS1035Label(version)) > 0:
		return fmt.Sprintf("apiVersion %s is not valid: the version must look like v1 or v1beta1", short(s))
	case group != "" && len(validation.IsDNS1123Subdomain(group)) > 0:
		return fmt.Sprintf("apiVersion %s is not valid: the group must be a lowercase DNS name such as apps or example.com", short(s))
	}
	return ""
}

func checkKind(s string) string {
	if len(validation.IsDNS1035Label(strings.ToLower(s))) > 0 {
		return fmt.Sprintf("kind %s is not valid: it must start with a letter and hold only letters, digits and '-'", short(s))
	}
	return ""
}

// checkMetadata checks the metadata fields that are there; validate
// reports a missing name.
func checkMetadata(md map[string]any) []string {
	var probs []string
	switch name := md["name"].(type) {
	case nil:
	case string:
		if name != "" && len(path.IsValidPathSegmentName(name)) > 0 {
			probs = append(probs, "metadata.name is not valid: it may not be '.' or '..' or contain '/' or '%'")
		}
	default:
		probs = append(probs, "metadata.name must be a string (quote it)")
	}
	switch ns := md["namespace"].(type) {
	case nil:
	case string:
		if ns != "" && len(validation.IsDNS1123Label(ns)) > 0 {
			probs = append(probs, fmt.Sprintf("metadata.namespace %s is not a valid namespace name", short(ns)))
		}
	default:
		probs = append(probs, "metadata.namespace must be a string")
	}
	probs = append(probs, checkStringMap(md, "labels")...)
	probs = append(probs, checkStringMap(md, "annotations")...)
	return probs
}

// checkStringMap insists on string values in labels and annotations: the
// unstructured accessors silently return nothing for a map with one
// number in it, and the markers Vidra adds would then replace the whole
// map. A null value (an empty template substitution) becomes "".
func checkStringMap(md map[string]any, field string) []string {
	switch m := md[field].(type) {
	case nil:
		return nil
	case map[string]any:
		var bad []string
		for k, v := range m {
			switch v.(type) {
			case string:
			case nil:
				m[k] = ""
			default:
				bad = append(bad, k)
			}
		}
		sort.Strings(bad)
		probs := make([]string, 0, len(bad))
		for _, k := range bad {
			probs = append(probs, fmt.Sprintf("metadata.%s[%s] must be a string (quote the value)", field, strconv.Quote(k)))
		}
		return probs
	default:
		return []string{fmt.Sprintf("metadata.%s must be a map of strings", field)}
	}
}

// short quotes an identifier (never a value of a data field) for a message.
func short(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(s)
}
