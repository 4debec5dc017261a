package wuyou

import (
	"strings"

	"github.com/oklog/ulid/v2"
)

// Lists (CONTRACT §4): a page of at most MaxListLimit items, DefaultListLimit
// when no limit is asked, and the cursor of the next page.
const (
	DefaultListLimit = 50
	MaxListLimit     = 500
)

// MaxNameQueryRunes bounds a name search (?q=): longer than any name kept.
const MaxNameQueryRunes = 200

// NameFilter is what a list of named things (companies, programmes) is
// asked for: names containing Query (case-insensitive; "" for all), ordered
// by id after Cursor (the last id of the previous page; "" for the first),
// Limit at a time.
type NameFilter struct {
	Query  string
	Cursor string
	Limit  int
}

// Check validates f for ids made of prefix and a ULID and returns it with
// its limit defaulted and capped and its query trimmed. EINVALID naming
// the field ("cursor", "q") otherwise: a cursor is an id this list handed
// out, never text to compare, and a query is text as CheckText has it.
func (f NameFilter) Check(prefix string) (NameFilter, error) {
	var errs []FieldError
	if f.Cursor != "" && !IsULIDWithPrefix(f.Cursor, prefix) {
		errs = append(errs, FieldError{Field: "cursor", Message: "is not a cursor this list returned"})
	}
	f.Query = strings.TrimSpace(f.Query)
	if msg := CheckText(f.Query, false, MaxNameQueryRunes); msg != "" {
		errs = append(errs, FieldError{Field: "q", Message: msg})
	}
	if f.Limit <= 0 {
		f.Limit = DefaultListLimit
	}
	f.Limit = min(f.Limit, MaxListLimit)
	return f, Invalid(errs)
}

// ContainsPattern is f.Query as a LIKE/ILIKE pattern that matches names
// containing it: its wildcards (%, _) and the escape character (\) stand
// for themselves.
func (f NameFilter) ContainsPattern() string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(f.Query) + "%"
}

// IsULIDWithPrefix reports whether id is prefix followed by a ULID in its
// canonical form, as the ids of companies, seafarers and programmes are.
func IsULIDWithPrefix(id, prefix string) bool {
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok || len(rest) != ulid.EncodedSize {
		return false
	}
	u, err := ulid.ParseStrict(rest)
	return err == nil && u.String() == rest
}
