package carrier

import (
	"context"
	"fmt"
	"time"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/quota"
)

// Real-time credit control (CONTRACT §7.3): the carrier opens a session at
// a call's set-up, updates it while the call lasts and terminates it at the
// end. Units granted are reserved in the seafarer's hot state (quota's
// sessions.go) until used, released or lapsed; the terminate charges the
// call as a CDR would, once; the CDR that follows (data.call_id = the
// session id) settles the session instead of charging it again.

// SessionStore keeps sessions beside the grants (quota.RedisStore).
type SessionStore interface {
	OpenSession(ctx context.Context, o quota.SessionOpen) (*quota.SessionGrant, error)
	UpdateSession(ctx context.Context, sessionID string, used, requested int64, validity time.Duration) (*quota.SessionGrant, error)
	SessionCallOf(ctx context.Context, sessionID string) (seafarerID string, call quota.SessionCall, err error)
	TerminateSession(ctx context.Context, u quota.Usage) (*quota.DebitResult, *quota.SessionCharge, error)
}

// Sessions answers the carrier's session requests.
type Sessions struct {
	Store    SessionStore
	Resolver Resolver
	Tariff   *billing.Tariff
	// HomeCountry: a call there draws nothing, so its session is granted
	// what it asks and holds nothing.
	HomeCountry string
	// Recorder stores and publishes a terminate's ledger entry and
	// notifications.
	Recorder LedgerRecorder
	// Validity is how long granted units stay reserved without an update
	// (quota.DefaultSessionValidity when 0); FinalAction what the carrier
	// is told to do when a final grant is used up (continue_as_overage when
	// empty).
	Validity    time.Duration
	FinalAction string
	// Metrics, when set, counts the requests (Metrics.Sessions).
	Metrics *Metrics
	// A call's time must lie within what the consumer would apply of its
	// CDR: not after now + ClockSkew (24 h when 0), not before the dedupe
	// window (720 h when 0), so the CDR can still settle the session.
	ClockSkew, DedupeWindow time.Duration
	Now                     wuyou.Clock
	// FinalActions, when set, names a programme's own final action
	// (quota.PGProgrammes): a final grant ending on one of its grants is
	// given it instead of FinalAction.
	FinalActions interface {
		FinalAction(ctx context.Context, programmeID string) (string, error)
	}
}

// finalAction puts the final grant's programme's own final action in g.
func (s *Sessions) finalAction(ctx context.Context, g *quota.SessionGrant) (*quota.SessionGrant, error) {
	if g == nil || !g.Final || g.FinalProgramme == "" || s.FinalActions == nil {
		return g, nil
	}
	a, err := s.FinalActions.FinalAction(ctx, g.FinalProgramme)
	if err != nil {
		return nil, err
	}
	if a != "" {
		g.FinalAction = a
	}
	return g, nil
}

// count records one request's outcome.
func (s *Sessions) count(op string, g *quota.SessionGrant, err error) {
	if s.Metrics == nil {
		return
	}
	outcome := "granted"
	switch {
	case err != nil:
		outcome = wuyou.ErrorCode(err)
	case op == "terminate":
		outcome = "charged"
	case g != nil && g.Final:
		outcome = "final"
	}
	s.Metrics.Sessions.WithLabelValues(op, outcome).Inc()
}

// SessionRequest opens a session.
type SessionRequest struct {
	SessionID      string
	MSISDN         string
	Unit           string
	Requested      int64
	CallTime       time.Time
	VisitedCountry string
	CalledNumber   string
}

// checkCallTime refuses a call time the consumer would refuse for the
// call's CDR (beyond the clock skew) or send to the late topic (before the
// dedupe window): such a session's CDR could never settle it.
func (s *Sessions) checkCallTime(t time.Time) error {
	now := s.now()
	skew, window := s.ClockSkew, s.DedupeWindow
	if skew <= 0 {
		skew = 24 * time.Hour
	}
	if window <= 0 {
		window = 720 * time.Hour
	}
	switch {
	case t.After(now.Add(skew)):
		return wuyou.Invalid([]wuyou.FieldError{{Field: "call_time", Message: "is more than " + skew.String() + " after now"}})
	case quota.Late(t, now, window):
		return wuyou.Invalid([]wuyou.FieldError{{Field: "call_time", Message: "is older than the dedupe window (" + window.String() + "): its CDR would be late"}})
	}
	return nil
}

func (s *Sessions) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return wuyou.SystemClock()
}

// typeOfUnit is the usage type whose calls draw unit.
func typeOfUnit(unit string) string {
	switch unit {
	case billing.UnitBytes:
		return billing.TypeData
	case billing.UnitSMS:
		return billing.TypeSMS
	}
	return billing.TypeVoice
}

// Open reserves units for a call at its set-up. An MSISDN nobody holds is
// ENOTFOUND.
func (s *Sessions) Open(ctx context.Context, r SessionRequest) (g *quota.SessionGrant, err error) {
	defer func() { s.count("open", g, err) }()
	if r.CallTime.IsZero() {
		r.CallTime = s.now()
	}
	if err := s.checkCallTime(r.CallTime); err != nil {
		return nil, err
	}
	ids, err := s.Resolver.SeafarerIDsByMSISDN(ctx, []string{r.MSISDN})
	if err != nil {
		return nil, err
	}
	seafarerID, ok := ids[r.MSISDN]
	if !ok {
		return nil, &wuyou.Error{Code: wuyou.ENOTFOUND, Message: "no seafarer holds this MSISDN"}
	}
	call := quota.SessionCall{MSISDN: r.MSISDN, Type: typeOfUnit(r.Unit), Unit: r.Unit, CallTime: r.CallTime.UTC(),
		VisitedCountry: r.VisitedCountry, CalledNumber: r.CalledNumber}
	rating := s.Tariff.Rate(s.billingCall(call, 0), s.HomeCountry)
	g, err = s.Store.OpenSession(ctx, quota.SessionOpen{
		SessionID: r.SessionID, SeafarerID: seafarerID, Call: call, Requested: r.Requested,
		Free: !rating.Eligible, FinalAction: s.FinalAction, Validity: s.Validity,
	})
	if err != nil {
		return nil, err
	}
	return s.finalAction(ctx, g)
}

// Update reports the usage so far and asks for more.
func (s *Sessions) Update(ctx context.Context, sessionID string, used, requested int64) (*quota.SessionGrant, error) {
	g, err := s.Store.UpdateSession(ctx, sessionID, used, requested, s.Validity)
	if err == nil {
		g, err = s.finalAction(ctx, g)
	}
	s.count("update", g, err)
	return g, err
}

// Terminate charges the session's call for used (its whole usage) and
// releases the rest of its reservation. Its ledger entry is stored and
// published before the answer; when that fails the call is charged all the
// same, and terminating again records it (503 until then).
func (s *Sessions) Terminate(ctx context.Context, sessionID string, used int64) (ch *quota.SessionCharge, err error) {
	defer func() { s.count("terminate", nil, err) }()
	seafarerID, call, err := s.Store.SessionCallOf(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	r := s.Tariff.Rate(s.billingCall(call, used), s.HomeCountry)
	u := quota.Usage{
		SeafarerID: seafarerID, MSISDN: call.MSISDN, Type: call.Type, CallTime: call.CallTime,
		Unit: r.Unit, Billable: r.Billable, BillableSeconds: r.BillableSeconds,
		CalledNumber: call.CalledNumber, VisitedCountry: call.VisitedCountry, Free: r.Free,
		OveragePrice: r.OveragePrice, Increment: r.Increment, WholesalePrice: r.WholesalePrice,
		CallID: sessionID,
	}
	switch r.Unit {
	case billing.UnitSeconds:
		u.DurationSeconds = used
	case billing.UnitBytes:
		u.VolumeBytes = used
	}
	if used == 0 { // nothing was used: no SMS went out either
		u.Billable, u.BillableSeconds = 0, 0
	}
	res, charge, err := s.Store.TerminateSession(ctx, u)
	if err != nil {
		return nil, err
	}
	if res.Entry != nil || len(res.Notes) > 0 {
		if err := s.Recorder.RecordDebit(ctx, u, res); err != nil {
			return nil, &wuyou.Error{Code: wuyou.EUNAVAILABLE, Reason: "ledger_unavailable",
				Message: "the call is charged, but its ledger entry could not be recorded yet; terminate again to record it"}
		}
	}
	return charge, nil
}

// billingCall is the call to rate for a session that used used.
func (s *Sessions) billingCall(c quota.SessionCall, used int64) billing.Call {
	bc := billing.Call{Type: c.Type, Time: c.CallTime, VisitedCountry: c.VisitedCountry, Direction: "MO", CalledNumber: c.CalledNumber}
	switch c.Unit {
	case billing.UnitBytes:
		bc.VolumeBytes = used
	case billing.UnitSeconds:
		bc.DurationSeconds = used
	}
	return bc
}

// RecordDebit stores a debit's ledger entry (when it has one), publishes it
// with its notifications, then lets the hot state forget the entry. Safe
// to repeat.
func (r LedgerRecorder) RecordDebit(ctx context.Context, u quota.Usage, res *quota.DebitResult) error {
	var batch []quota.SeafarerEntry
	if res.Entry != nil {
		batch = []quota.SeafarerEntry{{SeafarerID: u.SeafarerID, Entry: res.Entry}}
		if r.Ledger != nil {
			if err := r.Ledger.Append(ctx, batch); err != nil {
				return fmt.Errorf("carrier: record ledger entry %s: %w", res.Entry.ID, err)
			}
		}
	}
	lang := ""
	if len(res.Notes) > 0 && r.Langs != nil {
		lang = langsOf(ctx, r.Langs, []string{u.SeafarerID})[u.SeafarerID]
	}
	msgs, err := debitMessagesIn(r.Publisher, u, res, lang)
	if err != nil {
		return err
	}
	if err := r.Publisher.Write(ctx, msgs...); err != nil {
		return err
	}
	if r.Hot != nil && batch != nil {
		_ = r.Hot.Recorded(ctx, batch)
	}
	return nil
}
