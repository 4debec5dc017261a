package carrier

import (
	"context"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/quota"
	"github.com/wuyou/wuyou/sms"
)

// ExpiryWarning is how long before a grant's expiry wuyou.grant.expiring is sent.
const ExpiryWarning = 7 * 24 * time.Hour

// ExpiryStore is what the expiry warner needs of the quota store.
type ExpiryStore interface {
	ExpiringBetween(ctx context.Context, from, to time.Time) ([]quota.ExpiringGrant, error)
	ExpiryScan(ctx context.Context) (time.Time, error)
	SetExpiryScan(ctx context.Context, upTo time.Time) error
	TryLock(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
}

// ExpiryWarner publishes wuyou.grant.expiring once per grant, when the grant
// comes within ExpiryWarning of its expiry with seconds left. The id is
// "expiring-<grant id>", so the rare repeat (a crash between publishing and
// recording progress) is dropped downstream. One replica at a time scans.
type ExpiryWarner struct {
	Store     ExpiryStore
	Publisher *Publisher
	MSISDNs   MSISDNs
	Owner     string // this replica's name for the scan lease
	Now       wuyou.Clock
	Log       *slog.Logger
}

// Run scans every interval until ctx is done.
func (w *ExpiryWarner) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := w.Scan(ctx); err != nil && ctx.Err() == nil {
			w.Log.Warn("expiry warnings not sent yet; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Scan sends the warnings due now.
func (w *ExpiryWarner) Scan(ctx context.Context) error {
	ok, err := w.Store.TryLock(ctx, "expiry-warner", w.Owner, 2*time.Minute)
	if err != nil || !ok {
		return err
	}
	now := w.Now()
	from, err := w.Store.ExpiryScan(ctx)
	if err != nil {
		return err
	}
	if from.IsZero() || from.Before(now) {
		from = now // grants already expired need no warning
	}
	to := now.Add(ExpiryWarning)
	if !to.After(from) {
		return nil
	}
	grants, err := w.Store.ExpiringBetween(ctx, from, to)
	if err != nil {
		return err
	}
	ids := make([]string, len(grants))
	for i, g := range grants {
		ids[i] = g.SeafarerID
	}
	langs := langsOf(ctx, w.MSISDNs, ids)
	msgs := make([]kafka.Message, 0, len(grants))
	for _, g := range grants {
		msisdn, err := w.MSISDNs.MSISDNOf(ctx, g.SeafarerID)
		if err != nil {
			return err
		}
		data := map[string]any{
			"seafarer_id": g.SeafarerID, "msisdn": msisdn, "grant_id": g.Grant.ID, "programme_id": g.Grant.ProgrammeID,
			"remaining_seconds": secondsOnly(g.Grant), "expires_at": g.Grant.ExpiresAt,
			"unit": quota.UnitName(g.Grant.Unit), "remaining": g.Grant.RemainingSeconds,
		}
		withText(data, langs[g.SeafarerID], sms.KindExpiring, g.Grant.Unit, g.Grant.RemainingSeconds, g.Grant.ExpiresAt)
		m, err := w.Publisher.NotificationMessage("expiring-"+g.Grant.ID, NotifyGrantExpiring, g.SeafarerID, msisdn, data)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	if err := w.Publisher.Write(ctx, msgs...); err != nil {
		return err
	}
	return w.Store.SetExpiryScan(ctx, to)
}

// secondsOnly is a grant's remaining amount when it is in seconds, else 0:
// remaining_seconds never counts bytes or messages.
func secondsOnly(g *quota.Grant) int64 {
	if quota.UnitName(g.Unit) != billing.UnitSeconds {
		return 0
	}
	return g.RemainingSeconds
}
