package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// jsonSink is a logr sink writing one JSON object per line:
//
//	{"ts":"2026-...Z","level":"info","v":0,"logger":"leader","caller":"main.go:12","msg":"...","key":"value",...}
//
// klog has no JSON output of its own (Kubernetes' JSON format lives in
// component-base with zap), so the binary installs this through
// klog.SetLogger. Verbosity follows klog's -v flag.
type jsonSink struct {
	out    *lockedWriter
	name   string
	values []any
	depth  int
	// enabled decides whether a V level is logged.
	enabled func(level int) bool
	now     func() time.Time
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

var _ klog.LogSink = (*jsonSink)(nil)

// newJSONLogger returns a klog.Logger writing JSON lines to w.
func newJSONLogger(w io.Writer, enabled func(level int) bool) klog.Logger {
	s := &jsonSink{out: &lockedWriter{w: w}, enabled: enabled, now: time.Now}
	s.Init(klog.RuntimeInfo{CallDepth: 1})
	return klog.Logger{}.WithSink(s)
}

func (s *jsonSink) Init(info klog.RuntimeInfo) { s.depth += info.CallDepth }

func (s *jsonSink) Enabled(level int) bool { return s.enabled == nil || s.enabled(level) }

func (s *jsonSink) Info(level int, msg string, kv ...any) {
	s.write("info", level, nil, msg, kv)
}

func (s *jsonSink) Error(err error, msg string, kv ...any) {
	s.write("error", 0, err, msg, kv)
}

func (s *jsonSink) WithValues(kv ...any) klog.LogSink {
	c := *s
	c.values = append(append([]any{}, s.values...), kv...)
	return &c
}

func (s *jsonSink) WithName(name string) klog.LogSink {
	c := *s
	if c.name == "" {
		c.name = name
	} else {
		c.name += "." + name
	}
	return &c
}

// WithCallDepth implements logr.CallDepthLogSink, so "caller" names the
// code that logged rather than klog or logr.
func (s *jsonSink) WithCallDepth(depth int) klog.LogSink {
	c := *s
	c.depth += depth
	return &c
}

// reserved keys are written first, in this order; key/value pairs using one
// get a "_" suffix rather than clobbering it. "err" is reserved only in
// error lines.
var reserved = map[string]bool{"ts": true, "level": true, "v": true, "logger": true, "caller": true, "msg": true}

func (s *jsonSink) write(level string, v int, err error, msg string, kv []any) {
	var b bytes.Buffer
	b.WriteString(`{"ts":`)
	writeJSON(&b, s.now().UTC().Format(time.RFC3339Nano))
	b.WriteString(`,"level":`)
	writeJSON(&b, level)
	if level == "info" {
		b.WriteString(`,"v":`)
		b.WriteString(strconv.Itoa(v))
	}
	if s.name != "" {
		b.WriteString(`,"logger":`)
		writeJSON(&b, s.name)
	}
	// Frames: write, the sink's Info or Error, then logr's (the one frame
	// Init's CallDepth accounts for), adjusted by WithCallDepth.
	if _, file, line, ok := runtime.Caller(s.depth + 2); ok {
		b.WriteString(`,"caller":`)
		writeJSON(&b, filepath.Base(file)+":"+strconv.Itoa(line))
	}
	b.WriteString(`,"msg":`)
	writeJSON(&b, msg)
	if err != nil {
		b.WriteString(`,"err":`)
		writeJSON(&b, err.Error())
	}
	seen := map[string]bool{}
	writePairs := func(pairs []any) {
		for i := 0; i < len(pairs); i += 2 {
			key, ok := pairs[i].(string)
			if !ok {
				key = fmt.Sprint(pairs[i])
			}
			if reserved[key] || (key == "err" && err != nil) {
				key += "_"
			}
			var val any = "(MISSING)"
			if i+1 < len(pairs) {
				val = pairs[i+1]
			}
			if seen[key] {
				continue // the first occurrence wins, as in klog's text output
			}
			seen[key] = true
			b.WriteByte(',')
			writeJSON(&b, key)
			b.WriteByte(':')
			writeValue(&b, val)
		}
	}
	// Call-site pairs before WithValues ones: the more specific value wins.
	writePairs(kv)
	writePairs(s.values)
	b.WriteString("}\n")

	s.out.mu.Lock()
	defer s.out.mu.Unlock()
	_, _ = s.out.w.Write(b.Bytes())
}

func writeJSON(b *bytes.Buffer, v any) {
	enc, err := json.Marshal(v)
	if err != nil {
		enc, _ = json.Marshal(fmt.Sprintf("%+v", v))
	}
	b.Write(enc)
}

// writeValue renders a value the way logr expects: MarshalLog first, errors
// as their message, JSON for the rest, and %+v when JSON fails.
func writeValue(b *bytes.Buffer, v any) {
	if m, ok := v.(interface{ MarshalLog() any }); ok {
		v = m.MarshalLog()
	}
	switch t := v.(type) {
	case nil:
		b.WriteString("null")
		return
	case error:
		writeJSON(b, t.Error())
		return
	case json.Marshaler:
	case fmt.Stringer:
		writeJSON(b, t.String())
		return
	case []byte:
		writeJSON(b, string(t))
		return
	}
	writeJSON(b, v)
}
