package infrahub_test

import (
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/vidra-operator/vidra/infrahub"
)

func TestParseAt(t *testing.T) {
	now := time.Date(2026, 8, 20, 10, 0, 0, 0, time.UTC)
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	tests := []struct {
		in   string
		want time.Time
		err  bool
	}{
		// Offset and Z forms.
		{in: "2026-08-20T10:00:00Z", want: utc(2026, 8, 20, 10, 0, 0, 0)},
		{in: "2026-08-20T10:00:00z", want: utc(2026, 8, 20, 10, 0, 0, 0)},
		{in: "2026-08-20t10:00:00Z", want: utc(2026, 8, 20, 10, 0, 0, 0)},
		{in: "2026-08-20 10:00:00Z", want: utc(2026, 8, 20, 10, 0, 0, 0)},
		{in: "2026-08-20T10:00:00.123456+02:00", want: utc(2026, 8, 20, 8, 0, 0, 123456000)},
		{in: "2026-08-20T10:00:00,5-01:30", want: utc(2026, 8, 20, 11, 30, 0, 500000000)},
		{in: "2026-08-20T10:00:00.123456789Z", want: utc(2026, 8, 20, 10, 0, 0, 123456789)},
		{in: "2026-08-20T10:00:00+0200", want: utc(2026, 8, 20, 8, 0, 0, 0)},
		{in: "2026-08-20T10:00:00+02", want: utc(2026, 8, 20, 8, 0, 0, 0)},
		{in: "2026-08-20T10:00:00+01:02:03", want: utc(2026, 8, 20, 8, 57, 57, 0)},
		{in: "2026-08-20T10:00:00-00:00", want: utc(2026, 8, 20, 10, 0, 0, 0)},
		{in: "2026-08-20T10:00Z", want: utc(2026, 8, 20, 10, 0, 0, 0)},
		{in: "2026-08-20T10Z", want: utc(2026, 8, 20, 10, 0, 0, 0)},
		{in: "20260820T100000Z", want: utc(2026, 8, 20, 10, 0, 0, 0)},
		{in: "20260820T1000+0100", want: utc(2026, 8, 20, 9, 0, 0, 0)},
		{in: "2026-08-20T100000.5Z", want: utc(2026, 8, 20, 10, 0, 0, 500000000)},
		// With an offset, a bracketed zone name is only checked for syntax.
		{in: "2026-08-20T10:00:00+02:00[Europe/Paris]", want: utc(2026, 8, 20, 8, 0, 0, 0)},
		{in: "2026-08-20T10:00:00+05:00[No/Such_Zone]", want: utc(2026, 8, 20, 5, 0, 0, 0)},
		{in: "2026-08-20T10:00:00+02:00[../etc]", err: true},
		// Zone without offset: resolved in the zone (CEST = +2).
		{in: "2026-08-20T10:00:00[Europe/Paris]", want: utc(2026, 8, 20, 8, 0, 0, 0)},
		{in: "2026-01-20T10:00:00[Europe/Paris]", want: utc(2026, 1, 20, 9, 0, 0, 0)},
		{in: "2026-08-20T10:00:00[UTC]", want: utc(2026, 8, 20, 10, 0, 0, 0)},
		// Skipped hour: shifted forward; repeated hour: the earlier one.
		{in: "2026-03-29T02:30:00[Europe/Paris]", want: utc(2026, 3, 29, 1, 30, 0, 0)},
		{in: "2026-10-25T02:30:00[Europe/Paris]", want: utc(2026, 10, 25, 0, 30, 0, 0)},
		{in: "2026-08-20T10:00:00[No/Such_Zone]", err: true},
		{in: "2026-08-20T10:00:00[Local]", err: true},
		// Naive: UTC.
		{in: "2026-08-20T10:00:00", want: utc(2026, 8, 20, 10, 0, 0, 0)},
		{in: "2026-08-20T10:00:00.5", want: utc(2026, 8, 20, 10, 0, 0, 500000000)},
		{in: "2026-08-20 10:00", want: utc(2026, 8, 20, 10, 0, 0, 0)},
		// Dates: noon UTC.
		{in: "2026-08-20", want: utc(2026, 8, 20, 12, 0, 0, 0)},
		{in: "20260820", want: utc(2026, 8, 20, 12, 0, 0, 0)},
		{in: "2024-02-29", want: utc(2024, 2, 29, 12, 0, 0, 0)},
		// Relative offsets, scanned anywhere, subtracted from now.
		{in: "2h", want: now.Add(-2 * time.Hour)},
		{in: "now-2h", want: now.Add(-2 * time.Hour)},
		{in: "-2h", want: now.Add(-2 * time.Hour)},
		{in: "now+2h", want: now.Add(-2 * time.Hour)},
		{in: "1h30m", want: now.Add(-90 * time.Minute)},
		{in: "90s", want: now.Add(-90 * time.Second)},
		{in: "5min", want: now.Add(-5 * time.Minute)},
		{in: "10 seconds", err: true}, // the digits must touch the unit
		{in: "10seconds", want: now.Add(-10 * time.Second)},
		{in: "2h3h", want: now.Add(-2 * time.Hour)}, // first match only
		{in: "5ms", want: now.Add(-5 * time.Minute)},
		{in: "x1y2m", want: now.Add(-2 * time.Minute)},
		{in: "٣h", want: now.Add(-3 * time.Hour)}, // Unicode digits, like Python's \d
		{in: "2026-13-01", err: true},
		{in: "2026-02-30", err: true},
		{in: "2026-08-20T24:00:00Z", err: true},
		{in: "2026-08-20T10:60:00Z", err: true},
		{in: "2026-08-20T10:00:60Z", err: true},
		{in: "2026-08-20T10:00:00.Z", err: true},
		{in: "2026-08-20T10:00:00.1234567890Z", err: true},
		{in: "2026-08-20T10:00:00+24:00", err: true},
		{in: "2026-08-20T10:00:00 Z", err: true},
		{in: "2026-08-20X10:00:00Z", err: true},
		{in: "0000-01-01", err: true},
		{in: "0001-01-01T00:00:00+01:00", err: true}, // before year 1 in UTC
		{in: "-2d", err: true},                       // no days
		{in: "yesterday", err: true},
		{in: "", err: true},
		{in: "2h", want: now.Add(-2 * time.Hour)},
		{in: "99999999999h", err: true}, // out of range
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := infrahub.ParseAt(tc.in, now)
			if tc.err {
				assert.Assert(t, err != nil, "got %s", got)
				assert.Assert(t, infrahub.IsBadRequest(err))
				assert.Assert(t, is.Contains(err.Error(), "Invalid time format for "))
				return
			}
			assert.NilError(t, err)
			assert.Assert(t, got.Equal(tc.want), "got %s, want %s", got, tc.want)
		})
	}
}

func TestValidateAtAndResolve(t *testing.T) {
	assert.NilError(t, infrahub.ValidateAt("2026-08-20T10:00:00Z"))
	assert.NilError(t, infrahub.ValidateAt("now-2h"))
	assert.ErrorContains(t, infrahub.ValidateAt("-2d"), "Invalid time format for -2d")
	assert.Assert(t, infrahub.ValidateAt("") != nil)

	now := time.Date(2026, 8, 20, 10, 0, 0, 123456789, time.UTC)
	got, err := infrahub.ListOptions{Name: "a", At: "1h"}.Resolve(now)
	assert.NilError(t, err)
	assert.Equal(t, got.At, "2026-08-20T09:00:00.123456Z")
	got, err = infrahub.ListOptions{Name: "a"}.Resolve(now)
	assert.NilError(t, err)
	assert.Equal(t, got.At, "")
	_, err = infrahub.ListOptions{At: "nope"}.Resolve(now)
	assert.Assert(t, infrahub.IsBadRequest(err))

	// The canonical form round-trips (to the microsecond).
	back, err := infrahub.ParseAt(infrahub.FormatAt(now), time.Time{})
	assert.NilError(t, err)
	assert.Assert(t, back.Equal(now.Truncate(time.Microsecond)))
}
