package carrier

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/quota"
)

// fakeSessions records what the service asks of the store.
type fakeSessions struct {
	opened     []quota.SessionOpen
	terminated []quota.Usage
	result     *quota.DebitResult
}

func (f *fakeSessions) OpenSession(_ context.Context, o quota.SessionOpen) (*quota.SessionGrant, error) {
	f.opened = append(f.opened, o)
	g := &quota.SessionGrant{SessionID: o.SessionID, Granted: o.Requested, Final: o.Requested > 100, FinalAction: o.FinalAction}
	if g.Final {
		g.FinalProgramme = "pr_t"
	}
	return g, nil
}

func (f *fakeSessions) UpdateSession(context.Context, string, int64, int64, time.Duration) (*quota.SessionGrant, error) {
	return nil, quota.ErrSessionClosed
}

func (f *fakeSessions) SessionCallOf(_ context.Context, id string) (string, quota.SessionCall, error) {
	if id != "call-1" {
		return "", quota.SessionCall{}, quota.ErrSessionUnknown
	}
	return "sf_1", quota.SessionCall{MSISDN: "+8613800000001", Type: billing.TypeVoice, Unit: billing.UnitSeconds,
		CallTime: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), VisitedCountry: "SG"}, nil
}

func (f *fakeSessions) TerminateSession(_ context.Context, u quota.Usage) (*quota.DebitResult, *quota.SessionCharge, error) {
	f.terminated = append(f.terminated, u)
	return f.result, &quota.SessionCharge{Charged: u.BillableSeconds}, nil
}

func newSessionsFixture(t *testing.T) (*Sessions, *fakeSessions, *fakeLedger, *fakeProducer, *Metrics) {
	t.Helper()
	h := &holders{byNo: map[string]holding{}}
	h.set("+8613800000001", "sf_1", time.Time{})
	store := &fakeSessions{}
	ledger := &fakeLedger{entries: map[string]quota.SeafarerEntry{}}
	producer := &fakeProducer{}
	m := NewMetrics(prometheus.NewRegistry())
	s := &Sessions{Store: store, Resolver: h, Tariff: billing.DefaultTariff(), HomeCountry: "CN", FinalAction: billing.FinalTerminate,
		Recorder: LedgerRecorder{Ledger: ledger, Publisher: NewPublisher(producer, NewTopics(""), time.Now)}, Metrics: m}
	return s, store, ledger, producer, m
}

// An open resolves the MSISDN, tells the store whether the call draws at
// all (a call at home draws nothing) and the tariff's final action; an
// MSISDN nobody holds is not found and opens nothing. Each outcome is
// counted.
func TestSessionsOpenResolvesRatesAndCounts(t *testing.T) {
	s, store, _, _, m := newSessionsFixture(t)
	ctx := context.Background()
	g, err := s.Open(ctx, SessionRequest{SessionID: "call-1", MSISDN: "+8613800000001", Unit: billing.UnitSeconds, Requested: 600, VisitedCountry: "SG"})
	require.NoError(t, err)
	require.Equal(t, billing.FinalTerminate, g.FinalAction)
	_, err = s.Open(ctx, SessionRequest{SessionID: "call-2", MSISDN: "+8613800000001", Unit: billing.UnitSeconds, Requested: 60, VisitedCountry: "CN"})
	require.NoError(t, err)
	_, err = s.Open(ctx, SessionRequest{SessionID: "call-3", MSISDN: "+8613899999999", Unit: billing.UnitSeconds, Requested: 60})
	require.Equal(t, wuyou.ENOTFOUND, wuyou.ErrorCode(err))

	require.Len(t, store.opened, 2, "nothing opened for an unknown MSISDN")
	require.Equal(t, "sf_1", store.opened[0].SeafarerID)
	require.False(t, store.opened[0].Free, "abroad: drawn from grants")
	require.True(t, store.opened[1].Free, "at home: draws nothing")
	require.Equal(t, 1.0, testutil.ToFloat64(m.Sessions.WithLabelValues("open", "final")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.Sessions.WithLabelValues("open", "granted")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.Sessions.WithLabelValues("open", wuyou.ENOTFOUND)))
	_, err = s.Update(ctx, "call-1", 1, 1)
	require.Equal(t, wuyou.ECONFLICT, wuyou.ErrorCode(err))
	require.Equal(t, 1.0, testutil.ToFloat64(m.Sessions.WithLabelValues("update", wuyou.ECONFLICT)))
}

// A terminate rates the usage with the tariff (per started minute), records
// the ledger entry and publishes it before answering; nothing used bills
// nothing; when the ledger cannot be written the answer is 503 and nothing
// is published, so terminating again records it.
func TestSessionsTerminateRatesRecordsAndPublishes(t *testing.T) {
	s, store, ledger, producer, _ := newSessionsFixture(t)
	ctx := context.Background()
	entry := &quota.LedgerEntry{ID: "d_x", Kind: quota.KindDebit, At: time.Now()}
	store.result = &quota.DebitResult{SeafarerID: "sf_1", Entry: entry}

	ch, err := s.Terminate(ctx, "call-1", 61)
	require.NoError(t, err)
	require.Equal(t, int64(120), ch.Charged, "61 s is two started minutes")
	u := store.terminated[0]
	require.Equal(t, "call-1", u.CallID)
	require.Equal(t, int64(61), u.DurationSeconds)
	require.Contains(t, ledger.entries, "d_x")
	require.Len(t, producer.got, 1, "the ledger entry is published")

	_, err = s.Terminate(ctx, "call-1", 0)
	require.NoError(t, err)
	require.Zero(t, store.terminated[1].BillableSeconds, "nothing used bills nothing")

	ledger.down = true
	_, err = s.Terminate(ctx, "call-1", 60)
	require.Equal(t, wuyou.EUNAVAILABLE, wuyou.ErrorCode(err))
	require.Len(t, producer.got, 2, "nothing more published while the ledger is down")

	_, err = s.Terminate(ctx, "call-unknown", 60)
	require.Equal(t, wuyou.ENOTFOUND, wuyou.ErrorCode(err))
}

// finalActions is a programme's own final action by id.
type finalActions map[string]string

func (f finalActions) FinalAction(_ context.Context, id string) (string, error) { return f[id], nil }

// A final grant ending on a grant of a programme that names its own final
// action is given that one; otherwise the tariff's.
func TestSessionsGiveTheFinalProgrammesOwnFinalAction(t *testing.T) {
	s, _, _, _, _ := newSessionsFixture(t)
	s.FinalAction = billing.FinalContinueAsOverage
	s.FinalActions = finalActions{"pr_t": billing.FinalTerminate}
	ctx := context.Background()
	g, err := s.Open(ctx, SessionRequest{SessionID: "call-1", MSISDN: "+8613800000001", Unit: billing.UnitSeconds, Requested: 600, VisitedCountry: "SG"})
	require.NoError(t, err)
	require.Equal(t, billing.FinalTerminate, g.FinalAction, "the final grant's programme says terminate")
	g, err = s.Open(ctx, SessionRequest{SessionID: "call-2", MSISDN: "+8613800000001", Unit: billing.UnitSeconds, Requested: 60, VisitedCountry: "SG"})
	require.NoError(t, err)
	require.Equal(t, billing.FinalContinueAsOverage, g.FinalAction, "not final: the tariff's")
	s.FinalActions = finalActions{}
	g, err = s.Open(ctx, SessionRequest{SessionID: "call-3", MSISDN: "+8613800000001", Unit: billing.UnitSeconds, Requested: 600, VisitedCountry: "SG"})
	require.NoError(t, err)
	require.Equal(t, billing.FinalContinueAsOverage, g.FinalAction, "the programme leaves it to the tariff")
}

// A call time the consumer would refuse for the call's CDR (beyond the
// clock skew) or send to the late topic (older than the dedupe window) is
// refused at the open, naming call_time: that CDR could never settle the
// session.
func TestSessionsRefuseACallTimeTheirCDRCouldNotSettle(t *testing.T) {
	s, store, _, _, _ := newSessionsFixture(t)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s.Now, s.ClockSkew, s.DedupeWindow = func() time.Time { return now }, time.Hour, 24*time.Hour
	for _, at := range []time.Time{now.Add(2 * time.Hour), now.Add(-25 * time.Hour), time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)} {
		_, err := s.Open(context.Background(), SessionRequest{SessionID: "c", MSISDN: "+8613800000001", Unit: billing.UnitSeconds, Requested: 60, CallTime: at})
		var we *wuyou.Error
		require.ErrorAs(t, err, &we, "%s", at)
		require.Equal(t, "call_time", we.Fields[0].Field)
	}
	require.Empty(t, store.opened)
	_, err := s.Open(context.Background(), SessionRequest{SessionID: "c", MSISDN: "+8613800000001", Unit: billing.UnitSeconds, Requested: 60, CallTime: now.Add(-23 * time.Hour)})
	require.NoError(t, err)
}
