package sim

import "time"

// Summary is what was sent and what Wuyou should make of it, overall and
// per MSISDN, so a test can compare balances and ledgers with it.
type Summary struct {
	Source    string             `json:"source"`
	Home      string             `json:"home_country"`
	Seed      int64              `json:"seed"`
	FirstID   string             `json:"first_id,omitempty"` // lowest CloudEvents id sent
	LastID    string             `json:"last_id,omitempty"`  // highest CloudEvents id sent
	FirstTime time.Time          `json:"first_call_time,omitzero"`
	LastTime  time.Time          `json:"last_call_time,omitzero"`
	Totals    Totals             `json:"totals"`
	PerMSISDN map[string]*Totals `json:"per_msisdn"`
	// Sessions counts the calls put through the session API (carriersim
	// --sessions); nil when none were.
	Sessions *SessionTotals `json:"sessions,omitempty"`
}

// RecordSession counts what became of one call's session.
func (s *Summary) RecordSession(o Outcome) {
	if s.Sessions == nil {
		s.Sessions = &SessionTotals{}
	}
	s.Sessions.Add(o)
}

// Totals counts messages by what Wuyou must do with them. Sent = Distinct +
// Duplicates + Malformed; Late and Reordered are part of Distinct.
//
// VoiceCalls, EligibleVoiceCalls and BillableSeconds count only the events
// Wuyou applies: distinct and not late. An eligible call's billable seconds
// are its duration rounded up to a whole minute (the default rating); a
// balance falls by the covered part of them.
type Totals struct {
	Sent       int64 `json:"sent"`       // every message written, whatever its kind
	Distinct   int64 `json:"distinct"`   // valid events, a redelivered one counted once
	Duplicates int64 `json:"duplicates"` // redeliveries of an event already sent
	Late       int64 `json:"late"`       // valid events older than the late age: diverted, not applied
	Reordered  int64 `json:"reordered"`  // valid events sent out of call-time order
	Malformed  int64 `json:"malformed"`  // rejected by the decoder: dead-lettered

	VoiceCalls          int64 `json:"voice_calls"`           // applied voice events
	EligibleVoiceCalls  int64 `json:"eligible_voice_calls"`  // applied voice events abroad (visited ≠ home)
	BillableSeconds     int64 `json:"billable_seconds"`      // their billable seconds
	LateBillableSeconds int64 `json:"late_billable_seconds"` // billable seconds of eligible late calls, not applied

	// Data sessions and text messages, counted as voice calls are: only
	// those Wuyou applies. Abroad they draw from bytes and sms grants.
	DataSessions         int64 `json:"data_sessions"`
	EligibleDataSessions int64 `json:"eligible_data_sessions"`
	BillableBytes        int64 `json:"billable_bytes"` // volumes abroad rounded up to 1024 bytes
	SMS                  int64 `json:"sms"`
	EligibleSMS          int64 `json:"eligible_sms"` // each bills 1 sms
}

// NewSummary returns empty totals for traffic generated from cfg.
func NewSummary(cfg Config) *Summary {
	return &Summary{Source: cfg.Source, Home: cfg.Home, Seed: cfg.Seed, PerMSISDN: map[string]*Totals{}}
}

// Record counts one message that was sent. Record only what was actually
// written, so the summary stays true when a run stops part way.
func (s *Summary) Record(ev Event) {
	per := s.PerMSISDN[ev.MSISDN]
	if per == nil {
		per = &Totals{}
		s.PerMSISDN[ev.MSISDN] = per
	}
	per.add(ev)
	s.Totals.add(ev)
	if ev.SessionID != "" {
		if s.Sessions == nil {
			s.Sessions = &SessionTotals{}
		}
		s.Sessions.CDRs++
	}
	if ev.Kind == Duplicate || ev.Kind == Malformed {
		return
	}
	// Ids are cdr-<zero-padded seq>: string order is sequence order.
	if s.FirstID == "" || ev.ID < s.FirstID {
		s.FirstID = ev.ID
	}
	if ev.ID > s.LastID {
		s.LastID = ev.ID
	}
	if s.FirstTime.IsZero() || ev.CallTime.Before(s.FirstTime) {
		s.FirstTime = ev.CallTime
	}
	if ev.CallTime.After(s.LastTime) {
		s.LastTime = ev.CallTime
	}
}

func (t *Totals) add(ev Event) {
	t.Sent++
	switch ev.Kind {
	case Duplicate:
		t.Duplicates++
		return
	case Malformed:
		t.Malformed++
		return
	case Late:
		t.Distinct++
		t.Late++
		if ev.Voice && ev.Eligible {
			t.LateBillableSeconds += ev.BillableSeconds
		}
		return
	case Reordered:
		t.Reordered++
	}
	t.Distinct++
	switch {
	case ev.Voice:
		t.VoiceCalls++
		if ev.Eligible {
			t.EligibleVoiceCalls++
			t.BillableSeconds += ev.BillableSeconds
		}
	case ev.Data:
		t.DataSessions++
		if ev.Eligible {
			t.EligibleDataSessions++
			t.BillableBytes += ev.BillableBytes
		}
	case ev.SMS:
		t.SMS++
		if ev.Eligible {
			t.EligibleSMS++
		}
	}
}
