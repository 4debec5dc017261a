package quota

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wuyou/wuyou"
)

// Thresholds of wuyou.quota.low (CONTRACT §7.2 notify_at): a programme
// names up to five, each a percent of the active grant set's granted total
// or an amount remaining in the programme's unit. Each threshold is
// announced once per grant set, when a call takes the set's remaining from
// at or above its level to below it.
//
// Where they are kept: programmes.notify_at (PostgreSQL, migration
// 00014_notify_at.sql, default [{"percent":20}]) and, for the debit script,
// in each grant's hot copy as a tenth field of its value (see scripts.go),
// compact: "p20,r600". A grant whose value has no tenth field has the
// default, so hot state written before thresholds keeps its meaning and a
// programme with the default writes its grants as before.

// Threshold is one level of notify_at: exactly one of Percent (1–99, of
// the granted total) and Remaining (> 0, in the unit).
type Threshold struct {
	Percent   int   `json:"percent,omitempty"`
	Remaining int64 `json:"remaining,omitempty"`
}

// DefaultLowPercent is the threshold of a programme that names none.
const DefaultLowPercent = 20

// maxThresholds is how many thresholds a programme may name.
const maxThresholds = 5

// DefaultNotifyAt is notify_at when a programme names none.
func DefaultNotifyAt() []Threshold { return []Threshold{{Percent: DefaultLowPercent}} }

// Key names the threshold in the notes hash and the grant's hot copy:
// "p20" for 20 percent, "r600" for 600 remaining.
func (t Threshold) Key() string {
	if t.Percent > 0 {
		return "p" + strconv.Itoa(t.Percent)
	}
	return "r" + strconv.FormatInt(t.Remaining, 10)
}

// level is the remaining amount below which the threshold is crossed, for
// a set of granted total granted (the script's rule, written again in Lua).
func (t Threshold) level(granted int64) int64 {
	if t.Percent > 0 {
		return granted * int64(t.Percent) / 100
	}
	return t.Remaining
}

// notifyAtErrors checks notify_at; nil (left out) is the default, an
// empty list is refused.
func notifyAtErrors(ts []Threshold) []wuyou.FieldError {
	var errs []wuyou.FieldError
	if ts == nil {
		return nil
	}
	if len(ts) < 1 || len(ts) > maxThresholds {
		return []wuyou.FieldError{{Field: "notify_at", Message: fmt.Sprintf("must list 1 to %d thresholds", maxThresholds)}}
	}
	seen := map[string]bool{}
	for i, t := range ts {
		f := fmt.Sprintf("notify_at[%d]", i)
		switch {
		case t.Percent != 0 && t.Remaining != 0:
			errs = append(errs, wuyou.FieldError{Field: f, Message: "must name exactly one of percent and remaining, not both"})
		case t.Percent == 0 && t.Remaining == 0:
			errs = append(errs, wuyou.FieldError{Field: f, Message: "must name one of percent (1 to 99) and remaining (> 0)"})
		case t.Remaining == 0 && (t.Percent < 1 || t.Percent > 99):
			errs = append(errs, wuyou.FieldError{Field: f + ".percent", Message: "must be between 1 and 99"})
		case t.Percent == 0 && t.Remaining < 0:
			errs = append(errs, wuyou.FieldError{Field: f + ".remaining", Message: "must be above 0, an amount in the programme's unit"})
		case seen[t.Key()]:
			errs = append(errs, wuyou.FieldError{Field: f, Message: "repeats an earlier threshold"})
		}
		seen[t.Key()] = true
	}
	return errs
}

// normalNotifyAt is notify_at as stored: the default when none was given.
func normalNotifyAt(ts []Threshold) []Threshold {
	if len(ts) == 0 {
		return DefaultNotifyAt()
	}
	return append([]Threshold(nil), ts...)
}

// encodeThresholds is the tenth field of a grant's hot copy: "" for the
// default (the field is then left out), else the keys joined by commas.
func encodeThresholds(ts []Threshold) string {
	if len(ts) == 0 || (len(ts) == 1 && ts[0] == Threshold{Percent: DefaultLowPercent}) {
		return ""
	}
	keys := make([]string, len(ts))
	for i, t := range ts {
		keys[i] = t.Key()
	}
	return strings.Join(keys, ",")
}

// parseThreshold reads a key ("p20", "r600").
func parseThreshold(key string) (Threshold, error) {
	if len(key) >= 2 {
		n, err := strconv.ParseInt(key[1:], 10, 64)
		switch {
		case err != nil || n <= 0:
		case key[0] == 'p' && n < 100:
			return Threshold{Percent: int(n)}, nil
		case key[0] == 'r':
			return Threshold{Remaining: n}, nil
		}
	}
	return Threshold{}, fmt.Errorf("quota: malformed threshold %q", key)
}

// parseThresholds reads a grant's tenth field; "" is the default.
func parseThresholds(s string) ([]Threshold, error) {
	if s == "" {
		return DefaultNotifyAt(), nil
	}
	var out []Threshold
	for _, k := range strings.Split(s, ",") {
		t, err := parseThreshold(k)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// setThresholds is the union of the thresholds of the grants of unit
// active at now, as the debit script takes it.
func setThresholds(gs []*Grant, unit string, now time.Time) []Threshold {
	var out []Threshold
	seen := map[Threshold]bool{}
	for _, g := range gs {
		if !g.ActiveAt(now) || g.Unit != unit {
			continue
		}
		for _, t := range normalNotifyAt(g.NotifyAt) {
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	return out
}

// noteOrder sorts a call's notes: low notes by threshold, then exhausted.
func noteOrder(n Note) string {
	if n.Kind == NoteExhausted || n.Threshold == nil {
		return "2" + n.Kind
	}
	return "1" + n.Threshold.Key()
}
