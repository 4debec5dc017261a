package carrier

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"

	"github.com/wuyou/wuyou"
)

// PGHeld keeps held usage events in PostgreSQL, table held_events
// (internal/pgschema/migrations/00006_held.sql): they are the only copy of
// those events once their batch is committed, so they belong to the system
// of record, not to Redis's rebuildable hot state.
//
// Each event is kept as read (key, value, headers, time, topic, partition,
// offset), byte for byte, under (MSISDN, identity). Holding an identity
// again keeps the copy held first: the same event redelivered is the same
// bytes, and a different event reusing an identity would be a conflicting
// duplicate, which the debit refuses after the first anyway. What one MSISDN
// may hold is not bounded: every such event is a call the carrier reports
// and nothing else keeps. Due reads the earliest call an MSISDN holds from
// its rows, so there is no index of MSISDNs to keep in step.
//
// Every method is one statement, so concurrent callers (the consumer's
// stages, an enrolment's ApplyHeld, ExpireHeld on several replicas) need no
// locking of their own.
type PGHeld struct {
	pool *pgxpool.Pool
}

var _ HeldEvents = (*PGHeld)(nil)

// NewPGHeld returns a store over pool, whose database is migrated.
func NewPGHeld(pool *pgxpool.Pool) *PGHeld { return &PGHeld{pool: pool} }

// HeldEvent is one event to hold: the arguments of HeldEvents.Hold.
type HeldEvent struct {
	MSISDN   string
	Identity string
	CallTime time.Time // the call time the event itself says: Due lists by it
	Message  kafka.Message
}

const holdSQL = `
INSERT INTO held_events (msisdn, identity, call_time, topic, kafka_partition, kafka_offset,
    message_key, message_value, header_keys, header_values, message_time)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (msisdn, identity) DO NOTHING`

// Hold keeps one event made at callTime, read as m; holding it again keeps
// the first copy. callTime must be the time the event says (the consumer
// passes the decoded one): ExpireHeld asks Due by it and releases by the
// decoded one. Returns EINVALID for what PostgreSQL cannot keep as text (an
// MSISDN or topic that is not UTF-8 or holds a NUL), an empty MSISDN or
// identity; anything else is an outage, wrapping the driver's error.
func (h *PGHeld) Hold(ctx context.Context, msisdn, identity string, callTime time.Time, m kafka.Message) error {
	return h.HoldAll(ctx, []HeldEvent{{MSISDN: msisdn, Identity: identity, CallTime: callTime, Message: m}})
}

// HoldAll holds a batch of events in one round trip, each as Hold would,
// all or none: the statements run in one implicit transaction. Nothing is
// sent when one of them is invalid (EINVALID names it).
func (h *PGHeld) HoldAll(ctx context.Context, events []HeldEvent) error {
	if len(events) == 0 {
		return nil
	}
	for i, e := range events {
		if err := holdable(e); err != nil {
			if len(events) > 1 {
				return wuyou.Errorf(wuyou.EINVALID, "held event %d: %s", i, wuyou.ErrorMessage(err))
			}
			return err
		}
	}
	// Rows in key order: two batches holding some of the same events then
	// wait for each other (ON CONFLICT waits for an uncommitted insert of
	// its key) in one order, never in a deadlock.
	order := make([]int, len(events))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Or(strings.Compare(events[a].MSISDN, events[b].MSISDN), strings.Compare(events[a].Identity, events[b].Identity))
	})
	b := &pgx.Batch{}
	for _, i := range order {
		e := &events[i]
		m := &e.Message
		keys := make([][]byte, len(m.Headers))
		values := make([][]byte, len(m.Headers))
		for j, hd := range m.Headers {
			keys[j], values[j] = append([]byte{}, hd.Key...), hd.Value
		}
		value := m.Value
		if value == nil {
			value = []byte{} // a held event has a body; nil and empty are one
		}
		b.Queue(holdSQL, e.MSISDN, []byte(e.Identity), pgTime(e.CallTime), m.Topic, int32(m.Partition), m.Offset,
			m.Key, value, keys, values, pgOptionalTime(m.Time))
	}
	if err := h.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("carrier: hold events: %w", err)
	}
	return nil
}

// holdable refuses what held_events cannot keep, before anything is sent.
func holdable(e HeldEvent) error {
	switch {
	case e.MSISDN == "":
		return wuyou.Errorf(wuyou.EINVALID, "a held event needs an MSISDN")
	case !pgTextOK(e.MSISDN):
		return wuyou.Errorf(wuyou.EINVALID, "MSISDN %q: not UTF-8 text without NUL", e.MSISDN)
	case e.Identity == "":
		return wuyou.Errorf(wuyou.EINVALID, "a held event needs an identity")
	case !pgTextOK(e.Message.Topic):
		return wuyou.Errorf(wuyou.EINVALID, "topic %q: not UTF-8 text without NUL", e.Message.Topic)
	case e.Message.Partition < math.MinInt32 || e.Message.Partition > math.MaxInt32:
		return wuyou.Errorf(wuyou.EINVALID, "partition %d: out of range", e.Message.Partition)
	}
	return nil
}

// pgTextOK reports whether PostgreSQL can keep s as text.
func pgTextOK(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// pgTime is t as PostgreSQL keeps it, cut to the microsecond (as pgx does
// when it encodes a time). Call times and Due's cutoff are cut the same way,
// and a cut that keeps order never puts a later time before an earlier one,
// so an MSISDN Due lists truly holds a call made before the cutoff: were it
// otherwise, ExpireHeld (which compares exact times) would release nothing
// of it and be given it again and again.
func pgTime(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

// pgOptionalTime is t for a nullable column: NULL for the zero time.
func pgOptionalTime(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: pgTime(t), Valid: true}
}

// Held returns the events kept for msisdn, by identity, as read. An MSISDN
// that could never be held (not storable as text) holds nothing.
func (h *PGHeld) Held(ctx context.Context, msisdn string) (map[string]kafka.Message, error) {
	out := map[string]kafka.Message{}
	if !pgTextOK(msisdn) {
		return out, nil
	}
	rows, err := h.pool.Query(ctx, `
SELECT identity, topic, kafka_partition, kafka_offset, message_key, message_value, header_keys, header_values, message_time
FROM held_events WHERE msisdn = $1`, msisdn)
	if err != nil {
		return nil, fmt.Errorf("carrier: held events of %s: %w", msisdn, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			identity     []byte
			partition    int32
			keys, values [][]byte
			at           pgtype.Timestamptz
			m            kafka.Message
		)
		if err := rows.Scan(&identity, &m.Topic, &partition, &m.Offset, &m.Key, &m.Value, &keys, &values, &at); err != nil {
			return nil, fmt.Errorf("carrier: held events of %s: %w", msisdn, err)
		}
		m.Partition = int(partition)
		if len(keys) != len(values) { // held_events_headers_pair_up makes this impossible
			return nil, wuyou.Errorf(wuyou.EINTERNAL, "held event of %s: %d header keys, %d values", msisdn, len(keys), len(values))
		}
		for i := range keys {
			m.Headers = append(m.Headers, kafka.Header{Key: string(keys[i]), Value: values[i]})
		}
		if at.Valid {
			m.Time = at.Time
		}
		out[string(identity)] = m
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("carrier: held events of %s: %w", msisdn, err)
	}
	return out, nil
}

// Release forgets events once they are applied or sent elsewhere; an
// identity not held is ignored.
func (h *PGHeld) Release(ctx context.Context, msisdn string, identities ...string) error {
	if len(identities) == 0 || !pgTextOK(msisdn) {
		return nil
	}
	ids := make([][]byte, len(identities))
	for i, id := range identities {
		ids[i] = []byte(id)
	}
	if _, err := h.pool.Exec(ctx, `DELETE FROM held_events WHERE msisdn = $1 AND identity = ANY($2::bytea[])`, msisdn, ids); err != nil {
		return fmt.Errorf("carrier: release held events of %s: %w", msisdn, err)
	}
	return nil
}

// dueSQL lists up to $2 MSISDNs holding a call made before $1, by their
// earliest such call (then by MSISDN), as a loose index scan of
// held_events_due: each step takes the next index entry after the previous
// one whose MSISDN is not listed yet. So it reads the index only as far as
// the n-th MSISDN's earliest call, plus the later calls of MSISDNs already
// listed that lie before it, not every call before the cutoff.
const dueSQL = `
WITH RECURSIVE due (call_time, msisdn, listed) AS (
    (SELECT call_time, msisdn, ARRAY[msisdn]
     FROM held_events WHERE call_time < $1
     ORDER BY call_time, msisdn LIMIT 1)
    UNION ALL
    SELECT next.call_time, next.msisdn, due.listed || next.msisdn
    FROM due CROSS JOIN LATERAL (
        SELECT h.call_time, h.msisdn FROM held_events h
        WHERE (h.call_time, h.msisdn) > (due.call_time, due.msisdn) AND h.call_time < $1
          AND h.msisdn <> ALL (due.listed)
        ORDER BY h.call_time, h.msisdn LIMIT 1) next
    WHERE cardinality(due.listed) < $2
)
SELECT msisdn FROM due`

// Due lists up to n MSISDNs holding an event made before cutoff, those
// holding the earliest first (then by MSISDN); none for n <= 0. Times are
// compared to the microsecond (pgTime), never listing a call that was not
// made before cutoff.
func (h *PGHeld) Due(ctx context.Context, cutoff time.Time, n int64) ([]string, error) {
	if n <= 0 {
		return nil, nil
	}
	rows, err := h.pool.Query(ctx, dueSQL, pgTime(cutoff), n)
	if err != nil {
		return nil, fmt.Errorf("carrier: MSISDNs with held events due: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("carrier: MSISDNs with held events due: %w", err)
	}
	return out, nil
}
