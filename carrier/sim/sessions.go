package sim

// Real-time credit control (CONTRACT §7.3) as the carrier drives it: a
// voice call opens a session at its set-up, reports its usage so far every
// minute while it lasts, terminates when it ends, and the carrier's record
// of the call (the CDR, data.call_id = the session id) follows on Kafka.
// The simulated minutes pass as fast as the API answers unless a Driver is
// given a Minute.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wuyou/wuyou/carrier"
)

// SessionAnswer is the answer to an open or an update.
type SessionAnswer struct {
	SessionID       string `json:"session_id"`
	Granted         int64  `json:"granted"`
	ValiditySeconds int64  `json:"validity_seconds"`
	Final           bool   `json:"final"`
	FinalAction     string `json:"final_action"`
}

// SessionCharge is what a terminate says the call was charged.
type SessionCharge struct {
	Charged int64 `json:"charged"`
	Covered int64 `json:"covered"`
	Overage int64 `json:"overage"`
}

// FinalTerminate is the final action that tells the carrier to end the call
// when its final grant is used up.
const FinalTerminate = "terminate"

// SessionOpen opens a session: the body of POST /v1/carrier/sessions.
type SessionOpen struct {
	SessionID      string    `json:"session_id"`
	MSISDN         string    `json:"msisdn"`
	Unit           string    `json:"unit"`
	Requested      int64     `json:"requested"`
	CallTime       time.Time `json:"call_time"`
	VisitedCountry string    `json:"visited_country"`
	CalledNumber   string    `json:"called_number"`
}

// SessionAPI is Wuyou's session API as the carrier calls it.
type SessionAPI interface {
	Open(ctx context.Context, o SessionOpen) (SessionAnswer, error)
	Update(ctx context.Context, sessionID string, used, requested int64) (SessionAnswer, error)
	Terminate(ctx context.Context, sessionID string, used int64) (SessionCharge, error)
}

// ErrUnknownSubscriber is the session API's answer for an MSISDN no
// seafarer holds (404 on open): the carrier connects the call all the same
// and its CDR alone tells Wuyou, which keeps it until the number is
// enrolled.
var ErrUnknownSubscriber = errors.New("no seafarer holds this MSISDN")

// APIError is an answer of the session API other than the one asked for.
type APIError struct {
	Op     string // open, update or terminate
	Status int
	Detail string // the problem's detail, or the body
}

func (e *APIError) Error() string {
	return fmt.Sprintf("session %s: HTTP %d: %s", e.Op, e.Status, e.Detail)
}

// HTTPSessions calls the session API of the wuyoud at Base with a carrier
// token.
type HTTPSessions struct {
	Base   string // e.g. http://localhost:8080
	Token  string // a bearer token of role carrier
	Client *http.Client
}

// Open opens a session. An MSISDN nobody holds is ErrUnknownSubscriber.
func (h *HTTPSessions) Open(ctx context.Context, o SessionOpen) (SessionAnswer, error) {
	var a SessionAnswer
	status, err := h.post(ctx, "open", "/v1/carrier/sessions", o, http.StatusCreated, &a)
	if status == http.StatusNotFound {
		return a, fmt.Errorf("%w: %w", ErrUnknownSubscriber, err)
	}
	return a, err
}

// Update reports the call's usage so far and asks for more.
func (h *HTTPSessions) Update(ctx context.Context, sessionID string, used, requested int64) (SessionAnswer, error) {
	var a SessionAnswer
	_, err := h.post(ctx, "update", "/v1/carrier/sessions/"+url.PathEscape(sessionID)+":update",
		map[string]int64{"used": used, "requested": requested}, http.StatusOK, &a)
	return a, err
}

// Terminate reports the call's whole usage.
func (h *HTTPSessions) Terminate(ctx context.Context, sessionID string, used int64) (SessionCharge, error) {
	var c SessionCharge
	_, err := h.post(ctx, "terminate", "/v1/carrier/sessions/"+url.PathEscape(sessionID)+":terminate",
		map[string]int64{"used": used}, http.StatusOK, &c)
	return c, err
}

// post sends body and decodes an answer of status want into out; any
// other answer is an *APIError.
func (h *HTTPSessions) post(ctx context.Context, op, path string, body any, want int, out any) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(h.Base, "/")+path, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+h.Token)
	client := h.Client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("session %s: %w", op, err)
	}
	defer res.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return res.StatusCode, fmt.Errorf("session %s: reading the answer: %w", op, err)
	}
	if res.StatusCode != want {
		var p struct {
			Detail string `json:"detail"`
			Title  string `json:"title"`
		}
		detail := strings.TrimSpace(string(rb))
		if json.Unmarshal(rb, &p) == nil && (p.Detail != "" || p.Title != "") {
			detail = p.Detail
			if detail == "" {
				detail = p.Title
			}
		}
		return res.StatusCode, &APIError{Op: op, Status: res.StatusCode, Detail: detail}
	}
	if err := json.Unmarshal(rb, out); err != nil {
		return res.StatusCode, fmt.Errorf("session %s: answer %q: %w", op, rb, err)
	}
	return res.StatusCode, nil
}

// Call is a voice call the carrier puts through the session API.
type Call struct {
	SessionID      string // the CDR's data.call_id
	MSISDN         string
	CallTime       time.Time
	VisitedCountry string
	CalledNumber   string
	Duration       int64 // how long the caller talks, in seconds, unless the call is cut
}

// SessionCallOf is the call of a generated event that goes through a
// session: a new voice call (Fresh or Reordered). Redeliveries, late
// events (beyond the dedupe window, never applied), SMS, data and garbage
// go to Kafka only.
func SessionCallOf(ev Event) (Call, bool) {
	if !ev.Voice || (ev.Kind != Fresh && ev.Kind != Reordered) {
		return Call{}, false
	}
	var ue carrier.UsageEvent
	if json.Unmarshal(ev.Value, &ue) != nil || ue.Data.CallID == "" {
		return Call{}, false
	}
	return Call{SessionID: ue.Data.CallID, MSISDN: ue.Subject, CallTime: ue.Time,
		VisitedCountry: ue.Data.VisitedCountry, CalledNumber: ue.Data.CalledNumber, Duration: ue.Data.DurationSeconds}, true
}

// Outcome is what became of one call's session.
type Outcome struct {
	Opened bool // the open was answered with a grant
	// Unknown: the MSISDN is not enrolled (404 on open); the call went
	// ahead without a session.
	Unknown    bool
	Updates    int  // updates answered
	Final      bool // some answer was final: nothing left beyond its grant
	Cut        bool // the final action was terminate and the call was ended when its grant ran out
	Terminated bool
	Used       int64 // the call's duration as terminated: what its CDR says
	Charge     SessionCharge
}

// Driver drives calls through a SessionAPI.
type Driver struct {
	API SessionAPI
	// Requested is what an open and each update ask for (60 s when 0);
	// updates come every Requested seconds of the call.
	Requested int64
	// Minute is how long a simulated minute lasts in real time (as fast as
	// the API answers when 0), so a demo's allowance shows what sessions
	// hold while their calls last.
	Minute time.Duration
}

// Drive puts c through a session: open asking for Requested seconds, an
// update every Requested seconds of talk with the usage so far
// (cumulative, never decreasing), then one terminate with the call's
// duration. A call whose final grant runs out while its final action is
// terminate is cut there: Outcome.Used is then shorter than c.Duration
// (0 when nothing was granted: the call never connects). An unknown
// MSISDN is not an error: the Outcome says Unknown and the call lasts
// c.Duration.
func (d *Driver) Drive(ctx context.Context, c Call) (Outcome, error) {
	step := d.Requested
	if step <= 0 {
		step = 60
	}
	out := Outcome{Used: c.Duration}
	a, err := d.API.Open(ctx, SessionOpen{SessionID: c.SessionID, MSISDN: c.MSISDN, Unit: "seconds", Requested: step,
		CallTime: c.CallTime.UTC(), VisitedCountry: c.VisitedCountry, CalledNumber: c.CalledNumber})
	if errors.Is(err, ErrUnknownSubscriber) {
		out.Unknown = true
		return out, nil
	}
	if err != nil {
		return out, err
	}
	out.Opened = true
	var used int64
	// allowed is how far the call may go on what it was granted.
	allowed := a.Granted
	for {
		out.Final = out.Final || a.Final
		if a.Final && a.FinalAction == FinalTerminate && allowed < c.Duration {
			out.Cut, out.Used = true, allowed
			break
		}
		next := used + step
		if next >= c.Duration {
			break
		}
		if err := d.wait(ctx, next-used); err != nil {
			return out, err
		}
		used = next
		if a, err = d.API.Update(ctx, c.SessionID, used, step); err != nil {
			return out, err
		}
		out.Updates++
		allowed = used + a.Granted
	}
	if err := d.wait(ctx, out.Used-used); err != nil {
		return out, err
	}
	ch, err := d.API.Terminate(ctx, c.SessionID, out.Used)
	if err != nil {
		return out, err
	}
	out.Terminated, out.Charge = true, ch
	return out, nil
}

// wait lets seconds of the call pass at the Driver's pace.
func (d *Driver) wait(ctx context.Context, seconds int64) error {
	if d.Minute <= 0 || seconds <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(time.Duration(seconds) * d.Minute / 60)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// SessionTotals counts what the calls put through sessions did.
type SessionTotals struct {
	Opened     int64 `json:"opened"`             // sessions the API opened
	Unknown    int64 `json:"unknown_subscriber"` // opens refused for an MSISDN nobody holds: CDR only
	Updates    int64 `json:"updates"`
	Final      int64 `json:"final_grants"` // sessions told at some point that nothing was left beyond their grant
	Cut        int64 `json:"cut"`          // calls ended by final action terminate
	Terminated int64 `json:"terminated"`
	CDRs       int64 `json:"cdrs_sent"` // CDRs of these calls written to Kafka (data.call_id = session id)
	// What the terminates were charged, in seconds.
	Charged int64 `json:"charged_seconds"`
	Covered int64 `json:"covered_seconds"`
	Overage int64 `json:"overage_seconds"`
}

// Add counts one call's outcome (its CDR is counted when it is sent).
func (t *SessionTotals) Add(o Outcome) {
	if o.Opened {
		t.Opened++
	}
	if o.Unknown {
		t.Unknown++
	}
	t.Updates += int64(o.Updates)
	if o.Final {
		t.Final++
	}
	if o.Cut {
		t.Cut++
	}
	if o.Terminated {
		t.Terminated++
		t.Charged += o.Charge.Charged
		t.Covered += o.Charge.Covered
		t.Overage += o.Charge.Overage
	}
}

// WithDuration returns ev with the call's duration set to seconds (a call
// its session cut short), re-encoded, its billable seconds rated again, and
// remembers it so a later redelivery repeats these bytes, not the first.
func (g *Generator) WithDuration(ev Event, seconds int64) (Event, error) {
	var ue carrier.UsageEvent
	if err := json.Unmarshal(ev.Value, &ue); err != nil {
		return ev, fmt.Errorf("sim: re-reading event %s: %w", ev.ID, err)
	}
	if ue.Data.DurationSeconds == seconds {
		return ev, nil
	}
	ue.Data.DurationSeconds = seconds
	b, err := json.Marshal(ue)
	if err != nil {
		return ev, err
	}
	ev.Value = b
	if ev.Eligible {
		ev.BillableSeconds = BillableSeconds(seconds)
	}
	for i := range g.recent {
		if g.recent[i].ID == ev.ID {
			g.recent[i].Value, g.recent[i].BillableSeconds = ev.Value, ev.BillableSeconds
		}
	}
	return ev, nil
}

// SessionRunner puts a share of generated voice calls through sessions
// before their CDRs are written.
type SessionRunner struct {
	Driver *Driver
	// Share of new voice calls put through sessions, in [0, 1]. Which ones
	// is decided by the session id, so the same events pick the same calls
	// and the generator's output does not change.
	Share   float64
	Workers int // calls driven at once (1 when 0)
}

// Run drives the session calls among evs, up to Workers at a time, and
// amends their events in place: SessionID set, a cut call's duration
// shortened (g.WithDuration). Every outcome, even a failed session's, is
// counted in sum. On an error (the first is returned) every event is still
// amended and may be written: the CDR of a session that failed half way
// settles it.
func (r *SessionRunner) Run(ctx context.Context, g *Generator, evs []Event, sum *Summary) error {
	type job struct {
		i    int
		call Call
	}
	var jobs []job
	for i, ev := range evs {
		if c, ok := SessionCallOf(ev); ok && ChosenForSession(c.SessionID, r.Share) {
			jobs = append(jobs, job{i, c})
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	type result struct {
		job
		out Outcome
		err error
	}
	results := make([]result, len(jobs))
	next := make(chan int)
	done := make(chan struct{})
	workers := min(max(r.Workers, 1), len(jobs))
	for range workers {
		go func() {
			for k := range next {
				out, err := r.Driver.Drive(ctx, jobs[k].call)
				results[k] = result{jobs[k], out, err}
			}
			done <- struct{}{}
		}()
	}
	for k := range jobs {
		next <- k
	}
	close(next)
	for range workers {
		<-done
	}
	var firstErr error
	for _, res := range results {
		sum.RecordSession(res.out)
		ev := evs[res.i]
		if res.err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("call %s: %w", res.call.SessionID, res.err)
			}
		} else if res.out.Used != res.call.Duration {
			amended, err := g.WithDuration(ev, res.out.Used)
			if err != nil && firstErr == nil {
				firstErr = err
			}
			ev = amended
		}
		if res.out.Opened {
			ev.SessionID = res.call.SessionID
		}
		evs[res.i] = ev
	}
	return firstErr
}

// ChosenForSession decides by the session id whether a call goes through a
// session when share of calls do (FNV-1a of the id, mixed by splitmix64's finaliser:
// ids differ in their last bytes only).
func ChosenForSession(id string, share float64) bool {
	if share >= 1 {
		return true
	}
	if share <= 0 {
		return false
	}
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return float64(h>>11)/float64(1<<53) < share
}
