package carrier

import (
	"context"
	"fmt"
	json "github.com/goccy/go-json"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/quota"
	"github.com/wuyou/wuyou/sms"
)

// Notification types on wuyou.notifications.v1.
const (
	NotifyQuotaLow       = "wuyou.quota.low"
	NotifyQuotaExhausted = "wuyou.quota.exhausted"
	NotifyGrantIssued    = "wuyou.grant.issued"
	NotifyGrantExpiring  = "wuyou.grant.expiring"
)

// outEvent is a CloudEvents 1.0 structured-mode document that Wuyou publishes.
type outEvent struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Time            time.Time `json:"time"`
	Subject         string    `json:"subject,omitempty"`
	DataContentType string    `json:"datacontenttype"`
	Data            any       `json:"data"`
}

// Source is the CloudEvents source of everything Wuyou publishes.
const Source = "urn:wuyou"

// Bounds of one write. kafka-go bounds each attempt to produce a batch by
// writeTimeout and its transport bounds dialing (5 s) and metadata (6 s),
// but a caller's wait for its batch is bounded only by the caller's
// context: behind a batch of another caller that is still retrying, or
// across library defaults that change. Every write therefore runs under
// publishTimeout, stated here: all attempts with their backoff, and no longer.
const (
	writeTimeout   = 10 * time.Second
	writeAttempts  = 3
	publishTimeout = writeAttempts*writeTimeout + 15*time.Second
)

// NewWriter returns the producer for every topic Wuyou writes. Every write
// waits for all in-sync replicas (a kafka.Writer{} literal would default to
// RequireNone and could lose what it was told to send).
func NewWriter(brokers []string) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 2 * time.Millisecond,
		BatchSize:    1000,
		WriteTimeout: writeTimeout,
		ReadTimeout:  writeTimeout,
		MaxAttempts:  writeAttempts,
	}
}

// Producer writes messages and waits for the brokers to acknowledge them;
// *kafka.Writer is one.
type Producer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Publisher writes Wuyou's own events: the ledger and notifications.
type Publisher struct {
	w      Producer
	topics Topics
	now    func() time.Time
}

// NewPublisher returns a publisher over w.
func NewPublisher(w Producer, topics Topics, now func() time.Time) *Publisher {
	return &Publisher{w: w, topics: topics, now: now}
}

// LedgerMessage is the message for one ledger entry on wuyou.ledger.v1, keyed
// by seafarer id. Its CloudEvents id is the entry id, so a repeat after a
// crash can be dropped by readers.
//
// The data is the entry as its MarshalJSON writes it (its unit decides
// which amount fields it has) with seafarer_id first and msisdn set to the
// one given. The entry is not embedded in a struct: its MarshalJSON would
// be promoted and drop the other fields.
func (p *Publisher) LedgerMessage(seafarerID, msisdn string, e *quota.LedgerEntry) (kafka.Message, error) {
	c := *e
	c.MSISDN = msisdn
	entry, err := json.Marshal(c)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("carrier: encode ledger entry %s: %w", e.ID, err)
	}
	id, err := json.Marshal(seafarerID)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("carrier: encode ledger entry %s: %w", e.ID, err)
	}
	data := make([]byte, 0, len(entry)+len(id)+16)
	data = append(append(append(data, `{"seafarer_id":`...), id...), ',')
	data = append(data, entry[1:]...) // entry is an object with fields: "{…}"
	return p.message(p.topics.Ledger, seafarerID, outEvent{
		ID: e.ID, Type: "wuyou.ledger." + e.Kind, Time: e.At, Subject: seafarerID, Data: json.RawMessage(data),
	})
}

// NotificationMessage is one notification, keyed by seafarer id with the
// MSISDN as subject. id must be deterministic for the fact it reports.
func (p *Publisher) NotificationMessage(id, typ, seafarerID, msisdn string, data any) (kafka.Message, error) {
	return p.NotificationMessageAt(id, typ, seafarerID, msisdn, p.now(), data)
}

// NotificationMessageAt is NotificationMessage for a fact that happened at
// at: a repeat publishes the same document.
func (p *Publisher) NotificationMessageAt(id, typ, seafarerID, msisdn string, at time.Time, data any) (kafka.Message, error) {
	return p.message(p.topics.Notifications, seafarerID, outEvent{ID: id, Type: typ, Time: at.UTC(), Subject: msisdn, Data: data})
}

func (p *Publisher) message(topic, key string, ev outEvent) (kafka.Message, error) {
	ev.SpecVersion, ev.Source, ev.DataContentType = "1.0", Source, "application/json"
	b, err := json.Marshal(ev)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("carrier: encode %s: %w", ev.Type, err)
	}
	return kafka.Message{Topic: topic, Key: []byte(key), Value: b}, nil
}

// LedgerRecorder records ledger entries written outside the consumer (a
// void): stored in the system of record when Ledger is set, then published
// on the ledger topic, then forgotten by the hot state that kept them.
type LedgerRecorder struct {
	Ledger    LedgerWriter // nil: published only
	Publisher *Publisher
	// Hot, when set, is told once an entry is stored and published.
	Hot interface {
		Recorded(ctx context.Context, entries []quota.SeafarerEntry) error
	}
	// Langs, when set, tells the seafarer's lang for a debit's
	// notifications (nil: they speak the default).
	Langs LangReader
}

// RecordLedger stores e, then publishes it. Both are safe to repeat.
func (r LedgerRecorder) RecordLedger(ctx context.Context, seafarerID string, e *quota.LedgerEntry) error {
	batch := []quota.SeafarerEntry{{SeafarerID: seafarerID, Entry: e}}
	if r.Ledger != nil {
		if err := r.Ledger.Append(ctx, batch); err != nil {
			return fmt.Errorf("carrier: record ledger entry %s: %w", e.ID, err)
		}
	}
	if err := r.Publisher.PublishLedger(ctx, seafarerID, e); err != nil {
		return err
	}
	if r.Hot != nil {
		// Kept until now so that voiding again finishes a recording cut
		// short; a failure here only keeps it longer.
		_ = r.Hot.Recorded(ctx, batch)
	}
	return nil
}

// PublishLedger publishes one ledger entry now (used for entries written
// outside the consumer, such as voids).
func (p *Publisher) PublishLedger(ctx context.Context, seafarerID string, e *quota.LedgerEntry) error {
	m, err := p.LedgerMessage(seafarerID, "", e)
	if err != nil {
		return err
	}
	return p.Write(ctx, m)
}

// Write sends messages and waits for the brokers to acknowledge all of them,
// at most publishTimeout (less when ctx ends sooner).
func (p *Publisher) Write(ctx context.Context, msgs ...kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	return p.w.WriteMessages(ctx, msgs...)
}

// MSISDNs finds the current MSISDN of seafarers, for notification subjects.
type MSISDNs interface {
	MSISDNOf(ctx context.Context, seafarerID string) (string, error)
}

// GrantPublisher publishes issued grants: the ledger entry and a
// wuyou.grant.issued notification for each, under ids derived from the grant
// id, so a batch republished after a crash is dropped downstream.
type GrantPublisher struct {
	*Publisher
	MSISDNs MSISDNs
	// Ledger, when set, stores the grants' ledger entries before they are
	// published (the issuer repeats a batch until both succeed).
	Ledger LedgerWriter
}

// PublishGrants implements quota.GrantPublisher.
func (p GrantPublisher) PublishGrants(ctx context.Context, grants []quota.IssuedGrant) error {
	if p.Ledger != nil {
		entries := make([]quota.SeafarerEntry, len(grants))
		for i, g := range grants {
			entries[i] = quota.SeafarerEntry{SeafarerID: g.Grant.SeafarerID, Entry: g.Entry}
		}
		if err := p.Ledger.Append(ctx, entries); err != nil {
			return fmt.Errorf("carrier: record grants' ledger entries: %w", err)
		}
	}
	ids := make([]string, len(grants))
	for i, g := range grants {
		ids[i] = g.Grant.SeafarerID
	}
	langs := langsOf(ctx, p.MSISDNs, ids)
	msgs := make([]kafka.Message, 0, 2*len(grants))
	for _, g := range grants {
		msisdn, err := p.MSISDNs.MSISDNOf(ctx, g.Grant.SeafarerID)
		if err != nil {
			return err
		}
		m, err := p.LedgerMessage(g.Grant.SeafarerID, msisdn, g.Entry)
		if err != nil {
			return err
		}
		data := map[string]any{
			"seafarer_id": g.Grant.SeafarerID, "msisdn": msisdn, "grant_id": g.Grant.ID, "programme_id": g.Grant.ProgrammeID,
			"granted_seconds": g.Grant.Seconds, "effective_at": g.Grant.EffectiveAt.UTC(), "expires_at": g.Grant.ExpiresAt.UTC(),
		}
		withText(data, langs[g.Grant.SeafarerID], sms.KindIssued, g.Grant.Unit, g.Grant.Seconds, g.Grant.ExpiresAt)
		n, err := p.NotificationMessage("issued-"+g.Grant.ID, NotifyGrantIssued, g.Grant.SeafarerID, msisdn, data)
		if err != nil {
			return err
		}
		msgs = append(msgs, m, n)
	}
	return p.Write(ctx, msgs...)
}

// langsOf reads the langs of seafarers in one query when src can
// (LangReader), else or on failure none: the texts speak the default.
func langsOf(ctx context.Context, src any, ids []string) map[string]string {
	lr, ok := src.(LangReader)
	if !ok || len(ids) == 0 {
		return nil
	}
	langs, err := lr.Langs(ctx, ids)
	if err != nil {
		return nil
	}
	return langs
}

// withText adds a notification's data.text, one SMS in lang (the default
// when "" or unknown) about amount of unit, and data.lang.
func withText(data map[string]any, lang, kind, unit string, amount int64, expires time.Time) {
	if _, ok := wuyou.Lang(lang); !ok {
		lang = wuyou.DefaultLang
	}
	data["text"], data["lang"] = sms.Notice(lang, kind, unit, amount, expires), lang
}
