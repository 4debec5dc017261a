package sim_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/carrier/sim"
)

// fakeSessionAPI is the session API of a seafarer holding balance seconds,
// recording every request it is sent. It grants what is asked up to what
// is left (used and granted units are held), as Wuyou does.
type fakeSessionAPI struct {
	mu          sync.Mutex
	token       string
	balance     int64
	finalAction string
	unknown     map[string]bool // MSISDNs nobody holds
	sessions    map[string]*fakeSession
	requests    []fakeRequest
}

type fakeSession struct {
	msisdn     string
	used, hold int64
	terminates int
	usedSeen   []int64 // the used of every update, then the terminate's
}

type fakeRequest struct {
	op, sessionID string
	used          int64
}

func newFakeSessionAPI(balance int64, finalAction string) *fakeSessionAPI {
	return &fakeSessionAPI{token: "carrier-token", balance: balance, finalAction: finalAction,
		unknown: map[string]bool{}, sessions: map[string]*fakeSession{}}
}

// held is what open sessions hold; the caller holds mu.
func (f *fakeSessionAPI) held() int64 {
	var n int64
	for _, s := range f.sessions {
		if s.terminates == 0 {
			n += s.hold
		}
	}
	return n
}

func (f *fakeSessionAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer "+f.token {
		http.Error(w, `{"detail":"bad token"}`, http.StatusUnauthorized)
		return
	}
	answer := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	grant := func(id string, s *fakeSession, requested int64) sim.SessionAnswer {
		avail := max(f.balance-f.held()+s.hold-s.used, 0)
		g := min(requested, avail)
		s.hold = s.used + g
		return sim.SessionAnswer{SessionID: id, Granted: g, ValiditySeconds: 300, Final: avail-g <= 0, FinalAction: f.finalAction}
	}
	path := strings.TrimPrefix(r.URL.Path, "/v1/carrier/sessions")
	switch {
	case path == "":
		var o sim.SessionOpen
		if err := json.NewDecoder(r.Body).Decode(&o); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.requests = append(f.requests, fakeRequest{op: "open", sessionID: o.SessionID})
		if f.unknown[o.MSISDN] {
			answer(http.StatusNotFound, map[string]string{"detail": "no seafarer holds this MSISDN"})
			return
		}
		s := &fakeSession{msisdn: o.MSISDN}
		f.sessions[o.SessionID] = s
		answer(http.StatusCreated, grant(o.SessionID, s, o.Requested))
	case strings.HasSuffix(path, ":update"), strings.HasSuffix(path, ":terminate"):
		id, op, _ := strings.Cut(strings.TrimPrefix(path, "/"), ":")
		var in struct{ Used, Requested int64 }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.requests = append(f.requests, fakeRequest{op: op, sessionID: id, used: in.Used})
		s := f.sessions[id]
		if s == nil {
			answer(http.StatusNotFound, map[string]string{"detail": "no such session"})
			return
		}
		s.usedSeen = append(s.usedSeen, in.Used)
		if op == "terminate" {
			covered := min(in.Used, max(f.balance-(f.held()-s.hold), 0))
			s.terminates++
			if s.terminates == 1 {
				f.balance -= covered
			}
			answer(http.StatusOK, sim.SessionCharge{Charged: in.Used, Covered: covered, Overage: in.Used - covered})
			return
		}
		s.used = in.Used
		answer(http.StatusOK, grant(id, s, in.Requested))
	default:
		http.NotFound(w, r)
	}
}

// MustFakeSessionAPI serves f and returns a client of it.
func MustFakeSessionAPI(tb testing.TB, f *fakeSessionAPI) *sim.HTTPSessions {
	tb.Helper()
	srv := httptest.NewServer(f)
	tb.Cleanup(srv.Close)
	return &sim.HTTPSessions{Base: srv.URL, Token: f.token, Client: srv.Client()}
}

func TestACallOpensUpdatesEveryMinuteWithItsUsageSoFarAndTerminatesOnce(t *testing.T) {
	t.Parallel()
	f := newFakeSessionAPI(3600, "continue_as_overage")
	d := &sim.Driver{API: MustFakeSessionAPI(t, f)}
	out, err := d.Drive(context.Background(), sim.Call{SessionID: "c-1", MSISDN: "+8613800000001",
		CallTime: time.Now(), VisitedCountry: "SG", Duration: 200})
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, r := range f.requests {
		ops = append(ops, r.op)
	}
	if got := strings.Join(ops, " "); got != "open update update update terminate" {
		t.Fatalf("requests: %s", got)
	}
	if got := f.sessions["c-1"].usedSeen; len(got) != 4 || got[0] != 60 || got[1] != 120 || got[2] != 180 || got[3] != 200 {
		t.Fatalf("used reported: %v, want 60 120 180 then 200", got)
	}
	want := sim.Outcome{Opened: true, Updates: 3, Terminated: true, Used: 200, Charge: sim.SessionCharge{Charged: 200, Covered: 200}}
	if out != want {
		t.Fatalf("outcome %+v, want %+v", out, want)
	}
}

func TestAShortCallIsOpenedAndTerminatedWithoutAnUpdate(t *testing.T) {
	t.Parallel()
	for _, duration := range []int64{0, 1, 60} {
		f := newFakeSessionAPI(3600, "continue_as_overage")
		d := &sim.Driver{API: MustFakeSessionAPI(t, f)}
		out, err := d.Drive(context.Background(), sim.Call{SessionID: "c-1", MSISDN: "+8613800000001", Duration: duration})
		if err != nil {
			t.Fatal(err)
		}
		if len(f.requests) != 2 || f.requests[0].op != "open" || f.requests[1].op != "terminate" || f.requests[1].used != duration {
			t.Fatalf("duration %d: requests %+v", duration, f.requests)
		}
		if out.Updates != 0 || !out.Terminated || out.Used != duration {
			t.Fatalf("duration %d: outcome %+v", duration, out)
		}
	}
}

func TestAFinalGrantWithFinalActionTerminateCutsTheCallWhereItRunsOut(t *testing.T) {
	t.Parallel()
	f := newFakeSessionAPI(150, sim.FinalTerminate)
	d := &sim.Driver{API: MustFakeSessionAPI(t, f)}
	out, err := d.Drive(context.Background(), sim.Call{SessionID: "c-1", MSISDN: "+8613800000001", Duration: 600})
	if err != nil {
		t.Fatal(err)
	}
	want := sim.Outcome{Opened: true, Updates: 2, Final: true, Cut: true, Terminated: true, Used: 150, Charge: sim.SessionCharge{Charged: 150, Covered: 150}}
	if out != want {
		t.Fatalf("outcome %+v, want %+v", out, want)
	}
	if got := f.sessions["c-1"].usedSeen; len(got) != 3 || got[2] != 150 {
		t.Fatalf("used reported: %v, want 60 120 then a terminate of 150", got)
	}

	// Nothing left at all: the call never connects.
	f = newFakeSessionAPI(0, sim.FinalTerminate)
	d = &sim.Driver{API: MustFakeSessionAPI(t, f)}
	out, err = d.Drive(context.Background(), sim.Call{SessionID: "c-2", MSISDN: "+8613800000001", Duration: 600})
	if err != nil {
		t.Fatal(err)
	}
	if !out.Cut || out.Used != 0 || out.Updates != 0 || !out.Terminated {
		t.Fatalf("outcome %+v: want cut at 0 and terminated", out)
	}
}

func TestAFinalGrantThatContinuesAsOverageLetsTheCallRunItsLength(t *testing.T) {
	t.Parallel()
	f := newFakeSessionAPI(90, "continue_as_overage")
	d := &sim.Driver{API: MustFakeSessionAPI(t, f)}
	out, err := d.Drive(context.Background(), sim.Call{SessionID: "c-1", MSISDN: "+8613800000001", Duration: 300})
	if err != nil {
		t.Fatal(err)
	}
	want := sim.Outcome{Opened: true, Updates: 4, Final: true, Terminated: true, Used: 300, Charge: sim.SessionCharge{Charged: 300, Covered: 90, Overage: 210}}
	if out != want {
		t.Fatalf("outcome %+v, want %+v", out, want)
	}
}

func TestAnUnknownSubscriberIsNotAnErrorAndTheCallGoesAheadWithoutASession(t *testing.T) {
	t.Parallel()
	f := newFakeSessionAPI(3600, "continue_as_overage")
	f.unknown["+8613800000009"] = true
	d := &sim.Driver{API: MustFakeSessionAPI(t, f)}
	out, err := d.Drive(context.Background(), sim.Call{SessionID: "c-1", MSISDN: "+8613800000009", Duration: 300})
	if err != nil {
		t.Fatal(err)
	}
	if out != (sim.Outcome{Unknown: true, Used: 300}) || len(f.requests) != 1 {
		t.Fatalf("outcome %+v after %d requests: want unknown after the open alone", out, len(f.requests))
	}
}

func TestABadTokenIsAnAPIErrorNamingTheStatus(t *testing.T) {
	t.Parallel()
	f := newFakeSessionAPI(3600, "continue_as_overage")
	api := MustFakeSessionAPI(t, f)
	api.Token = "wrong"
	_, err := (&sim.Driver{API: api}).Drive(context.Background(), sim.Call{SessionID: "c-1", MSISDN: "+8613800000001", Duration: 30})
	var apiErr *sim.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized || apiErr.Op != "open" || apiErr.Detail != "bad token" {
		t.Fatalf("err %v: want the open's 401 with its detail", err)
	}
}

// Every new voice call of a stream goes through a session before its CDR:
// each session is opened once, reports cumulative usage that never
// decreases, is terminated once with the CDR's duration, and the CDR's
// call_id is the session id. Redeliveries carry the same bytes as the CDR
// first sent, and the summary counts what happened.
func TestSessionRunnerPutsEveryNewVoiceCallThroughOneSessionBeforeItsCDR(t *testing.T) {
	t.Parallel()
	f := newFakeSessionAPI(20*60, sim.FinalTerminate) // runs out part way: some calls are cut
	runner := &sim.SessionRunner{Driver: &sim.Driver{API: MustFakeSessionAPI(t, f)}, Share: 1, Workers: 4}
	cfg := testConfig()
	cfg.Late, cfg.Malformed = 0, 0
	cfg.MSISDNs = cfg.MSISDNs[:1]
	g, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sum := sim.NewSummary(cfg)
	sent := map[string][]byte{} // CloudEvents id -> bytes first sent
	cdrOf := map[string]carrier.UsageEvent{}
	for b := range 20 {
		evs := make([]sim.Event, 10)
		for i := range evs {
			evs[i] = g.Next(cfg.Start.Add(time.Duration(b*10+i) * time.Minute))
		}
		if err := runner.Run(context.Background(), g, evs, sum); err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			sum.Record(ev)
			if first, ok := sent[ev.ID]; ok {
				if string(first) != string(ev.Value) {
					t.Fatalf("redelivery of %s differs from what was first sent:\n%s\n%s", ev.ID, first, ev.Value)
				}
				continue
			}
			sent[ev.ID] = ev.Value
			var ue carrier.UsageEvent
			if err := json.Unmarshal(ev.Value, &ue); err != nil {
				t.Fatal(err)
			}
			if ev.SessionID != "" {
				if ue.Data.CallID != ev.SessionID {
					t.Fatalf("CDR %s: call_id %s, session %s", ev.ID, ue.Data.CallID, ev.SessionID)
				}
				cdrOf[ev.SessionID] = ue
			}
		}
	}
	if len(f.sessions) == 0 {
		t.Fatal("no session was opened")
	}
	opens := map[string]int{}
	for _, r := range f.requests {
		if r.op == "open" {
			opens[r.sessionID]++
		}
	}
	for id, s := range f.sessions {
		if opens[id] != 1 {
			t.Fatalf("session %s opened %d times", id, opens[id])
		}
		if s.terminates != 1 {
			t.Fatalf("session %s terminated %d times", id, s.terminates)
		}
		for i := 1; i < len(s.usedSeen); i++ {
			if s.usedSeen[i] < s.usedSeen[i-1] {
				t.Fatalf("session %s: used went down: %v", id, s.usedSeen)
			}
		}
		cdr, ok := cdrOf[id]
		if !ok {
			t.Fatalf("session %s has no CDR", id)
		}
		if last := s.usedSeen[len(s.usedSeen)-1]; cdr.Data.DurationSeconds != last {
			t.Fatalf("session %s terminated with %d, its CDR says %d", id, last, cdr.Data.DurationSeconds)
		}
	}
	st := sum.Sessions
	if st == nil || st.Opened != int64(len(f.sessions)) || st.Terminated != st.Opened || st.CDRs != st.Opened {
		t.Fatalf("summary %+v: want %d opened, terminated and CDRs sent", st, len(f.sessions))
	}
	if st.Cut == 0 || st.Final < st.Cut {
		t.Fatalf("summary %+v: the balance ran out, so some calls were cut after a final grant", st)
	}
	var billable int64
	for _, cdr := range cdrOf {
		if cdr.Data.VisitedCountry != cfg.Home {
			billable += sim.BillableSeconds(cdr.Data.DurationSeconds)
		}
	}
	if sum.Totals.BillableSeconds < billable {
		t.Fatalf("totals bill %d seconds, the session calls alone %d", sum.Totals.BillableSeconds, billable)
	}
}

func TestSessionRunnerPicksTheSameShareOfCallsForTheSameEvents(t *testing.T) {
	t.Parallel()
	pick := func() (map[string]bool, int) {
		f := newFakeSessionAPI(1<<40, "continue_as_overage")
		runner := &sim.SessionRunner{Driver: &sim.Driver{API: MustFakeSessionAPI(t, f)}, Share: 0.5, Workers: 2}
		cfg := testConfig()
		g, err := sim.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		evs := make([]sim.Event, 400)
		voice := 0
		for i := range evs {
			evs[i] = g.Next(cfg.Start.Add(time.Duration(i) * time.Second))
			if _, ok := sim.SessionCallOf(evs[i]); ok {
				voice++
			}
		}
		if err := runner.Run(context.Background(), g, evs, sim.NewSummary(cfg)); err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for id := range f.sessions {
			ids[id] = true
		}
		return ids, voice
	}
	a, voice := pick()
	b, _ := pick()
	if len(a) != len(b) {
		t.Fatalf("%d then %d sessions for the same events", len(a), len(b))
	}
	for id := range a {
		if !b[id] {
			t.Fatalf("session %s picked once, not twice", id)
		}
	}
	if n := len(a); n < voice/4 || n > voice*3/4 {
		t.Fatalf("%d of %d new voice calls went through sessions, want about half", n, voice)
	}
}
