// Package metricstest parses the Prometheus text exposition format (0.0.4)
// strictly, for tests: every family must have one HELP and one TYPE line
// before its samples, its samples must be contiguous and unique, labels must
// be well formed, counters non-negative, and histograms complete (ascending
// le bounds, non-decreasing cumulative counts, a +Inf bucket equal to
// _count, a _sum).
package metricstest

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Sample is one line of a family.
type Sample struct {
	// Name is the sample's metric name: the family's, or for histograms
	// the family's with _bucket, _sum or _count.
	Name   string
	Labels map[string]string
	Value  float64
}

// Family is a metric family.
type Family struct {
	Name, Help, Type string
	Samples          []Sample
}

// Families are parsed families by name.
type Families map[string]*Family

// Parse reads and checks an exposition.
func Parse(r io.Reader) (Families, error) {
	p := &parser{fams: Families{}, done: map[string]bool{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		p.line++
		if err := p.parseLine(sc.Text()); err != nil {
			return nil, fmt.Errorf("line %d: %w: %q", p.line, err, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	return p.fams, nil
}

type parser struct {
	fams    Families
	current *Family
	// done holds families that ended: their samples may not reappear.
	done map[string]bool
	line int
}

var validTypes = map[string]bool{"counter": true, "gauge": true, "histogram": true, "summary": true, "untyped": true}

func (p *parser) parseLine(line string) error {
	if strings.TrimSpace(line) == "" {
		return nil
	}
	if strings.HasPrefix(line, "#") {
		f := strings.SplitN(line, " ", 4)
		if len(f) < 3 || f[0] != "#" || (f[1] != "HELP" && f[1] != "TYPE") {
			return nil // a plain comment
		}
		name := f[2]
		if !validMetricName(name) {
			return fmt.Errorf("invalid metric name %q", name)
		}
		text := ""
		if len(f) == 4 {
			text = f[3]
		}
		fam, err := p.family(name)
		if err != nil {
			return err
		}
		if len(fam.Samples) > 0 {
			return fmt.Errorf("%s %s after its samples", f[1], name)
		}
		if f[1] == "HELP" {
			if fam.Help != "" {
				return fmt.Errorf("second HELP for %s", name)
			}
			help, err := unescape(text, false)
			if err != nil {
				return err
			}
			if help == "" {
				return fmt.Errorf("empty HELP for %s", name)
			}
			fam.Help = help
			return nil
		}
		if fam.Type != "" {
			return fmt.Errorf("second TYPE for %s", name)
		}
		if !validTypes[text] {
			return fmt.Errorf("unknown type %q", text)
		}
		fam.Type = text
		return nil
	}

	s, err := parseSample(line)
	if err != nil {
		return err
	}
	fam := p.current
	if fam == nil || !belongs(fam, s.Name) {
		return fmt.Errorf("sample %s outside its family (HELP and TYPE must come first)", s.Name)
	}
	if fam.Help == "" || fam.Type == "" {
		return fmt.Errorf("sample of %s before its HELP and TYPE", fam.Name)
	}
	if fam.Type == "counter" && (s.Value < 0 || math.IsNaN(s.Value)) {
		return fmt.Errorf("counter %s is %v", s.Name, s.Value)
	}
	id := seriesID(s.Name, s.Labels)
	for _, o := range fam.Samples {
		if seriesID(o.Name, o.Labels) == id {
			return fmt.Errorf("duplicate series %s", id)
		}
	}
	fam.Samples = append(fam.Samples, s)
	return nil
}

// family returns the family a HELP or TYPE line is about, starting it.
func (p *parser) family(name string) (*Family, error) {
	if p.current != nil && p.current.Name == name {
		return p.current, nil
	}
	if p.done[name] {
		return nil, fmt.Errorf("family %s appears twice", name)
	}
	if p.current != nil {
		if err := p.close(p.current); err != nil {
			return nil, err
		}
	}
	fam := &Family{Name: name}
	p.fams[name] = fam
	p.current = fam
	return fam, nil
}

func (p *parser) finish() error {
	if p.current != nil {
		return p.close(p.current)
	}
	return nil
}

func (p *parser) close(f *Family) error {
	p.done[f.Name] = true
	if f.Help == "" || f.Type == "" {
		return fmt.Errorf("family %s lacks HELP or TYPE", f.Name)
	}
	if len(f.Samples) == 0 {
		return fmt.Errorf("family %s has no samples", f.Name)
	}
	if f.Type == "histogram" {
		return checkHistogram(f)
	}
	return nil
}

func belongs(f *Family, sample string) bool {
	if sample == f.Name {
		return f.Type != "histogram"
	}
	switch f.Type {
	case "histogram":
		return sample == f.Name+"_bucket" || sample == f.Name+"_sum" || sample == f.Name+"_count"
	case "summary":
		return sample == f.Name+"_sum" || sample == f.Name+"_count"
	}
	return false
}

type histSeries struct {
	buckets    []bucket
	sum, count *float64
}

type bucket struct {
	le    float64
	count float64
}

func checkHistogram(f *Family) error {
	series := map[string]*histSeries{}
	get := func(labels map[string]string) *histSeries {
		id := seriesID("", labels)
		h := series[id]
		if h == nil {
			h = &histSeries{}
			series[id] = h
		}
		return h
	}
	for _, s := range f.Samples {
		switch s.Name {
		case f.Name + "_bucket":
			leText, ok := s.Labels["le"]
			if !ok {
				return fmt.Errorf("%s bucket without le", f.Name)
			}
			le, err := parseValue(leText)
			if err != nil {
				return fmt.Errorf("%s: bad le %q", f.Name, leText)
			}
			rest := without(s.Labels, "le")
			h := get(rest)
			h.buckets = append(h.buckets, bucket{le, s.Value})
		case f.Name + "_sum":
			if _, ok := s.Labels["le"]; ok {
				return fmt.Errorf("%s_sum with le", f.Name)
			}
			v := s.Value
			get(s.Labels).sum = &v
		case f.Name + "_count":
			if _, ok := s.Labels["le"]; ok {
				return fmt.Errorf("%s_count with le", f.Name)
			}
			v := s.Value
			get(s.Labels).count = &v
		}
	}
	for id, h := range series {
		if h.sum == nil || h.count == nil {
			return fmt.Errorf("%s{%s}: missing _sum or _count", f.Name, id)
		}
		if len(h.buckets) == 0 {
			return fmt.Errorf("%s{%s}: no buckets", f.Name, id)
		}
		for i := 1; i < len(h.buckets); i++ {
			if !(h.buckets[i].le > h.buckets[i-1].le) {
				return fmt.Errorf("%s{%s}: le bounds not ascending (%v after %v)", f.Name, id, h.buckets[i].le, h.buckets[i-1].le)
			}
			if h.buckets[i].count < h.buckets[i-1].count {
				return fmt.Errorf("%s{%s}: cumulative counts decrease at le=%v", f.Name, id, h.buckets[i].le)
			}
		}
		last := h.buckets[len(h.buckets)-1]
		if !math.IsInf(last.le, 1) {
			return fmt.Errorf("%s{%s}: no +Inf bucket", f.Name, id)
		}
		if last.count != *h.count {
			return fmt.Errorf("%s{%s}: +Inf bucket %v != _count %v", f.Name, id, last.count, *h.count)
		}
		if *h.count < 0 || math.IsNaN(*h.sum) {
			return fmt.Errorf("%s{%s}: bad _count or _sum", f.Name, id)
		}
	}
	return nil
}

func without(labels map[string]string, name string) map[string]string {
	out := make(map[string]string, len(labels))
	for k, v := range labels {
		if k != name {
			out[k] = v
		}
	}
	return out
}

func seriesID(name string, labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(name)
	for _, k := range keys {
		fmt.Fprintf(&b, ",%s=%q", k, labels[k])
	}
	return b.String()
}

// parseSample parses `name{l="v",...} value [timestamp]`.
func parseSample(line string) (Sample, error) {
	s := Sample{Labels: map[string]string{}}
	i := 0
	for i < len(line) && line[i] != '{' && line[i] != ' ' {
		i++
	}
	s.Name = line[:i]
	if !validMetricName(s.Name) {
		return s, fmt.Errorf("invalid metric name %q", s.Name)
	}
	rest := line[i:]
	if strings.HasPrefix(rest, "{") {
		n, err := parseLabels(rest, s.Labels)
		if err != nil {
			return s, err
		}
		rest = rest[n:]
	}
	if !strings.HasPrefix(rest, " ") {
		return s, fmt.Errorf("no space before the value")
	}
	f := strings.Split(rest[1:], " ")
	if len(f) < 1 || len(f) > 2 || f[0] == "" {
		return s, fmt.Errorf("want a value and an optional timestamp")
	}
	v, err := parseValue(f[0])
	if err != nil {
		return s, err
	}
	s.Value = v
	if len(f) == 2 {
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			return s, fmt.Errorf("bad timestamp %q", f[1])
		}
	}
	return s, nil
}

// parseLabels parses `{a="x",b="y"}` at the start of s into m and returns
// the number of bytes consumed.
func parseLabels(s string, m map[string]string) (int, error) {
	i := 1 // past '{'
	for {
		if i >= len(s) {
			return 0, fmt.Errorf("unterminated label set")
		}
		if s[i] == '}' {
			return i + 1, nil
		}
		start := i
		for i < len(s) && s[i] != '=' {
			i++
		}
		name := s[start:i]
		if !validLabelName(name) {
			return 0, fmt.Errorf("invalid label name %q", name)
		}
		if _, dup := m[name]; dup {
			return 0, fmt.Errorf("duplicate label %q", name)
		}
		if i+1 >= len(s) || s[i+1] != '"' {
			return 0, fmt.Errorf("label %s: value not quoted", name)
		}
		i += 2
		var b strings.Builder
		closed := false
		for i < len(s) {
			c := s[i]
			if c == '\\' {
				if i+1 >= len(s) {
					return 0, fmt.Errorf("label %s: dangling escape", name)
				}
				switch s[i+1] {
				case '\\':
					b.WriteByte('\\')
				case '"':
					b.WriteByte('"')
				case 'n':
					b.WriteByte('\n')
				default:
					return 0, fmt.Errorf("label %s: bad escape \\%c", name, s[i+1])
				}
				i += 2
				continue
			}
			if c == '"' {
				closed = true
				i++
				break
			}
			if c == '\n' {
				return 0, fmt.Errorf("label %s: raw newline", name)
			}
			b.WriteByte(c)
			i++
		}
		if !closed {
			return 0, fmt.Errorf("label %s: unterminated value", name)
		}
		m[name] = b.String()
		if i < len(s) && s[i] == ',' {
			i++
			continue
		}
		if i < len(s) && s[i] == '}' {
			continue
		}
		return 0, fmt.Errorf("expected , or } after label %s", name)
	}
}

func parseValue(s string) (float64, error) {
	switch s {
	case "+Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || strings.ContainsAny(s, "_xXpP") || strings.EqualFold(s, "inf") || strings.EqualFold(s, "infinity") {
		return 0, fmt.Errorf("bad value %q", s)
	}
	return v, nil
}

func unescape(s string, quotes bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", fmt.Errorf("dangling escape")
		}
		i++
		switch {
		case s[i] == '\\':
			b.WriteByte('\\')
		case s[i] == 'n':
			b.WriteByte('\n')
		case s[i] == '"' && quotes:
			b.WriteByte('"')
		default:
			return "", fmt.Errorf("bad escape \\%c", s[i])
		}
	}
	return b.String(), nil
}

func validMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}

func validLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}

// Value returns the value of the sample named name whose labels include
// every pair in match (name may be a histogram's _count or _sum).
// It reports false when no sample or more than one matches.
func (fs Families) Value(name string, match map[string]string) (float64, bool) {
	var found []float64
	for _, s := range fs.samples(name) {
		if matches(s.Labels, match) {
			found = append(found, s.Value)
		}
	}
	if len(found) != 1 {
		return 0, false
	}
	return found[0], true
}

// Sum adds the values of every sample named name whose labels include
// every pair in match.
func (fs Families) Sum(name string, match map[string]string) float64 {
	var total float64
	for _, s := range fs.samples(name) {
		if matches(s.Labels, match) {
			total += s.Value
		}
	}
	return total
}

func (fs Families) samples(name string) []Sample {
	fam := fs[name]
	if fam == nil {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && fs[base] != nil {
				fam = fs[base]
				break
			}
		}
	}
	if fam == nil {
		return nil
	}
	var out []Sample
	for _, s := range fam.Samples {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func matches(labels, match map[string]string) bool {
	for k, v := range match {
		if labels[k] != v {
			return false
		}
	}
	return true
}
