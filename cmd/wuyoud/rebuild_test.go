package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/carrier/sim"
	"github.com/wuyou/wuyou/internal/redistest"
	"github.com/wuyou/wuyou/token"
)

// Redis restarts empty in the middle of a stream (no persistence: every
// balance, remembered event and pending record gone). wuyoud stops
// metering rather than charge calls against nothing, rebuilds the hot
// state from PostgreSQL by itself, and goes on. Afterwards every account is
// what the model says (each event applied exactly once: the events applied
// before the loss and delivered again are duplicates, not second charges),
// the ledger explains every balance, the statements count what the packs
// covered, and every seafarer who ran out was told so.
func TestRedisRestartedEmptyMidStreamIsRebuiltAndNothingIsAppliedTwice(t *testing.T) {
	events, msisdns := 3000, 60
	if testing.Short() {
		events, msisdns = 1200, 30
	}
	const (
		group      = "rebuild"
		partitions = 4
		home       = "CN"
	)
	srv := redistest.MustServer(t)
	st := MustWuyouStack(t, partitions)
	st.redisAddrs = []string{srv.Addr()}
	union := st.MustToken(t, token.RoleUnion, "staff-1", "")
	n := st.MustStartNode(t, group)

	var numbers []string
	for i := 1; i <= msisdns; i++ {
		numbers = append(numbers, fmt.Sprintf("+86137%08d", i))
	}
	companyID := MustCompany(t, n.api, union, "Rebuild Shipping")
	crew := MustEnrolCrew(t, n.api, union, companyID, numbers)
	effective, start := sim.CallWindow(time.Now())
	grants := map[string]*modelGrant{}
	programmeOf := map[string]string{}
	for i, size := range []int64{1800, 7200, 60000} {
		programmeID := MustProgramme(t, n.api, union, size, effective)
		var ids []string
		for j := i; j < len(crew); j += 3 {
			ids = append(ids, crew[j].ID)
			grants[crew[j].ID] = &modelGrant{Seconds: size, Effective: effective, Expires: effective.Add(30 * 24 * time.Hour)}
			programmeOf[crew[j].ID] = programmeID
		}
		MustIssue(t, n.api, union, programmeID, ids, effective)
	}

	cfg := sim.DefaultConfig()
	cfg.Seed = 11
	cfg.Home = home
	cfg.MSISDNs = numbers
	cfg.Duplicates, cfg.Reorder = 0.10, 0.05
	cfg.Start, cfg.Step = start, 200*time.Millisecond
	msgs, _ := MustSimStream(t, cfg, events)
	all := kafkaMessages(msgs)
	first, second := all[:len(all)/2], all[len(all)/2:]

	// The first half is applied; then Redis restarts empty while the
	// second half streams in, and the first half is delivered again (a
	// carrier replaying what it sent: each must be a duplicate).
	MustProduce(t, st.brokers, st.topics.Usage, first)
	MustWaitCommittedToEnd(t, st, group, st.topics.Usage, partitions, 2*time.Minute)
	third := len(second) / 3
	MustProduce(t, st.brokers, st.topics.Usage, second[:third])
	srv.MustRestart(t)
	MustProduce(t, st.brokers, st.topics.Usage, second[third:])
	MustProduce(t, st.brokers, st.topics.Usage, first)
	MustWaitCommittedToEnd(t, st, group, st.topics.Usage, partitions, 3*time.Minute)

	mark, err := n.svc.quota.HotState(t.Context())
	require.NoError(t, err)
	require.NotNil(t, mark, "Redis holds the hot state again")
	require.Equal(t, "rebuild", mark.By, "wuyoud rebuilt it from PostgreSQL")

	calls := distinctCalls(msgs, home)
	now := time.Now()
	coveredByProgramme := map[string]int64{}
	exhausted := map[string]bool{}
	for _, sf := range crew {
		want := expectAccount(calls[sf.MSISDN], grants[sf.ID], now)
		got := MustObservedAccount(t, n.api, union, sf.ID)
		RequireAccountMatches(t, sf.MSISDN, want, got)
		coveredByProgramme[programmeOf[sf.ID]] += want.Covered
		if want.Covered == grants[sf.ID].Seconds {
			exhausted[sf.MSISDN] = true
		}
	}
	periods := map[string]bool{}
	for _, cs := range calls {
		for _, c := range cs {
			periods[billing.PeriodOf(c.At)] = true
		}
	}
	for programmeID, covered := range coveredByProgramme {
		var prog struct {
			SecondsUsed int64 `json:"seconds_used"`
		}
		n.api.MustCall(t, http.StatusOK, "GET", "/v1/programmes/"+programmeID, union, nil, &prog)
		require.Equal(t, covered, prog.SecondsUsed, "programme %s: seconds_used", programmeID)
		var stated int64
		for period := range periods {
			var s struct {
				CoveredSeconds int64 `json:"covered_seconds"`
			}
			n.api.MustCall(t, http.StatusOK, "GET", "/v1/statements?period="+period+"&payer=programme:"+programmeID, union, nil, &s)
			stated += s.CoveredSeconds
		}
		require.Equal(t, covered, stated, "programme %s: statements count what its packs covered", programmeID)
	}
	notified := map[string]bool{}
	for _, m := range MustReadToEnd(t, st.brokers, st.topics.Notifications, 1) {
		var ev struct{ Type, Subject string }
		require.NoError(t, json.Unmarshal(m.Value, &ev))
		if ev.Type == "wuyou.quota.exhausted" {
			notified[ev.Subject] = true
		}
	}
	for m := range exhausted {
		require.True(t, notified[m], "%s ran out and was told so", m)
	}
	audited := MustLedgerExplainEveryBalance(t, n.api, union)
	require.GreaterOrEqual(t, audited, len(crew), "every seafarer with grants was audited")
}
