package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/carrier/sim"
	"github.com/wuyou/wuyou/token"
)

// TestTwoConsumersShareAGroupAcrossARebalanceWithoutDoubleOrMissedApplication
// runs two wuyoud instances in one consumer group on a six-partition usage
// topic. While the stream flows, one instance stops gracefully (it commits
// what it applied and leaves the group) and a third one joins: the
// partitions move twice, and batches fetched but not committed by their old
// owner are delivered again to the new one. Every distinct event must still
// be applied exactly once.
func TestTwoConsumersShareAGroupAcrossARebalanceWithoutDoubleOrMissedApplication(t *testing.T) {
	const (
		group      = "rebalance"
		partitions = 6
		events     = 6000
		home       = "CN"
	)
	st := MustWuyouStack(t, partitions)
	first := st.MustStartNode(t, group)
	second := st.MustStartNode(t, group)
	union := st.MustToken(t, token.RoleUnion, "staff-1", "")

	var numbers []string
	for i := 1; i <= 40; i++ {
		numbers = append(numbers, fmt.Sprintf("+86135%08d", i))
	}
	companyID := MustCompany(t, first.api, union, "Rebalance Maritime")
	crew := MustEnrolCrew(t, first.api, union, companyID, numbers)
	effective, start := sim.CallWindow(time.Now())
	const pack = 7200
	ids := make([]string, len(crew))
	for i, sf := range crew {
		ids[i] = sf.ID
	}
	MustIssue(t, first.api, union, MustProgramme(t, first.api, union, pack, effective), ids, effective)
	grant := &modelGrant{Seconds: pack, Effective: effective, Expires: effective.Add(30 * 24 * time.Hour)}

	cfg := sim.DefaultConfig()
	cfg.Seed = 42
	cfg.Home = home
	cfg.MSISDNs = numbers
	cfg.Duplicates, cfg.Reorder = 0.10, 0.05
	cfg.Start, cfg.Step = start, 500*time.Millisecond
	msgs, _ := MustSimStream(t, cfg, events)
	parts := splitEven(msgs, 3)

	// Both members hold partitions before the stream starts.
	MustWaitForMembersWithPartitions(t, st, group, 2)
	MustProduce(t, st.brokers, st.topics.Usage, kafkaMessages(parts[0]))
	for name, n := range map[string]*wuyoudNode{"first": first, "second": second} {
		MustWaitFor(t, 30*time.Second, name+" instance to consume", func() bool {
			return n.api.MustMetrics(t)[metricConsumed] > 0
		})
	}

	// The second part flows in small slices while the first instance
	// stops and a third joins.
	produced := make(chan error, 1)
	go func() {
		w := carrier.NewWriter(st.brokers)
		defer w.Close()
		for _, slice := range splitEven(parts[1], 20) {
			ms := kafkaMessages(slice)
			for i := range ms {
				ms[i].Topic = st.topics.Usage
			}
			if err := w.WriteMessages(context.Background(), ms...); err != nil {
				produced <- err
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		produced <- nil
	}()
	time.Sleep(300 * time.Millisecond)
	firstConsumed := first.api.MustMetrics(t)[metricConsumed]
	first.MustStop(t)
	third := st.MustStartNode(t, group)
	require.NoError(t, <-produced)

	MustWaitForMembersWithPartitions(t, st, group, 2)
	MustProduce(t, st.brokers, st.topics.Usage, kafkaMessages(parts[2]))
	MustWaitCommittedToEnd(t, st, group, st.topics.Usage, partitions, 90*time.Second)

	secondMetrics, thirdMetrics := second.api.MustMetrics(t), third.api.MustMetrics(t)
	require.Positive(t, firstConsumed, "the first instance consumed before it stopped")
	require.Positive(t, thirdMetrics[metricConsumed], "the instance that joined later got partitions")
	t.Logf("consumed: first %v (before stopping), second %v, third %v; applied: second %v, third %v; duplicates: second %v, third %v",
		firstConsumed, secondMetrics[metricConsumed], thirdMetrics[metricConsumed],
		secondMetrics[metricApplied], thirdMetrics[metricApplied], secondMetrics[metricDuplicate], thirdMetrics[metricDuplicate])

	calls := distinctCalls(msgs, home)
	now := time.Now()
	for _, sf := range crew {
		want := expectAccount(calls[sf.MSISDN], grant, now)
		RequireAccountMatches(t, sf.MSISDN, want, MustObservedAccount(t, third.api, union, sf.ID))
	}
}

// MustWaitForMembersWithPartitions waits until the group is stable with
// exactly members members, each assigned at least one partition.
func MustWaitForMembersWithPartitions(tb testing.TB, st *wuyouStack, group string, members int) {
	tb.Helper()
	MustWaitFor(tb, 60*time.Second, fmt.Sprintf("%d members of %s with partitions", members, group), func() bool {
		info := st.broker.GroupInfo(group)
		if info == nil || info.State != "Stable" || len(info.Members) != members {
			return false
		}
		for _, m := range info.Members {
			if m.NumAssigned() == 0 {
				return false
			}
		}
		return true
	})
}
