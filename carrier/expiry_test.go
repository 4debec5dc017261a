package carrier

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wuyou/wuyou/internal/redistest"
	"github.com/wuyou/wuyou/quota"
)

type fixedMSISDNs map[string]string

func (m fixedMSISDNs) MSISDNOf(_ context.Context, id string) (string, error) { return m[id], nil }

// TestGrantExpiringIsSentOnceSevenDaysBeforeExpiryWhileSecondsAreLeft: a
// grant with seconds left is announced once when it comes within seven days
// of expiry; voided and used-up grants are not; a later scan repeats nothing.
func TestGrantExpiringIsSentOnceSevenDaysBeforeExpiryWhileSecondsAreLeft(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := redistest.MustClient(t)
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	store := quota.NewRedisStore(rdb, prefix, clock, quota.Options{})
	topics := NewTopics("")
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topics.All()...))
	require.NoError(t, err)
	defer broker.Close()
	w := NewWriter(broker.ListenAddrs())
	defer w.Close()

	grant := func(sf, id string, expiresIn time.Duration) {
		_, _, err := store.AddGrant(ctx, quota.GrantInput{ID: id, SeafarerID: sf, ProgrammeID: "pg_1", Seconds: 600,
			EffectiveAt: now.Add(-time.Hour), ExpiresAt: now.Add(expiresIn), Priority: 1})
		require.NoError(t, err)
	}
	grant("sf_a", "gr_soon", 3*24*time.Hour)
	grant("sf_a", "gr_later", 10*24*time.Hour)
	grant("sf_b", "gr_voided", 2*24*time.Hour)
	_, err = store.VoidGrant(ctx, "sf_b", "gr_voided")
	require.NoError(t, err)
	grant("sf_c", "gr_used", 2*24*time.Hour)
	_, err = store.Debit(ctx, quota.Usage{SeafarerID: "sf_c", Source: "s", EventID: "e1", CallTime: now, BillableSeconds: 600, Increment: 60})
	require.NoError(t, err)

	warner := &ExpiryWarner{Store: store, Publisher: NewPublisher(w, topics, clock),
		MSISDNs: fixedMSISDNs{"sf_a": "+8613800000001"}, Owner: "test", Now: clock}
	require.NoError(t, warner.Scan(ctx))
	require.NoError(t, warner.Scan(ctx), "a second scan at the same time repeats nothing")
	now = now.Add(4 * 24 * time.Hour) // gr_later is now 6 days from expiry
	require.NoError(t, warner.Scan(ctx))

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: broker.ListenAddrs(), Topic: topics.Notifications, MaxBytes: 1 << 20, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	var got []string
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		m, err := r.ReadMessage(rctx)
		cancel()
		if err != nil {
			break
		}
		var ev struct {
			ID, Type, Subject string
			Data              struct {
				RemainingSeconds int64 `json:"remaining_seconds"`
			}
		}
		require.NoError(t, json.Unmarshal(m.Value, &ev))
		require.Equal(t, NotifyGrantExpiring, ev.Type)
		require.Equal(t, "+8613800000001", ev.Subject)
		require.EqualValues(t, 600, ev.Data.RemainingSeconds)
		got = append(got, ev.ID)
	}
	require.Equal(t, []string{"expiring-gr_soon", "expiring-gr_later"}, got)
}
