package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/wuyou/wuyou/carrier/sim"
)

// This file holds what the harness knows without asking Wuyou: the stream
// it sent and what every seafarer's balance and ledger must show for it,
// and the HTTP calls that seed the service and read back what it made of
// the stream.

// apiClient calls one wuyoud's HTTP API.
type apiClient struct {
	base  string
	token string
}

var apiHTTP = &http.Client{Timeout: 30 * time.Second}

// call sends a JSON request and decodes a reply with status want into out.
func (c apiClient) call(want int, method, path string, body, out any, headers ...string) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := apiHTTP.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d: %s", method, path, res.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: %w: %s", method, path, err, b)
		}
	}
	return nil
}

// seafarer is one enrolled seafarer.
type seafarer struct{ ID, MSISDN string }

// seed enrols one seafarer per MSISDN in one company and issues each one
// pack of packSeconds, effective at effective.
func seed(c apiClient, msisdns []string, packSeconds int64, effective time.Time) ([]seafarer, error) {
	var company struct{ ID string }
	if err := c.call(http.StatusCreated, "POST", "/v1/companies", map[string]string{"name": "Chaos Shipping", "registration_no": "REG-CHAOS"}, &company); err != nil {
		return nil, err
	}
	rows := make([]map[string]string, len(msisdns))
	for i, m := range msisdns {
		rows[i] = map[string]string{"seafarer_book_no": "BK" + strings.TrimPrefix(m, "+"), "name": "Seafarer " + m, "msisdn": m, "nationality": "CN"}
	}
	var enrolled struct {
		Created int
		Results []struct{ Status, ID string }
	}
	if err := c.call(http.StatusOK, "POST", "/v1/companies/"+company.ID+"/seafarers:bulk", rows, &enrolled); err != nil {
		return nil, err
	}
	if enrolled.Created != len(msisdns) {
		return nil, fmt.Errorf("enrolled %d of %d seafarers", enrolled.Created, len(msisdns))
	}
	crew := make([]seafarer, len(msisdns))
	ids := make([]string, len(msisdns))
	for i, r := range enrolled.Results {
		crew[i] = seafarer{ID: r.ID, MSISDN: msisdns[i]}
		ids[i] = r.ID
	}
	var prog struct{ ID string }
	if err := c.call(http.StatusCreated, "POST", "/v1/programmes", map[string]any{
		"name": "chaos pack", "pack_seconds": packSeconds, "valid_days": 30, "priority": 1, "budget_packs": 0,
		"starts_at": effective.Add(-48 * time.Hour).UTC(), "ends_at": effective.Add(90 * 24 * time.Hour).UTC(),
	}, &prog); err != nil {
		return nil, err
	}
	var iss struct {
		ID, Status string
		Issued     int
	}
	if err := c.call(http.StatusAccepted, "POST", "/v1/programmes/"+prog.ID+"/issuances",
		map[string]any{"seafarer_ids": ids, "effective_at": effective.UTC()}, &iss, "Idempotency-Key", "chaos-"+prog.ID); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(60 * time.Second); iss.Status != "done"; {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("issuance %s still %s after 60s", iss.ID, iss.Status)
		}
		time.Sleep(100 * time.Millisecond)
		if err := c.call(http.StatusOK, "GET", "/v1/issuances/"+iss.ID, nil, &iss); err != nil {
			return nil, err
		}
	}
	if iss.Issued != len(ids) {
		return nil, fmt.Errorf("issued %d of %d packs", iss.Issued, len(ids))
	}
	return crew, nil
}

// expected is what one seafarer's account must show once every distinct
// event of the stream is applied exactly once.
type expected struct {
	Billable int64           // sim.Summary's billable seconds for the MSISDN
	EventIDs map[string]bool // the distinct events, each one debit ledger entry
}

// stream generates n messages and the model of what they must do. The
// per-MSISDN billable seconds come from sim.Summary; the event ids are
// read from the messages themselves (decoded here, not by the carrier
// package).
func stream(cfg sim.Config, n int) ([]kafka.Message, *sim.Summary, map[string]*expected, error) {
	var msgs []kafka.Message
	want := map[string]*expected{}
	var decodeErr error
	sum, err := sim.Generate(cfg, n, func(key, value []byte, kind sim.Kind) {
		msgs = append(msgs, kafka.Message{Key: bytes.Clone(key), Value: bytes.Clone(value)})
		var ev struct{ ID, Subject string }
		if err := json.Unmarshal(value, &ev); err != nil {
			decodeErr = err
			return
		}
		e := want[ev.Subject]
		if e == nil {
			e = &expected{EventIDs: map[string]bool{}}
			want[ev.Subject] = e
		}
		e.EventIDs[ev.ID] = true
	})
	if err == nil {
		err = decodeErr
	}
	if err != nil {
		return nil, nil, nil, err
	}
	for m, t := range sum.PerMSISDN {
		want[m].Billable = t.BillableSeconds
		if int64(len(want[m].EventIDs)) != t.Distinct {
			return nil, nil, nil, fmt.Errorf("%s: %d distinct ids in the stream, summary says %d", m, len(want[m].EventIDs), t.Distinct)
		}
	}
	return msgs, sum, want, nil
}

// observed is what the API shows for one seafarer.
type observed struct {
	Period        string
	Used          int64 // allowance: billable seconds of the period
	Remaining     int64
	Debits        int
	DebitEventIDs map[string]int // event id → debit entries carrying it
	// Σ over the debit entries of the ledger: what the ledger says was
	// billed and covered, whatever the allowance's counters say.
	LedgerBillable int64
	LedgerCovered  int64
}

// observe reads a seafarer's allowance and pages through its ledger.
func observe(c apiClient, seafarerID string) (observed, error) {
	var a struct {
		Period           string `json:"period"`
		RemainingSeconds int64  `json:"remaining_seconds"`
		UsedSeconds      int64  `json:"used_seconds"`
	}
	if err := c.call(http.StatusOK, "GET", "/v1/seafarers/"+seafarerID+"/allowance", nil, &a); err != nil {
		return observed{}, err
	}
	o := observed{Period: a.Period, Used: a.UsedSeconds, Remaining: a.RemainingSeconds, DebitEventIDs: map[string]int{}}
	cursor := ""
	for pages := 0; pages < 1000; pages++ {
		var page struct {
			Items []struct {
				Kind            string `json:"kind"`
				EventID         string `json:"event_id"`
				BillableSeconds int64  `json:"billable_seconds"`
				CoveredSeconds  int64  `json:"covered_seconds"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		if err := c.call(http.StatusOK, "GET", "/v1/seafarers/"+seafarerID+"/usage?limit=500&cursor="+url.QueryEscape(cursor), nil, &page); err != nil {
			return observed{}, err
		}
		for _, e := range page.Items {
			if e.Kind == "debit" {
				o.Debits++
				o.DebitEventIDs[e.EventID]++
				o.LedgerBillable += e.BillableSeconds
				o.LedgerCovered += e.CoveredSeconds
			}
		}
		if page.NextCursor == "" {
			return o, nil
		}
		cursor = page.NextCursor
	}
	return observed{}, fmt.Errorf("seafarer %s: ledger paging does not end", seafarerID)
}

// verdict compares every seafarer's account with the model.
type verdict struct {
	EventsApplied  int   `json:"events_applied"`  // distinct expected events found on a ledger
	EventsLost     int   `json:"events_lost"`     // expected events with no debit entry
	EventsDoubled  int   `json:"events_doubled"`  // debit entries beyond one per event, plus unexpected ones
	DuplicateIDs   int   `json:"duplicate_ids"`   // event ids with more than one debit entry
	SecondsLost    int64 `json:"seconds_lost"`    // Σ max(0, expected − used seconds)
	SecondsDoubled int64 `json:"seconds_doubled"` // Σ max(0, used − expected seconds)
	// RemainingWrong counts seafarers whose remaining seconds differ from
	// pack − min(pack, billable): a balance that disagrees with its usage.
	RemainingWrong int `json:"remaining_wrong"`
	// LedgerSumsWrong counts seafarers whose debit entries, summed, bill or
	// cover other seconds than the model: Σ billable_seconds ≠ the billable
	// seconds of the distinct calls, or Σ covered_seconds ≠ min(pack,
	// billable). A ledger can carry exactly the right event ids and still
	// explain a wrong balance.
	LedgerSumsWrong int `json:"ledger_sums_wrong"`
	// sumsWrongWithRightIDs counts those of them whose debit entries carry
	// exactly the expected event ids, once each.
	sumsWrongWithRightIDs int
	// LostOnLedgerTopic counts the lost events whose debit entry is on
	// wuyou.ledger.v1: applied and published, then lost from Redis.
	LostOnLedgerTopic int      `json:"lost_on_ledger_topic"`
	Examples          []string `json:"examples,omitempty"`
	lostIDs           []string
}

// counts is the verdict without its examples, to tell whether it changed.
func (v verdict) counts() [7]int64 {
	return [7]int64{int64(v.EventsApplied), int64(v.EventsLost), int64(v.EventsDoubled), v.SecondsLost, v.SecondsDoubled, int64(v.RemainingWrong), int64(v.LedgerSumsWrong)}
}

func (v verdict) clean() bool {
	return v.EventsLost == 0 && v.EventsDoubled == 0 && v.SecondsLost == 0 && v.SecondsDoubled == 0 && v.RemainingWrong == 0 && v.LedgerSumsWrong == 0
}

// compare reads every seafarer's account and compares it with the model.
func compare(ctx context.Context, c apiClient, crew []seafarer, want map[string]*expected, packSeconds int64) (verdict, error) {
	var v verdict
	note := func(format string, args ...any) {
		if len(v.Examples) < 10 {
			v.Examples = append(v.Examples, fmt.Sprintf(format, args...))
		}
	}
	for _, sf := range crew {
		if err := ctx.Err(); err != nil {
			return v, err
		}
		w := want[sf.MSISDN]
		if w == nil {
			w = &expected{EventIDs: map[string]bool{}}
		}
		o, err := observe(c, sf.ID)
		if err != nil {
			return v, err
		}
		rightIDs := len(o.DebitEventIDs) == len(w.EventIDs) && o.Debits == len(w.EventIDs)
		for id := range w.EventIDs {
			if o.DebitEventIDs[id] == 0 {
				rightIDs = false
				v.EventsLost++
				v.lostIDs = append(v.lostIDs, id)
				note("%s: event %s has no debit entry", sf.MSISDN, id)
			} else {
				v.EventsApplied++
			}
		}
		for id, n := range o.DebitEventIDs {
			switch {
			case !w.EventIDs[id]:
				v.EventsDoubled += n
				note("%s: event %s debited but never sent", sf.MSISDN, id)
			case n > 1:
				v.EventsDoubled += n - 1
				v.DuplicateIDs++
				note("%s: event %s debited %d times", sf.MSISDN, id, n)
			}
		}
		if o.Used < w.Billable {
			v.SecondsLost += w.Billable - o.Used
			note("%s: used %d s, expected %d s", sf.MSISDN, o.Used, w.Billable)
		} else if o.Used > w.Billable {
			v.SecondsDoubled += o.Used - w.Billable
			note("%s: used %d s, expected %d s", sf.MSISDN, o.Used, w.Billable)
		}
		if wantRemaining := packSeconds - min(packSeconds, w.Billable); o.Remaining != wantRemaining {
			v.RemainingWrong++
			note("%s: remaining %d s, expected %d s", sf.MSISDN, o.Remaining, wantRemaining)
		}
		if wrong := ledgerSums(sf.MSISDN, w, o, packSeconds); wrong != "" {
			v.LedgerSumsWrong++
			if rightIDs {
				v.sumsWrongWithRightIDs++
			}
			note("%s", wrong)
		}
	}
	return v, nil
}

// ledgerSums compares the sums of one seafarer's debit entries with the
// model and says what differs ("" when nothing does). Every call of the
// stream lies inside the one pack's validity, so the pack covers the first
// seconds billed, whatever order the calls were applied in: Σ covered =
// min(pack, Σ billable).
func ledgerSums(msisdn string, w *expected, o observed, packSeconds int64) string {
	wantCovered := min(packSeconds, w.Billable)
	switch {
	case o.LedgerBillable != w.Billable && o.LedgerCovered != wantCovered:
		return fmt.Sprintf("%s: ledger bills %d s and covers %d s, expected %d s and %d s", msisdn, o.LedgerBillable, o.LedgerCovered, w.Billable, wantCovered)
	case o.LedgerBillable != w.Billable:
		return fmt.Sprintf("%s: ledger bills %d s, expected %d s", msisdn, o.LedgerBillable, w.Billable)
	case o.LedgerCovered != wantCovered:
		return fmt.Sprintf("%s: ledger covers %d s, expected %d s", msisdn, o.LedgerCovered, wantCovered)
	}
	return ""
}
