package quota

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// terminatedSession is a session's terminate as the ledger has it: what a
// rebuild writes back so the carrier's record of the call, when it comes
// after a loss of Redis, settles the session instead of charging the call
// a second time; or, when the record came before the loss (an adjust
// entry with the session's call id), the session as it settled it.
type terminatedSession struct {
	seafarerID, sessionID string
	at                    time.Time
	record                sessionState
}

// sessionState is a session's record (sessions.go) as a rebuild writes it.
type sessionState struct {
	Unit    string  `json:"u"`
	State   string  `json:"st"`
	By      string  `json:"by"`
	Hold    int64   `json:"hold"`
	Exp     int64   `json:"exp"`
	Used    int64   `json:"used"`
	Free    int     `json:"free"`
	Info    string  `json:"info"`
	Charged int64   `json:"ch"`
	Covered int64   `json:"cov"`
	Overage int64   `json:"ov"`
	Amount  int64   `json:"amt"`
	Welfare int64   `json:"wel"`
	Draws   string  `json:"dr"`
	End     int64   `json:"end"`
	LastU   float64 `json:"lu"`
	LastR   float64 `json:"lr"`
}

// readTerminatedSessions reads the terminates of sessions recorded since
// cutoff (the dedupe window: a carrier record older than it is late
// anyway) for the seafarers ids.
func readTerminatedSessions(ctx context.Context, tx pgx.Tx, ids []string, cutoff time.Time) ([]terminatedSession, error) {
	rows, err := tx.Query(ctx, `
SELECT seafarer_id, event_id, at, unit, billable_seconds, covered_seconds, overage_seconds, overage_amount_minor,
    coalesce(welfare_cost_minor, 0), draws, call_time, coalesce(msisdn, ''), coalesce(type, ''),
    coalesce(visited_country, ''), coalesce(called_number, ''), duration_seconds, volume_bytes
FROM ledger_entries
WHERE seafarer_id = ANY($1) AND kind = 'debit' AND event_source = $2 AND filed_at >= $3`,
		ids, SessionSource, cutoff.Truncate(time.Second))
	if err != nil {
		return nil, fmt.Errorf("quota: rebuild: sessions: %w", err)
	}
	var out []terminatedSession
	for rows.Next() {
		var t terminatedSession
		var draws []Draw
		var call SessionCall
		var duration, volume int64
		r := &t.record
		if err := rows.Scan(&t.seafarerID, &t.sessionID, &t.at, &r.Unit, &r.Charged, &r.Covered, &r.Overage, &r.Amount,
			&r.Welfare, &draws, &call.CallTime, &call.MSISDN, &call.Type, &call.VisitedCountry, &call.CalledNumber,
			&duration, &volume); err != nil {
			rows.Close()
			return nil, fmt.Errorf("quota: rebuild: sessions: %w", err)
		}
		call.Unit = unitOrSeconds(r.Unit)
		r.Unit = storedUnit(r.Unit)
		r.State, r.By, r.End, r.LastU, r.LastR = "term", "term", t.at.Unix(), -1, -1
		r.Used = duration
		if call.Unit != "seconds" {
			r.Used = volume
		}
		info, _ := json.Marshal(call) // a SessionCall always marshals
		r.Info = string(info)
		ds := make([]string, 0, len(draws))
		for _, d := range draws {
			ds = append(ds, d.GrantID+":"+strconv.FormatInt(d.Seconds, 10))
		}
		r.Draws = strings.Join(ds, " ")
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("quota: rebuild: sessions: %w", err)
	}
	if err := settleTerminated(ctx, tx, out, cutoff); err != nil {
		return nil, err
	}
	return out, nil
}

// settleTerminated marks the sessions of ts that the carrier's record has
// settled since their terminate done, as the debit script left them: the
// record's adjust entry (its call id is the session's) moved the charge,
// and its figures are added to the terminate's. A session so settled
// charges a later record of the same call as a call of its own, as it
// would have had Redis never been lost.
func settleTerminated(ctx context.Context, tx pgx.Tx, ts []terminatedSession, cutoff time.Time) error {
	if len(ts) == 0 {
		return nil
	}
	type key struct{ seafarerID, sessionID string }
	byKey := make(map[key]*terminatedSession, len(ts))
	seafarers, sessions := make([]string, 0, len(ts)), make([]string, 0, len(ts))
	for i := range ts {
		t := &ts[i]
		byKey[key{t.seafarerID, t.sessionID}] = t
		seafarers, sessions = append(seafarers, t.seafarerID), append(sessions, t.sessionID)
	}
	rows, err := tx.Query(ctx, `
SELECT seafarer_id, call_id, at, billable_seconds, covered_seconds, overage_seconds, overage_amount_minor,
    coalesce(welfare_cost_minor, 0)
FROM ledger_entries
WHERE seafarer_id = ANY($1) AND call_id = ANY($2) AND kind = 'adjust' AND filed_at >= $3
ORDER BY at, id`, seafarers, sessions, cutoff.Truncate(time.Second))
	if err != nil {
		return fmt.Errorf("quota: rebuild: settled sessions: %w", err)
	}
	var (
		k                                        key
		at                                       time.Time
		billable, covered, overage, amt, welfare int64
	)
	_, err = pgx.ForEachRow(rows, []any{&k.seafarerID, &k.sessionID, &at, &billable, &covered, &overage, &amt, &welfare}, func() error {
		t, ok := byKey[k]
		if !ok {
			return nil
		}
		r := &t.record
		r.State, r.End = "done", at.Unix()
		r.Charged += billable
		r.Covered += covered
		r.Overage += overage
		r.Amount += amt
		r.Welfare += welfare
		return nil
	})
	if err != nil {
		return fmt.Errorf("quota: rebuild: settled sessions: %w", err)
	}
	return nil
}

// writeTerminatedSessions writes the sessions back where Redis lost them
// (a record still there is newer and kept), and their index while a repeat
// of the terminate could still come.
func (s *RedisStore) writeTerminatedSessions(ctx context.Context, p redis.Pipeliner, ts []terminatedSession) error {
	now := s.now()
	for _, t := range ts {
		v, err := json.Marshal(t.record)
		if err != nil {
			return fmt.Errorf("quota: rebuild: session %s: %w", t.sessionID, err)
		}
		k := s.keys(t.seafarerID).sessions
		p.HSetNX(ctx, k, t.sessionID, string(v))
		p.Expire(ctx, k, time.Duration(s.sessionsTTL())*time.Second)
		if left := sessionIndexTTL - now.Sub(t.at); left > 0 {
			p.SetNX(ctx, s.sessionIndexKey(t.sessionID), t.seafarerID, left)
		}
	}
	return nil
}
