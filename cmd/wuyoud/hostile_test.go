package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
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

// This file pins what Wuyou does with hostile input on carrier.usage.v1:
// every message that cannot be applied goes to the dead-letter topic with
// its original bytes and a stable error_code (or to the late topic, or is
// held for an MSISDN not registered yet), and no single message stops
// metering: the valid event sent right after it is applied within 5 s.

const hostileSource = "urn:carrier:hostile"

// probeDeadline is how soon a valid event sent right after a hostile
// message must be applied.
const probeDeadline = 5 * time.Second

// field is one top-level member of an event document, its value already
// encoded as JSON.
type field struct{ key, raw string }

// eventFields returns the members of a valid voice event, in the order the
// carrier sends them. Tests edit the slice to make hostile variants.
func eventFields(id, msisdn string, at time.Time, seconds int64) []field {
	q := strconv.Quote
	return []field{
		{"specversion", q("1.0")},
		{"id", q(id)},
		{"source", q(hostileSource)},
		{"type", q("carrier.usage.voice")},
		{"time", q(at.UTC().Format(time.RFC3339))},
		{"subject", q(msisdn)},
		{"data", dataJSON("c-"+id, seconds)},
	}
}

// dataJSON is the data member of a voice call abroad (Singapore).
func dataJSON(callID string, seconds int64, extra ...field) string {
	fs := append([]field{
		{"call_id", strconv.Quote(callID)},
		{"direction", `"MO"`},
		{"duration_seconds", strconv.FormatInt(seconds, 10)},
		{"called_number", `"+861012345678"`},
		{"visited_country", `"SG"`},
		{"network", `"terrestrial"`},
	}, extra...)
	return string(encodeFields(fs))
}

// encodeFields writes members as one JSON object, keys as given (repeats
// and case variants included).
func encodeFields(fs []field) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range fs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(f.key))
		b.WriteByte(':')
		b.WriteString(f.raw)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// withField returns fs with the member key replaced (or appended when
// absent).
func withField(fs []field, key, raw string) []field {
	out := append([]field(nil), fs...)
	for i := range out {
		if out[i].key == key {
			out[i].raw = raw
			return out
		}
	}
	return append(out, field{key, raw})
}

// without returns fs without the member key.
func without(fs []field, key string) []field {
	var out []field
	for _, f := range fs {
		if f.key != key {
			out = append(out, f)
		}
	}
	return out
}

// insertAfter returns fs with f inserted right after the member key.
func insertAfter(fs []field, key string, f field) []field {
	var out []field
	for _, x := range fs {
		out = append(out, x)
		if x.key == key {
			out = append(out, f)
		}
	}
	return out
}

// outcome is what one message sent must become.
type outcome int

const (
	// applied: debited once to the seafarer holding the MSISDN.
	applied outcome = iota
	// dropped: a byte-for-byte redelivery of an applied event; no effect.
	dropped
	// deadLettered: on the DLQ with its original bytes and code.
	deadLettered
	// late: on the late topic, never applied.
	late
	// held: kept until its MSISDN is enrolled (the case enrols it), then
	// applied to that seafarer.
	held
)

// hostileMsg is one message a case sends and what it must become.
type hostileMsg struct {
	key, value []byte
	want       outcome
	code       string // deadLettered: the error_code
	truncated  bool   // deadLettered: the copy must be cut to fit the broker
	msisdn     string // applied, held: whose call it is
	call       modelCall
}

// hostileWorld is one stack and one in-process wuyoud shared by the cases,
// with the model of every account.
type hostileWorld struct {
	st        *wuyouStack
	node      *wuyoudNode
	union     string
	companyID string
	self      seededSeafarer // receives the probes; holds a large pack
	victim    seededSeafarer // hostile messages try to charge it; never charged
	accounts  []seededSeafarer
	grants    map[string]*modelGrant    // by seafarer id
	calls     map[string][]modelCall    // by MSISDN: what must be applied
	enrolled  map[string]seededSeafarer // by MSISDN
	start     time.Time                 // call times are start + seq seconds
	seq       int
	rng       *rand.Rand
}

// MustHostileWorld starts a stack with one usage partition (so a hostile
// message and the probe after it are consumed in order, and a message that
// stops the consumer stops the probe) and the broker's message.max.bytes
// set explicitly, and enrols self and victim with a pack each.
func MustHostileWorld(tb testing.TB, rng *rand.Rand) *hostileWorld {
	tb.Helper()
	st := MustWuyouStackWithBroker(tb, 1, kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(brokerMaxMessageBytes)}))
	node := st.MustStartNode(tb, "hostile")
	union := st.MustToken(tb, token.RoleUnion, "staff-1", "")
	effective, start := sim.CallWindow(time.Now())
	w := &hostileWorld{st: st, node: node, union: union, grants: map[string]*modelGrant{}, calls: map[string][]modelCall{},
		enrolled: map[string]seededSeafarer{}, start: start, rng: rng}
	w.companyID = MustCompany(tb, node.api, union, "Hostile Seas")
	crew := MustEnrolCrew(tb, node.api, union, w.companyID, []string{"+8613755500001", "+8613755500002"})
	w.self, w.victim = crew[0], crew[1]
	for i, size := range []int64{200000, 1800} {
		programmeID := MustProgramme(tb, node.api, union, size, effective)
		MustIssue(tb, node.api, union, programmeID, []string{crew[i].ID}, effective)
		w.grants[crew[i].ID] = &modelGrant{Seconds: size, Effective: effective, Expires: effective.Add(30 * 24 * time.Hour)}
	}
	for _, sf := range crew {
		w.enrolled[sf.MSISDN] = sf
		w.accounts = append(w.accounts, sf)
	}
	return w
}

// nextTime is the call time of the next event: inside the packs' validity
// and the current month, never in the future.
func (w *hostileWorld) nextTime() time.Time {
	w.seq++
	return w.start.Add(time.Duration(w.seq) * time.Second)
}

// valid is a valid voice call and the applied outcome it must have.
func (w *hostileWorld) valid(id, msisdn string, seconds int64) hostileMsg {
	at := w.nextTime()
	return hostileMsg{key: []byte(msisdn), value: encodeFields(eventFields(id, msisdn, at, seconds)), want: applied, msisdn: msisdn,
		call: modelCall{ID: id, At: at, Billable: sim.BillableSeconds(seconds)}}
}

func dead(code string, key string, value []byte) hostileMsg {
	return hostileMsg{key: []byte(key), value: value, want: deadLettered, code: code}
}

// hostileCase is one class of hostile input: the messages it sends, in
// order, each with what it must become.
type hostileCase struct {
	name string
	msgs func(w *hostileWorld, id string) []hostileMsg
}

func hostileCases() []hostileCase {
	q := strconv.Quote
	return []hostileCase{
		{"random bytes are malformed_json", func(w *hostileWorld, id string) []hostileMsg {
			b := make([]byte, 200)
			for i := range b {
				b[i] = byte(w.rng.IntN(256))
			}
			b[0] = 0xff
			return []hostileMsg{dead("malformed_json", w.self.MSISDN, b)}
		}},
		{"an empty message is malformed_json", func(w *hostileWorld, id string) []hostileMsg {
			return []hostileMsg{dead("malformed_json", w.self.MSISDN, []byte{})}
		}},
		{"a JSON array of events is malformed_json", func(w *hostileWorld, id string) []hostileMsg {
			ev := encodeFields(eventFields(id, w.self.MSISDN, w.nextTime(), 61))
			return []hostileMsg{dead("malformed_json", w.self.MSISDN, append(append([]byte("["), ev...), ']'))}
		}},
		{"JSON null is malformed_json", func(w *hostileWorld, id string) []hostileMsg {
			return []hostileMsg{dead("malformed_json", w.self.MSISDN, []byte("null"))}
		}},
		{"truncated JSON is malformed_json", func(w *hostileWorld, id string) []hostileMsg {
			ev := encodeFields(eventFields(id, w.self.MSISDN, w.nextTime(), 61))
			return []hostileMsg{dead("malformed_json", w.self.MSISDN, ev[:len(ev)/2])}
		}},
		{"two documents in one message are malformed_json", func(w *hostileWorld, id string) []hostileMsg {
			a := encodeFields(eventFields(id+"-a", w.self.MSISDN, w.nextTime(), 61))
			b := encodeFields(eventFields(id+"-b", w.victim.MSISDN, w.nextTime(), 3600))
			return []hostileMsg{dead("malformed_json", w.self.MSISDN, append(a, b...))}
		}},
		{"a document followed by garbage is malformed_json", func(w *hostileWorld, id string) []hostileMsg {
			ev := encodeFields(eventFields(id, w.self.MSISDN, w.nextTime(), 61))
			return []hostileMsg{dead("malformed_json", w.self.MSISDN, append(ev, "GARBAGE"...))}
		}},
		{"subject twice is duplicate_key", func(w *hostileWorld, id string) []hostileMsg {
			fs := insertAfter(eventFields(id, w.self.MSISDN, w.nextTime(), 61), "subject", field{"subject", q(w.victim.MSISDN)})
			return []hostileMsg{dead("duplicate_key", w.self.MSISDN, encodeFields(fs))}
		}},
		{"id twice is duplicate_key", func(w *hostileWorld, id string) []hostileMsg {
			fs := insertAfter(eventFields(id, w.self.MSISDN, w.nextTime(), 61), "id", field{"id", q(id + "-other")})
			return []hostileMsg{dead("duplicate_key", w.self.MSISDN, encodeFields(fs))}
		}},
		{"duration_seconds twice inside data is duplicate_key", func(w *hostileWorld, id string) []hostileMsg {
			fs := withField(eventFields(id, w.self.MSISDN, w.nextTime(), 61), "data", dataJSON("c-"+id, 61, field{"duration_seconds", "0"}))
			return []hostileMsg{dead("duplicate_key", w.self.MSISDN, encodeFields(fs))}
		}},
		{"SUBJECT after subject, charging another seafarer, is duplicate_key", func(w *hostileWorld, id string) []hostileMsg {
			fs := insertAfter(eventFields(id, w.self.MSISDN, w.nextTime(), 3600), "subject", field{"SUBJECT", q(w.victim.MSISDN)})
			return []hostileMsg{dead("duplicate_key", w.victim.MSISDN, encodeFields(fs))}
		}},
		{"Subject before subject, charging another seafarer, is duplicate_key", func(w *hostileWorld, id string) []hostileMsg {
			fs := eventFields(id, w.self.MSISDN, w.nextTime(), 3600)
			fs = append([]field{{"Subject", q(w.victim.MSISDN)}}, fs...)
			return []hostileMsg{dead("duplicate_key", w.victim.MSISDN, encodeFields(fs))}
		}},
		{"DATA next to data is duplicate_key", func(w *hostileWorld, id string) []hostileMsg {
			fs := append(eventFields(id, w.self.MSISDN, w.nextTime(), 61), field{"DATA", dataJSON("c-"+id, 7200)})
			return []hostileMsg{dead("duplicate_key", w.self.MSISDN, encodeFields(fs))}
		}},
		{"SUBJECT alone is an extension key, so subject is missing: invalid_field", func(w *hostileWorld, id string) []hostileMsg {
			fs := without(eventFields(id, w.self.MSISDN, w.nextTime(), 61), "subject")
			fs = append(fs, field{"SUBJECT", q(w.victim.MSISDN)})
			return []hostileMsg{dead("invalid_field", w.victim.MSISDN, encodeFields(fs))}
		}},
		{"a call time in 9999 is invalid_field", func(w *hostileWorld, id string) []hostileMsg {
			fs := withField(eventFields(id, w.self.MSISDN, w.nextTime(), 61), "time", q("9999-12-31T23:00:00Z"))
			return []hostileMsg{dead("invalid_field", w.self.MSISDN, encodeFields(fs))}
		}},
		{"a call time 25h ahead, beyond the 24h clock skew, is invalid_field", func(w *hostileWorld, id string) []hostileMsg {
			fs := eventFields(id, w.self.MSISDN, time.Now().Add(25*time.Hour), 61)
			return []hostileMsg{dead("invalid_field", w.self.MSISDN, encodeFields(fs))}
		}},
		{"subject +0123456789, which enrolment never accepts, is invalid_field", func(w *hostileWorld, id string) []hostileMsg {
			fs := eventFields(id, "+0123456789", w.nextTime(), 61)
			return []hostileMsg{dead("invalid_field", "+0123456789", encodeFields(fs))}
		}},
		{"an event over 64 KiB is too_large, kept whole", func(w *hostileWorld, id string) []hostileMsg {
			fs := append(eventFields(id, w.self.MSISDN, w.nextTime(), 61), field{"padding", q(strings.Repeat("x", 70<<10))})
			return []hostileMsg{dead("too_large", w.self.MSISDN, encodeFields(fs))}
		}},
		{"an event as large as the broker takes is too_large, its dead letter cut to fit", func(w *hostileWorld, id string) []hostileMsg {
			// The largest value a producer can send in one record under
			// message.max.bytes (with room for the record's own framing):
			// the dead letter's headers do not fit beside it.
			head := encodeFields(eventFields(id, w.self.MSISDN, w.nextTime(), 61))
			head = append(head[:len(head)-1], `,"padding":"`...)
			b := make([]byte, brokerMaxMessageBytes-120)
			copy(b, head)
			const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
			for i := len(head); i < len(b)-2; i++ {
				b[i] = letters[w.rng.IntN(len(letters))]
			}
			copy(b[len(b)-2:], `"}`)
			m := dead("too_large", w.self.MSISDN, b)
			m.truncated = true
			return []hostileMsg{m}
		}},
		{"the same identity for a second MSISDN is a conflicting_duplicate", func(w *hostileWorld, id string) []hostileMsg {
			first := w.valid(id, w.self.MSISDN, 61)
			second := encodeFields(eventFields(id, w.victim.MSISDN, first.call.At, 61))
			return []hostileMsg{first, dead("conflicting_duplicate", w.victim.MSISDN, second)}
		}},
		{"the same identity with another duration is a conflicting_duplicate", func(w *hostileWorld, id string) []hostileMsg {
			first := w.valid(id, w.self.MSISDN, 61)
			second := encodeFields(eventFields(id, w.self.MSISDN, first.call.At, 3601))
			return []hostileMsg{first, dead("conflicting_duplicate", w.self.MSISDN, second)}
		}},
		{"the same identity for an unregistered MSISDN is a conflicting_duplicate, never applied on enrolment", func(w *hostileWorld, id string) []hostileMsg {
			first := w.valid(id, w.self.MSISDN, 61)
			stranger := fmt.Sprintf("+86137555%05d", 100+w.seq)
			second := encodeFields(eventFields(id, stranger, first.call.At, 61))
			m := dead("conflicting_duplicate", stranger, second)
			m.msisdn = stranger // enrolled by the case: nothing must be applied to it
			return []hostileMsg{first, m}
		}},
		{"a byte-for-byte redelivery is dropped, not dead-lettered", func(w *hostileWorld, id string) []hostileMsg {
			first := w.valid(id, w.self.MSISDN, 61)
			again := first
			again.want = dropped
			return []hostileMsg{first, again}
		}},
		{"an event older than the dedupe window goes to the late topic", func(w *hostileWorld, id string) []hostileMsg {
			fs := eventFields(id, w.self.MSISDN, time.Now().Add(-721*time.Hour), 61)
			return []hostileMsg{{key: []byte(w.self.MSISDN), value: encodeFields(fs), want: late}}
		}},
		{"an event for an unregistered valid MSISDN is held and applied on enrolment", func(w *hostileWorld, id string) []hostileMsg {
			stranger := fmt.Sprintf("+86137555%05d", 100+w.seq)
			m := w.valid(id, stranger, 61)
			m.want = held
			return []hostileMsg{m}
		}},
	}
}

// TestEachHostileClassAloneThenAValidEventIsAppliedWithin5s sends, per
// class of hostile input, the hostile message(s) and then a valid event for
// a known seafarer on the same partition, and requires: the valid event is
// applied within 5 s (allowance and a ledger debit); the group commits
// everything; the hostile message is on the DLQ with its original bytes,
// the expected error_code and the original_topic/partition/offset headers
// (or on the late topic, or held and applied on enrolment); every account
// equals the model (nobody else was charged); usage over a range reaching
// 9999 answers 200; /readyz answers 200.
//
// The cases share one wuyoud; after a failed case the next one gets a new
// stack, so one defect does not fail every later case.
func TestEachHostileClassAloneThenAValidEventIsAppliedWithin5s(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x2545f4914f6cdd1d))
	var w *hostileWorld
	for i, tc := range hostileCases() {
		if w == nil {
			w = MustHostileWorld(t, rng)
		}
		ok := t.Run(tc.name, func(t *testing.T) {
			began := time.Now()
			w.runCase(t, fmt.Sprintf("hostile-%02d", i), tc)
			t.Logf("case took %s", time.Since(began).Round(time.Millisecond))
		})
		if !ok {
			w = nil
		}
	}
}

// runCase sends one case and its probe and checks everything the test
// promises.
func (w *hostileWorld) runCase(t *testing.T, id string, tc hostileCase) {
	st, c := w.st, w.node.api
	msgs := tc.msgs(w, id)
	usageFrom := MustEndOffsets(t, st.brokers, st.topics.Usage, 1)[0]
	dlqFrom := MustEndOffsets(t, st.brokers, st.topics.DeadLetter, 1)[0]
	lateFrom := MustEndOffsets(t, st.brokers, st.topics.Late, 1)[0]
	heldBefore := c.MustMetrics(t)[metricHeld]

	var wantHeld int
	for _, m := range msgs {
		MustProduce(t, st.brokers, st.topics.Usage, []kafka.Message{{Key: m.key, Value: m.value}})
		switch m.want {
		case applied:
			w.calls[m.msisdn] = append(w.calls[m.msisdn], m.call)
		case held:
			wantHeld++
		}
	}

	// The probe: a valid event for self, right behind the hostile ones.
	probe := w.valid(id+"-probe", w.self.MSISDN, 61)
	MustProduce(t, st.brokers, st.topics.Usage, []kafka.Message{{Key: probe.key, Value: probe.value}})
	sent := time.Now()
	w.calls[w.self.MSISDN] = append(w.calls[w.self.MSISDN], probe.call)
	wantSelf := expectAccount(w.calls[w.self.MSISDN], w.grants[w.self.ID], time.Now())
	var got observedAccount
	for {
		got = MustObservedAccount(t, c, w.union, w.self.ID)
		if got.DebitEventIDs[probe.call.ID] > 0 && got.UsedSeconds >= wantSelf.Billable {
			break
		}
		if time.Since(sent) > probeDeadline {
			t.Fatalf("the valid event sent after the hostile one is not applied within %s: used %d s of %d, probe debited %d times",
				probeDeadline, got.UsedSeconds, wantSelf.Billable, got.DebitEventIDs[probe.call.ID])
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("probe applied %s after it was sent", time.Since(sent).Round(time.Millisecond))
	MustWaitCommittedToEnd(t, st, "hostile", st.topics.Usage, 1, 10*time.Second)
	RequireReady(t, c)

	// Dead letters: exactly this case's, in the order sent.
	var wantDLQ []hostileMsg
	var wantDLQOffsets []int64
	var wantLate [][]byte
	for i, m := range msgs {
		switch m.want {
		case deadLettered:
			wantDLQ = append(wantDLQ, m)
			wantDLQOffsets = append(wantDLQOffsets, usageFrom+int64(i))
		case late:
			wantLate = append(wantLate, m.value)
		}
	}
	// Enrol MSISDNs the case names: held events are applied now, and a
	// conflicting duplicate must not be.
	for _, m := range msgs {
		if (m.want == held || m.want == deadLettered) && m.msisdn != "" {
			if _, ok := w.enrolled[m.msisdn]; ok {
				continue
			}
			if m.want == held {
				require.EqualValues(t, heldBefore+float64(wantHeld), c.MustMetrics(t)[metricHeld], "the event for the unregistered MSISDN is held")
			}
			sf := MustEnrolCrew(t, c, w.union, w.companyID, []string{m.msisdn})[0]
			w.enrolled[m.msisdn] = sf
			w.accounts = append(w.accounts, sf)
			if m.want == held {
				w.calls[m.msisdn] = append(w.calls[m.msisdn], m.call)
			}
		}
	}
	var dlq []kafka.Message
	MustWaitFor(t, 5*time.Second, fmt.Sprintf("%d dead letters", len(wantDLQ)), func() bool {
		dlq = MustReadFrom(t, st.brokers, st.topics.DeadLetter, 0, dlqFrom)
		return len(dlq) >= len(wantDLQ)
	})
	require.Len(t, dlq, len(wantDLQ), "the DLQ holds exactly the hostile messages of this case")
	for i, m := range dlq {
		want := wantDLQ[i]
		h := headerMap(m)
		require.Equal(t, want.code, h["error_code"], "error_code of dead letter %d (error %q)", i, h["error"])
		require.NotEmpty(t, h["error"], "the dead letter says what is wrong")
		require.Equal(t, st.topics.Usage, h["original_topic"], "original_topic")
		require.Equal(t, "0", h["original_partition"], "original_partition")
		require.Equal(t, strconv.FormatInt(wantDLQOffsets[i], 10), h["original_offset"], "original_offset")
		if want.truncated {
			require.Equal(t, "true", h["truncated"], "a dead letter that would not fit the broker is marked truncated")
			require.Less(t, len(m.Value), len(want.value), "the dead letter is cut to fit")
			require.True(t, bytes.HasPrefix(want.value, m.Value), "the dead letter is the start of the original bytes")
			var size int
			for _, x := range m.Headers {
				size += len(x.Key) + len(x.Value)
			}
			require.LessOrEqual(t, len(m.Key)+len(m.Value)+size, brokerMaxMessageBytes, "the cut dead letter fits the broker")
		} else {
			require.NotEqual(t, "true", h["truncated"], "a dead letter that fits is not marked truncated")
			require.True(t, bytes.Equal(want.value, m.Value), "the dead letter keeps the original bytes:\nwant %.300q\ngot  %.300q", want.value, m.Value)
		}
	}
	lateMsgs := MustReadFrom(t, st.brokers, st.topics.Late, 0, lateFrom)
	require.Len(t, lateMsgs, len(wantLate), "the late topic holds exactly this case's late events")
	for i, m := range lateMsgs {
		require.Equal(t, wantLate[i], m.Value, "the late topic keeps the original bytes")
		require.Equal(t, "late", headerMap(m)["error_code"])
	}

	// Every account equals the model: nobody else was charged.
	now := time.Now()
	for _, sf := range w.accounts {
		var got observedAccount
		want := expectAccount(w.calls[sf.MSISDN], w.grants[sf.ID], now)
		MustWaitFor(t, 5*time.Second, sf.MSISDN+"'s account to settle", func() bool {
			got = MustObservedAccount(t, c, w.union, sf.ID)
			return got.Debits >= want.Debits
		})
		RequireAccountMatches(t, sf.MSISDN, want, got)
		RequireUsageRangeTo9999(t, c, w.union, sf.ID)
	}
	RequireReady(t, c)
	status, body := c.MustDo(t, "GET", "/healthz", "", nil, nil)
	require.Equal(t, http.StatusOK, status, "/healthz: %s", body)
}

// quotaLowData is the data of a wuyou.quota.low or .exhausted notification.
type quotaLowData struct {
	SeafarerID       string `json:"seafarer_id"`
	MSISDN           string `json:"msisdn"`
	RemainingSeconds int64  `json:"remaining_seconds"`
	GrantedSeconds   int64  `json:"granted_seconds"`
	EventID          string `json:"event_id"`
}

// TestQuotaLowIsPublishedOncePerGrantSet debits a 3000 s pack a minute at a
// time: the 41st call takes it below 20% (600 s), nine more while low, the
// 50th empties it, ten more are overage. Exactly one wuyou.quota.low (the
// 41st call's) and one wuyou.quota.exhausted (the 50th's) are published.
// The whole stream is then delivered again: repeats may republish a
// notification only under the same id with the same data. A second pack is
// then issued and used up: that grant set's exhaustion is a new
// notification under a new id.
func TestQuotaLowIsPublishedOncePerGrantSet(t *testing.T) {
	const group = "quota-low"
	st := MustWuyouStackWithBroker(t, 1)
	node := st.MustStartNode(t, group)
	c := node.api
	union := st.MustToken(t, token.RoleUnion, "staff-1", "")
	effective, start := sim.CallWindow(time.Now())
	companyID := MustCompany(t, c, union, "Low Tide Shipping")
	sf := MustEnrolCrew(t, c, union, companyID, []string{"+8613766600001"})[0]
	MustIssue(t, c, union, MustProgramme(t, c, union, 3000, effective), []string{sf.ID}, effective)

	var stream []kafka.Message
	call := func(n int) kafka.Message {
		id := fmt.Sprintf("low-%03d", n)
		return kafka.Message{Key: []byte(sf.MSISDN), Value: encodeFields(eventFields(id, sf.MSISDN, start.Add(time.Duration(n)*time.Second), 60))}
	}
	for n := 1; n <= 60; n++ {
		stream = append(stream, call(n))
	}
	MustProduce(t, st.brokers, st.topics.Usage, stream)
	MustWaitCommittedToEnd(t, st, group, st.topics.Usage, 1, 30*time.Second)
	acc := MustObservedAccount(t, c, union, sf.ID)
	require.Equal(t, 60, acc.Debits)
	require.EqualValues(t, 3000, acc.CoveredSeconds)

	requireOnce := func(ns []notification, typ, eventID string, remaining, granted int64) notification {
		t.Helper()
		var of []notification
		for _, n := range ns {
			if n.Type == typ {
				of = append(of, n)
			}
		}
		distinct := RequireSameIDSameData(t, of)
		require.Len(t, distinct, 1, "one %s for the grant set: %s", typ, describe(of))
		n := distinct[0]
		var d quotaLowData
		require.NoError(t, json.Unmarshal(n.Data, &d))
		require.Equal(t, quotaLowData{SeafarerID: sf.ID, MSISDN: sf.MSISDN, RemainingSeconds: remaining, GrantedSeconds: granted, EventID: eventID}, d,
			"%s reports the call that crossed the mark", typ)
		require.Equal(t, sf.MSISDN, n.Subject)
		require.Equal(t, sf.ID, n.Key)
		return n
	}
	ns := MustNotifications(t, st, "wuyou.quota.low", "wuyou.quota.exhausted")
	require.Len(t, ns, 2, "no redelivery yet: one low and one exhausted message, nothing more: %s", describe(ns))
	low := requireOnce(ns, "wuyou.quota.low", "low-041", 540, 3000)
	exhausted := requireOnce(ns, "wuyou.quota.exhausted", "low-050", 0, 3000)

	// The carrier delivers the whole stream again.
	MustProduce(t, st.brokers, st.topics.Usage, stream)
	MustWaitCommittedToEnd(t, st, group, st.topics.Usage, 1, 30*time.Second)
	ns = MustNotifications(t, st, "wuyou.quota.low", "wuyou.quota.exhausted")
	require.Equal(t, low.ID, requireOnce(ns, "wuyou.quota.low", "low-041", 540, 3000).ID)
	require.Equal(t, exhausted.ID, requireOnce(ns, "wuyou.quota.exhausted", "low-050", 0, 3000).ID)
	require.Equal(t, 60, MustObservedAccount(t, c, union, sf.ID).Debits, "redeliveries are not applied")

	// A second pack is a new grant set: using it up is a new exhaustion.
	MustIssue(t, c, union, MustProgramme(t, c, union, 600, effective), []string{sf.ID}, effective)
	var more []kafka.Message
	for n := 61; n <= 72; n++ {
		more = append(more, call(n))
	}
	MustProduce(t, st.brokers, st.topics.Usage, more)
	MustWaitCommittedToEnd(t, st, group, st.topics.Usage, 1, 30*time.Second)
	ns = MustNotifications(t, st, "wuyou.quota.low", "wuyou.quota.exhausted")
	var exhaustions []notification
	for _, n := range ns {
		if n.Type == "wuyou.quota.exhausted" {
			exhaustions = append(exhaustions, n)
		}
	}
	distinct := RequireSameIDSameData(t, exhaustions)
	require.Len(t, distinct, 2, "one exhaustion per grant set: %s", describe(exhaustions))
	var d quotaLowData
	require.NoError(t, json.Unmarshal(distinct[1].Data, &d))
	require.Equal(t, "low-070", d.EventID, "the second pack ran out on the 10th call after it")
	require.Zero(t, d.RemainingSeconds)
	var lows []notification
	for _, n := range ns {
		if n.Type == "wuyou.quota.low" {
			lows = append(lows, n)
		}
	}
	require.LessOrEqual(t, len(RequireSameIDSameData(t, lows)), 2, "at most one low per grant set: %s", describe(lows))
}

// describe lists notifications for a failure message.
func describe(ns []notification) string {
	var b strings.Builder
	for _, n := range ns {
		fmt.Fprintf(&b, "\n  %s %s %s", n.Type, n.ID, n.Data)
	}
	return b.String()
}
