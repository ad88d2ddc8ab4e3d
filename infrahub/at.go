package infrahub

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	// Named zones ("...[Europe/Paris]") must resolve the same way in the
	// operator image, which may have no zoneinfo, as in Infrahub.
	_ "time/tzdata"
)

// AtLayout is Infrahub's canonical form of a point in time: microseconds, Z.
const AtLayout = "2006-01-02T15:04:05.000000Z"

// FormatAt renders t in Infrahub's canonical form.
func FormatAt(t time.Time) string { return t.UTC().Format(AtLayout) }

// ValidateAt reports whether Infrahub would accept s as an `at` value
// (InfrahubSync spec.source.targetDate). The empty string is not valid here:
// callers treat "" as "now" and never send it.
func ValidateAt(s string) error {
	_, err := ParseAt(s, time.Now())
	return err
}

// ParseAt interprets s exactly as Infrahub's Timestamp does (infrahub_sdk
// Timestamp._parse_string on top of the `whenever` library), trying in order:
//
//  1. an ISO 8601 date-time with an IANA zone in brackets, with or without an
//     offset ("2026-08-20T10:00:00[Europe/Paris]");
//  2. an ISO 8601 date-time with "Z" or an offset, optionally followed by a
//     bracketed zone name that is then ignored ("2026-08-20T10:00:00Z",
//     "2026-08-20T10:00:00.123+02:00");
//  3. a naive ISO 8601 date-time, taken as UTC ("2026-08-20T10:00:00");
//  4. a date, taken as 12:00 UTC ("2026-08-20");
//  5. relative offsets: the first run of digits followed by "s", the first
//     followed by "m" and the first followed by "h" anywhere in the string,
//     all subtracted from now. "now-2h", "2h", "1h30m" and even "now+2h" all
//     mean the past; there are no days.
//
// Date-times use whenever's ISO 8601 subset: extended (2026-08-20T10:00:00)
// or basic (20260820T100000) date and time, "T", "t" or a space between
// them, optional minutes and seconds, 1-9 fractional digits after "." or ","
// following the seconds, offsets ±HH[:MM[:SS]] or ±HHMM[SS], "Z" or "z".
// Anything else is an error whose text is Infrahub's ("Invalid time format
// for ...").
func ParseAt(s string, now time.Time) (time.Time, error) {
	if t, ok := parseISODateTime(s); ok {
		return t, nil
	}
	if d, ok := parseISODate(s); ok {
		return time.Date(d.y, time.Month(d.m), d.d, 12, 0, 0, 0, time.UTC), nil
	}
	if t, ok, err := parseRelative(s, now); ok {
		return t, err
	}
	return time.Time{}, atError(s)
}

func atError(s string) error {
	return &Error{Kind: KindBadRequest, Message: "Invalid time format for " + clip(s)}
}

type civilDate struct{ y, m, d int }

func digitsAt(s string, i, n int) (int, bool) {
	if i < 0 || i+n > len(s) {
		return 0, false
	}
	v := 0
	for _, c := range []byte(s[i : i+n]) {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

func daysIn(y, m int) int {
	return time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func makeDate(y, m, d int) (civilDate, bool) {
	if y < 1 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return civilDate{}, false
	}
	return civilDate{y, m, d}, true
}

// parseISODate accepts YYYY-MM-DD and YYYYMMDD.
func parseISODate(s string) (civilDate, bool) {
	switch len(s) {
	case 10:
		if s[4] != '-' || s[7] != '-' {
			return civilDate{}, false
		}
		y, ok1 := digitsAt(s, 0, 4)
		m, ok2 := digitsAt(s, 5, 2)
		d, ok3 := digitsAt(s, 8, 2)
		if !ok1 || !ok2 || !ok3 {
			return civilDate{}, false
		}
		return makeDate(y, m, d)
	case 8:
		y, ok1 := digitsAt(s, 0, 4)
		m, ok2 := digitsAt(s, 4, 2)
		d, ok3 := digitsAt(s, 6, 2)
		if !ok1 || !ok2 || !ok3 {
			return civilDate{}, false
		}
		return makeDate(y, m, d)
	}
	return civilDate{}, false
}

// scanner walks an ASCII date-time string.
type scanner struct {
	s string
	i int
}

func (p *scanner) done() bool { return p.i >= len(p.s) }

func (p *scanner) peek() byte {
	if p.done() {
		return 0
	}
	return p.s[p.i]
}

func (p *scanner) at(n int) byte {
	if p.i+n >= len(p.s) {
		return 0
	}
	return p.s[p.i+n]
}

// two reads two digits no greater than max.
func (p *scanner) two(max int) (int, bool) {
	v, ok := digitsAt(p.s, p.i, 2)
	if !ok || v > max {
		return 0, false
	}
	p.i += 2
	return v, true
}

// fraction reads [.,]d{1,9} if present.
func (p *scanner) fraction() (int, bool) {
	if c := p.peek(); c != '.' && c != ',' {
		return 0, true
	}
	p.i++
	n, digits := 0, 0
	for !p.done() && digits < 9 {
		c := p.peek()
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
		digits++
		p.i++
	}
	if digits == 0 {
		return 0, false
	}
	for k := digits; k < 9; k++ {
		n *= 10
	}
	return n, true
}

type clock struct{ h, m, s, ns int }

func (p *scanner) timeOfDay() (clock, bool) {
	var c clock
	var ok bool
	extended := p.at(2) == ':'
	if c.h, ok = p.two(23); !ok {
		return c, false
	}
	if extended {
		p.i++ // ':'
		if c.m, ok = p.two(59); !ok {
			return c, false
		}
		if p.peek() == ':' {
			p.i++
			if c.s, ok = p.two(59); !ok {
				return c, false
			}
			if c.ns, ok = p.fraction(); !ok {
				return c, false
			}
		}
		return c, true
	}
	if m, ok := p.two(59); ok {
		c.m = m
		if s, ok := p.two(59); ok {
			c.s = s
			if c.ns, ok = p.fraction(); !ok {
				return c, false
			}
		}
	}
	return c, true
}

// offset reads Z, z, ±HH[:MM[:SS]] or ±HH[MM[SS]] and returns seconds east.
func (p *scanner) offset() (int, bool) {
	sign := 1
	switch p.peek() {
	case 'Z', 'z':
		p.i++
		return 0, true
	case '+':
	case '-':
		sign = -1
	default:
		return 0, false
	}
	p.i++
	h, ok := p.two(23)
	if !ok {
		return 0, false
	}
	total := h * 3600
	if p.peek() == ':' {
		p.i++
		m, ok := p.two(59)
		if !ok {
			return 0, false
		}
		total += m * 60
		if p.peek() == ':' {
			p.i++
			s, ok := p.two(59)
			if !ok {
				return 0, false
			}
			total += s
		}
	} else if m, ok := p.two(59); ok {
		total += m * 60
		if s, ok := p.two(59); ok {
			total += s
		}
	}
	return sign * total, true
}

// validZoneKey mirrors whenever's check of IANA zone identifiers.
func validZoneKey(k string) bool {
	if k == "" || len(k) >= 100 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '_' || c == '-' || c == '+' || c == '/' || c == '.') {
			return false
		}
	}
	if strings.Contains(k, "..") || strings.Contains(k, "//") || strings.Contains(k, "/./") {
		return false
	}
	switch k[0] {
	case '-', '+', '/', '.':
		return false
	}
	return k[len(k)-1] != '/'
}

// loadZone finds an IANA zone as whenever would: from the tz database only.
func loadZone(key string) (*time.Location, bool) {
	if !validZoneKey(key) || key == "Local" {
		return nil, false
	}
	loc, err := time.LoadLocation(key)
	if err != nil {
		return nil, false
	}
	return loc, true
}

var (
	minInstant = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxInstant = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

func inRange(t time.Time) bool { return !t.Before(minInstant) && !t.After(maxInstant) }

func parseISODateTime(s string) (time.Time, bool) {
	if len(s) < 11 {
		return time.Time{}, false
	}
	sep := func(c byte) bool { return c == 'T' || c == 't' || c == ' ' }
	var d civilDate
	var ok bool
	p := &scanner{s: s}
	switch {
	case sep(s[10]):
		d, ok = parseISODate(s[:10])
		p.i = 11
	case sep(s[8]):
		d, ok = parseISODate(s[:8])
		p.i = 9
	}
	if !ok {
		return time.Time{}, false
	}
	c, ok := p.timeOfDay()
	if !ok {
		return time.Time{}, false
	}
	wall := func(loc *time.Location) time.Time {
		return time.Date(d.y, time.Month(d.m), d.d, c.h, c.m, c.s, c.ns, loc)
	}
	switch {
	case p.done():
		// Naive: UTC.
		return wall(time.UTC), true
	case p.peek() == '[':
		// Zone name without an offset: resolved in that zone.
		rest := s[p.i:]
		if len(rest) <= 2 || strings.IndexByte(rest, ']') != len(rest)-1 {
			return time.Time{}, false
		}
		loc, ok := loadZone(rest[1 : len(rest)-1])
		if !ok {
			return time.Time{}, false
		}
		t := resolveCompatible(d, c, loc)
		return t.UTC(), inRange(t)
	}
	off, ok := p.offset()
	if !ok {
		return time.Time{}, false
	}
	if p.peek() == '[' {
		// With an offset the zone name is only checked for syntax.
		rest := s[p.i:]
		end := strings.IndexByte(rest, ']')
		if end != len(rest)-1 || !validZoneKey(rest[1:end]) {
			return time.Time{}, false
		}
		p.i = len(s)
	}
	if !p.done() {
		return time.Time{}, false
	}
	t := wall(time.UTC).Add(-time.Duration(off) * time.Second)
	return t, inRange(t)
}

// resolveCompatible maps a wall time in loc to an instant the way whenever's
// "compatible" disambiguation does: the earlier instant of a repeated time,
// and the time shifted forward by the gap for a skipped one.
func resolveCompatible(d civilDate, c clock, loc *time.Location) time.Time {
	local := time.Date(d.y, time.Month(d.m), d.d, c.h, c.m, c.s, c.ns, time.UTC)
	offsetAt := func(t time.Time) time.Duration {
		_, o := t.In(loc).Zone()
		return time.Duration(o) * time.Second
	}
	before := offsetAt(local.Add(-48 * time.Hour))
	after := offsetAt(local.Add(48 * time.Hour))
	var candidates []time.Time
	for _, o := range []time.Duration{before, after} {
		t := local.Add(-o)
		if offsetAt(t) == o {
			candidates = append(candidates, t)
		}
	}
	switch len(candidates) {
	case 0:
		// Skipped wall time: keep the offset from before the transition.
		return local.Add(-before).In(loc)
	case 2:
		if candidates[1].Before(candidates[0]) {
			return candidates[1].In(loc)
		}
	}
	return candidates[0].In(loc)
}

// parseRelative implements the relative form: for each unit, the first run
// of (Unicode) decimal digits immediately followed by the unit's letter.
// ok is false when no unit matched; err is set when the result is out of
// range.
func parseRelative(s string, now time.Time) (time.Time, bool, error) {
	var found [3]bool // s, m, h
	var value [3]float64
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsDigit(r) {
			i += size
			continue
		}
		// A run of digits.
		v := 0.0
		for i < len(s) {
			r, size = utf8.DecodeRuneInString(s[i:])
			if !unicode.IsDigit(r) {
				break
			}
			v = v*10 + float64(digitValue(r))
			i += size
		}
		if i >= len(s) {
			break
		}
		unit := -1
		switch s[i] {
		case 's':
			unit = 0
		case 'm':
			unit = 1
		case 'h':
			unit = 2
		}
		if unit >= 0 && !found[unit] {
			found[unit] = true
			value[unit] = v
		}
	}
	if !found[0] && !found[1] && !found[2] {
		return time.Time{}, false, nil
	}
	secs := value[0] + value[1]*60 + value[2]*3600
	// Beyond ~10000 years the subtraction leaves whenever's range.
	if math.IsInf(secs, 0) || secs > float64(maxInstant.Unix()-minInstant.Unix()) {
		return time.Time{}, true, atError(s)
	}
	t := now.UTC().Add(-time.Duration(secs * float64(time.Second)))
	if !inRange(t) {
		return time.Time{}, true, atError(s)
	}
	return t, true, nil
}

// digitValue returns the value of a Unicode decimal digit (category Nd).
// Nd characters come in contiguous runs of ten, starting at zero.
func digitValue(r rune) int {
	if r >= '0' && r <= '9' {
		return int(r - '0')
	}
	start := r
	for unicode.IsDigit(start - 1) {
		start--
	}
	return int(r-start) % 10
}

// Resolve pins a relative At ("2h", "now-30m") to an absolute instant
// computed from now, so that the listing and the downloads of one sync read
// the same point in time. Empty and absolute values are only normalised.
func (o ListOptions) Resolve(now time.Time) (ListOptions, error) {
	if o.At == "" {
		return o, nil
	}
	t, err := ParseAt(o.At, now)
	if err != nil {
		return o, err
	}
	o.At = FormatAt(t)
	return o, nil
}

// atParam returns the canonical `at` query value for opts.At, "" for now.
func atParam(at string, now time.Time) (string, error) {
	if at == "" {
		return "", nil
	}
	t, err := ParseAt(at, now)
	if err != nil {
		return "", fmt.Errorf("targetDate: %w", err)
	}
	return FormatAt(t), nil
}
