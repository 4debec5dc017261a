// Package sim generates the traffic a mobile carrier sends Wuyou on
// carrier.usage.v1: realistic call records (CDRs) plus the faults a real
// feed has (redeliveries, late and out-of-order events, garbage), and keeps
// the totals Wuyou should end up with once it has applied them.
//
// It needs no Kafka. carriersim writes what it generates to a broker; tests,
// the chaos harness and benchmarks call it directly. The same Config and
// seed always give the same events, byte for byte, when the call times given
// to Next are the same.
package sim

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/crew"
)

// Kind says what an emitted message is, so a caller can tell which of them
// Wuyou must apply, drop, divert or dead-letter.
type Kind int

const (
	// Fresh is a new, valid event whose call time is the current time.
	Fresh Kind = iota
	// Duplicate is an earlier valid event sent again byte for byte (same
	// source and id): Wuyou must not apply it a second time.
	Duplicate
	// Late is a new, valid event whose call time is older than LateAge,
	// beyond the dedupe window: Wuyou diverts it to carrier.usage.late.v1.
	Late
	// Reordered is a new, valid event whose call time is up to an hour
	// before its neighbours': out of order, but applied like a fresh one.
	Reordered
	// Malformed is bytes that carrier.DecodeUsageEvent rejects: garbage,
	// truncated JSON, or a document with an invalid field.
	Malformed
)

var kindNames = [...]string{"fresh", "duplicate", "late", "reordered", "malformed"}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Config says what traffic to generate. Start from DefaultConfig: a zero
// fraction means "none", so a zero Config sends no voice calls.
type Config struct {
	Seed    int64
	Source  string   // CloudEvents source of every event
	Home    string   // ISO 3166 alpha-2 home country: calls visiting it are domestic
	MSISDNs []string // the subscribers the events are about; required

	// Fractions of all messages, each in [0, 1], adding up to at most 1.
	// The rest are Fresh.
	Duplicates float64
	Late       float64
	Reorder    float64
	Malformed  float64

	VoiceShare float64       // share of valid events that are voice calls; the rest are SMS and data
	LateAge    time.Duration // how far before the current time a Late event's call time lies (at least)
	FirstSeq   int64         // sequence number of the first event: ids are cdr-<seq>

	// Start and Step give call times to Generate: the i-th message's current
	// time is Start + i*Step. Generator.Next takes the time from its caller.
	Start time.Time
	Step  time.Duration
}

// DefaultConfig returns the defaults carriersim uses: 80% voice, home CN,
// late events 800h old (beyond Wuyou's 720h dedupe window), no faults.
func DefaultConfig() Config {
	return Config{
		Seed:       1,
		Source:     "urn:carrier:sim",
		Home:       "CN",
		VoiceShare: 0.8,
		LateAge:    800 * time.Hour,
		FirstSeq:   1,
		Step:       time.Second,
	}
}

var (
	countryRE = regexp.MustCompile(`^[A-Z]{2}$`)
)

// Validate reports the first thing wrong with the configuration.
func (c Config) Validate() error {
	if len(c.MSISDNs) == 0 {
		return fmt.Errorf("no MSISDNs to generate events for")
	}
	for _, m := range c.MSISDNs {
		if !crew.ValidMSISDN(m) {
			return fmt.Errorf("MSISDN %q: must be %s", m, crew.MSISDNRule)
		}
	}
	if c.Source == "" || len(c.Source) > 256 {
		return fmt.Errorf("source must be 1-256 bytes")
	}
	if !countryRE.MatchString(c.Home) {
		return fmt.Errorf("home country %q is not an ISO 3166 alpha-2 code", c.Home)
	}
	sum := 0.0
	for _, f := range []struct {
		name string
		v    float64
	}{{"duplicates", c.Duplicates}, {"late", c.Late}, {"reorder", c.Reorder}, {"malformed", c.Malformed}, {"voice share", c.VoiceShare}} {
		if math.IsNaN(f.v) || f.v < 0 || f.v > 1 {
			return fmt.Errorf("%s must be between 0 and 1, got %v", f.name, f.v)
		}
		if f.name != "voice share" {
			sum += f.v
		}
	}
	if sum > 1 {
		return fmt.Errorf("duplicates+late+reorder+malformed add up to %v, more than 1", sum)
	}
	if c.Late > 0 && c.LateAge <= 0 {
		return fmt.Errorf("late age must be positive")
	}
	if c.FirstSeq < 0 {
		return fmt.Errorf("first sequence number must not be negative")
	}
	return nil
}

// CallWindow picks when a test's simulated calls happen, so that packs
// granted at effective cover them: in the current month, after effective
// (max(now−6h, start of month)), starting 65 minutes after it (Reordered
// calls reach up to an hour back), never far in the future.
func CallWindow(now time.Time) (effective, start time.Time) {
	now = now.UTC().Truncate(time.Second)
	monthStart := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	effective = now.Add(-6 * time.Hour)
	if effective.Before(monthStart) {
		effective = monthStart
	}
	return effective, effective.Add(65 * time.Minute)
}

// Event is one generated message and what it means for the expected totals.
type Event struct {
	Key   []byte // the Kafka key: the subscriber's MSISDN
	Value []byte // the message as it goes on the wire
	Kind  Kind

	ID       string    // CloudEvents id; for a Malformed message, the id it would have had
	MSISDN   string    // the subject
	CallTime time.Time // when the call started (zero for a Malformed message)
	Voice    bool      // a voice call
	Data     bool      // a data session
	SMS      bool      // a text message
	// Eligible is an event abroad (visited country ≠ home): the default
	// rating draws its billable amount from the subscriber's grants of its
	// unit (seconds, bytes or SMS).
	Eligible        bool
	BillableSeconds int64 // an eligible call's duration rounded up to a whole minute; else 0
	BillableBytes   int64 // an eligible data session's volume rounded up to 1024 bytes; else 0
	// SessionID is set on the CDR of a call that went through the session
	// API: its data.call_id, the session's id.
	SessionID string
}

// Generator makes events one at a time. It is not safe for concurrent use.
type Generator struct {
	cfg       Config
	rng       *rand.Rand
	seq       int64
	countries []weighted
	recent    []Event // ring of recent valid events, the candidates for redelivery
	recentPos int
}

// recentEvents bounds how far back a redelivery reaches.
const recentEvents = 1024

// New returns a generator for cfg, or the reason cfg is invalid.
func New(cfg Config) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.MSISDNs = append([]string(nil), cfg.MSISDNs...)
	return &Generator{
		cfg:       cfg,
		rng:       rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(cfg.Seed)^0x9e3779b97f4a7c15)),
		seq:       cfg.FirstSeq,
		countries: visitedCountries(cfg.Home),
	}, nil
}

// Next returns the next message. now is the current call time: a Fresh
// event starts then, a Reordered one up to an hour before, a Late one at
// least LateAge before.
func (g *Generator) Next(now time.Time) Event {
	now = now.UTC().Truncate(time.Second)
	c := g.cfg
	// One draw picks the kind: [0, Malformed) malformed, then duplicates,
	// late, reordered; the rest fresh.
	u := g.rng.Float64()
	malformed := c.Malformed
	duplicate := malformed + c.Duplicates
	late := duplicate + c.Late
	reordered := late + c.Reorder
	switch {
	case u < malformed:
		return g.malformed(now)
	case u < duplicate:
		if len(g.recent) == 0 {
			// Nothing to redeliver yet: send a fresh event instead.
			return g.remember(g.valid(now, Fresh))
		}
		ev := g.recent[g.rng.IntN(len(g.recent))]
		ev.Kind = Duplicate
		return ev
	case u < late:
		age := c.LateAge + time.Duration(g.rng.Int64N(int64(24*time.Hour)))
		return g.remember(g.valid(now.Add(-age).Truncate(time.Second), Late))
	case u < reordered:
		back := time.Second + time.Duration(g.rng.Int64N(int64(time.Hour)))
		return g.remember(g.valid(now.Add(-back).Truncate(time.Second), Reordered))
	default:
		return g.remember(g.valid(now, Fresh))
	}
}

func (g *Generator) remember(ev Event) Event {
	if len(g.recent) < recentEvents {
		g.recent = append(g.recent, ev)
	} else {
		g.recent[g.recentPos] = ev
		g.recentPos = (g.recentPos + 1) % recentEvents
	}
	return ev
}

func (g *Generator) nextID() (id, callID string) {
	s := g.seq
	g.seq++
	return fmt.Sprintf("cdr-%09d", s), fmt.Sprintf("c-%d", s)
}

// usage draws a realistic, valid CDR at callTime.
func (g *Generator) usage(callTime time.Time) carrier.UsageEvent {
	id, callID := g.nextID()
	msisdn := g.cfg.MSISDNs[g.rng.IntN(len(g.cfg.MSISDNs))]
	country := pick(g.rng, g.countries)
	d := carrier.UsageData{
		CallID:         callID,
		Direction:      "MO",
		VisitedCountry: country,
		Network:        "terrestrial",
	}
	if g.rng.Float64() < 0.15 {
		d.Direction = "MT"
	}
	if g.rng.Float64() < 0.20 {
		d.Network = "maritime" // the ship's own network, at sea
	}
	typ := carrier.TypeVoice
	switch r := g.rng.Float64(); {
	case r < g.cfg.VoiceShare:
		d.DurationSeconds = g.callDuration()
		d.CalledNumber = g.calledNumber(country)
	case r < g.cfg.VoiceShare+(1-g.cfg.VoiceShare)*0.6:
		typ = carrier.TypeSMS
		d.CalledNumber = g.calledNumber(country)
	default:
		typ = carrier.TypeData
		d.DurationSeconds = 60 + g.rng.Int64N(3600) // a data session
		d.VolumeBytes = g.dataVolume()
	}
	return carrier.UsageEvent{
		SpecVersion: "1.0",
		ID:          id,
		Source:      g.cfg.Source,
		Type:        typ,
		Time:        callTime,
		Subject:     msisdn,
		Data:        d,
	}
}

func (g *Generator) valid(callTime time.Time, kind Kind) Event {
	ue := g.usage(callTime)
	b, err := json.Marshal(ue)
	if err != nil {
		panic("sim: encoding a usage event: " + err.Error()) // cannot happen: plain strings and numbers
	}
	ev := Event{
		Key:      []byte(ue.Subject),
		Value:    b,
		Kind:     kind,
		ID:       ue.ID,
		MSISDN:   ue.Subject,
		CallTime: ue.Time,
		Voice:    ue.Type == carrier.TypeVoice,
		Data:     ue.Type == carrier.TypeData,
		SMS:      ue.Type == carrier.TypeSMS,
	}
	if ue.Data.VisitedCountry != g.cfg.Home {
		ev.Eligible = true
		switch {
		case ev.Voice:
			ev.BillableSeconds = BillableSeconds(ue.Data.DurationSeconds)
		case ev.Data:
			ev.BillableBytes = BillableBytes(ue.Data.VolumeBytes)
		}
	}
	return ev
}

// BillableBytes is the default rating of a data session's volume: rounded
// up to the built-in tariff's data increment (billing.DefaultDataIncrement,
// 1024 bytes), 0 staying 0.
func BillableBytes(volume int64) int64 {
	if volume <= 0 {
		return 0
	}
	return (volume + billing.DefaultDataIncrement - 1) / billing.DefaultDataIncrement * billing.DefaultDataIncrement
}

// dataVolume draws a data session's volume: a few sessions that barely
// started (under 1 KB), mostly messaging and browsing around a few
// megabytes (log-normal, median 4 MB), a tail of video calls and downloads
// up to 2 GB. Never 0: carrier.UsageData leaves a zero volume out, and a
// data event without one is refused.
func (g *Generator) dataVolume() int64 {
	if g.rng.Float64() < 0.03 {
		return 1 + g.rng.Int64N(1023)
	}
	v := math.Exp(math.Log(4<<20) + 1.4*g.rng.NormFloat64())
	return int64(min(max(v, 1), 2<<30))
}

// BillableSeconds is the default rating of a call's duration: rounded up to
// a whole minute, 0 staying 0.
func BillableSeconds(duration int64) int64 {
	if duration <= 0 {
		return 0
	}
	return (duration + 59) / 60 * 60
}

// callDuration draws a voice call's length: a few unanswered calls (0s),
// mostly between 30s and 15min (log-normal, median 3min), a long tail up to
// 4 hours.
func (g *Generator) callDuration() int64 {
	if g.rng.Float64() < 0.05 {
		return 0
	}
	d := math.Exp(math.Log(180) + 0.9*g.rng.NormFloat64())
	return int64(min(max(d, 1), 4*3600))
}

// calledNumber draws the other party: mostly family at home (mobile or a
// Beijing landline), sometimes a local number in the visited country.
func (g *Generator) calledNumber(visited string) string {
	digits := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteByte(byte('0' + g.rng.IntN(10)))
		}
		return b.String()
	}
	switch r := g.rng.Float64(); {
	case r < 0.55:
		prefixes := []string{"13", "15", "17", "18", "19"}
		return "+86" + prefixes[g.rng.IntN(len(prefixes))] + digits(9)
	case r < 0.85:
		return "+8610" + digits(8)
	default:
		code, ok := dialingCodes[visited]
		if !ok {
			code = "86"
		}
		return "+" + code + digits(8)
	}
}

// malformed returns bytes carrier.DecodeUsageEvent rejects: a third garbage,
// a third truncated JSON, a third a document with one invalid field.
func (g *Generator) malformed(now time.Time) Event {
	ue := g.usage(now)
	ev := Event{Key: []byte(ue.Subject), Kind: Malformed, ID: ue.ID, MSISDN: ue.Subject}
	good, _ := json.Marshal(ue)
	switch g.rng.IntN(3) {
	case 0: // line noise: never starts a JSON value
		b := make([]byte, 8+g.rng.IntN(120))
		for i := range b {
			b[i] = byte(g.rng.IntN(256))
		}
		b[0] = 0xff
		ev.Value = b
	case 1: // cut short: the closing brace at least is missing
		ev.Value = good[:1+g.rng.IntN(len(good)-1)]
	default:
		ev.Value = invalidField(g.rng, good)
	}
	return ev
}

// invalidField breaks one field of a valid encoded event.
func invalidField(rng *rand.Rand, good []byte) []byte {
	var doc map[string]any
	if err := json.Unmarshal(good, &doc); err != nil {
		panic("sim: re-reading a usage event: " + err.Error())
	}
	data := doc["data"].(map[string]any)
	switch rng.IntN(9) {
	case 0:
		doc["specversion"] = "0.3"
	case 1:
		doc["type"] = "carrier.usage.fax"
	case 2:
		doc["time"] = "yesterday at noon"
	case 3:
		doc["subject"] = strings.TrimPrefix(doc["subject"].(string), "+") // national format, no +
	case 4:
		delete(doc, "id")
	case 5:
		data["direction"] = "XX"
	case 6:
		data["duration_seconds"] = -rng.IntN(600) - 1
	case 7:
		data["visited_country"] = "Singapore"
	default:
		data["network"] = "satellite"
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic("sim: encoding a broken usage event: " + err.Error())
	}
	return b
}

type weighted struct {
	value  string
	weight float64
}

// pick draws from a table whose weights add up to 1.
func pick(rng *rand.Rand, table []weighted) string {
	r := rng.Float64()
	for _, w := range table {
		if r < w.weight {
			return w.value
		}
		r -= w.weight
	}
	return table[len(table)-1].value
}

// visitedCountries weighs where ocean-going ships call: big container and
// bulk ports, plus a small share of calls made at home (domestic, not
// eligible).
func visitedCountries(home string) []weighted {
	ports := []weighted{
		{"SG", 16}, {"JP", 10}, {"KR", 10}, {"NL", 10}, {"DE", 8},
		{"US", 10}, {"BR", 8}, {"AU", 8}, {"AE", 10},
	}
	table := []weighted{{home, 6}}
	for _, p := range ports {
		if p.value != home {
			table = append(table, p)
		}
	}
	total := 0.0
	for _, w := range table {
		total += w.weight
	}
	for i := range table {
		table[i].weight /= total
	}
	return table
}

var dialingCodes = map[string]string{
	"SG": "65", "JP": "81", "KR": "82", "NL": "31", "DE": "49", "US": "1",
	"BR": "55", "AU": "61", "AE": "971", "CN": "86", "PH": "63", "IN": "91",
	"ID": "62", "VN": "84", "GR": "30", "NO": "47",
}

// Generate makes n messages from cfg, hands each to emit in order and
// returns the totals. The i-th message's current time is cfg.Start +
// i*cfg.Step, so the output depends on cfg alone.
func Generate(cfg Config, n int, emit func(key, value []byte, kind Kind)) (*Summary, error) {
	if cfg.Start.IsZero() {
		return nil, fmt.Errorf("sim: Generate needs a start time")
	}
	g, err := New(cfg)
	if err != nil {
		return nil, err
	}
	sum := NewSummary(cfg)
	for i := range n {
		ev := g.Next(cfg.Start.Add(time.Duration(i) * cfg.Step))
		sum.Record(ev)
		if emit != nil {
			emit(ev.Key, ev.Value, ev.Kind)
		}
	}
	return sum, nil
}
