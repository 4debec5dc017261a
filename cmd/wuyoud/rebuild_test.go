package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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

	RequireEveryPromiseKept(t, st, n.api, union, crew, grants, programmeOf, distinctCalls(msgs, home))
}
