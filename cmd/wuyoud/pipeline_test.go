package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/carrier/sim"
	"github.com/wuyou/wuyou/token"
)

// TestStreamWithDuplicatesReorderLateMalformedAndLateEnrolmentMatchesIndependentModel
// runs a realistic carrier feed through the whole service (HTTP, the Kafka
// consumer, Redis) and compares every account with a model the test
// computes on its own:
//
//   - 10% redeliveries, 10% out of call-time order, 1% late (older than the
//     dedupe window), 1% malformed, 80% voice;
//   - 20 seafarers with one pack each, of sizes from 10 minutes (soon
//     exhausted: the rest is overage) to 200,000 seconds;
//   - an MSISDN nobody holds until half the stream is consumed, then
//     enrolled: its calls are kept until then and applied as overage (it
//     has no pack);
//   - a second unknown MSISDN that a seafarer switches to halfway; that
//     seafarer's pack became effective a quarter into the stream, so of its
//     held calls only those made after that time draw from it.
//
// Afterwards the dead-letter topic holds exactly the malformed messages
// (original bytes, error and error_code headers), the late topic exactly the
// late events, the ledger topic every applied debit, and the metering
// counters agree with the model.
func TestStreamWithDuplicatesReorderLateMalformedAndLateEnrolmentMatchesIndependentModel(t *testing.T) {
	const (
		group      = "pipeline"
		partitions = 4
		events     = 3000
		home       = "CN"
	)
	st := MustWuyouStack(t, partitions)
	node := st.MustStartNode(t, group)
	c := node.api
	union := st.MustToken(t, token.RoleUnion, "staff-1", "")
	carrierTok := st.MustToken(t, token.RoleCarrier, "cmcc", "")

	effective, start := sim.CallWindow(time.Now())
	var known []string
	for i := 1; i <= 20; i++ {
		known = append(known, fmt.Sprintf("+86137%08d", i))
	}
	const (
		lateEnrolled = "+8613700000090" // enrolled halfway; no pack
		renumbered   = "+8613700000091" // a seafarer switches to it halfway
		placeholder  = "+8613700000099" // that seafarer's number before; never called
	)

	companyID := MustCompany(t, c, union, "Pacific Crewing")
	crew := MustEnrolCrew(t, c, union, companyID, append(append([]string{}, known...), placeholder))
	switcher := crew[len(crew)-1]

	// One pack each: sizes cycle so that some run out early.
	packs := []int64{600, 1800, 6000, 20000, 200000}
	grants := map[string]*modelGrant{} // by seafarer id
	bySize := map[int64][]string{}
	for i, sf := range crew[:len(known)] {
		size := packs[i%len(packs)]
		bySize[size] = append(bySize[size], sf.ID)
		grants[sf.ID] = &modelGrant{Seconds: size, Effective: effective, Expires: effective.Add(30 * 24 * time.Hour)}
	}
	programmeOf := map[string]string{} // seafarer id -> programme id
	for _, size := range packs {
		programmeID := MustProgramme(t, c, union, size, effective)
		MustIssue(t, c, union, programmeID, bySize[size], effective)
		for _, id := range bySize[size] {
			programmeOf[id] = programmeID
		}
	}
	// The switcher's pack starts a quarter into the stream (one call a second).
	switcherEffective := start.Add(events / 4 * time.Second)
	programmeOf[switcher.ID] = MustProgramme(t, c, union, 6000, effective)
	MustIssue(t, c, union, programmeOf[switcher.ID], []string{switcher.ID}, switcherEffective)
	grants[switcher.ID] = &modelGrant{Seconds: 6000, Effective: switcherEffective, Expires: switcherEffective.Add(30 * 24 * time.Hour)}

	cfg := sim.DefaultConfig()
	cfg.Seed = 20261128
	cfg.Home = home
	cfg.MSISDNs = append(append([]string{}, known...), lateEnrolled, renumbered)
	cfg.Duplicates, cfg.Reorder, cfg.Late, cfg.Malformed, cfg.VoiceShare = 0.10, 0.10, 0.01, 0.01, 0.8
	cfg.Start, cfg.Step = start, time.Second
	msgs, summary := MustSimStream(t, cfg, events)
	firstHalf, secondHalf := msgs[:events/2], msgs[events/2:]

	// First half: the two unknown MSISDNs' calls are kept, not applied.
	MustProduce(t, st.brokers, st.topics.Usage, kafkaMessages(firstHalf))
	MustWaitCommittedToEnd(t, st, group, st.topics.Usage, partitions, 60*time.Second)
	for _, m := range []string{lateEnrolled, renumbered} {
		status, body := c.MustDo(t, "GET", "/v1/carrier/subscribers/"+url.PathEscape(m)+"/allowance", carrierTok, nil, nil)
		require.Equal(t, http.StatusNotFound, status, "%s is not registered yet: %s", m, body)
	}
	held := carrier.NewPGHeld(st.MustPool(t))
	heldBefore, err := held.Held(context.Background(), lateEnrolled)
	require.NoError(t, err)
	require.NotEmpty(t, heldBefore, "calls of the unknown MSISDN are kept until it is enrolled")

	// Halfway: enrol one unknown MSISDN, move a seafarer to the other.
	newcomer := MustEnrolCrew(t, c, union, companyID, []string{lateEnrolled})[0]
	c.MustCall(t, http.StatusOK, "PATCH", "/v1/seafarers/"+switcher.ID, union, map[string]string{"msisdn": renumbered}, nil)
	for _, m := range []string{lateEnrolled, renumbered} {
		left, err := held.Held(context.Background(), m)
		require.NoError(t, err)
		require.Empty(t, left, "%s's kept calls are applied as soon as it is registered", m)
	}

	MustProduce(t, st.brokers, st.topics.Usage, kafkaMessages(secondHalf))
	MustWaitCommittedToEnd(t, st, group, st.topics.Usage, partitions, 60*time.Second)

	// Every account equals the model.
	calls := distinctCalls(msgs, home)
	var modelBillable int64
	for _, cs := range calls {
		for _, call := range cs {
			modelBillable += call.Billable
		}
	}
	require.Equal(t, summary.Totals.BillableSeconds, modelBillable, "the model and the simulator agree on what must be billed")
	accounts := append(append([]seededSeafarer{}, crew[:len(known)]...),
		seededSeafarer{ID: switcher.ID, MSISDN: renumbered}, newcomer)
	now := time.Now()
	var someExhausted, someHeldCovered bool
	coveredByProgramme := map[string]int64{}
	for _, sf := range accounts {
		want := expectAccount(calls[sf.MSISDN], grants[sf.ID], now)
		got := MustObservedAccount(t, c, union, sf.ID)
		RequireAccountMatches(t, sf.MSISDN, want, got)
		if id := programmeOf[sf.ID]; id != "" {
			coveredByProgramme[id] += want.Covered
		}
		if g := grants[sf.ID]; g != nil && want.Covered == g.Seconds && want.Overage > 0 {
			someExhausted = true
		}
		if sf.ID == switcher.ID {
			someHeldCovered = want.Covered > 0 && want.Overage > 0
		}
	}
	require.True(t, someExhausted, "the stream exhausts some packs, so overage is exercised")
	require.True(t, someHeldCovered, "the switcher's calls are part covered (after its pack's start), part overage")
	require.Nil(t, grants[newcomer.ID], "the newcomer holds no pack")
	for programmeID, covered := range coveredByProgramme {
		var prog struct {
			SecondsUsed int64 `json:"seconds_used"`
		}
		c.MustCall(t, http.StatusOK, "GET", "/v1/programmes/"+programmeID, union, nil, &prog)
		require.Equal(t, covered, prog.SecondsUsed, "programme %s: seconds_used is what its packs covered", programmeID)
	}
	require.NotEmpty(t, calls[lateEnrolled], "the newcomer made calls")

	// Dead letters: exactly the malformed messages, byte for byte, with reasons.
	wantDLQ := map[string]int{}
	for _, m := range msgs {
		if m.Malformed {
			wantDLQ[string(m.Msg.Value)]++
		}
	}
	dlq := MustReadToEnd(t, st.brokers, st.topics.DeadLetter, 1)
	require.Len(t, dlq, int(summary.Totals.Malformed), "one dead letter per malformed message")
	for _, m := range dlq {
		h := headerMap(m)
		require.NotEmpty(t, h["error"], "dead letter %q says what is wrong", m.Value)
		require.Contains(t, []string{"malformed_json", "invalid_field", "too_large"}, h["error_code"])
		require.Positive(t, wantDLQ[string(m.Value)], "dead letter %q was sent as malformed (once per dead letter)", m.Value)
		wantDLQ[string(m.Value)]--
	}

	// Late: exactly the late events (and their redeliveries), never applied.
	wantLate := map[string]int{}
	for _, m := range msgs {
		if m.Late {
			wantLate[m.Usage.ID]++
		}
	}
	require.NotEmpty(t, wantLate)
	lateMsgs := MustReadToEnd(t, st.brokers, st.topics.Late, 1)
	gotLate := map[string]int{}
	for _, m := range lateMsgs {
		var u wireUsage
		require.NoError(t, json.Unmarshal(m.Value, &u))
		gotLate[u.ID]++
		require.Equal(t, "late", headerMap(m)["error_code"])
	}
	require.Equal(t, wantLate, gotLate, "the late topic holds exactly the late events")

	// The ledger topic announces every applied debit.
	wantDebits := map[string]bool{}
	for _, cs := range calls {
		for _, call := range cs {
			wantDebits[call.ID] = true
		}
	}
	gotDebits := map[string]bool{}
	for _, m := range MustReadToEnd(t, st.brokers, st.topics.Ledger, 1) {
		var ev struct {
			Type string
			Data struct {
				EventID string `json:"event_id"`
			}
		}
		require.NoError(t, json.Unmarshal(m.Value, &ev))
		if ev.Type == "wuyou.ledger.debit" {
			gotDebits[ev.Data.EventID] = true
		}
	}
	require.Equal(t, wantDebits, gotDebits, "one debit on the ledger topic per applied event")

	// The metering counters tell the same story as the model.
	want := expectedCounters(firstHalf, secondHalf, known, []string{lateEnrolled, renumbered})
	metrics := c.MustMetrics(t)
	require.EqualValues(t, want.consumed, metrics[metricConsumed], "consumed")
	require.EqualValues(t, want.deadLettered, metrics[metricDeadLettered], "dead-lettered")
	require.EqualValues(t, want.late, metrics[metricLate], "late")
	require.EqualValues(t, want.held, metrics[metricHeld], "held")
	require.EqualValues(t, want.applied, metrics[metricApplied], "applied")
	require.EqualValues(t, want.duplicates, metrics[metricDuplicate], "duplicates")
	require.EqualValues(t, summary.Totals.Sent, want.consumed)
	require.EqualValues(t, summary.Totals.Malformed, want.deadLettered)
	require.EqualValues(t, summary.Totals.Distinct-summary.Totals.Late, want.applied)
	t.Logf("sent %d: applied %d, duplicates %d, late %d, dead-lettered %d, held until registration %d",
		want.consumed, want.applied, want.duplicates, want.late, want.deadLettered, want.held)
}

// meteringCounters are the metering metrics a stream must produce.
type meteringCounters struct {
	consumed, deadLettered, late, held, applied, duplicates int
}

// expectedCounters replays the stream as the model sees it: the first half
// with only known MSISDNs registered, then every MSISDN registered (kept
// calls applied), then the second half. Counts do not depend on the order
// across partitions: a redelivery has its original's key, so it lands on
// the same partition after it.
func expectedCounters(firstHalf, secondHalf []simMessage, known, enrolledHalfway []string) meteringCounters {
	var c meteringCounters
	registered := map[string]bool{}
	for _, m := range known {
		registered[m] = true
	}
	applied := map[string]bool{}
	heldIDs := map[string]bool{}
	replay := func(ms []simMessage) {
		for _, m := range ms {
			c.consumed++
			switch {
			case m.Malformed:
				c.deadLettered++
			case m.Late:
				c.late++
			case !registered[m.Usage.Subject]:
				c.held++
				heldIDs[m.Identity] = true
			case applied[m.Identity]:
				c.duplicates++
			default:
				applied[m.Identity] = true
			}
		}
	}
	replay(firstHalf)
	for id := range heldIDs {
		applied[id] = true // applied on registration; nothing of them was applied before
	}
	for _, m := range enrolledHalfway {
		registered[m] = true
	}
	replay(secondHalf)
	c.applied = len(applied)
	return c
}

func headerMap(m kafka.Message) map[string]string {
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	return h
}
