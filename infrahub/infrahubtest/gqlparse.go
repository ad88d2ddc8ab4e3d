package infrahubtest

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file is a small parser for GraphQL executable documents (queries,
// fragments, variables, directives): enough for the fake to answer real
// queries the way a GraphQL server would, syntax errors included.

type gqlLoc struct {
	Line   int `json:"line"`
	Column int `json:"column"`
}

type gqlDocument struct {
	ops   []*gqlOperation
	frags map[string]*gqlFragment
}

type gqlOperation struct {
	kind string // query, mutation, subscription
	name string
	vars []*gqlVarDef
	sel  []gqlSelection
	loc  gqlLoc
}

type gqlVarDef struct {
	name   string
	typ    *gqlType
	def    any
	hasDef bool
	loc    gqlLoc
}

// gqlType is a named type, a list of a type, possibly non-null.
type gqlType struct {
	name    string
	elem    *gqlType // set for lists
	nonNull bool
}

func (t *gqlType) String() string {
	s := t.name
	if t.elem != nil {
		s = "[" + t.elem.String() + "]"
	}
	if t.nonNull {
		s += "!"
	}
	return s
}

func (t *gqlType) base() string {
	for t.elem != nil {
		t = t.elem
	}
	return t.name
}

type gqlSelection interface{ location() gqlLoc }

type gqlField struct {
	alias, name string
	args        []gqlArg
	dirs        []gqlDirective
	sel         []gqlSelection
	loc         gqlLoc
}

type gqlInline struct {
	typeCond string // "" when absent
	dirs     []gqlDirective
	sel      []gqlSelection
	loc      gqlLoc
}

type gqlSpread struct {
	name string
	dirs []gqlDirective
	loc  gqlLoc
}

type gqlFragment struct {
	name     string
	typeCond string
	sel      []gqlSelection
	loc      gqlLoc
}

type gqlArg struct {
	name  string
	value any
	loc   gqlLoc
}

type gqlDirective struct {
	name string
	args []gqlArg
	loc  gqlLoc
}

func (f *gqlField) location() gqlLoc  { return f.loc }
func (f *gqlInline) location() gqlLoc { return f.loc }
func (f *gqlSpread) location() gqlLoc { return f.loc }

func (f *gqlField) key() string {
	if f.alias != "" {
		return f.alias
	}
	return f.name
}

// Literal values: nil, bool, string, gqlInt, gqlFloat, gqlEnum, []any,
// map[string]any, gqlVar.
type (
	gqlInt   string
	gqlFloat string
	gqlEnum  string
	gqlVar   struct {
		name string
		loc  gqlLoc
	}
)

type gqlError struct {
	Message   string   `json:"message"`
	Locations []gqlLoc `json:"locations,omitempty"`
	Path      []any    `json:"path,omitempty"`
}

func (e *gqlError) Error() string { return e.Message }

type tokKind int

const (
	tokEOF tokKind = iota
	tokPunct
	tokName
	tokInt
	tokFloat
	tokString
)

type token struct {
	kind tokKind
	val  string
	loc  gqlLoc
}

func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "<EOF>"
	case tokName:
		return "Name '" + t.val + "'"
	case tokInt:
		return "Int '" + t.val + "'"
	case tokFloat:
		return "Float '" + t.val + "'"
	case tokString:
		return "String " + strconv.Quote(t.val)
	}
	return "'" + t.val + "'"
}

type gqlParser struct {
	src  string
	pos  int
	line int
	col  int // byte offset of the line start
	tok  token
}

const maxQueryDepth = 64

func parseGraphQL(src string) (doc *gqlDocument, err error) {
	p := &gqlParser{src: src, line: 1}
	defer func() {
		if r := recover(); r != nil {
			if ge, ok := r.(*gqlError); ok {
				doc, err = nil, ge
				return
			}
			panic(r)
		}
	}()
	p.next()
	doc = &gqlDocument{frags: map[string]*gqlFragment{}}
	if p.tok.kind == tokEOF {
		p.fail(p.tok.loc, "Syntax Error: Unexpected <EOF>.")
	}
	for p.tok.kind != tokEOF {
		switch {
		case p.isPunct("{"):
			loc := p.tok.loc
			doc.ops = append(doc.ops, &gqlOperation{kind: "query", sel: p.selectionSet(0), loc: loc})
		case p.tok.kind == tokName && (p.tok.val == "query" || p.tok.val == "mutation" || p.tok.val == "subscription"):
			doc.ops = append(doc.ops, p.operation())
		case p.tok.kind == tokName && p.tok.val == "fragment":
			f := p.fragment()
			if _, dup := doc.frags[f.name]; dup {
				p.fail(f.loc, fmt.Sprintf("There can be only one fragment named '%s'.", f.name))
			}
			doc.frags[f.name] = f
		default:
			p.fail(p.tok.loc, "Syntax Error: Unexpected "+p.tok.describe()+".")
		}
	}
	return doc, nil
}

func (p *gqlParser) fail(loc gqlLoc, msg string) {
	panic(&gqlError{Message: msg, Locations: []gqlLoc{loc}})
}

func (p *gqlParser) loc() gqlLoc { return gqlLoc{Line: p.line, Column: p.pos - p.col + 1} }

// next reads the next token into p.tok.
func (p *gqlParser) next() {
	// Skip ignored tokens: whitespace, commas, comments, BOM.
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == ' ' || c == '\t' || c == ',' || c == '\r':
			p.pos++
		case c == '\n':
			p.pos++
			p.line++
			p.col = p.pos
		case c == '#':
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		case strings.HasPrefix(p.src[p.pos:], "\uFEFF"):
			p.pos += 3
		default:
			goto lex
		}
	}
lex:
	loc := p.loc()
	if p.pos >= len(p.src) {
		p.tok = token{kind: tokEOF, loc: loc}
		return
	}
	c := p.src[p.pos]
	switch {
	case strings.IndexByte("!$&()[]{}:=@|", c) >= 0:
		p.pos++
		p.tok = token{kind: tokPunct, val: string(c), loc: loc}
	case c == '.':
		if strings.HasPrefix(p.src[p.pos:], "...") {
			p.pos += 3
			p.tok = token{kind: tokPunct, val: "...", loc: loc}
			return
		}
		p.fail(loc, "Syntax Error: Unexpected character: '.'.")
	case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		start := p.pos
		for p.pos < len(p.src) && isNameByte(p.src[p.pos]) {
			p.pos++
		}
		p.tok = token{kind: tokName, val: p.src[start:p.pos], loc: loc}
	case c == '-' || c >= '0' && c <= '9':
		p.number(loc)
	case c == '"':
		p.str(loc)
	default:
		r, _ := utf8.DecodeRuneInString(p.src[p.pos:])
		p.fail(loc, fmt.Sprintf("Syntax Error: Unexpected character: %q.", r))
	}
}

func isNameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func (p *gqlParser) number(loc gqlLoc) {
	start := p.pos
	digits := func() int {
		n := 0
		for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if p.src[p.pos] == '-' {
		p.pos++
	}
	intStart := p.pos
	if digits() == 0 {
		p.fail(loc, "Syntax Error: Invalid number, expected digit.")
	}
	if p.pos-intStart > 1 && p.src[intStart] == '0' {
		p.fail(loc, "Syntax Error: Invalid number, unexpected digit after 0.")
	}
	float := false
	if p.pos < len(p.src) && p.src[p.pos] == '.' {
		float = true
		p.pos++
		if digits() == 0 {
			p.fail(loc, "Syntax Error: Invalid number, expected digit.")
		}
	}
	if p.pos < len(p.src) && (p.src[p.pos] == 'e' || p.src[p.pos] == 'E') {
		float = true
		p.pos++
		if p.pos < len(p.src) && (p.src[p.pos] == '+' || p.src[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			p.fail(loc, "Syntax Error: Invalid number, expected digit.")
		}
	}
	if p.pos < len(p.src) && (isNameByte(p.src[p.pos]) || p.src[p.pos] == '.') {
		p.fail(loc, "Syntax Error: Invalid number, expected digit.")
	}
	kind := tokInt
	if float {
		kind = tokFloat
	}
	p.tok = token{kind: kind, val: p.src[start:p.pos], loc: loc}
}

func (p *gqlParser) str(loc gqlLoc) {
	if strings.HasPrefix(p.src[p.pos:], `"""`) {
		p.pos += 3
		end := strings.Index(p.src[p.pos:], `"""`)
		if end < 0 {
			p.fail(loc, "Syntax Error: Unterminated string.")
		}
		raw := p.src[p.pos : p.pos+end]
		for _, c := range raw {
			if c == '\n' {
				p.line++
			}
		}
		p.pos += end + 3
		if i := strings.LastIndexByte(p.src[:p.pos], '\n'); i >= 0 {
			p.col = i + 1
		}
		p.tok = token{kind: tokString, val: strings.TrimSpace(raw), loc: loc}
		return
	}
	p.pos++
	var b strings.Builder
	for {
		if p.pos >= len(p.src) || p.src[p.pos] == '\n' {
			p.fail(loc, "Syntax Error: Unterminated string.")
		}
		c := p.src[p.pos]
		if c == '"' {
			p.pos++
			break
		}
		if c != '\\' {
			b.WriteByte(c)
			p.pos++
			continue
		}
		p.pos++
		if p.pos >= len(p.src) {
			p.fail(loc, "Syntax Error: Unterminated string.")
		}
		e := p.src[p.pos]
		p.pos++
		switch e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			if p.pos+4 > len(p.src) {
				p.fail(loc, "Syntax Error: Invalid Unicode escape sequence.")
			}
			n, err := strconv.ParseUint(p.src[p.pos:p.pos+4], 16, 32)
			if err != nil {
				p.fail(loc, "Syntax Error: Invalid Unicode escape sequence.")
			}
			b.WriteRune(rune(n))
			p.pos += 4
		default:
			p.fail(loc, fmt.Sprintf("Syntax Error: Invalid character escape sequence: '\\%c'.", e))
		}
	}
	p.tok = token{kind: tokString, val: b.String(), loc: loc}
}

func (p *gqlParser) isPunct(v string) bool { return p.tok.kind == tokPunct && p.tok.val == v }

func (p *gqlParser) expect(v string) gqlLoc {
	if !p.isPunct(v) {
		p.fail(p.tok.loc, fmt.Sprintf("Syntax Error: Expected '%s', found %s.", v, p.tok.describe()))
	}
	loc := p.tok.loc
	p.next()
	return loc
}

func (p *gqlParser) name() (string, gqlLoc) {
	if p.tok.kind != tokName {
		p.fail(p.tok.loc, "Syntax Error: Expected Name, found "+p.tok.describe()+".")
	}
	n, loc := p.tok.val, p.tok.loc
	p.next()
	return n, loc
}

func (p *gqlParser) operation() *gqlOperation {
	op := &gqlOperation{loc: p.tok.loc}
	op.kind, _ = p.name()
	if p.tok.kind == tokName {
		op.name, _ = p.name()
	}
	if p.isPunct("(") {
		p.next()
		for !p.isPunct(")") {
			v := &gqlVarDef{loc: p.expect("$")}
			v.name, _ = p.name()
			p.expect(":")
			v.typ = p.typeRef(0)
			if p.isPunct("=") {
				p.next()
				v.def, v.hasDef = p.value(true, 0), true
			}
			op.vars = append(op.vars, v)
		}
		p.next()
	}
	p.directives()
	op.sel = p.selectionSet(0)
	return op
}

func (p *gqlParser) typeRef(depth int) *gqlType {
	if depth > maxQueryDepth {
		p.fail(p.tok.loc, "Syntax Error: Type is nested too deeply.")
	}
	var t *gqlType
	if p.isPunct("[") {
		p.next()
		t = &gqlType{elem: p.typeRef(depth + 1)}
		p.expect("]")
	} else {
		n, _ := p.name()
		t = &gqlType{name: n}
	}
	if p.isPunct("!") {
		p.next()
		t.nonNull = true
	}
	return t
}

func (p *gqlParser) fragment() *gqlFragment {
	f := &gqlFragment{loc: p.tok.loc}
	p.next() // "fragment"
	f.name, _ = p.name()
	if f.name == "on" {
		p.fail(p.tok.loc, "Syntax Error: Unexpected Name 'on'.")
	}
	if on, loc := p.name(); on != "on" {
		p.fail(loc, "Syntax Error: Expected 'on', found Name '"+on+"'.")
	}
	f.typeCond, _ = p.name()
	p.directives()
	f.sel = p.selectionSet(0)
	return f
}

func (p *gqlParser) directives() []gqlDirective {
	var ds []gqlDirective
	for p.isPunct("@") {
		loc := p.tok.loc
		p.next()
		n, _ := p.name()
		ds = append(ds, gqlDirective{name: n, args: p.arguments(0), loc: loc})
	}
	return ds
}

func (p *gqlParser) arguments(depth int) []gqlArg {
	if !p.isPunct("(") {
		return nil
	}
	p.next()
	var args []gqlArg
	for !p.isPunct(")") {
		n, loc := p.name()
		p.expect(":")
		args = append(args, gqlArg{name: n, value: p.value(false, depth), loc: loc})
	}
	if len(args) == 0 {
		p.fail(p.tok.loc, "Syntax Error: Expected Name, found ')'.")
	}
	p.next()
	return args
}

func (p *gqlParser) selectionSet(depth int) []gqlSelection {
	if depth > maxQueryDepth {
		p.fail(p.tok.loc, "Syntax Error: Query is nested too deeply.")
	}
	p.expect("{")
	var sel []gqlSelection
	for !p.isPunct("}") {
		if p.tok.kind == tokEOF {
			p.fail(p.tok.loc, "Syntax Error: Expected Name, found <EOF>.")
		}
		if p.isPunct("...") {
			loc := p.tok.loc
			p.next()
			if p.tok.kind == tokName && p.tok.val != "on" {
				n, _ := p.name()
				sel = append(sel, &gqlSpread{name: n, dirs: p.directives(), loc: loc})
				continue
			}
			in := &gqlInline{loc: loc}
			if p.tok.kind == tokName && p.tok.val == "on" {
				p.next()
				in.typeCond, _ = p.name()
			}
			in.dirs = p.directives()
			in.sel = p.selectionSet(depth + 1)
			sel = append(sel, in)
			continue
		}
		f := &gqlField{}
		f.name, f.loc = p.name()
		if p.isPunct(":") {
			p.next()
			f.alias = f.name
			f.name, _ = p.name()
		}
		f.args = p.arguments(depth)
		f.dirs = p.directives()
		if p.isPunct("{") {
			f.sel = p.selectionSet(depth + 1)
		}
		sel = append(sel, f)
	}
	if len(sel) == 0 {
		p.fail(p.tok.loc, "Syntax Error: Expected Name, found '}'.")
	}
	p.next()
	return sel
}

func (p *gqlParser) value(constant bool, depth int) any {
	if depth > maxQueryDepth {
		p.fail(p.tok.loc, "Syntax Error: Value is nested too deeply.")
	}
	t := p.tok
	switch t.kind {
	case tokInt:
		p.next()
		return gqlInt(t.val)
	case tokFloat:
		p.next()
		return gqlFloat(t.val)
	case tokString:
		p.next()
		return t.val
	case tokName:
		p.next()
		switch t.val {
		case "true":
			return true
		case "false":
			return false
		case "null":
			return nil
		}
		return gqlEnum(t.val)
	case tokPunct:
		switch t.val {
		case "$":
			if constant {
				p.fail(t.loc, "Syntax Error: Unexpected variable '$' in constant value.")
			}
			p.next()
			n, _ := p.name()
			return gqlVar{name: n, loc: t.loc}
		case "[":
			p.next()
			list := []any{}
			for !p.isPunct("]") {
				if p.tok.kind == tokEOF {
					p.fail(p.tok.loc, "Syntax Error: Expected ']', found <EOF>.")
				}
				list = append(list, p.value(constant, depth+1))
			}
			p.next()
			return list
		case "{":
			p.next()
			obj := map[string]any{}
			for !p.isPunct("}") {
				n, _ := p.name()
				p.expect(":")
				obj[n] = p.value(constant, depth+1)
			}
			p.next()
			return obj
		}
	}
	p.fail(t.loc, "Syntax Error: Unexpected "+t.describe()+".")
	return nil
}
