package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wuyou/wuyou/carrier/sim"
	"github.com/wuyou/wuyou/token"
)

// propMsg is one message of the property test's stream: a carriersim
// message (valid, redelivered, late or malformed) or a hostile one.
type propMsg struct {
	msg  kafka.Message
	sim  *simMessage // nil for a hostile message
	code string      // a message that must be dead-lettered: its error_code
	// truncated: its dead letter must be cut to fit the broker.
	truncated bool
}

// hostileGen makes one hostile message. orig is an applied valid event of
// the stream so far (for conflicting duplicates); other is a registered
// MSISDN other than orig's.
type hostileGen struct {
	name string
	make func(rng *rand.Rand, n int, orig wireUsage, origKey []byte, other string) propMsg
}

// propHostileClasses is every class of hostile input, each with the
// error_code it must be dead-lettered with.
func propHostileClasses() []hostileGen {
	q := strconv.Quote
	id := func(n int) string { return fmt.Sprintf("hostile-%06d", n) }
	doc := func(n int, u wireUsage) []field { return eventFields(id(n), u.Subject, u.Time, 61) }
	dl := func(key []byte, value []byte, code string) propMsg {
		return propMsg{msg: kafka.Message{Key: key, Value: value}, code: code}
	}
	return []hostileGen{
		{"random bytes", func(rng *rand.Rand, n int, u wireUsage, key []byte, other string) propMsg {
			b := make([]byte, 1+rng.IntN(300))
			for i := range b {
				b[i] = byte(rng.IntN(256))
			}
			b[0] = 0xfe
			return dl(key, b, "malformed_json")
		}},
		{"empty", func(rng *rand.Rand, n int, u wireUsage, key []byte, other string) propMsg {
			return dl(key, []byte{}, "malformed_json")
		}},
		{"JSON array", func(rng *rand.Rand, n int, u wireUsage, key []byte, other string) propMsg {
			return dl(key, append(append([]byte("["), encodeFields(doc(n, u))...), ']'), "malformed_json")
		}},
		{"two documents", func(rng *rand.Rand, n int, u wireUsage, key []byte, other string) propMsg {
			return dl(key, append(encodeFields(doc(n, u)), encodeFields(doc(n+1, u))...), "malformed_json")
		}},
		{"document then garbage", func(rng *rand.Rand, n int, u wireUsage, key []byte, other string) propMsg {
			return dl(key, append(encodeFields(doc(n, u)), "GARBAGE"...), "malformed_json")
		}},
		{"subject twice", func(rng *rand.Rand, n int, u wireUsage, key []byte, other string) propMsg {
			return dl(key, encodeFields(insertAfter(doc(n, u), "subject", field{"subject", q(other)})), "duplicate_key")
		}},
		{"SUBJECT next to subject", func(rng *rand.Rand, n int, u wireUsage, key []byte, other string) propMsg {
			return dl(key, encodeFields(insertAfter(doc(n, u), "subject", field{"SUBJECT", q(other)})), "duplicate_key")
		}},
		{"SUBJECT alone", func(rng *rand.Rand, n int, u wireUsage, key []byte, other string) propMsg {
			return dl(key, encodeFields(append(without(doc(n, u), "subject"), field{"SUBJECT", q(other)})), "invalid_field")
		}},
		{"time in 9999", func(rng *rand.Rand, n int, u wireUsage, key []byte, other string) propMsg {
			return dl(key, encodeFields(withField(doc(n, u), "time", q("9999-12-31T23:00:00Z"))), "invalid_field")
		}},
		{"subject +0123456789", func(rng *rand.Rand, n int, u wireUsage, key []byte, other string) propMsg {
			return dl([]byte("+0123456789"), encodeFields(withField(doc(n, u), "subject", q("+0123456789"))), "invalid_field")
		}},
		{"over 64 KiB", func(rng *rand.Rand, n int, u wireUsage, key []byte, other string) propMsg {
			return dl(key, encodeFields(append(doc(n, u), field{"padding", q(strings.Repeat("y", 65<<10+rng.IntN(8<<10)))})), "too_large")
		}},
		{"same identity, another MSISDN", func(rng *rand.Rand, n int, u wireUsage, key []byte, other string) propMsg {
			fs := eventFields(u.ID, other, u.Time, u.Data.DurationSeconds+60)
			fs = withField(fs, "source", q(u.Source))
			return dl(key, encodeFields(fs), "conflicting_duplicate")
		}},
		{"same identity, another duration", func(rng *rand.Rand, n int, u wireUsage, key []byte, other string) propMsg {
			fs := eventFields(u.ID, u.Subject, u.Time, u.Data.DurationSeconds+61+int64(rng.IntN(3600)))
			fs = withField(fs, "source", q(u.Source))
			return dl(key, encodeFields(fs), "conflicting_duplicate")
		}},
	}
}

// hugeMessage is a message as large as the broker takes: too_large, and its
// dead letter does not fit beside its headers, so it is cut.
func hugeMessage(rng *rand.Rand, key []byte) propMsg {
	b := make([]byte, brokerMaxMessageBytes-120)
	head := []byte(`{"specversion":"1.0","id":"huge","source":"urn:carrier:hostile","padding":"`)
	copy(b, head)
	for i := len(head); i < len(b)-2; i++ {
		b[i] = 'a' + byte(rng.IntN(26))
	}
	copy(b[len(b)-2:], `"}`)
	return propMsg{msg: kafka.Message{Key: key, Value: b}, code: "too_large", truncated: true}
}

// TestHostilePipelineProperty sends a random stream — carriersim's valid
// events with redeliveries, reordering, late and malformed ones, mixed
// with every class of hostile input (random bytes, empty, arrays, two
// documents, trailing garbage, duplicate and case-variant keys, far-future
// times, impossible MSISDNs, oversized messages, conflicting duplicates of
// applied events) and events for MSISDNs enrolled only at the end — to
// wuyoud running as a real process that is SIGKILLed at random points and
// restarted. At the end:
//
//   - every valid event is applied exactly once: per seafarer one debit per
//     distinct event and Σ billable, Σ covered, Σ overage and the balance
//     equal the model;
//   - the DLQ holds exactly the bad messages (a multiset of original bytes;
//     a DLQ'd message may appear again only with the same bytes, after a
//     redelivery), each with its error_code;
//   - the late topic holds exactly the late events;
//   - wuyou.quota.low and .exhausted: one id per trigger, reporting the
//     call that crossed the mark; a repeated id carries the same data;
//   - after the last restart, a valid event sent right behind a hostile
//     one on its partition is applied within 5 s.
func TestHostilePipelineProperty(t *testing.T) {
	events, registered := 12000, 60
	if testing.Short() {
		events, registered = 2000, 16
	}
	const (
		group      = "hostile-property"
		partitions = 4
		home       = "CN"
	)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	kills := 2 + rng.IntN(2)
	t.Logf("seed %d (events %d, kills %d)", seed, events, kills)

	began := time.Now()
	bin := MustBuildWuyoud(t)
	st := MustWuyouStackWithBroker(t, partitions, kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(brokerMaxMessageBytes)}))
	union := st.MustToken(t, token.RoleUnion, "staff-1", "")
	procs := &processLog{dir: t.TempDir()}
	t.Cleanup(func() { procs.RequireNoRaceOrPanic(t) })
	p := procs.MustStart(t, bin, st, group)

	var numbers []string
	for i := 1; i <= registered; i++ {
		numbers = append(numbers, fmt.Sprintf("+86135%08d", i))
	}
	unregistered := []string{"+8613599900001", "+8613599900002"} // enrolled at the end
	companyID := MustCompany(t, p.api, union, "Property Shipping")
	crew := MustEnrolCrew(t, p.api, union, companyID, numbers)
	effective, start := sim.CallWindow(time.Now())
	packs := []int64{600, 1800, 6000, 60000} // multiples of 5: the low mark is exact
	grants := map[string]*modelGrant{}
	for i, size := range packs {
		programmeID := MustProgramme(t, p.api, union, size, effective)
		var ids []string
		for j := i; j < len(crew); j += len(packs) {
			ids = append(ids, crew[j].ID)
			grants[crew[j].ID] = &modelGrant{Seconds: size, Effective: effective, Expires: effective.Add(30 * 24 * time.Hour)}
		}
		MustIssue(t, p.api, union, programmeID, ids, effective)
	}

	// The carrier's stream, and hostile messages at random places in it.
	cfg := sim.DefaultConfig()
	cfg.Seed = int64(seed % (1 << 62))
	cfg.Home = home
	cfg.MSISDNs = append(append([]string{}, numbers...), unregistered...)
	cfg.Duplicates, cfg.Reorder, cfg.Late, cfg.Malformed = 0.08, 0.05, 0.01, 0.02
	cfg.Start, cfg.Step = start, 200*time.Millisecond
	simMsgs, _ := MustSimStream(t, cfg, events)
	isRegistered := map[string]bool{}
	for _, m := range numbers {
		isRegistered[m] = true
	}
	classes := propHostileClasses()
	var stream []propMsg
	var appliedSoFar []*simMessage // valid, not late, registered: originals for conflicting duplicates
	hostileN := 0
	addHostile := func(g hostileGen) {
		orig := appliedSoFar[rng.IntN(len(appliedSoFar))]
		other := numbers[rng.IntN(len(numbers))]
		for other == orig.Usage.Subject {
			other = numbers[rng.IntN(len(numbers))]
		}
		hostileN += 2
		stream = append(stream, g.make(rng, hostileN, orig.Usage, orig.Msg.Key, other))
	}
	hugeAt := len(simMsgs)/3 + rng.IntN(len(simMsgs)/3)
	for i := range simMsgs {
		m := &simMsgs[i]
		pm := propMsg{msg: m.Msg, sim: m}
		if m.Malformed {
			// carriersim's malformed messages: garbage and truncated JSON,
			// or a well-formed document with one invalid field.
			pm.code = "malformed_json"
			if json.Valid(m.Msg.Value) {
				pm.code = "invalid_field"
			}
		}
		stream = append(stream, pm)
		if !m.Malformed && !m.Late && isRegistered[m.Usage.Subject] {
			appliedSoFar = append(appliedSoFar, m)
		}
		if len(appliedSoFar) > 0 && rng.Float64() < 0.04 {
			addHostile(classes[rng.IntN(len(classes))])
		}
		if i == hugeAt {
			stream = append(stream, hugeMessage(rng, m.Msg.Key))
		}
	}
	for _, g := range classes { // every class at least once
		addHostile(g)
	}
	t.Logf("stream: %d carriersim messages and %d hostile ones", len(simMsgs), len(stream)-len(simMsgs))

	// The stream arrives in kills+1 parts; each instance is SIGKILLed at a
	// random point of its part.
	parts := splitEven(stream, kills+1)
	for i := range kills {
		if p == nil {
			p = procs.MustStart(t, bin, st, group)
		}
		MustKillWhileStreaming(t, st, p, group, partitions, propKafka(parts[i]), rng, i+1)
		p = nil
		MustRemoveGroupMembers(t, st, group)
	}
	MustProduce(t, st.brokers, st.topics.Usage, propKafka(parts[kills]))
	p = procs.MustStart(t, bin, st, group)
	drain := time.Now()
	MustWaitCommittedToEnd(t, st, group, st.topics.Usage, partitions, 2*time.Minute)
	t.Logf("the last instance drained the rest in %s", time.Since(drain).Round(time.Millisecond))

	// After the last restart: each class of hostile message, then a valid
	// event with the same key (so on the same partition, behind it),
	// applied within 5 s.
	calls := distinctCalls(simMsgs, home)
	bySubject := map[string]seededSeafarer{}
	for _, sf := range crew {
		bySubject[sf.MSISDN] = sf
	}
	probeAt := start.Add(time.Duration(events) * cfg.Step)
	for i, g := range classes {
		orig := appliedSoFar[rng.IntN(len(appliedSoFar))]
		other := numbers[rng.IntN(len(numbers))]
		for other == orig.Usage.Subject {
			other = numbers[rng.IntN(len(numbers))]
		}
		hostileN += 2
		h := g.make(rng, hostileN, orig.Usage, orig.Msg.Key, other)
		stream = append(stream, h)
		sf := bySubject[orig.Usage.Subject]
		probeID := fmt.Sprintf("probe-%02d", i)
		at := probeAt.Add(time.Duration(i) * time.Second)
		probe := kafka.Message{Key: orig.Msg.Key, Value: encodeFields(withField(eventFields(probeID, sf.MSISDN, at, 61), "source", strconv.Quote(cfg.Source)))}
		calls[sf.MSISDN] = append(calls[sf.MSISDN], modelCall{ID: probeID, At: at, Billable: 120})
		MustProduce(t, st.brokers, st.topics.Usage, []kafka.Message{h.msg})
		MustProduce(t, st.brokers, st.topics.Usage, []kafka.Message{probe})
		sent := time.Now()
		MustWaitFor(t, probeDeadline, fmt.Sprintf("the valid event behind a %q message to be applied", g.name), func() bool {
			return MustObservedAccount(t, p.api, union, sf.ID).DebitEventIDs[probeID] == 1
		})
		t.Logf("after %q: the valid event was applied %s after it was sent", g.name, time.Since(sent).Round(time.Millisecond))
	}
	MustWaitCommittedToEnd(t, st, group, st.topics.Usage, partitions, 30*time.Second)

	// The MSISDNs nobody held are enrolled now: their held events apply.
	newcomers := MustEnrolCrew(t, p.api, union, companyID, unregistered)
	accounts := append(append([]seededSeafarer{}, crew...), newcomers...)
	require.NotEmpty(t, calls[unregistered[0]], "the stream has calls of MSISDNs enrolled only at the end")

	// Every valid event applied exactly once; balances equal the model.
	now := time.Now()
	for _, sf := range accounts {
		want := expectAccount(calls[sf.MSISDN], grants[sf.ID], now)
		var got observedAccount
		MustWaitFor(t, 10*time.Second, sf.MSISDN+"'s debits", func() bool {
			got = MustObservedAccount(t, p.api, union, sf.ID)
			return got.Debits >= want.Debits
		})
		RequireAccountMatches(t, sf.MSISDN, want, got)
	}

	// The DLQ holds exactly the bad messages.
	wantDLQ := map[string]int{}
	codeOf := map[string]string{}
	var huge []byte
	for _, m := range stream {
		if m.code == "" {
			continue
		}
		if m.truncated {
			huge = m.msg.Value
			continue
		}
		wantDLQ[string(m.msg.Value)]++
		codeOf[string(m.msg.Value)] = m.code
	}
	gotDLQ := map[string]int{}
	var hugeLetters int
	for _, m := range MustReadToEnd(t, st.brokers, st.topics.DeadLetter, 1) {
		h := headerMap(m)
		require.NotEmpty(t, h["error"], "dead letter %.200q says what is wrong", m.Value)
		if h["truncated"] == "true" {
			require.True(t, len(m.Value) < len(huge) && bytes.HasPrefix(huge, m.Value), "a truncated dead letter is the start of the one oversized message")
			require.Equal(t, "too_large", h["error_code"])
			hugeLetters++
			continue
		}
		code, ok := codeOf[string(m.Value)]
		require.True(t, ok, "dead letter %.300q (%s: %s) was sent as a bad message", m.Value, h["error_code"], h["error"])
		require.Equal(t, code, h["error_code"], "error_code of %.300q (%s)", m.Value, h["error"])
		gotDLQ[string(m.Value)]++
	}
	require.Positive(t, hugeLetters, "the oversized message is dead-lettered, cut to fit")
	var missing []string
	for v, n := range wantDLQ {
		if gotDLQ[v] < n {
			missing = append(missing, fmt.Sprintf("%s ×%d (got %d): %.120q", codeOf[v], n, gotDLQ[v], v))
		}
	}
	require.Empty(t, missing, "every bad message is on the DLQ (redelivered copies allowed)")

	// The late topic holds exactly the late events.
	wantLate := map[string]bool{}
	for _, m := range simMsgs {
		if m.Late {
			wantLate[m.Usage.ID] = true
		}
	}
	gotLate := map[string]bool{}
	for _, m := range MustReadToEnd(t, st.brokers, st.topics.Late, 1) {
		var u wireUsage
		require.NoError(t, json.Unmarshal(m.Value, &u))
		gotLate[u.ID] = true
	}
	require.Equal(t, wantLate, gotLate, "the late topic holds exactly the late events")

	// Notifications: one id per trigger, reporting the call that crossed.
	ns := MustNotifications(t, st, "wuyou.quota.low", "wuyou.quota.exhausted")
	RequireSameIDSameData(t, ns)
	for _, sf := range crew {
		lowID, exhaustedID := crossings(calls[sf.MSISDN], grants[sf.ID].Seconds)
		for typ, wantEvent := range map[string]string{"wuyou.quota.low": lowID, "wuyou.quota.exhausted": exhaustedID} {
			var of []notification
			for _, n := range ns {
				if n.Type == typ && n.Subject == sf.MSISDN {
					of = append(of, n)
				}
			}
			distinct := RequireSameIDSameData(t, of)
			if wantEvent == "" {
				require.Empty(t, distinct, "%s: no %s: %s", sf.MSISDN, typ, describe(of))
				continue
			}
			require.Len(t, distinct, 1, "%s: one %s: %s", sf.MSISDN, typ, describe(of))
			var d quotaLowData
			require.NoError(t, json.Unmarshal(distinct[0].Data, &d))
			require.Equal(t, wantEvent, d.EventID, "%s: %s reports the call that crossed the mark", sf.MSISDN, typ)
		}
	}

	RequireReady(t, p.api)
	// What `wuyouctl audit` checks: every balance explained by its ledger.
	audited := MustLedgerExplainEveryBalance(t, p.api, union)
	require.GreaterOrEqual(t, audited, len(crew), "every seafarer with grants was audited")
	p.MustTerminate(t, 20*time.Second)
	t.Logf("done in %s", time.Since(began).Round(time.Millisecond))
}

// crossings walks a seafarer's calls in the order they were applied (one
// partition per MSISDN, in the order sent) against one pack of pack
// seconds, and returns the calls that took the balance below 20% of the
// pack and to zero ("" when it never did).
func crossings(calls []modelCall, pack int64) (low, exhausted string) {
	remaining, mark := pack, pack/5
	for _, c := range calls {
		covered := min(c.Billable, remaining)
		if covered == 0 {
			continue
		}
		before := remaining
		remaining -= covered
		if low == "" && remaining < mark && before >= mark {
			low = c.ID
		}
		if remaining == 0 && before > 0 {
			exhausted = c.ID
		}
	}
	return low, exhausted
}

// propKafka returns the wire messages of msgs.
func propKafka(msgs []propMsg) []kafka.Message {
	out := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		out[i] = m.msg
	}
	return out
}
