package infrahubtest

import (
	"encoding/json"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vidra-operator/vidra/infrahub"
)

// A small schema for the parts of Infrahub's GraphQL API the fake serves,
// with validation and execution of parsed documents.

type gqlTypeDef struct {
	name   string
	kind   string // OBJECT, INTERFACE, SCALAR, INPUT_OBJECT
	fields map[string]*gqlFieldDef
	ifaces []string
}

type gqlFieldDef struct {
	typ     *gqlType
	args    map[string]*gqlType
	resolve func(x *execCtx, src any, args map[string]any) (any, error)
}

// typed carries the concrete type of a value of an interface type.
type typed struct {
	typ string
	v   any
}

func mustType(s string) *gqlType {
	p := &gqlParser{src: s, line: 1}
	p.next()
	return p.typeRef(0)
}

var (
	baseSchemaOnce sync.Once
	baseSchema     map[string]*gqlTypeDef
)

// attrVal is an attribute object's source.
type attrVal struct {
	id      string
	value   any
	updated time.Time
}

var textAttrFilters = []string{"name", "status", "content_type", "checksum", "storage_id"}

func schemaTypes() map[string]*gqlTypeDef {
	baseSchemaOnce.Do(func() {
		t := map[string]*gqlTypeDef{}
		for _, sc := range []string{"String", "Int", "Float", "Boolean", "ID", "DateTime", "GenericScalar"} {
			t[sc] = &gqlTypeDef{name: sc, kind: "SCALAR"}
		}
		t["OrderInput"] = &gqlTypeDef{name: "OrderInput", kind: "INPUT_OBJECT"}
		obj := func(name, kind string, ifaces []string, fields map[string]*gqlFieldDef) {
			t[name] = &gqlTypeDef{name: name, kind: kind, fields: fields, ifaces: ifaces}
		}
		field := func(typ string, r func(x *execCtx, src any, args map[string]any) (any, error)) *gqlFieldDef {
			return &gqlFieldDef{typ: mustType(typ), resolve: r}
		}
		null := func(*execCtx, any, map[string]any) (any, error) { return nil, nil }
		lineage := map[string]*gqlFieldDef{
			"id":            field("String", null),
			"display_label": field("String", null),
		}
		obj("LineageSource", "OBJECT", nil, lineage)
		obj("LineageOwner", "OBJECT", nil, lineage)
		attrFields := func(valueType string) map[string]*gqlFieldDef {
			a := func(f func(attrVal) any) func(*execCtx, any, map[string]any) (any, error) {
				return func(_ *execCtx, src any, _ map[string]any) (any, error) { return f(src.(attrVal)), nil }
			}
			return map[string]*gqlFieldDef{
				"value":           field(valueType, a(func(v attrVal) any { return v.value })),
				"id":              field("String", a(func(v attrVal) any { return v.id })),
				"is_default":      field("Boolean", a(func(attrVal) any { return false })),
				"is_from_profile": field("Boolean", a(func(attrVal) any { return false })),
				"is_inherited":    field("Boolean", a(func(attrVal) any { return false })),
				"is_protected":    field("Boolean", a(func(attrVal) any { return false })),
				"is_visible":      field("Boolean", a(func(attrVal) any { return true })),
				"updated_at":      field("DateTime", a(func(v attrVal) any { return infrahub.FormatAt(v.updated) })),
				"source":          field("LineageSource", null),
				"owner":           field("LineageOwner", null),
			}
		}
		obj("TextAttribute", "OBJECT", []string{"AttributeInterface"}, attrFields("String"))
		obj("JSONAttribute", "OBJECT", []string{"AttributeInterface"}, attrFields("GenericScalar"))
		obj("RelationshipProperty", "OBJECT", nil, map[string]*gqlFieldDef{
			"is_visible":   field("Boolean", func(*execCtx, any, map[string]any) (any, error) { return true, nil }),
			"is_protected": field("Boolean", func(*execCtx, any, map[string]any) (any, error) { return false, nil }),
			"updated_at": field("DateTime", func(_ *execCtx, src any, _ map[string]any) (any, error) {
				return infrahub.FormatAt(src.(view).v.at), nil
			}),
			"source": field("LineageSource", null),
			"owner":  field("LineageOwner", null),
		})

		// Targets: the interface; concrete kinds are added per request.
		obj("CoreArtifactTarget", "INTERFACE", []string{"CoreNode"}, targetFields(false))
		obj("CoreNode", "INTERFACE", nil, map[string]*gqlFieldDef{
			"id":            field("ID!", nil),
			"display_label": field("String", nil),
		})
		defFields := map[string]*gqlFieldDef{
			"id": field("ID!", func(_ *execCtx, src any, _ map[string]any) (any, error) { return src.(*definition).id, nil }),
			"display_label": field("String", func(_ *execCtx, src any, _ map[string]any) (any, error) {
				return src.(*definition).name, nil
			}),
			"hfid": field("[String]", func(_ *execCtx, src any, _ map[string]any) (any, error) {
				return []any{src.(*definition).name}, nil
			}),
			"name": field("TextAttribute", func(_ *execCtx, src any, _ map[string]any) (any, error) {
				d := src.(*definition)
				return attrVal{id: d.id + "-name", value: d.name}, nil
			}),
			"artifact_name": field("TextAttribute", func(_ *execCtx, src any, _ map[string]any) (any, error) {
				d := src.(*definition)
				return attrVal{id: d.id + "-artifact_name", value: d.artifactName}, nil
			}),
			"content_type": field("TextAttribute", func(_ *execCtx, src any, _ map[string]any) (any, error) {
				d := src.(*definition)
				return attrVal{id: d.id + "-content_type", value: d.contentType}, nil
			}),
			"description": field("TextAttribute", func(_ *execCtx, src any, _ map[string]any) (any, error) {
				d := src.(*definition)
				return attrVal{id: d.id + "-description"}, nil
			}),
		}
		obj("CoreArtifactDefinition", "OBJECT", []string{"CoreNode", "CoreTaskTarget"}, defFields)
		nested := func(peer string, get func(view) any) map[string]*gqlFieldDef {
			return map[string]*gqlFieldDef{
				"node": field(peer, func(_ *execCtx, src any, _ map[string]any) (any, error) { return get(src.(view)), nil }),
				"properties": field("RelationshipProperty", func(_ *execCtx, src any, _ map[string]any) (any, error) {
					return src, nil
				}),
			}
		}
		obj("NestedEdgedCoreArtifactTarget", "OBJECT", nil, nested("CoreArtifactTarget", func(v view) any {
			if v.v.tgt == nil {
				return nil
			}
			return typed{typ: v.v.tgt.kind, v: v.v.tgt}
		}))
		obj("NestedEdgedCoreArtifactDefinition", "OBJECT", nil, nested("CoreArtifactDefinition", func(v view) any {
			if v.v.def == nil {
				return nil
			}
			return v.v.def
		}))
		textAttr := func(get func(view) (string, any)) *gqlFieldDef {
			return field("TextAttribute", func(_ *execCtx, src any, _ map[string]any) (any, error) {
				v := src.(view)
				id, value := get(v)
				return attrVal{id: id, value: value, updated: v.v.at}, nil
			})
		}
		// enumAttr is a Text attribute with an enum: its value is the
		// GraphQL enum name in enum mode.
		enumAttr := func(get func(view) (string, string)) *gqlFieldDef {
			return field("TextAttribute", func(x *execCtx, src any, _ map[string]any) (any, error) {
				v := src.(view)
				id, value := get(v)
				var out any
				switch {
				case value == "":
				case x.s.st.enums:
					out = enumName(value)
				default:
					out = value
				}
				return attrVal{id: id, value: out, updated: v.v.at}, nil
			})
		}
		orNil := func(s string) any {
			if s == "" {
				return nil
			}
			return s
		}
		obj("CoreArtifact", "OBJECT", []string{"CoreNode", "CoreTaskTarget"}, map[string]*gqlFieldDef{
			"id": field("ID!", func(_ *execCtx, src any, _ map[string]any) (any, error) { return src.(view).rec.id, nil }),
			"display_label": field("String", func(_ *execCtx, src any, _ map[string]any) (any, error) {
				return src.(view).v.name, nil
			}),
			"hfid": field("[String]", null),
			"name": textAttr(func(v view) (string, any) { return v.rec.attrs.name, v.v.name }),
			"status": enumAttr(func(v view) (string, string) {
				return v.rec.attrs.status, v.v.status
			}),
			"content_type": enumAttr(func(v view) (string, string) {
				return v.rec.attrs.contentType, v.v.contentType
			}),
			"checksum": textAttr(func(v view) (string, any) {
				return v.rec.attrs.checksum, orNil(v.v.checksum)
			}),
			"storage_id": textAttr(func(v view) (string, any) {
				return v.rec.attrs.storageID, orNil(v.v.storageID)
			}),
			"parameters": field("JSONAttribute", func(_ *execCtx, src any, _ map[string]any) (any, error) {
				v := src.(view)
				var p any
				if v.v.parameters != nil {
					p = v.v.parameters
				}
				return attrVal{id: v.rec.attrs.parameters, value: p, updated: v.v.at}, nil
			}),
			"object":     field("NestedEdgedCoreArtifactTarget", func(_ *execCtx, src any, _ map[string]any) (any, error) { return src, nil }),
			"definition": field("NestedEdgedCoreArtifactDefinition", func(_ *execCtx, src any, _ map[string]any) (any, error) { return src, nil }),
		})
		obj("EdgedCoreArtifact", "OBJECT", nil, map[string]*gqlFieldDef{
			"node": field("CoreArtifact", func(_ *execCtx, src any, _ map[string]any) (any, error) { return src, nil }),
		})
		obj("PaginatedCoreArtifact", "OBJECT", nil, map[string]*gqlFieldDef{
			"count": field("Int!", func(_ *execCtx, src any, _ map[string]any) (any, error) { return src.(*artifactPage).count, nil }),
			"edges": field("[EdgedCoreArtifact!]!", func(_ *execCtx, src any, _ map[string]any) (any, error) {
				items := src.(*artifactPage).items
				out := make([]any, len(items))
				for i, v := range items {
					out[i] = v
				}
				return out, nil
			}),
		})
		bf := func(typ string, get func(b *branch) any) *gqlFieldDef {
			return field(typ, func(_ *execCtx, src any, _ map[string]any) (any, error) { return get(src.(*branch)), nil })
		}
		obj("Branch", "OBJECT", nil, map[string]*gqlFieldDef{
			"id":            bf("String", func(b *branch) any { return b.id }),
			"name":          bf("String", func(b *branch) any { return b.name }),
			"description":   bf("String", func(*branch) any { return nil }),
			"origin_branch": bf("String", func(b *branch) any { return b.origin }),
			"branched_from": bf("String", func(b *branch) any { return infrahub.FormatAt(b.created) }),
			"created_at":    bf("String", func(b *branch) any { return infrahub.FormatAt(b.created) }),
			"is_default": field("Boolean", func(x *execCtx, src any, _ map[string]any) (any, error) {
				return src.(*branch).name == x.s.st.defaultBranch, nil
			}),
			"is_isolated":        bf("Boolean", func(b *branch) any { return b.isolated }),
			"sync_with_git":      bf("Boolean", func(*branch) any { return false }),
			"has_schema_changes": bf("Boolean", func(*branch) any { return false }),
			"status":             bf("String", func(*branch) any { return "OPEN" }),
		})
		artArgs := map[string]*gqlType{
			"offset": mustType("Int"), "limit": mustType("Int"), "order": mustType("OrderInput"),
			"ids": mustType("[ID]"), "partial_match": mustType("Boolean"), "any__value": mustType("String"),
			"object__ids": mustType("[ID]"), "definition__ids": mustType("[ID]"),
			"definition__name__value": mustType("String"), "definition__name__values": mustType("[String]"),
		}
		for _, a := range textAttrFilters {
			artArgs[a+"__value"] = mustType("String")
			artArgs[a+"__values"] = mustType("[String]")
			artArgs[a+"__isnull"] = mustType("Boolean")
			artArgs[a+"__is_visible"] = mustType("Boolean")
			artArgs[a+"__is_protected"] = mustType("Boolean")
			artArgs[a+"__source__id"] = mustType("ID")
			artArgs[a+"__owner__id"] = mustType("ID")
		}
		obj("Query", "OBJECT", nil, map[string]*gqlFieldDef{
			"CoreArtifact": {typ: mustType("PaginatedCoreArtifact!"), args: artArgs, resolve: resolveArtifacts},
			"Branch": {typ: mustType("[Branch]"), args: map[string]*gqlType{"name": mustType("String"), "ids": mustType("[ID]")},
				resolve: resolveBranches},
		})
		obj("Mutation", "OBJECT", nil, map[string]*gqlFieldDef{})
		baseSchema = t
	})
	return baseSchema
}

func targetFields(withName bool) map[string]*gqlFieldDef {
	f := map[string]*gqlFieldDef{
		"id": {typ: mustType("ID!"), resolve: func(_ *execCtx, src any, _ map[string]any) (any, error) { return src.(*target).id, nil }},
		"display_label": {typ: mustType("String"), resolve: func(_ *execCtx, src any, _ map[string]any) (any, error) {
			return src.(*target).label, nil
		}},
		"hfid": {typ: mustType("[String]"), resolve: func(_ *execCtx, src any, _ map[string]any) (any, error) {
			return []any{src.(*target).label}, nil
		}},
	}
	if withName {
		f["name"] = &gqlFieldDef{typ: mustType("TextAttribute"), resolve: func(_ *execCtx, src any, _ map[string]any) (any, error) {
			t := src.(*target)
			return attrVal{id: t.nameAttrID, value: t.label}, nil
		}}
	}
	return f
}

type artifactPage struct {
	count int
	items []view
}

// execCtx runs one operation; the caller holds Server.mu.
type execCtx struct {
	s       *Server
	doc     *gqlDocument
	vars    map[string]any
	br      *branch
	at      time.Time // zero: now
	targets map[string]*gqlTypeDef
	memo    map[collectKey]*collected
}

func (x *execCtx) lookup(name string) *gqlTypeDef {
	if t, ok := schemaTypes()[name]; ok {
		return t
	}
	if t, ok := x.targets[name]; ok {
		return t
	}
	for _, tg := range x.s.st.targets {
		if tg.kind == name {
			t := &gqlTypeDef{name: name, kind: "OBJECT", ifaces: []string{"CoreArtifactTarget", "CoreNode"}, fields: targetFields(true)}
			x.targets[name] = t
			return t
		}
	}
	return nil
}

// implements reports whether values of concrete type typ match cond.
func (x *execCtx) implements(typ, cond string) bool {
	if typ == cond {
		return true
	}
	if t := x.lookup(typ); t != nil {
		for _, i := range t.ifaces {
			if i == cond {
				return true
			}
		}
	}
	return false
}

// ---- validation ----

type validator struct {
	x        *execCtx
	op       *gqlOperation
	varTypes map[string]*gqlType
	usedVars map[string]bool
	usedFrag map[string]bool
	errs     []*gqlError
	visiting map[string]bool
}

func (v *validator) errorf(loc gqlLoc, format string, args ...any) {
	v.errs = append(v.errs, &gqlError{Message: fmt.Sprintf(format, args...), Locations: []gqlLoc{loc}})
}

func (v *validator) opLabel() string {
	if v.op.name == "" {
		return ""
	}
	return " by operation '" + v.op.name + "'"
}

// validate checks the document statically and returns its errors.
func validate(x *execCtx, op *gqlOperation) []*gqlError {
	v := &validator{x: x, op: op, varTypes: map[string]*gqlType{}, usedVars: map[string]bool{},
		usedFrag: map[string]bool{}, visiting: map[string]bool{}}
	for _, vd := range op.vars {
		if _, dup := v.varTypes[vd.name]; dup {
			v.errorf(vd.loc, "There can be only one variable named '$%s'.", vd.name)
		}
		base := x.lookup(vd.typ.base())
		if base == nil {
			v.errorf(vd.loc, "Unknown type '%s'.", vd.typ.base())
		} else if base.kind != "SCALAR" && base.kind != "INPUT_OBJECT" {
			v.errorf(vd.loc, "Variable '$%s' cannot be non-input type '%s'.", vd.name, vd.typ)
		}
		v.varTypes[vd.name] = vd.typ
	}
	root := "Query"
	switch op.kind {
	case "mutation":
		root = "Mutation"
	case "subscription":
		v.errorf(op.loc, "Schema is not configured to execute subscription operation.")
		return v.errs
	}
	v.selections(x.lookup(root), op.sel)
	for _, vd := range op.vars {
		if !v.usedVars[vd.name] {
			if op.name != "" {
				v.errorf(vd.loc, "Variable '$%s' is never used in operation '%s'.", vd.name, op.name)
			} else {
				v.errorf(vd.loc, "Variable '$%s' is never used.", vd.name)
			}
		}
	}
	return v.errs
}

func (v *validator) directives(ds []gqlDirective) {
	for _, d := range ds {
		if d.name != "skip" && d.name != "include" {
			v.errorf(d.loc, "Unknown directive '@%s'.", d.name)
			continue
		}
		for _, a := range d.args {
			if a.name != "if" {
				v.errorf(a.loc, "Unknown argument '%s' on directive '@%s'.", a.name, d.name)
				continue
			}
			v.value(a.value, mustType("Boolean!"), a.loc)
		}
	}
}

// value checks an argument value against its type.
func (v *validator) value(val any, t *gqlType, loc gqlLoc) {
	if ref, ok := val.(gqlVar); ok {
		vt, defined := v.varTypes[ref.name]
		if !defined {
			v.errorf(ref.loc, "Variable '$%s' is not defined%s.", ref.name, v.opLabel())
			return
		}
		v.usedVars[ref.name] = true
		if !varFits(vt, t) {
			v.errorf(ref.loc, "Variable '$%s' of type '%s' used in position expecting type '%s'.", ref.name, vt, t)
		}
		return
	}
	if list, ok := val.([]any); ok && t.elem != nil {
		for _, it := range list {
			v.value(it, t.elem, loc)
		}
		return
	}
	if obj, ok := val.(map[string]any); ok {
		for _, it := range obj {
			if ref, ok := it.(gqlVar); ok {
				v.usedVars[ref.name] = true
			}
		}
	}
	if hasVar(val) {
		return
	}
	if _, err := coerceInput(val, t); err != nil {
		v.errorf(loc, "%s", err.Error())
	}
}

func hasVar(val any) bool {
	switch x := val.(type) {
	case gqlVar:
		return true
	case []any:
		for _, it := range x {
			if hasVar(it) {
				return true
			}
		}
	case map[string]any:
		for _, it := range x {
			if hasVar(it) {
				return true
			}
		}
	}
	return false
}

// varFits: may a variable of type vt be used where t is expected? A single
// value may feed a list (input coercion), not the reverse.
func varFits(vt, t *gqlType) bool {
	if t.nonNull && !vt.nonNull {
		return false
	}
	switch {
	case vt.elem != nil && t.elem != nil:
		return varFits(vt.elem, t.elem)
	case vt.elem != nil:
		return false
	case t.elem != nil:
		return varFits(vt, t.elem)
	}
	return vt.name == t.name
}

func (v *validator) selections(parent *gqlTypeDef, sel []gqlSelection) {
	for _, s := range sel {
		switch s := s.(type) {
		case *gqlField:
			v.directives(s.dirs)
			v.field(parent, s)
		case *gqlInline:
			v.directives(s.dirs)
			t := parent
			if s.typeCond != "" {
				if t = v.x.lookup(s.typeCond); t == nil {
					v.errorf(s.loc, "Unknown type '%s'.", s.typeCond)
					continue
				}
				if !v.spreadable(parent, t) {
					v.errorf(s.loc, "Fragment cannot be spread here as objects of type '%s' can never be of type '%s'.", parent.name, t.name)
					continue
				}
			}
			v.selections(t, s.sel)
		case *gqlSpread:
			v.directives(s.dirs)
			f, ok := v.x.doc.frags[s.name]
			if !ok {
				v.errorf(s.loc, "Unknown fragment '%s'.", s.name)
				continue
			}
			v.usedFrag[s.name] = true
			if v.visiting[s.name] {
				v.errorf(s.loc, "Cannot spread fragment '%s' within itself.", s.name)
				continue
			}
			t := v.x.lookup(f.typeCond)
			if t == nil {
				v.errorf(f.loc, "Unknown type '%s'.", f.typeCond)
				continue
			}
			if !v.spreadable(parent, t) {
				v.errorf(s.loc, "Fragment '%s' cannot be spread here as objects of type '%s' can never be of type '%s'.", s.name, parent.name, t.name)
				continue
			}
			v.visiting[s.name] = true
			v.selections(t, f.sel)
			delete(v.visiting, s.name)
		}
	}
}

func (v *validator) spreadable(parent, t *gqlTypeDef) bool {
	if parent.name == t.name {
		return true
	}
	for _, i := range t.ifaces {
		if i == parent.name {
			return true
		}
	}
	for _, i := range parent.ifaces {
		if i == t.name {
			return true
		}
	}
	if parent.kind == "INTERFACE" && t.kind == "INTERFACE" {
		return true
	}
	return false
}

func (v *validator) field(parent *gqlTypeDef, f *gqlField) {
	if f.name == "__typename" {
		if len(f.args) > 0 {
			v.errorf(f.args[0].loc, "Unknown argument '%s' on field '%s.__typename'.", f.args[0].name, parent.name)
		}
		if f.sel != nil {
			v.errorf(f.loc, "Field '__typename' must not have a selection since type 'String!' has no subfields.")
		}
		return
	}
	fd, ok := parent.fields[f.name]
	if !ok {
		v.errorf(f.loc, "Cannot query field '%s' on type '%s'.", f.name, parent.name)
		return
	}
	for _, a := range f.args {
		at, ok := fd.args[a.name]
		if !ok {
			v.errorf(a.loc, "Unknown argument '%s' on field '%s.%s'.", a.name, parent.name, f.name)
			continue
		}
		v.value(a.value, at, a.loc)
	}
	t := v.x.lookup(fd.typ.base())
	switch {
	case t == nil:
		v.errorf(f.loc, "Unknown type '%s'.", fd.typ.base())
	case t.kind == "SCALAR":
		if f.sel != nil {
			v.errorf(f.loc, "Field '%s' must not have a selection since type '%s' has no subfields.", f.name, fd.typ)
		}
	default:
		if f.sel == nil {
			v.errorf(f.loc, "Field '%s' of type '%s' must have a selection of subfields. Did you mean '%s { ... }'?", f.name, fd.typ, f.name)
			return
		}
		v.selections(t, f.sel)
	}
}

// ---- input coercion ----

// coerceInput turns a literal or a JSON variable value into a Go value of
// type t: string, int64, float64, bool, []any, map[string]any or nil.
func coerceInput(val any, t *gqlType) (any, error) {
	if val == nil {
		if t.nonNull {
			return nil, fmt.Errorf("Expected value of non-null type '%s' not to be null.", t)
		}
		return nil, nil
	}
	if t.elem != nil {
		list, ok := val.([]any)
		if !ok {
			// A single value is coerced to a one-element list.
			item, err := coerceInput(val, t.elem)
			if err != nil {
				return nil, err
			}
			return []any{item}, nil
		}
		out := make([]any, len(list))
		for i, it := range list {
			c, err := coerceInput(it, t.elem)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	}
	switch t.name {
	case "String":
		if s, ok := val.(string); ok {
			return s, nil
		}
		return nil, fmt.Errorf("String cannot represent a non string value: %s", showValue(val))
	case "ID":
		switch x := val.(type) {
		case string:
			return x, nil
		case gqlInt:
			return string(x), nil
		case json.Number:
			if _, err := x.Int64(); err == nil {
				return x.String(), nil
			}
		}
		return nil, fmt.Errorf("ID cannot represent a non-string and non-integer value: %s", showValue(val))
	case "Int":
		var n int64
		var err error
		switch x := val.(type) {
		case gqlInt:
			n, err = strconv.ParseInt(string(x), 10, 64)
		case json.Number:
			n, err = x.Int64()
			if err != nil {
				if f, ferr := x.Float64(); ferr == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
					n, err = int64(f), nil
				}
			}
		default:
			err = fmt.Errorf("not an int")
		}
		if err != nil || n > math.MaxInt32 || n < math.MinInt32 {
			return nil, fmt.Errorf("Int cannot represent non-integer value: %s", showValue(val))
		}
		return n, nil
	case "Float":
		switch x := val.(type) {
		case gqlInt:
			return strconv.ParseFloat(string(x), 64)
		case gqlFloat:
			return strconv.ParseFloat(string(x), 64)
		case json.Number:
			return x.Float64()
		}
		return nil, fmt.Errorf("Float cannot represent non numeric value: %s", showValue(val))
	case "Boolean":
		if b, ok := val.(bool); ok {
			return b, nil
		}
		return nil, fmt.Errorf("Boolean cannot represent a non boolean value: %s", showValue(val))
	case "OrderInput", "GenericScalar":
		return plain(val), nil
	}
	return nil, fmt.Errorf("Unknown type '%s'.", t.name)
}

func plain(val any) any {
	switch x := val.(type) {
	case gqlInt:
		n, _ := strconv.ParseInt(string(x), 10, 64)
		return n
	case gqlFloat:
		f, _ := strconv.ParseFloat(string(x), 64)
		return f
	case gqlEnum:
		return string(x)
	case []any:
		out := make([]any, len(x))
		for i, it := range x {
			out[i] = plain(it)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, it := range x {
			out[k] = plain(it)
		}
		return out
	}
	return val
}

func showValue(val any) string {
	switch x := val.(type) {
	case gqlInt:
		return string(x)
	case gqlFloat:
		return string(x)
	case gqlEnum:
		return string(x)
	case string:
		return strconv.Quote(x)
	}
	b, err := json.Marshal(plain(val))
	if err != nil {
		return fmt.Sprint(val)
	}
	return string(b)
}

// coerceVariables applies the operation's variable definitions to the
// request's variables (decoded with UseNumber).
func coerceVariables(op *gqlOperation, in map[string]any) (map[string]any, []*gqlError) {
	out := map[string]any{}
	var errs []*gqlError
	for _, vd := range op.vars {
		raw, given := in[vd.name]
		if !given {
			switch {
			case vd.hasDef:
				c, err := coerceInput(vd.def, vd.typ)
				if err == nil {
					out[vd.name] = c
				}
			case vd.typ.nonNull:
				errs = append(errs, &gqlError{Message: fmt.Sprintf("Variable '$%s' of required type '%s' was not provided.", vd.name, vd.typ),
					Locations: []gqlLoc{vd.loc}})
			}
			continue
		}
		c, err := coerceInput(raw, vd.typ)
		if err != nil {
			errs = append(errs, &gqlError{Message: fmt.Sprintf("Variable '$%s' got invalid value %s; %s", vd.name, showValue(raw), err),
				Locations: []gqlLoc{vd.loc}})
			continue
		}
		out[vd.name] = c
	}
	return out, errs
}

// argValue resolves variables inside an argument literal and coerces it.
func (x *execCtx) argValue(val any, t *gqlType) (any, error) {
	switch v := val.(type) {
	case gqlVar:
		got, ok := x.vars[v.name]
		if !ok || got == nil {
			return nil, nil
		}
		if t.elem != nil {
			if _, isList := got.([]any); !isList {
				return []any{got}, nil
			}
		}
		return got, nil
	case []any:
		if t.elem == nil {
			break
		}
		out := make([]any, len(v))
		for i, it := range v {
			c, err := x.argValue(it, t.elem)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, it := range v {
			if ref, ok := it.(gqlVar); ok {
				out[k] = x.vars[ref.name]
				continue
			}
			out[k] = plain(it)
		}
		return out, nil
	}
	return coerceInput(val, t)
}

// ---- execution ----

// gqlObject is a JSON object that keeps field order.
type gqlObject []gqlKV

type gqlKV struct {
	k string
	v any
}

func (o gqlObject) MarshalJSON() ([]byte, error) { return marshalCompact(o) }

type execError struct {
	msg  string
	loc  gqlLoc
	path []any
}

func (x *execCtx) included(dirs []gqlDirective) bool {
	for _, d := range dirs {
		for _, a := range d.args {
			v, _ := x.argValue(a.value, mustType("Boolean"))
			b, _ := v.(bool)
			if d.name == "skip" && b || d.name == "include" && !b {
				return false
			}
		}
	}
	return true
}

// collect flattens a selection set for a concrete type, merging fields
// with the same response key.
func (x *execCtx) collect(typ string, sel []gqlSelection, out *[]string, groups map[string][]*gqlField, seenFrag map[string]bool) {
	for _, s := range sel {
		switch s := s.(type) {
		case *gqlField:
			if !x.included(s.dirs) {
				continue
			}
			k := s.key()
			if _, ok := groups[k]; !ok {
				*out = append(*out, k)
			}
			groups[k] = append(groups[k], s)
		case *gqlInline:
			if !x.included(s.dirs) || (s.typeCond != "" && !x.implements(typ, s.typeCond)) {
				continue
			}
			x.collect(typ, s.sel, out, groups, seenFrag)
		case *gqlSpread:
			f := x.doc.frags[s.name]
			if f == nil || seenFrag[s.name] || !x.included(s.dirs) || !x.implements(typ, f.typeCond) {
				continue
			}
			seenFrag[s.name] = true
			x.collect(typ, f.sel, out, groups, seenFrag)
		}
	}
}

// collectKey identifies a selection set for a concrete type; the fields it
// collects do not change during one execution.
type collectKey struct {
	typ string
	sel *gqlSelection
	n   int
}

type collected struct {
	order  []string
	groups map[string][]*gqlField
	sub    map[string][]gqlSelection // merged sub-selections per key
}

func (x *execCtx) collected(typ string, sel []gqlSelection) *collected {
	if len(sel) == 0 {
		return &collected{}
	}
	k := collectKey{typ: typ, sel: &sel[0], n: len(sel)}
	if c, ok := x.memo[k]; ok {
		return c
	}
	c := &collected{groups: map[string][]*gqlField{}, sub: map[string][]gqlSelection{}}
	x.collect(typ, sel, &c.order, c.groups, map[string]bool{})
	for key, fields := range c.groups {
		if len(fields) == 1 {
			c.sub[key] = fields[0].sel
			continue
		}
		var merged []gqlSelection
		for _, f := range fields {
			merged = append(merged, f.sel...)
		}
		c.sub[key] = merged
	}
	if x.memo == nil {
		x.memo = map[collectKey]*collected{}
	}
	x.memo[k] = c
	return c
}

// pathSeg is a response path, built as a chain and flattened on error.
type pathSeg struct {
	parent *pathSeg
	key    any
}

func (p *pathSeg) slice() []any {
	var out []any
	for ; p != nil; p = p.parent {
		out = append([]any{p.key}, out...)
	}
	return out
}

func (x *execCtx) object(t *gqlTypeDef, src any, sel []gqlSelection, path *pathSeg) (gqlObject, *execError) {
	c := x.collected(t.name, sel)
	order, groups := c.order, c.groups
	obj := make(gqlObject, 0, len(order))
	for _, k := range order {
		fields := groups[k]
		f := fields[0]
		if f.name == "__typename" {
			obj = append(obj, gqlKV{k, t.name})
			continue
		}
		fd := t.fields[f.name]
		var args map[string]any
		if len(f.args) > 0 {
			args = make(map[string]any, len(f.args))
		}
		for _, a := range f.args {
			v, err := x.argValue(a.value, fd.args[a.name])
			if err != nil {
				return nil, &execError{msg: err.Error(), loc: a.loc, path: (&pathSeg{path, k}).slice()}
			}
			args[a.name] = v
		}
		val, err := fd.resolve(x, src, args)
		if err != nil {
			return nil, &execError{msg: err.Error(), loc: f.loc, path: (&pathSeg{path, k}).slice()}
		}
		out, eerr := x.complete(fd.typ, val, c.sub[k], &pathSeg{path, k})
		if eerr != nil {
			return nil, eerr
		}
		obj = append(obj, gqlKV{k, out})
	}
	return obj, nil
}

func (x *execCtx) complete(t *gqlType, val any, sel []gqlSelection, path *pathSeg) (any, *execError) {
	if val == nil {
		return nil, nil
	}
	if t.elem != nil {
		list, _ := val.([]any)
		out := make([]any, len(list))
		for i, it := range list {
			c, err := x.complete(t.elem, it, sel, &pathSeg{path, i})
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	}
	td := x.lookup(t.name)
	if td.kind == "SCALAR" {
		return val, nil
	}
	if tv, ok := val.(typed); ok {
		td = x.lookup(tv.typ)
		val = tv.v
	}
	return x.object(td, val, sel, path)
}

// ---- root resolvers ----

func resolveArtifacts(x *execCtx, _ any, args map[string]any) (any, error) {
	str := func(k string) (string, bool) { s, ok := args[k].(string); return s, ok }
	strs := func(k string) ([]string, bool) {
		l, ok := args[k].([]any)
		if !ok {
			return nil, false
		}
		out := make([]string, 0, len(l))
		for _, it := range l {
			if s, ok := it.(string); ok {
				out = append(out, s)
			}
		}
		return out, true
	}
	partial, _ := args["partial_match"].(bool)
	match := func(have, want string) bool {
		if partial {
			return strings.Contains(strings.ToLower(have), strings.ToLower(want))
		}
		return have == want
	}
	in := func(have string, list []string) bool {
		for _, w := range list {
			if match(have, w) {
				return true
			}
		}
		return false
	}
	attr := func(v view, name string) string {
		switch name {
		case "name":
			return v.v.name
		case "status":
			return v.v.status
		case "content_type":
			return v.v.contentType
		case "checksum":
			return v.v.checksum
		case "storage_id":
			return v.v.storageID
		}
		return ""
	}
	var items []view
	for _, v := range x.s.st.artifactsAt(x.br, x.at) {
		ok := true
		if ids, set := strs("ids"); set && !in(v.rec.id, ids) {
			ok = false
		}
		for _, a := range textAttrFilters {
			if w, set := str(a + "__value"); set && !match(attr(v, a), w) {
				ok = false
			}
			if w, set := strs(a + "__values"); set && !in(attr(v, a), w) {
				ok = false
			}
			if isNull, set := args[a+"__isnull"].(bool); set && isNull != (attr(v, a) == "") {
				ok = false
			}
		}
		if w, set := str("any__value"); set {
			found := false
			for _, a := range textAttrFilters {
				if match(attr(v, a), w) {
					found = true
				}
			}
			ok = ok && found
		}
		if ids, set := strs("object__ids"); set && (v.v.tgt == nil || !in(v.v.tgt.id, ids)) {
			ok = false
		}
		if ids, set := strs("definition__ids"); set && (v.v.def == nil || !in(v.v.def.id, ids)) {
			ok = false
		}
		if w, set := str("definition__name__value"); set && (v.v.def == nil || !match(v.v.def.name, w)) {
			ok = false
		}
		if w, set := strs("definition__name__values"); set && (v.v.def == nil || !in(v.v.def.name, w)) {
			ok = false
		}
		if ok {
			items = append(items, v)
		}
	}
	if x.s.st.pagingByName {
		// By name only: ties come in whatever order, different per request.
		mrand.Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
		sort.SliceStable(items, func(i, j int) bool { return items[i].v.name < items[j].v.name })
	} else if o, ok := args["order"].(map[string]any); ok {
		if disable, _ := o["disable"].(bool); disable {
			sort.SliceStable(items, func(i, j int) bool { return items[i].rec.id < items[j].rec.id })
		}
	}
	page := &artifactPage{count: len(items)}
	offset, _ := args["offset"].(int64)
	limit, hasLimit := args["limit"].(int64)
	if offset < 0 {
		return nil, fmt.Errorf("offset must be a non-negative integer, got %d", offset)
	}
	if hasLimit && limit < 0 {
		return nil, fmt.Errorf("limit must be a non-negative integer, got %d", limit)
	}
	if int(offset) < len(items) {
		items = items[offset:]
	} else {
		items = nil
	}
	if hasLimit && limit > 0 && int(limit) < len(items) {
		items = items[:limit]
	}
	page.items = items
	return page, nil
}

func resolveBranches(x *execCtx, _ any, args map[string]any) (any, error) {
	name, hasName := args["name"].(string)
	ids, hasIDs := args["ids"].([]any)
	var out []any
	for _, n := range sortedKeys(x.s.st.branches) {
		b := x.s.st.branches[n]
		if hasName && b.name != name {
			continue
		}
		if hasIDs {
			found := false
			for _, id := range ids {
				if id == b.id {
					found = true
				}
			}
			if !found {
				continue
			}
		}
		out = append(out, b)
	}
	if out == nil {
		out = []any{}
	}
	return out, nil
}

// gqlResult is the outcome of one GraphQL execution.
type gqlResult struct {
	data     gqlObject
	errs     []*gqlError
	mutation bool
	hasData  bool // data is present (possibly null)
}

// runGraphQL parses, validates and executes a query on branch br at at.
// The caller holds s.mu.
func (s *Server) runGraphQL(query, opName string, vars map[string]any, br *branch, at time.Time) gqlResult {
	doc, err := parseGraphQL(query)
	if err != nil {
		return gqlResult{errs: []*gqlError{err.(*gqlError)}}
	}
	var op *gqlOperation
	switch {
	case opName != "":
		for _, o := range doc.ops {
			if o.name == opName {
				op = o
			}
		}
		if op == nil {
			return gqlResult{errs: []*gqlError{{Message: fmt.Sprintf("Unknown operation named '%s'.", opName)}}}
		}
	case len(doc.ops) == 1:
		op = doc.ops[0]
	case len(doc.ops) == 0:
		return gqlResult{errs: []*gqlError{{Message: "Must provide an operation."}}}
	default:
		return gqlResult{errs: []*gqlError{{Message: "Must provide operation name if query contains multiple operations."}}}
	}
	x := &execCtx{s: s, doc: doc, br: br, at: at, targets: map[string]*gqlTypeDef{}}
	res := gqlResult{mutation: op.kind == "mutation"}
	if errs := validate(x, op); len(errs) > 0 {
		res.errs = errs
		return res
	}
	for name, f := range doc.frags {
		used := false
		for _, o := range doc.ops {
			if usesFragment(doc, o.sel, name, map[string]bool{}) {
				used = true
			}
		}
		if !used {
			res.errs = append(res.errs, &gqlError{Message: fmt.Sprintf("Fragment '%s' is never used.", name), Locations: []gqlLoc{f.loc}})
		}
	}
	if len(res.errs) > 0 {
		return res
	}
	if vars == nil {
		vars = map[string]any{}
	}
	coerced, verrs := coerceVariables(op, vars)
	if len(verrs) > 0 {
		res.errs = verrs
		return res
	}
	x.vars = coerced
	root := x.lookup("Query")
	if res.mutation {
		root = x.lookup("Mutation")
	}
	res.hasData = true
	data, eerr := x.object(root, nil, op.sel, nil)
	if eerr != nil {
		res.errs = []*gqlError{{Message: eerr.msg, Locations: []gqlLoc{eerr.loc}, Path: eerr.path}}
		return res
	}
	res.data = data
	return res
}

func usesFragment(doc *gqlDocument, sel []gqlSelection, name string, seen map[string]bool) bool {
	for _, s := range sel {
		switch s := s.(type) {
		case *gqlField:
			if usesFragment(doc, s.sel, name, seen) {
				return true
			}
		case *gqlInline:
			if usesFragment(doc, s.sel, name, seen) {
				return true
			}
		case *gqlSpread:
			if s.name == name {
				return true
			}
			if f := doc.frags[s.name]; f != nil && !seen[s.name] {
				seen[s.name] = true
				if usesFragment(doc, f.sel, name, seen) {
					return true
				}
			}
		}
	}
	return false
}

// enumName is the GraphQL enum name Infrahub generates for an enum value:
// upper case, with characters not allowed in a name as underscores
// (application/yaml: APPLICATION_YAML, image/svg+xml: IMAGE_SVG_XML).
func enumName(v string) string {
	b := []byte(strings.ToUpper(v))
	for i, c := range b {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// deniedKind returns the first kind, other than those allowed, whose
// attributes the query reads: the definition of an artifact.
func deniedKind(query string, allowed map[string]bool) string {
	doc, err := parseGraphQL(query)
	if err != nil {
		return ""
	}
	for _, op := range doc.ops {
		if !allowed["CoreArtifact"] && selects(doc, op.sel, "CoreArtifact", map[string]bool{}) {
			return "CoreArtifact"
		}
		if !allowed["CoreArtifactDefinition"] && selects(doc, op.sel, "definition", map[string]bool{}) {
			return "CoreArtifactDefinition"
		}
	}
	return ""
}

// selects reports whether a field named name is selected anywhere.
func selects(doc *gqlDocument, sel []gqlSelection, name string, seen map[string]bool) bool {
	for _, s := range sel {
		switch s := s.(type) {
		case *gqlField:
			if s.name == name || selects(doc, s.sel, name, seen) {
				return true
			}
		case *gqlInline:
			if selects(doc, s.sel, name, seen) {
				return true
			}
		case *gqlSpread:
			if f := doc.frags[s.name]; f != nil && !seen[s.name] {
				seen[s.name] = true
				if selects(doc, f.sel, name, seen) {
					return true
				}
			}
		}
	}
	return false
}
