package quota

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/crew"
)

// The ledger in Redis is kept in weekly buckets: one string per seafarer and
// week of entry time ("T:l:<week>", week = unix seconds / 604800), holding
// that week's entries as compact records, each preceded by a newline. A
// bucket expires a ledger horizon after its week ends, so Redis keeps every
// entry for at least the horizon and at most a week longer; the ledger topic
// keeps them all.
//
// One string per week rather than a hash and an index of JSON entries: a
// seafarer with three calls a day keeps 270 entries over the default
// horizon, and per-element overhead (dict entries, skiplist nodes, field
// names repeated in every JSON entry) was four fifths of their memory.
//
// Records are space-separated fields; text fields are escaped (escapeField)
// so they hold no space, newline or percent sign, and ids are plain (see
// plainID), so neither needs escaping. Times are offsets from the bucket's
// start, in seconds, and "at" an offset from the entry's time in ms:
//
//	d <t> <identity> <at> <event id> <type> <msisdn> <duration> <called> <country>
//	  <billable> <covered> <overage minor> <currency> <welfare minor>
//	  <statement period> <adjusts period> [<grant>:<seconds> ...]
//	g <t> <at> <grant> <programme> <seconds>
//	v <t> <at> <grant> <seconds>
//
// A debit's identity is the event's (DebitEntryID without "d_"); its source
// is not kept (the ledger topic carries it), nor the programme of each draw
// (the grant names it; reads fill it in from the grants). Overage seconds
// are billable − covered. The debit script writes the tail from "<covered>"
// on.
//
// Records are added with APPEND (and the bucket's absolute expiry set
// again), never by reading the string and writing it back: a write can never
// drop what another wrote, and a debit costs the same however full its week.
const ledgerWeek = 7 * 24 * 3600

func ledgerBucket(t time.Time) int64 {
	u := t.Unix()
	if u < 0 {
		return (u - ledgerWeek + 1) / ledgerWeek
	}
	return u / ledgerWeek
}

func (s *RedisStore) ledgerKey(seafarerID string, bucket int64) string {
	return ledgerKey(s.prefix, seafarerID, bucket)
}

func ledgerKey(prefix, seafarerID string, bucket int64) string {
	return crew.SeafarerTag(prefix, seafarerID) + ":l:" + strconv.FormatInt(bucket, 10)
}

// ledgerTTL is how long, from now, the bucket of t must live: until a
// ledger horizon after its week ends, and at least a second. Every write to
// a bucket sets this, so each sets the same end.
func (s *RedisStore) ledgerTTL(t time.Time) int64 {
	end := (ledgerBucket(t) + 1) * ledgerWeek
	ttl := end + int64(s.opts.LedgerHorizon/time.Second) - s.now().Unix()
	return max(ttl, 1)
}

func (s *RedisStore) ledgerKeysBetween(seafarerID string, from, to time.Time) []string {
	return LedgerKeys(s.prefix, seafarerID, from, to)
}

// LedgerKeys are the Redis keys of the ledger buckets, under prefix, that can
// hold a seafarer's entries with a time in [from, to), newest first (for
// tools that measure or inspect them; reads go through Ledger).
func LedgerKeys(prefix, seafarerID string, from, to time.Time) []string {
	first, last := ledgerBucket(from), ledgerBucket(to.Add(-time.Second))
	keys := make([]string, 0, max(last-first+1, 0))
	for b := last; b >= first; b-- {
		keys = append(keys, ledgerKey(prefix, seafarerID, b))
	}
	return keys
}

var fieldEscaper = strings.NewReplacer("%", "%25", " ", "%20", "\n", "%0A", "\r", "%0D")

// escapeField makes s safe as one record field.
func escapeField(s string) string {
	if !strings.ContainsAny(s, "% \n\r") {
		return s
	}
	return fieldEscaper.Replace(s)
}

func unescapeField(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Usage types are stored as one letter when they are the carrier's own.
var (
	typeCodes = map[string]string{billing.TypeVoice: "v", billing.TypeSMS: "s", billing.TypeData: "d"}
	codeTypes = map[string]string{"v": billing.TypeVoice, "s": billing.TypeSMS, "d": billing.TypeData, "-": ""}
)

func encodeType(t string) string {
	if c, ok := typeCodes[t]; ok {
		return c
	}
	if t == "" {
		return "-"
	}
	return "=" + escapeField(t)
}

func decodeType(c string) string {
	if t, ok := codeTypes[c]; ok {
		return t
	}
	return unescapeField(strings.TrimPrefix(c, "="))
}

// debitRecordHead is a debit's record up to and including the billable
// seconds and a trailing space; the script appends the rest.
func debitRecordHead(u Usage, identity string, at time.Time) string {
	call := u.CallTime.Unix()
	start := ledgerBucket(u.CallTime) * ledgerWeek
	var b strings.Builder
	b.Grow(128)
	b.WriteString("d ")
	b.WriteString(strconv.FormatInt(call-start, 10))
	b.WriteByte(' ')
	b.WriteString(identity)
	b.WriteByte(' ')
	b.WriteString(strconv.FormatInt(at.UnixMilli()-call*1000, 10))
	for _, f := range []string{escapeField(u.EventID), encodeType(u.Type), escapeField(u.MSISDN),
		strconv.FormatInt(u.DurationSeconds, 10), escapeField(u.CalledNumber), escapeField(u.VisitedCountry),
		strconv.FormatInt(u.BillableSeconds, 10)} {
		b.WriteByte(' ')
		b.WriteString(f)
	}
	b.WriteByte(' ')
	return b.String()
}

// debitSearch is what precedes a debit's identity in its bucket: the script
// finds a repeat's stored record by it.
func debitSearch(u Usage, identity string) string {
	start := ledgerBucket(u.CallTime) * ledgerWeek
	return "\nd " + strconv.FormatInt(u.CallTime.Unix()-start, 10) + " " + identity + " "
}

func grantRecord(at time.Time, grantID, programmeID string, seconds int64) string {
	sec, ms := entryOffsets(at)
	return "g " + sec + " " + ms + " " + grantID + " " + programmeID + " " + strconv.FormatInt(seconds, 10)
}

// voidRecordHead is a void's record without the seconds removed.
func voidRecordHead(at time.Time, grantID string) string {
	sec, ms := entryOffsets(at)
	return "v " + sec + " " + ms + " " + grantID + " "
}

func entryOffsets(at time.Time) (sec, ms string) {
	start := ledgerBucket(at) * ledgerWeek
	return strconv.FormatInt(at.Unix()-start, 10), strconv.FormatInt(at.UnixMilli()-at.Unix()*1000, 10)
}

// decodeRecord reads one record of bucket b.
func decodeRecord(b int64, rec string) (*LedgerEntry, error) {
	f := strings.Split(rec, " ")
	bad := func() (*LedgerEntry, error) { return nil, fmt.Errorf("quota: malformed ledger record %q", rec) }
	malformed := false // a number field did not parse
	num := func(i int) int64 {
		n, err := strconv.ParseInt(f[i], 10, 64)
		malformed = malformed || err != nil
		return n
	}
	if len(f) < 2 {
		return bad()
	}
	t := time.Unix(b*ledgerWeek+num(1), 0).UTC()
	var e *LedgerEntry
	switch f[0] {
	case "d":
		if len(f) < 17 {
			return bad()
		}
		call := t
		e = &LedgerEntry{
			ID: "d_" + f[2], Kind: KindDebit, At: call.Add(time.Duration(num(3)) * time.Millisecond),
			EventID: unescapeField(f[4]), Type: decodeType(f[5]), MSISDN: unescapeField(f[6]), CallTime: &call,
			DurationSeconds: num(7), CalledNumber: unescapeField(f[8]), VisitedCountry: unescapeField(f[9]),
			BillableSeconds: num(10), CoveredSeconds: num(11),
			OverageAmount:   billing.Money{Minor: num(12), Currency: unescapeField(f[13])},
			WelfareCost:     &billing.Money{Minor: num(14), Currency: unescapeField(f[13])},
			StatementPeriod: f[15], AdjustsPeriod: f[16], Draws: make([]Draw, 0, len(f)-17),
		}
		e.OverageSeconds = e.BillableSeconds - e.CoveredSeconds
		for _, d := range f[17:] {
			grant, sec, ok := strings.Cut(d, ":")
			n, err := strconv.ParseInt(sec, 10, 64)
			if !ok || err != nil {
				return bad()
			}
			e.Draws = append(e.Draws, Draw{GrantID: grant, Seconds: n})
		}
	case "g":
		if len(f) != 6 {
			return bad()
		}
		e = &LedgerEntry{ID: "g_" + f[3], Kind: KindGrant, At: t.Add(time.Duration(num(2)) * time.Millisecond),
			GrantID: f[3], ProgrammeID: f[4], Seconds: num(5), Draws: []Draw{}}
	case "v":
		if len(f) != 5 {
			return bad()
		}
		e = &LedgerEntry{ID: "v_" + f[3], Kind: KindVoid, At: t.Add(time.Duration(num(2)) * time.Millisecond),
			GrantID: f[3], Seconds: num(4), Draws: []Draw{}}
	default:
		return bad()
	}
	if malformed {
		return bad()
	}
	return e, nil
}

// decodeBucket reads every record of bucket b.
func decodeBucket(b int64, v string) ([]*LedgerEntry, error) {
	out := make([]*LedgerEntry, 0, strings.Count(v, "\n"))
	for rec := range strings.SplitSeq(v, "\n") {
		if rec == "" {
			continue
		}
		e, err := decodeRecord(b, rec)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// bucketOf is the bucket number at the end of a ledger key.
func bucketOf(key string) int64 {
	n, _ := strconv.ParseInt(key[strings.LastIndexByte(key, ':')+1:], 10, 64)
	return n
}

// ledgerBetween reads every entry filed in [from, to) in one round trip.
func (s *RedisStore) ledgerBetween(ctx context.Context, seafarerID string, from, to time.Time) ([]*LedgerEntry, error) {
	keys := s.ledgerKeysBetween(seafarerID, from, to)
	if len(keys) == 0 {
		return nil, nil
	}
	var buckets *redis.SliceCmd
	var grants *redis.MapStringStringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		buckets = p.MGet(ctx, keys...)
		grants = p.HGetAll(ctx, s.keys(seafarerID).grants)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("quota: ledger: %w", err)
	}
	vals := buckets.Val()
	programmes := programmesOf(grants.Val())
	var out []*LedgerEntry
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue
		}
		es, err := decodeBucket(bucketOf(keys[i]), str)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if t := ledgerTime(e); !t.Before(from) && t.Before(to) {
				nameProgrammes(e, programmes)
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// programmesOf maps grant ids to their programmes, from a grants hash.
func programmesOf(grants map[string]string) map[string]string {
	out := make(map[string]string, len(grants))
	for id, v := range grants {
		out[id] = v[strings.LastIndexByte(v, ':')+1:]
	}
	return out
}

// nameProgrammes fills in the programme of each of e's draws.
func nameProgrammes(e *LedgerEntry, programmes map[string]string) {
	for i := range e.Draws {
		e.Draws[i].ProgrammeID = programmes[e.Draws[i].GrantID]
	}
}

// ledgerTime is the time an entry is filed under: a debit's call time, else
// when it was written.
func ledgerTime(e *LedgerEntry) time.Time {
	if e.Kind == KindDebit && e.CallTime != nil {
		return *e.CallTime
	}
	return e.At
}

// LedgerFilter selects ledger entries by time (inclusive from, exclusive to;
// zero = open), newest first.
type LedgerFilter struct {
	From, To time.Time
	Limit    int
	Cursor   string // opaque: the time and offset of the last entry returned
}

// Ledger returns a page of a seafarer's ledger entries, newest first (ties
// by id, descending), and the cursor of the next page ("" at the end). A
// debit's time is its call time; a grant's or void's is when it was written.
// Entries older than the ledger horizon may be gone.
func (s *RedisStore) Ledger(ctx context.Context, seafarerID string, f LedgerFilter) ([]*LedgerEntry, string, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	now := s.now()
	// A bucket lives a horizon after its week ends; a call may be filed a
	// little ahead of now (carrier clocks).
	from := now.Add(-s.opts.LedgerHorizon - 7*24*time.Hour)
	to := now.Add(7 * 24 * time.Hour)
	if !f.From.IsZero() && f.From.After(from) {
		from = f.From
	}
	// Nothing is filed later than that (calls after now + the clock skew
	// are refused), and bounding the range bounds the buckets read.
	if !f.To.IsZero() && f.To.Before(to) {
		to = f.To
	}
	var offset int64
	if f.Cursor != "" {
		at, off, ok := strings.Cut(f.Cursor, ".")
		n, err1 := strconv.ParseInt(at, 10, 64)
		o, err2 := strconv.ParseInt(off, 10, 64)
		if !ok || err1 != nil || err2 != nil || o < 0 {
			return nil, "", wuyou.Errorf(wuyou.EINVALID, "cursor: malformed")
		}
		// Entries sharing one second are paged by offset within it.
		if c := time.Unix(n+1, 0); c.Before(to) {
			to = c
		}
		offset = o
	}
	if !from.Before(to) {
		return []*LedgerEntry{}, "", nil
	}
	all, err := s.ledgerBetween(ctx, seafarerID, from, to)
	if err != nil {
		return nil, "", err
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := ledgerTime(all[i]).Unix(), ledgerTime(all[j]).Unix()
		if a != b {
			return a > b
		}
		return all[i].ID > all[j].ID
	})
	if f.Cursor != "" {
		offset = min(offset, int64(len(all)))
		all = all[offset:]
	}
	if len(all) <= f.Limit {
		return all, "", nil
	}
	page := all[:f.Limit]
	last := ledgerTime(page[len(page)-1]).Unix()
	same := int64(0)
	for _, e := range page {
		if ledgerTime(e).Unix() == last {
			same++
		}
	}
	if f.Cursor != "" && strings.HasPrefix(f.Cursor, strconv.FormatInt(last, 10)+".") {
		same += offset
	}
	return page, strconv.FormatInt(last, 10) + "." + strconv.FormatInt(same, 10), nil
}
