package gitrepo

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/version"
)

// versionRange is a semver range: any of its sets matches (||), a set
// matches when all its comparators do.
type versionRange struct {
	sets [][]comparator
	// prerelease: some bound names a pre-release, so pre-release tags may
	// match; else they never do (as npm and Masterminds/semver decide).
	prerelease bool
}

type comparator struct {
	op string // one of = != > >= < <=
	v  *version.Version
}

func (c comparator) matches(v *version.Version) bool {
	cmp := compareVersions(v, c.v)
	switch c.op {
	case "=":
		return cmp == 0
	case "!=":
		return cmp != 0
	case ">":
		return cmp > 0
	case ">=":
		return cmp >= 0
	case "<":
		return cmp < 0
	case "<=":
		return cmp <= 0
	}
	return false
}

func compareVersions(a, b *version.Version) int {
	c, _ := a.Compare(b.String())
	return c
}

// parseRange reads ranges such as ">=1.2.0 <2.0.0", "^1.2", "~1.2.3",
// "1.x", "1.2.*", "*", "1.2.3 - 1.4", "=1.2.3", "!=1.3.0" and their
// combinations with "||". Versions may carry a "v" prefix; missing minor
// or patch numbers are wildcards.
func parseRange(s string) (versionRange, error) {
	var r versionRange
	if strings.TrimSpace(s) == "" {
		return r, errors.New("empty range")
	}
	for _, alt := range strings.Split(s, "||") {
		fields := strings.Fields(alt)
		if len(fields) == 0 {
			return r, fmt.Errorf("empty alternative in %q", s)
		}
		var set []comparator
		for i := 0; i < len(fields); i++ {
			// A hyphen range "A - B": >=A <=B, a partial B an upper wildcard.
			if i+2 < len(fields) && fields[i+1] == "-" {
				lo, err := parsePartial(fields[i])
				if err != nil {
					return r, err
				}
				hi, err := parsePartial(fields[i+2])
				if err != nil {
					return r, err
				}
				set = append(set, comparator{">=", lo.floor()})
				if hi.parts == 3 {
					set = append(set, comparator{"<=", hi.floor()})
				} else if hi.parts > 0 {
					set = append(set, comparator{"<", hi.next()})
				}
				r.prerelease = r.prerelease || lo.pre != "" || hi.pre != ""
				i += 2
				continue
			}
			cs, pre, err := parseComparator(fields[i])
			if err != nil {
				return r, err
			}
			set = append(set, cs...)
			r.prerelease = r.prerelease || pre
		}
		r.sets = append(r.sets, set)
	}
	return r, nil
}

// partial is a version with possibly missing or wildcard components:
// parts counts the numeric ones given (0 for "*").
type partial struct {
	nums  [3]uint
	parts int
	pre   string
}

func parsePartial(s string) (partial, error) {
	var p partial
	s = strings.TrimPrefix(strings.TrimPrefix(s, "v"), "V")
	if s == "" {
		return p, errors.New("missing version")
	}
	core := s
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		core = s[:i]
		if s[i] == '-' {
			p.pre = strings.SplitN(s[i+1:], "+", 2)[0]
		}
	}
	for i, c := range strings.Split(core, ".") {
		if i >= 3 {
			return p, fmt.Errorf("version %q has more than three components", s)
		}
		if c == "x" || c == "X" || c == "*" {
			break
		}
		n, err := strconv.ParseUint(c, 10, 32)
		if err != nil {
			return p, fmt.Errorf("version %q: component %q is not a number", s, c)
		}
		p.nums[i] = uint(n)
		p.parts = i + 1
	}
	if p.pre != "" && p.parts < 3 {
		return p, fmt.Errorf("version %q: a pre-release needs major.minor.patch", s)
	}
	return p, nil
}

func (p partial) floor() *version.Version {
	v := version.MustParseSemantic(fmt.Sprintf("%d.%d.%d", p.nums[0], p.nums[1], p.nums[2]))
	if p.pre != "" {
		v = v.WithPreRelease(p.pre)
	}
	return v
}

// next is the lowest version above every version the partial covers,
// e.g. 1.2 -> 1.3.0, 1 -> 2.0.0, as a pre-release "-0" so that no
// pre-release of it matches either.
func (p partial) next() *version.Version {
	n := p.nums
	switch p.parts {
	case 1:
		n = [3]uint{n[0] + 1, 0, 0}
	case 2:
		n = [3]uint{n[0], n[1] + 1, 0}
	default:
		n = [3]uint{n[0], n[1], n[2] + 1}
	}
	return version.MustParseSemantic(fmt.Sprintf("%d.%d.%d-0", n[0], n[1], n[2]))
}

// parseComparator reads one comparator, expanding ^, ~ and wildcards into
// bounds.
func parseComparator(s string) ([]comparator, bool, error) {
	op := ""
	for _, o := range []string{">=", "<=", "!=", ">", "<", "=", "^", "~"} {
		if strings.HasPrefix(s, o) {
			op, s = o, strings.TrimSpace(s[len(o):])
			break
		}
	}
	if op == "~" && strings.HasPrefix(s, ">") { // "~>1.2", as in Ruby
		s = s[1:]
	}
	p, err := parsePartial(s)
	if err != nil {
		return nil, false, err
	}
	pre := p.pre != ""
	if p.parts == 0 { // "*", "x": anything, unless negated or bounded oddly
		switch op {
		case "", "=", ">=", "<=", "^", "~":
			return nil, pre, nil
		}
		return nil, pre, fmt.Errorf("%q: a wildcard cannot follow %s", s, op)
	}
	lo := p.floor()
	switch op {
	case "", "=":
		if p.parts == 3 {
			return []comparator{{"=", lo}}, pre, nil
		}
		return []comparator{{">=", lo}, {"<", p.next()}}, pre, nil
	case "!=":
		if p.parts != 3 {
			return nil, pre, fmt.Errorf("%q: != needs major.minor.patch", s)
		}
		return []comparator{{"!=", lo}}, pre, nil
	case ">=":
		return []comparator{{">=", lo}}, pre, nil
	case ">":
		if p.parts == 3 {
			return []comparator{{">", lo}}, pre, nil
		}
		return []comparator{{">=", p.next()}}, pre, nil
	case "<":
		return []comparator{{"<", lo}}, pre, nil
	case "<=":
		if p.parts == 3 {
			return []comparator{{"<=", lo}}, pre, nil
		}
		return []comparator{{"<", p.next()}}, pre, nil
	case "~":
		// ~1.2.3 and ~1.2: >=1.2.x <1.3.0; ~1: >=1.0.0 <2.0.0.
		up := p
		if up.parts == 3 {
			up.parts = 2
		}
		return []comparator{{">=", lo}, {"<", up.next()}}, pre, nil
	case "^":
		// ^ allows changes that keep the left-most non-zero component.
		up := p
		switch {
		case p.nums[0] > 0 || p.parts == 1:
			up.parts = 1
		case p.nums[1] > 0 || p.parts == 2:
			up.parts = 2
		default:
			up.parts = 3
		}
		return []comparator{{">=", lo}, {"<", up.next()}}, pre, nil
	}
	return nil, pre, fmt.Errorf("unknown operator in %q", s)
}

// matches reports whether v is in the range.
func (r versionRange) matches(v *version.Version) bool {
	if v.PreRelease() != "" && !r.prerelease {
		return false
	}
	for _, set := range r.sets {
		ok := true
		for _, c := range set {
			if !c.matches(v) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// highest returns the tag of the highest version in the range; tags that
// are no semantic version (with or without "v") are ignored. Between tags
// of equal versions ("v1.0.0", "1.0.0") the first in name order wins.
func (r versionRange) highest(tags []string) (string, bool) {
	var best string
	var bestV *version.Version
	for _, tag := range tags {
		v, err := version.ParseSemantic(strings.TrimPrefix(strings.TrimPrefix(tag, "v"), "V"))
		if err != nil || !r.matches(v) {
			continue
		}
		if bestV == nil {
			best, bestV = tag, v
			continue
		}
		c := compareVersions(v, bestV)
		if c > 0 || c == 0 && tag < best {
			best, bestV = tag, v
		}
	}
	return best, bestV != nil
}
