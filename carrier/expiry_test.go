package carrier

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/wuyou/wuyou/internal/pgtest"
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
	// Grants are kept as the issuer keeps them: in PostgreSQL, which says
	// which expire soon, then in Redis, which says what they have left.
	pool := pgtest.MustPool(t)
	_, err := pool.Exec(ctx, `INSERT INTO programmes (id, name, pack_seconds, valid_days, priority, budget_packs, starts_at, ends_at, created_at)
VALUES ('pg_1', 'P', 600, 30, 1, 0, $1, $2, $1)`, now.AddDate(0, -1, 0), now.AddDate(1, 0, 0))
	require.NoError(t, err)
	grants := quota.NewPGGrants(pool)
	store := quota.NewRedisStore(rdb, prefix, clock, quota.Options{Expiries: grants})
	topics := NewTopics("")
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topics.All()...))
	require.NoError(t, err)
	defer broker.Close()
	w := NewWriter(broker.ListenAddrs())
	defer w.Close()

	grant := func(sf, id string, expiresIn time.Duration) {
		in := quota.GrantInput{ID: id, SeafarerID: sf, ProgrammeID: "pg_1", Seconds: 600,
			EffectiveAt: now.Add(-time.Hour), ExpiresAt: now.Add(expiresIn), Priority: 1, IssuedAt: now}
		_, err := pool.Exec(ctx, `INSERT INTO grants (id, seafarer_id, programme_id, seconds, priority, effective_at, expires_at, issued_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, in.ID, in.SeafarerID, in.ProgrammeID, in.Seconds, in.Priority, in.EffectiveAt, in.ExpiresAt, in.IssuedAt)
		require.NoError(t, err)
		_, _, err = store.AddGrant(ctx, in)
		require.NoError(t, err)
	}
	grant("sf_a", "gr_soon", 3*24*time.Hour)
	grant("sf_a", "gr_later", 10*24*time.Hour)
	grant("sf_b", "gr_voided", 2*24*time.Hour)
	require.NoError(t, grants.VoidGrant(ctx, "sf_b", "gr_voided", now))
	_, err = store.VoidGrant(ctx, "sf_b", "gr_voided")
	require.NoError(t, err)
	// Voided in PostgreSQL but not yet in Redis (a crash between the two
	// steps): PostgreSQL's word holds, no warning.
	grant("sf_b", "gr_voided_pg_only", 2*24*time.Hour)
	require.NoError(t, grants.VoidGrant(ctx, "sf_b", "gr_voided_pg_only", now))
	// In PostgreSQL but not in Redis: nothing is known to be left.
	_, err = pool.Exec(ctx, `INSERT INTO grants (id, seafarer_id, programme_id, seconds, priority, effective_at, expires_at, issued_at)
VALUES ('gr_not_hot', 'sf_d', 'pg_1', 600, 1, $1, $2, $1)`, now.Add(-time.Hour), now.Add(2*24*time.Hour))
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
