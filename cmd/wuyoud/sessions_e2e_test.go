package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/carrier/sim"
	"github.com/wuyou/wuyou/token"
)

// End-to-end tests of real-time credit control (CONTRACT §7.3) through
// whole wuyoud services on a real Redis and PostgreSQL and an in-process
// Kafka-protocol broker: sessions over HTTP, the carrier's records (CDRs)
// over Kafka, what PostgreSQL's ledger and wuyou.ledger.v1 then hold.

// sessionAnswer is the answer to an open or an update.
type sessionAnswer struct {
	SessionID       string `json:"session_id"`
	Granted         int64  `json:"granted"`
	ValiditySeconds int64  `json:"validity_seconds"`
	Final           bool   `json:"final"`
	FinalAction     string `json:"final_action"`
}

// sessionCharge is the answer to a terminate.
type sessionCharge struct {
	Charged int64 `json:"charged"`
	Covered int64 `json:"covered"`
	Overage int64 `json:"overage"`
}

// MustOpenSession opens a voice session abroad (SG) for msisdn.
func MustOpenSession(tb testing.TB, c apiClient, carrierTok, id, msisdn string, requested int64, callTime time.Time) sessionAnswer {
	tb.Helper()
	var a sessionAnswer
	c.MustCall(tb, http.StatusCreated, "POST", "/v1/carrier/sessions", carrierTok, map[string]any{
		"session_id": id, "msisdn": msisdn, "unit": "seconds", "requested": requested,
		"call_time": callTime.UTC().Truncate(time.Second), "visited_country": "SG", "called_number": "+861012345678",
	}, &a)
	require.Equal(tb, id, a.SessionID)
	return a
}

// MustUpdateSession reports used (the usage so far) and asks for requested.
func MustUpdateSession(tb testing.TB, c apiClient, carrierTok, id string, used, requested int64) sessionAnswer {
	tb.Helper()
	var a sessionAnswer
	c.MustCall(tb, http.StatusOK, "POST", "/v1/carrier/sessions/"+url.PathEscape(id)+":update", carrierTok,
		map[string]int64{"used": used, "requested": requested}, &a)
	return a
}

// MustTerminateSession ends a session that used used.
func MustTerminateSession(tb testing.TB, c apiClient, carrierTok, id string, used int64) sessionCharge {
	tb.Helper()
	var ch sessionCharge
	c.MustCall(tb, http.StatusOK, "POST", "/v1/carrier/sessions/"+url.PathEscape(id)+":terminate", carrierTok,
		map[string]int64{"used": used}, &ch)
	return ch
}

// secondsBalance is what the allowance says of a seafarer's seconds.
type secondsBalance struct {
	Remaining, Reserved, Used, Overage int64
}

// MustSecondsBalance reads the allowance: remaining seconds, what open
// sessions hold of them, and the period's used and overage seconds.
func MustSecondsBalance(tb testing.TB, c apiClient, union, seafarerID string) secondsBalance {
	tb.Helper()
	var a struct {
		RemainingSeconds int64 `json:"remaining_seconds"`
		UsedSeconds      int64 `json:"used_seconds"`
		OverageSeconds   int64 `json:"overage_seconds"`
		Balances         []struct {
			Unit     string `json:"unit"`
			Reserved int64  `json:"reserved"`
		} `json:"balances"`
	}
	c.MustCall(tb, http.StatusOK, "GET", "/v1/seafarers/"+seafarerID+"/allowance", union, nil, &a)
	b := secondsBalance{Remaining: a.RemainingSeconds, Used: a.UsedSeconds, Overage: a.OverageSeconds}
	for _, u := range a.Balances {
		if u.Unit == "seconds" {
			b.Reserved = u.Reserved
		}
	}
	return b
}

// callEntry is a debit or adjust entry of the ledger: PostgreSQL's row or
// the wuyou.ledger.v1 message's data.
type callEntry struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	EventID  string `json:"event_id"`
	Billable int64  `json:"billable_seconds"`
	Covered  int64  `json:"covered_seconds"`
	Overage  int64  `json:"overage_seconds"`
}

// MustPGCallEntries reads a seafarer's debit and adjust entries from
// PostgreSQL, oldest filing first.
func MustPGCallEntries(tb testing.TB, pool *pgxpool.Pool, seafarerID string) []callEntry {
	tb.Helper()
	rows, err := pool.Query(context.Background(), `SELECT id, kind, coalesce(event_id, ''), billable_seconds, covered_seconds, overage_seconds
		FROM ledger_entries WHERE seafarer_id = $1 AND kind IN ('debit', 'adjust') ORDER BY at, id`, seafarerID)
	require.NoError(tb, err)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (callEntry, error) {
		var e callEntry
		err := r.Scan(&e.ID, &e.Kind, &e.EventID, &e.Billable, &e.Covered, &e.Overage)
		return e, err
	})
	require.NoError(tb, err)
	return out
}

// RequireLedgerPublished requires wuyou.ledger.v1 to carry each of
// entries (PostgreSQL's) with type wuyou.ledger.<kind> and the same amounts
// (a repeat of a message with the same id only), and no other debit or
// adjust of the seafarer.
func RequireLedgerPublished(tb testing.TB, st *wuyouStack, seafarerID string, entries []callEntry) {
	tb.Helper()
	want := map[string]callEntry{}
	for _, e := range entries {
		want[e.ID] = e
	}
	seen := map[string]bool{}
	for _, m := range MustReadToEnd(tb, st.brokers, st.topics.Ledger, 1) {
		if string(m.Key) != seafarerID {
			continue
		}
		var ev struct {
			ID   string    `json:"id"`
			Type string    `json:"type"`
			Data callEntry `json:"data"`
		}
		require.NoError(tb, json.Unmarshal(m.Value, &ev), "ledger message %s", m.Value)
		if ev.Type != "wuyou.ledger.debit" && ev.Type != "wuyou.ledger.adjust" {
			continue
		}
		w, ok := want[ev.ID]
		require.Truef(tb, ok, "ledger message %s (%s) has no entry in PostgreSQL: %s", ev.ID, ev.Type, m.Value)
		require.Equal(tb, "wuyou.ledger."+w.Kind, ev.Type, "entry %s", ev.ID)
		got := ev.Data
		got.ID, got.Kind = ev.ID, w.Kind
		require.Equal(tb, w, got, "ledger message of entry %s", ev.ID)
		seen[ev.ID] = true
	}
	for id := range want {
		require.Truef(tb, seen[id], "entry %s is in PostgreSQL but not on %s", id, st.topics.Ledger)
	}
}

// sessionCDR is the carrier's record of a session's call: data.call_id is
// the session id.
func sessionCDR(eventID, sessionID, msisdn string, callTime time.Time, seconds int64) kafka.Message {
	ev := voiceCall(eventID, msisdn, callTime, seconds, "SG")
	ev.Data.CallID = sessionID
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return kafka.Message{Key: []byte(msisdn), Value: b}
}

// sessionsWorld is a stack with one company, a carrier and a union token.
type sessionsWorld struct {
	st        *wuyouStack
	union     string
	carrier   string
	company   string
	callTime  time.Time // inside every pack's validity, a minute ago
	effective time.Time
}

const sessionsGroup = "sessions"

// MustSessionsWorld starts a stack with a four-partition usage topic and
// creates a company on the API of c (a node of it, started by the caller).
func MustSessionsWorld(tb testing.TB) *sessionsWorld {
	tb.Helper()
	st := MustWuyouStack(tb, 4)
	now := time.Now().UTC()
	effective, _ := sim.CallWindow(now)
	callTime := now.Add(-time.Minute).Truncate(time.Second)
	if callTime.Before(effective) {
		callTime = effective
	}
	return &sessionsWorld{
		st: st, union: st.MustToken(tb, token.RoleUnion, "staff-1", ""), carrier: st.MustToken(tb, token.RoleCarrier, "carrier-1", ""),
		callTime: callTime, effective: effective,
	}
}

// MustSeafarers enrols one seafarer per pack and issues each its pack (a
// programme per size), in the order given.
func (w *sessionsWorld) MustSeafarers(tb testing.TB, c apiClient, prefix string, packs ...int64) []seededSeafarer {
	tb.Helper()
	if w.company == "" {
		w.company = MustCompany(tb, c, w.union, "Sessions Shipping")
	}
	var numbers []string
	for i := range packs {
		numbers = append(numbers, fmt.Sprintf("+86%s%06d", prefix, i+1))
	}
	crew := MustEnrolCrew(tb, c, w.union, w.company, numbers)
	bySize := map[int64][]string{}
	for i, p := range packs {
		bySize[p] = append(bySize[p], crew[i].ID)
	}
	for size, ids := range bySize {
		MustIssue(tb, c, w.union, MustProgramme(tb, c, w.union, size, w.effective), ids, w.effective)
	}
	return crew
}

// testClock is a service clock a test moves forward.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
	frozen time.Time // when set, the clock stands there (Freeze)
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.frozen.IsZero() {
		return c.frozen.Add(c.offset)
	}
	return time.Now().UTC().Add(c.offset)
}

// Freeze stops the clock where it is: from then on only Advance moves it,
// so a test's boundaries do not depend on how slowly the machine runs.
func (c *testClock) Freeze() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frozen = time.Now().UTC()
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// MustStartNodeWithClock is MustStartNode whose service reads clock.
func (st *wuyouStack) MustStartNodeWithClock(tb testing.TB, group string, clock *testClock) *wuyoudNode {
	tb.Helper()
	return st.mustStartNode(tb, group, deps{now: clock.Now})
}

// Many calls of one seafarer open sessions at once against two services
// sharing Redis and PostgreSQL: together they are never granted more than
// the balance (here exactly the balance: more is asked). Each call is then
// terminated on the other service while a repeat of its terminate goes to
// the first, all at once: every call is charged once (both answers the
// same), those granted nothing all as overage (what others hold or used is
// not theirs), and PostgreSQL holds one debit per call, published once
// each on wuyou.ledger.v1.
func TestConcurrentSessionsOnTwoServicesNeverGrantMoreThanTheBalanceAndChargeEachCallOnce(t *testing.T) {
	t.Parallel()
	w := MustSessionsWorld(t)
	nodes := []*wuyoudNode{w.st.MustStartNode(t, sessionsGroup), w.st.MustStartNode(t, sessionsGroup)}
	const (
		pack      = 1800
		calls     = 48
		requested = 120
		used      = 90 // bills 120: what a call granted 120 holds
	)
	sf := w.MustSeafarers(t, nodes[0].api, "1370", pack)[0]

	answers := make([]sessionAnswer, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = MustOpenSession(t, nodes[i%2].api, w.carrier, fmt.Sprintf("conc-%02d", i), sf.MSISDN, requested, w.callTime)
		}()
	}
	wg.Wait()
	var granted int64
	grantedTo := map[string]int64{}
	for _, a := range answers {
		require.Contains(t, []int64{0, requested}, a.Granted, "a grant is all that was asked or nothing: every other grant is whole too")
		granted += a.Granted
		grantedTo[a.SessionID] = a.Granted
	}
	require.Equal(t, int64(pack), granted, "the sessions together are granted the balance and never more")
	bal := MustSecondsBalance(t, nodes[1].api, w.union, sf.ID)
	require.Equal(t, int64(pack), bal.Reserved, "what they were granted is reserved")

	charges := make([][2]sessionCharge, calls)
	for i := range calls {
		for k := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				charges[i][k] = MustTerminateSession(t, nodes[(i+1+k)%2].api, w.carrier, answers[i].SessionID, used)
			}()
		}
	}
	wg.Wait()
	var covered, overage int64
	for i, ch := range charges {
		require.Equal(t, ch[0], ch[1], "%s: a repeated terminate answers the same charge", answers[i].SessionID)
		require.Equal(t, int64(120), ch[0].Charged, "%s: 90 s bill a whole 2 minutes", answers[i].SessionID)
		require.Equal(t, grantedTo[answers[i].SessionID], ch[0].Covered, "%s: covered what it was granted", answers[i].SessionID)
		covered += ch[0].Covered
		overage += ch[0].Overage
	}
	require.Equal(t, int64(pack), covered)
	require.Equal(t, int64(calls*120-pack), overage)

	bal = MustSecondsBalance(t, nodes[0].api, w.union, sf.ID)
	require.Equal(t, secondsBalance{Remaining: 0, Reserved: 0, Used: calls * 120, Overage: calls*120 - pack}, bal)

	entries := MustPGCallEntries(t, w.st.MustPool(t), sf.ID)
	require.Len(t, entries, calls, "one ledger entry per terminated call")
	perEvent := map[string]int{}
	for _, e := range entries {
		perEvent[e.EventID]++
		require.Equal(t, "debit", e.Kind)
		require.Equal(t, callEntry{ID: e.ID, Kind: "debit", EventID: e.EventID, Billable: 120, Covered: grantedTo[e.EventID], Overage: 120 - grantedTo[e.EventID]}, e)
	}
	for id := range grantedTo {
		require.Equal(t, 1, perEvent[id], "session %s recorded once", id)
	}
	RequireLedgerPublished(t, w.st, sf.ID, entries)
	MustLedgerExplainEveryBalance(t, nodes[1].api, w.union)
}

// The carrier's record of a session's call (data.call_id = session id),
// before, after or without the session's terminate, and repeated
// terminates and records: each call is charged once, at what the last word
// on it says. Checked per case in the allowance, PostgreSQL's ledger
// (debits and adjusts with their amounts) and wuyou.ledger.v1.
func TestTheCarriersRecordAndTheTerminateChargeASessionsCallOnce(t *testing.T) {
	t.Parallel()
	w := MustSessionsWorld(t)
	node := w.st.MustStartNode(t, sessionsGroup)
	pool := w.st.MustPool(t)

	// step is one thing the carrier does: an HTTP request or a CDR.
	type step struct {
		open      int64 // requested
		update    [2]int64
		terminate *int64 // used
		cdr       *int64 // the CDR's duration
		want      *sessionCharge
	}
	used := func(n int64) *int64 { return &n }
	type entry struct {
		kind                       string
		cdr                        bool // carries the CDR's event id, else the session's
		billable, covered, overage int64
	}
	cases := []struct {
		name  string
		pack  int64
		steps []step
		want  []entry
		bal   secondsBalance
	}{
		{
			name:  "a CDR before the terminate charges the call; the terminate then answers the CDR's charge",
			pack:  600,
			steps: []step{{open: 60}, {update: [2]int64{60, 60}}, {cdr: used(150)}, {terminate: used(150), want: &sessionCharge{180, 180, 0}}},
			want:  []entry{{"debit", true, 180, 180, 0}},
			bal:   secondsBalance{Remaining: 420, Used: 180},
		},
		{
			name:  "a longer CDR after the terminate adds an adjust of the difference",
			pack:  600,
			steps: []step{{open: 60}, {update: [2]int64{60, 60}}, {terminate: used(100), want: &sessionCharge{120, 120, 0}}, {cdr: used(130)}},
			want:  []entry{{"debit", false, 120, 120, 0}, {"adjust", true, 60, 60, 0}},
			bal:   secondsBalance{Remaining: 420, Used: 180},
		},
		{
			name:  "an equal CDR after the terminate is a zero adjust",
			pack:  600,
			steps: []step{{open: 60}, {terminate: used(100), want: &sessionCharge{120, 120, 0}}, {cdr: used(110)}},
			want:  []entry{{"debit", false, 120, 120, 0}, {"adjust", true, 0, 0, 0}},
			bal:   secondsBalance{Remaining: 480, Used: 120},
		},
		{
			name:  "a shorter CDR after the terminate gives the difference back, overage first",
			pack:  120,
			steps: []step{{open: 60}, {update: [2]int64{60, 60}}, {terminate: used(200), want: &sessionCharge{240, 120, 120}}, {cdr: used(50)}},
			want:  []entry{{"debit", false, 240, 120, 120}, {"adjust", true, -180, -60, -120}},
			bal:   secondsBalance{Remaining: 60, Used: 60},
		},
		{
			name:  "a CDR without a terminate charges the call and releases what its session held",
			pack:  600,
			steps: []step{{open: 60}, {update: [2]int64{120, 60}}, {cdr: used(150)}},
			want:  []entry{{"debit", true, 180, 180, 0}},
			bal:   secondsBalance{Remaining: 420, Used: 180},
		},
		{
			name: "a repeated terminate and a redelivered CDR charge nothing more; a terminate after the CDR answers the settled charge",
			pack: 600,
			steps: []step{{open: 60}, {terminate: used(100), want: &sessionCharge{120, 120, 0}},
				{terminate: used(100), want: &sessionCharge{120, 120, 0}}, {terminate: used(300), want: &sessionCharge{120, 120, 0}},
				{cdr: used(170)}, {cdr: used(170)},
				// After the CDR a repeat answers the call's charge as settled.
				{terminate: used(100), want: &sessionCharge{180, 180, 0}}},
			want: []entry{{"debit", false, 120, 120, 0}, {"adjust", true, 60, 60, 0}},
			bal:  secondsBalance{Remaining: 420, Used: 180},
		},
	}
	var packs []int64
	for _, c := range cases {
		packs = append(packs, c.pack)
	}
	crew := w.MustSeafarers(t, node.api, "1371", packs...)
	for i, c := range cases {
		sf := crew[i]
		sessionID, cdrID := fmt.Sprintf("call-%d", i), fmt.Sprintf("cdr-sess-%d", i)
		t.Run(c.name, func(t *testing.T) {
			for _, s := range c.steps {
				switch {
				case s.open > 0:
					a := MustOpenSession(t, node.api, w.carrier, sessionID, sf.MSISDN, s.open, w.callTime)
					require.Equal(t, min(s.open, c.pack), a.Granted)
				case s.update != [2]int64{}:
					MustUpdateSession(t, node.api, w.carrier, sessionID, s.update[0], s.update[1])
				case s.terminate != nil:
					ch := MustTerminateSession(t, node.api, w.carrier, sessionID, *s.terminate)
					require.Equal(t, *s.want, ch, "terminate with used %d", *s.terminate)
				case s.cdr != nil:
					MustProduce(t, w.st.brokers, w.st.topics.Usage, []kafka.Message{sessionCDR(cdrID, sessionID, sf.MSISDN, w.callTime, *s.cdr)})
					MustWaitCommittedToEnd(t, w.st, sessionsGroup, w.st.topics.Usage, 4, 30*time.Second)
				}
			}
			got := MustPGCallEntries(t, pool, sf.ID)
			require.Len(t, got, len(c.want), "ledger entries: %+v", got)
			for k, e := range c.want {
				eventID := sessionID
				if e.cdr {
					eventID = cdrID
				}
				require.Equal(t, callEntry{ID: got[k].ID, Kind: e.kind, EventID: eventID, Billable: e.billable, Covered: e.covered, Overage: e.overage}, got[k], "entry %d", k)
			}
			require.Equal(t, c.bal, MustSecondsBalance(t, node.api, w.union, sf.ID))
			RequireLedgerPublished(t, w.st, sf.ID, got)
		})
	}
	MustLedgerExplainEveryBalance(t, node.api, w.union)
}

// wuyoud is killed (SIGKILL) between a session's reservation and its
// terminate: what the session holds is in Redis, so the service started
// after it still shows it reserved, the terminate there charges the call
// once (a repeat the same), and the reservation is gone.
func TestASessionOutlivesACrashOfTheServiceAndItsTerminateChargesOnce(t *testing.T) {
	t.Parallel()
	bin := MustBuildWuyoud(t)
	w := MustSessionsWorld(t)
	procs := &processLog{dir: t.TempDir()}
	t.Cleanup(func() { procs.RequireNoRaceOrPanic(t) })
	first := procs.MustStart(t, bin, w.st, sessionsGroup)
	sf := w.MustSeafarers(t, first.api, "1372", 600)[0]

	require.Equal(t, int64(120), MustOpenSession(t, first.api, w.carrier, "crash-1", sf.MSISDN, 120, w.callTime).Granted)
	require.Equal(t, int64(120), MustUpdateSession(t, first.api, w.carrier, "crash-1", 60, 120).Granted)
	first.MustKill(t)

	second := procs.MustStart(t, bin, w.st, sessionsGroup)
	require.Equal(t, secondsBalance{Remaining: 600, Reserved: 180}, MustSecondsBalance(t, second.api, w.union, sf.ID),
		"the crashed service's session still holds what it used and was granted")
	want := sessionCharge{Charged: 180, Covered: 180}
	require.Equal(t, want, MustTerminateSession(t, second.api, w.carrier, "crash-1", 150))
	require.Equal(t, want, MustTerminateSession(t, second.api, w.carrier, "crash-1", 150), "a repeat answers the same")
	require.Equal(t, secondsBalance{Remaining: 420, Used: 180}, MustSecondsBalance(t, second.api, w.union, sf.ID))

	entries := MustPGCallEntries(t, w.st.MustPool(t), sf.ID)
	require.Len(t, entries, 1)
	require.Equal(t, callEntry{ID: entries[0].ID, Kind: "debit", EventID: "crash-1", Billable: 180, Covered: 180}, entries[0])
	RequireLedgerPublished(t, w.st, sf.ID, entries)
}

// A session nobody updates or terminates (the carrier's switch went away)
// holds its units for its validity only: on the service's clock, a second
// after the validity the allowance shows nothing reserved and another call
// is granted everything. A terminate that comes after all still charges
// the call once.
func TestAnAbandonedSessionReleasesItsReservationWhenItsValidityRunsOut(t *testing.T) {
	t.Parallel()
	w := MustSessionsWorld(t)
	clock := &testClock{}
	node := w.st.MustStartNodeWithClock(t, sessionsGroup, clock)
	sf := w.MustSeafarers(t, node.api, "1373", 600)[0]

	// The validity's edge is a second wide: the service's clock stands
	// still, so a slow machine does not carry it past the edge meanwhile.
	clock.Freeze()
	a := MustOpenSession(t, node.api, w.carrier, "abandoned-1", sf.MSISDN, 400, w.callTime)
	require.Equal(t, int64(400), a.Granted)
	require.Equal(t, int64(400), MustSecondsBalance(t, node.api, w.union, sf.ID).Reserved)
	b := MustOpenSession(t, node.api, w.carrier, "other-1", sf.MSISDN, 400, w.callTime)
	require.Equal(t, int64(200), b.Granted, "only what the first session left")
	require.True(t, b.Final)
	require.Equal(t, sessionCharge{}, MustTerminateSession(t, node.api, w.carrier, "other-1", 0), "the other call never connected")

	clock.Advance(time.Duration(a.ValiditySeconds-1) * time.Second)
	require.Equal(t, int64(400), MustSecondsBalance(t, node.api, w.union, sf.ID).Reserved, "held until its validity runs out")
	clock.Advance(2 * time.Second)
	require.Equal(t, secondsBalance{Remaining: 600}, MustSecondsBalance(t, node.api, w.union, sf.ID), "released after its validity")
	c := MustOpenSession(t, node.api, w.carrier, "later-1", sf.MSISDN, 600, w.callTime)
	require.Equal(t, int64(600), c.Granted, "another call is granted what the abandoned session held")
	require.Equal(t, sessionCharge{Charged: 60, Covered: 60}, MustTerminateSession(t, node.api, w.carrier, "later-1", 45))

	// The abandoned call's terminate, late: charged once, from what is left.
	want := sessionCharge{Charged: 120, Covered: 120}
	require.Equal(t, want, MustTerminateSession(t, node.api, w.carrier, "abandoned-1", 100))
	require.Equal(t, want, MustTerminateSession(t, node.api, w.carrier, "abandoned-1", 100))
	require.Equal(t, secondsBalance{Remaining: 420, Used: 180}, MustSecondsBalance(t, node.api, w.union, sf.ID))
	entries := MustPGCallEntries(t, w.st.MustPool(t), sf.ID)
	perEvent := map[string]int{}
	for _, e := range entries {
		perEvent[e.EventID]++
	}
	require.Equal(t, map[string]int{"other-1": 1, "later-1": 1, "abandoned-1": 1}, perEvent, "one entry per terminated call: %+v", entries)
	RequireLedgerPublished(t, w.st, sf.ID, entries)
}
