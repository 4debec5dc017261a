package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/wuyou/wuyou/carrier"
)

func noEnv(string) string { return "" }

// sessionLog is a session API that grants whatever is asked and records
// the used of every update and terminate per session, and the token.
type sessionLog struct {
	mu         sync.Mutex
	tokens     map[string]bool
	opened     map[string]string  // session id -> MSISDN
	used       map[string][]int64 // updates' then terminates' used
	terminates map[string]int
}

func MustSessionLog(tb testing.TB) (*sessionLog, string) {
	tb.Helper()
	l := &sessionLog{tokens: map[string]bool{}, opened: map[string]string{}, used: map[string][]int64{}, terminates: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")] = true
		var in struct {
			SessionID       string `json:"session_id"`
			Msisdn          string `json:"msisdn"`
			Requested, Used int64
		}
		_ = json.NewDecoder(r.Body).Decode(&in)
		w.Header().Set("Content-Type", "application/json")
		path := strings.TrimPrefix(r.URL.Path, "/v1/carrier/sessions")
		id, op, _ := strings.Cut(strings.TrimPrefix(path, "/"), ":")
		switch op {
		case "":
			l.opened[in.SessionID] = in.Msisdn
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(map[string]any{"session_id": in.SessionID, "granted": in.Requested, "validity_seconds": 300, "final_action": "continue_as_overage"})
		case "update":
			l.used[id] = append(l.used[id], in.Used)
			json.NewEncoder(w).Encode(map[string]any{"session_id": id, "granted": in.Requested, "validity_seconds": 300, "final_action": "continue_as_overage"})
		case "terminate":
			l.used[id] = append(l.used[id], in.Used)
			l.terminates[id]++
			json.NewEncoder(w).Encode(map[string]any{"charged": in.Used, "covered": in.Used, "overage": 0})
		}
	}))
	tb.Cleanup(srv.Close)
	return l, srv.URL
}

// With --sessions every new voice call is opened, updated and terminated
// once through the API before its CDR, whose call_id is the session id and
// whose duration is what the terminate reported; the token comes from
// WUYOU_TOKEN and the summary counts the sessions.
func TestSessionsPutEveryNewVoiceCallThroughTheAPIBeforeItsCDR(t *testing.T) {
	addr := MustKfake(t)
	l, server := MustSessionLog(t)
	env := map[string]string{"WUYOU_TOKEN": "carrier-token-from-env"}
	var stdout, stderr bytes.Buffer
	err := runEnv(context.Background(), []string{
		"--brokers", addr, "--count", "200", "--rate", "max", "--seed", "3",
		"--msisdn-range", "+8613800000001-+8613800000010", "--duplicates", "0.05",
		"--sessions", "--server", server,
	}, func(k string) string { return env[k] }, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("summary: %v\n%s", err, stdout.String())
	}
	if len(l.tokens) != 1 || !l.tokens["carrier-token-from-env"] {
		t.Fatalf("tokens sent: %v, want WUYOU_TOKEN's", l.tokens)
	}
	st := rep.Sessions
	if st == nil || st.Opened == 0 || st.Opened != int64(len(l.opened)) || st.Terminated != st.Opened || st.CDRs != st.Opened {
		t.Fatalf("summary sessions %+v; the API saw %d opened", st, len(l.opened))
	}
	if !strings.Contains(stderr.String(), "sessions: ") {
		t.Fatalf("stderr has no sessions line:\n%s", stderr.String())
	}

	cdrs := map[string]carrier.UsageEvent{}
	for _, ms := range readAll(t, addr, usageTopic) {
		for _, m := range ms {
			ev, err := carrier.DecodeUsageEvent(m.Value)
			if err != nil {
				t.Fatalf("undecodable CDR: %v", err)
			}
			if _, ok := l.opened[ev.Data.CallID]; ok {
				cdrs[ev.Data.CallID] = *ev
			}
		}
	}
	for id, msisdn := range l.opened {
		cdr, ok := cdrs[id]
		if !ok {
			t.Fatalf("session %s has no CDR with call_id %s", id, id)
		}
		if cdr.Subject != msisdn || cdr.Type != carrier.TypeVoice {
			t.Fatalf("session %s of %s: CDR %+v", id, msisdn, cdr)
		}
		if l.terminates[id] != 1 {
			t.Fatalf("session %s terminated %d times", id, l.terminates[id])
		}
		used := l.used[id]
		for i := 1; i < len(used); i++ {
			if used[i] < used[i-1] {
				t.Fatalf("session %s: used went down: %v", id, used)
			}
		}
		if last := used[len(used)-1]; last != cdr.Data.DurationSeconds {
			t.Fatalf("session %s terminated with %d, CDR says %d", id, last, cdr.Data.DurationSeconds)
		}
	}
}

func TestSessionFlagsAreRefusedWithAReason(t *testing.T) {
	for name, c := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"no token":            {[]string{"--sessions", "--msisdn-range", "+8613800000001-+8613800000002"}, nil, "--token or set WUYOU_TOKEN"},
		"bad server":          {[]string{"--sessions", "--token", "t", "--server", "localhost:8080", "--msisdn-range", "+8613800000001-+8613800000002"}, nil, "--server"},
		"bad server from env": {[]string{"--sessions", "--token", "t", "--msisdn-range", "+8613800000001-+8613800000002"}, map[string]string{"WUYOU_SERVER": "ftp://x"}, "--server"},
		"share above 1":       {[]string{"--sessions", "--token", "t", "--session-share", "1.5", "--msisdn-range", "+8613800000001-+8613800000002"}, nil, "--session-share"},
		"token alone":         {[]string{"--token", "t", "--msisdn-range", "+8613800000001-+8613800000002"}, nil, "--token is for --sessions"},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := runEnv(context.Background(), c.args, func(k string) string { return c.env[k] }, &stdout, &stderr)
			if err != errUsage {
				t.Fatalf("run returned %v, want errUsage", err)
			}
			if !strings.Contains(stderr.String(), c.want) {
				t.Fatalf("stderr does not mention %q:\n%s", c.want, stderr.String())
			}
		})
	}
}

func TestTheFlagBeatsWUYOU_SERVERAndWUYOU_SERVERBeatsTheDefault(t *testing.T) {
	env := map[string]string{"WUYOU_SERVER": "http://env.example:8080", "WUYOU_TOKEN": "env-token"}
	getenv := func(k string) string { return env[k] }
	o, err := parseOptions([]string{"--sessions", "--msisdn-range", "+8613800000001-+8613800000002"}, getenv, &bytes.Buffer{})
	if err != nil || o.sessions.server != "http://env.example:8080" || o.sessions.token != "env-token" {
		t.Fatalf("from the environment: %+v, %v", o.sessions, err)
	}
	o, err = parseOptions([]string{"--sessions", "--server", "http://flag.example", "--token", "flag-token", "--msisdn-range", "+8613800000001-+8613800000002"}, getenv, &bytes.Buffer{})
	if err != nil || o.sessions.server != "http://flag.example" || o.sessions.token != "flag-token" {
		t.Fatalf("from the flags: %+v, %v", o.sessions, err)
	}
}

// A session API that refuses (here 409: the session ids were used by an
// earlier run) stops the run with the reason and a hint, after the batch's
// CDRs are written: they settle whatever was left open.
func TestASessionConflictStopsTheRunAfterItsBatchWithAHintAboutFirstSeq(t *testing.T) {
	addr := MustKfake(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		if strings.HasSuffix(r.URL.Path, "/sessions") {
			w.WriteHeader(http.StatusCreated)
			w.Write([]byte(`{"session_id":"x","granted":60,"validity_seconds":300,"final":false,"final_action":"continue_as_overage"}`))
			return
		}
		w.WriteHeader(http.StatusConflict)
		w.Write([]byte(`{"title":"Conflict","status":409,"detail":"the session is terminated"}`))
	}))
	t.Cleanup(srv.Close)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{
		"--brokers", addr, "--count", "50", "--rate", "max", "--batch", "50", "--voice-share", "1",
		"--msisdn-range", "+8613800000001-+8613800000002", "--sessions", "--server", srv.URL, "--token", "t",
	}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "the session is terminated") || !strings.Contains(err.Error(), "--first-seq") {
		t.Fatalf("run returned %v; want the conflict and a hint about --first-seq", err)
	}
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("summary: %v\n%s", err, stdout.String())
	}
	n := 0
	for _, ms := range readAll(t, addr, usageTopic) {
		n += len(ms)
	}
	if rep.Stopped != "error" || rep.Totals.Sent != 50 || n != 50 {
		t.Fatalf("stopped %q after %d sent, %d on the topic; want the batch of 50 written, then error", rep.Stopped, rep.Totals.Sent, n)
	}
}
