package quota

// Real-time credit control (CONTRACT §7.3): the carrier asks before and
// during a call, and Wuyou reserves units for it.
//
// A session is one call's reservation, kept in the seafarer's sessions hash
// (T:x, beside the grants, so every change to both is one script in one
// slot) as a JSON record:
//
//	u     the unit ("" seconds, bytes, sms)
//	st    open | term (charged by its terminate, waiting for the carrier's
//	      record) | done (the carrier's record settled it)
//	hold  what it holds of the remaining amount while open and exp > now:
//	      what it used so far (up to what there was) plus what it was granted
//	exp   when the hold lapses (unix s) unless an update renews it: a
//	      carrier switch that crashed does not lock minutes for long
//	used  the usage reported so far (cumulative, as every update reports it)
//	free  1 for a call that draws nothing (at home): everything asked is
//	      granted, nothing held
//	fa    final_action; info the call (SessionCall) as JSON
//	ans   the answer to the open; lu, lr, la the last update's used,
//	      requested and answer (a repeat gets the same answer)
//	by    who charged it: term or cdr; ch, cov, ov, amt, wel the call's
//	      charge (billable, covered, overage, overage and welfare minor);
//	      dr the draws ("<grant>:<n> …"); end when it was charged
//
// The debit script reads the hash on every call: what open sessions of the
// call's unit hold is not the call's to draw (scripts.go).
//
// <prefix>:sx:<session id> names the seafarer a session is held for, so an
// update or terminate, which names only the session, finds its slot.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
)

// FinalContinueAsOverage is the final action when none is given
// (billing.Tariff.FinalAction).
const FinalContinueAsOverage = billing.FinalContinueAsOverage

// SessionSource is the CloudEvents source of a session's terminate: its
// ledger entry's identity is (SessionSource, session id).
const SessionSource = "urn:wuyou:session"

// DefaultSessionValidity is how long granted units stay reserved without an
// update.
const DefaultSessionValidity = 5 * time.Minute

// sessionIndexTTL is how long a session's seafarer is remembered after its
// last request: long enough for any retry of a terminate.
const sessionIndexTTL = 24 * time.Hour

// doneSessionTTL is how long a session the carrier's record settled is kept
// (to answer a late repeat of its terminate).
const doneSessionTTL = time.Hour

// SessionCall is what a session's call is: what its terminate rates.
type SessionCall struct {
	MSISDN         string    `json:"msisdn"`
	Type           string    `json:"type"`
	Unit           string    `json:"unit"`
	CallTime       time.Time `json:"call_time"`
	VisitedCountry string    `json:"visited_country"`
	CalledNumber   string    `json:"called_number"`
}

// SessionOpen asks for units at a call's set-up.
type SessionOpen struct {
	SessionID  string
	SeafarerID string
	Call       SessionCall
	Requested  int64
	// Free: the call draws nothing (not eligible, e.g. at home), so what is
	// asked is granted and nothing is held.
	Free        bool
	FinalAction string // FinalContinueAsOverage when empty
	Validity    time.Duration
}

// SessionGrant is the answer to an open or an update.
type SessionGrant struct {
	SessionID       string `json:"session_id"`
	Granted         int64  `json:"granted"`
	ValiditySeconds int64  `json:"validity_seconds"`
	Final           bool   `json:"final"`
	FinalAction     string `json:"final_action"`
	// FinalProgramme is the programme of the grant a final grant ends on,
	// whose own final action, if it has one, is the one to give.
	FinalProgramme string `json:"-"`
}

// SessionCharge is what a session's call was charged, in its unit.
type SessionCharge struct {
	Charged int64 `json:"charged"`
	Covered int64 `json:"covered"`
	Overage int64 `json:"overage"`
}

// sessionMode is what u is to the session named by its CallID (debitScript).
func (u Usage) sessionMode() string {
	switch {
	case u.terminates:
		return "term"
	case u.CallID != "":
		return "cdr"
	}
	return ""
}

// sessionsTTL keeps a seafarer's sessions hash: a terminated session waits
// for the carrier's record as long as its identity could be redelivered.
func (s *RedisStore) sessionsTTL() int64 {
	return int64((s.opts.DedupeWindow + 24*time.Hour) / time.Second)
}

func (s *RedisStore) sessionIndexKey(sessionID string) string { return s.prefix + ":sx:" + sessionID }

// sessionScript opens or updates a session (ARGV mode "open" or "update")
// against the grants of its unit active at the call's time (as its
// terminate draws them), less what the seafarer's other open sessions
// hold now. Reply: the answer as JSON; errors ENOSESSION,
// ECLOSED, EUSED <used before>.
//
// Open: a known session id answers its first answer. Granted is what was
// asked, up to what is available; final when nothing is left beyond it.
// Update: used is the call's usage so far (never less than before); the
// session then holds what it used, up to what there is, plus a new grant
// of what is asked, up to what is left; an update repeating the last one's
// used and requested answers the same. Either prunes the hash: sessions
// the carrier's record settled an hour ago, sessions abandoned for a day
// (their terminate could no longer find them: sessionIndexTTL), and
// terminated ones whose record never came within the dedupe window.
var sessionScript = redis.NewScript(luaParseGrant + `
local grantsKey, sessKey = KEYS[1], KEYS[2]
local sid, mode, unit = ARGV[1], ARGV[2], ARGV[3]
local requested, used, now, validity = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local free, finalAction, info, ttl = ARGV[8] == '1', ARGV[9], ARGV[10], ARGV[11]
local cutoff, doneCutoff, openCutoff, callTime = tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])

local all = redis.call('HGETALL', sessKey)
local sess, held = nil, 0
for i = 1, #all, 2 do
  local s = cjson.decode(all[i+1])
  if all[i] == sid then
    sess = s
  elseif (s.st == 'open' and s.exp < openCutoff) or (s.st == 'term' and s['end'] < cutoff) or (s.st == 'done' and s['end'] < doneCutoff) then
    redis.call('HDEL', sessKey, all[i])
  elseif s.st == 'open' and s.u == unit and s.exp > now then
    held = held + s.hold
  end
end
if mode == 'open' and sess then return cjson.encode(sess.ans) end
if mode == 'update' then
  if not sess then return redis.error_reply('ENOSESSION') end
  if sess.st ~= 'open' then return redis.error_reply('ECLOSED') end
  if used == sess.lu and requested == sess.lr then return cjson.encode(sess.la) end
  if used < sess.used then return redis.error_reply('EUSED ' .. sess.used) end
  unit, free, callTime = sess.u, sess.free == 1, sess.ct or now
end

local avail = -held
-- last: the grant drawn last, the one a final grant ends on (its programme
-- may name the final action).
local last
local all = redis.call('HGETALL', grantsKey)
for i = 2, #all, 2 do
  local g = parse(all[i-1], all[i])
  if g.rem and g.eff and g.exp and g.prio and g.iss and g.unit == unit and g.void == '0' and g.eff <= callTime and callTime < g.exp then
    avail = avail + g.rem
    if g.rem > 0 and (not last or g.prio > last.prio or (g.prio == last.prio and (g.exp > last.exp or
        (g.exp == last.exp and (g.iss > last.iss or (g.iss == last.iss and g.id > last.id)))))) then
      last = g
    end
  end
end
avail = math.max(avail, 0)
local usedHeld, granted = 0, requested
if not free then
  usedHeld = math.min(used, avail)
  granted = math.min(requested, avail - usedHeld)
end
local answer = {granted = granted, validity = validity, final = (not free) and avail - usedHeld - granted <= 0}
if answer.final and last then answer.prog = last.prog end
if mode == 'open' then
  answer.fa = finalAction
  sess = {u = unit, st = 'open', used = 0, free = free and 1 or 0, fa = finalAction, info = info, ans = answer, lu = -1, lr = -1, ct = callTime}
else
  answer.fa = sess.fa
  sess.used, sess.lu, sess.lr, sess.la = used, used, requested, answer
end
sess.hold, sess.exp = usedHeld + granted, now + validity
if free then sess.hold = 0 end
redis.call('HSET', sessKey, sid, cjson.encode(sess))
redis.call('EXPIRE', sessKey, ttl)
return cjson.encode(answer)
`)

// sessionAnswer is sessionScript's reply.
type sessionAnswer struct {
	Granted     int64  `json:"granted"`
	Validity    int64  `json:"validity"`
	Final       bool   `json:"final"`
	FinalAction string `json:"fa"`
	Programme   string `json:"prog"`
}

// sessionRecord is the part of a session's record Go reads.
type sessionRecord struct {
	Unit  string  `json:"u"`
	State string  `json:"st"`
	Hold  float64 `json:"hold"`
	Exp   float64 `json:"exp"`
	Info  string  `json:"info"`
	By    string  `json:"by"`
	Ch    float64 `json:"ch"`
	Cov   float64 `json:"cov"`
	Ov    float64 `json:"ov"`
}

// ErrSessionUnknown is returned for a session id never opened (or long
// forgotten); ErrSessionClosed for an update after the terminate.
var (
	ErrSessionUnknown = &wuyou.Error{Code: wuyou.ENOTFOUND, Message: "no such session"}
	ErrSessionClosed  = &wuyou.Error{Code: wuyou.ECONFLICT, Reason: "session_terminated", Message: "the session is terminated"}
)

// OpenSession reserves units for a call at its set-up. Opening a session id
// again answers as the first time; a session id held for another seafarer
// is a conflict.
func (s *RedisStore) OpenSession(ctx context.Context, o SessionOpen) (*SessionGrant, error) {
	if err := checkSessionID(o.SessionID); err != nil {
		return nil, err
	}
	if o.FinalAction == "" {
		o.FinalAction = FinalContinueAsOverage
	}
	if o.Validity <= 0 {
		o.Validity = DefaultSessionValidity
	}
	// One round trip: the hot-state mark (checkHot), the session's index
	// claimed for this seafarer unless it is claimed, and who holds it. An
	// index written while the mark is missing only names the seafarer.
	idx := s.sessionIndexKey(o.SessionID)
	var mark *redis.IntCmd
	var holder *redis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if s.opts.HotStateGuard {
			mark = p.Exists(ctx, s.hotKey())
		}
		p.SetNX(ctx, idx, o.SeafarerID, sessionIndexTTL)
		holder = p.Get(ctx, idx)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, classify(err)
	}
	if mark != nil && mark.Val() == 0 {
		return nil, &wuyou.Error{Code: wuyou.EUNAVAILABLE, Reason: "hot_state_missing", Message: ErrHotStateMissing.Error()}
	}
	if h := holder.Val(); h != o.SeafarerID && h != "" {
		return nil, &wuyou.Error{Code: wuyou.ECONFLICT, Reason: "session_id_in_use", Message: "session_id " + strconv.Quote(o.SessionID) + " is in use for another subscriber"}
	}
	info, err := json.Marshal(o.Call)
	if err != nil {
		return nil, err
	}
	free := "0"
	if o.Free {
		free = "1"
	}
	return s.runSession(ctx, o.SeafarerID, o.SessionID, "open", storedUnit(unitOrSeconds(o.Call.Unit)), o.Requested, 0, o.Validity, free, o.FinalAction, string(info), o.Call.CallTime)
}

// UpdateSession reports a call's usage so far (used, cumulative) and asks
// for more. ErrSessionUnknown, ErrSessionClosed; used less than an earlier
// update's is refused.
func (s *RedisStore) UpdateSession(ctx context.Context, sessionID string, used, requested int64, validity time.Duration) (*SessionGrant, error) {
	seafarerID, err := s.SessionSeafarer(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	if validity <= 0 {
		validity = DefaultSessionValidity
	}
	s.rdb.Expire(ctx, s.sessionIndexKey(sessionID), sessionIndexTTL)
	return s.runSession(ctx, seafarerID, sessionID, "update", "", requested, used, validity, "0", "", "", time.Time{}) // the call's time is the open's
}

func (s *RedisStore) runSession(ctx context.Context, seafarerID, sessionID, mode, unit string, requested, used int64, validity time.Duration, free, finalAction, info string, callTime time.Time) (*SessionGrant, error) {
	now := s.now()
	cutoff := DedupeCutoff(now, s.opts.DedupeWindow).Unix()
	v, err := sessionScript.Run(ctx, s.rdb, []string{s.keys(seafarerID).grants, s.keys(seafarerID).sessions},
		sessionID, mode, unit, requested, used, now.Unix(), int64(validity/time.Second), free, finalAction, info,
		s.sessionsTTL(), cutoff, now.Add(-doneSessionTTL).Unix(), now.Add(-sessionIndexTTL).Unix(), callTime.Unix()).Text()
	if err != nil {
		// Redis may put "ERR " before the script's own code.
		msg := strings.TrimPrefix(err.Error(), "ERR ")
		switch {
		case strings.HasPrefix(msg, "ENOSESSION"):
			return nil, ErrSessionUnknown
		case strings.HasPrefix(msg, "ECLOSED"):
			return nil, ErrSessionClosed
		case strings.HasPrefix(msg, "EUSED"):
			return nil, wuyou.Invalid([]wuyou.FieldError{{Field: "used",
				Message: "must not be less than the " + strings.TrimSpace(strings.TrimPrefix(msg, "EUSED")) + " reported before: it is the usage so far"}})
		}
		return nil, classify(err)
	}
	var a sessionAnswer
	if err := json.Unmarshal([]byte(v), &a); err != nil {
		return nil, fmt.Errorf("quota: session answer %q: %w", v, err)
	}
	return &SessionGrant{SessionID: sessionID, Granted: a.Granted, ValiditySeconds: a.Validity, Final: a.Final, FinalAction: a.FinalAction,
		FinalProgramme: a.Programme}, nil
}

// SessionSeafarer names the seafarer a session is held for.
func (s *RedisStore) SessionSeafarer(ctx context.Context, sessionID string) (string, error) {
	if checkSessionID(sessionID) != nil {
		return "", ErrSessionUnknown
	}
	id, err := s.rdb.Get(ctx, s.sessionIndexKey(sessionID)).Result()
	if errors.Is(err, redis.Nil) {
		return "", ErrSessionUnknown
	}
	if err != nil {
		return "", classify(err)
	}
	return id, nil
}

// session reads a session's record; nil when there is none.
func (s *RedisStore) session(ctx context.Context, seafarerID, sessionID string) (*sessionRecord, error) {
	v, err := s.rdb.HGet(ctx, s.keys(seafarerID).sessions, sessionID).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, classify(err)
	}
	var r sessionRecord
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return nil, fmt.Errorf("quota: session record: %w", err)
	}
	return &r, nil
}

// SessionCallOf returns the seafarer and the call of a session, for rating
// its terminate.
func (s *RedisStore) SessionCallOf(ctx context.Context, sessionID string) (seafarerID string, call SessionCall, err error) {
	seafarerID, err = s.SessionSeafarer(ctx, sessionID)
	if err != nil {
		return "", call, err
	}
	r, err := s.session(ctx, seafarerID, sessionID)
	if err != nil {
		return "", call, err
	}
	if r == nil {
		return "", call, ErrSessionUnknown
	}
	if err := json.Unmarshal([]byte(r.Info), &call); err != nil {
		return "", call, fmt.Errorf("quota: session call: %w", err)
	}
	return seafarerID, call, nil
}

// TerminateSession charges a session's call: u is its usage, rated, with
// CallID the session id. The charge is applied once: a repeat, or a
// terminate after the carrier's record settled the call, charges nothing
// and answers what was charged. The result's Entry is the ledger entry to
// record (nil when there is nothing new; a repeat's while still pending).
func (s *RedisStore) TerminateSession(ctx context.Context, u Usage) (*DebitResult, *SessionCharge, error) {
	u.Source, u.EventID, u.terminates = SessionSource, u.CallID, true
	// A terminate's identity is the session's, whatever it reports: a
	// repeat with another used is still the same terminate.
	u.Fingerprint = sessionFingerprint(u.CallID)
	// No global claim (DebitBatch): the identity is Wuyou's own, and the
	// session index already binds it to its one seafarer, whose seen set
	// makes a repeat a duplicate. That spares PostgreSQL a commit.
	if err := s.checkHot(ctx); err != nil {
		return nil, nil, err
	}
	r, err := s.debitPipeline(ctx, []Usage{u})
	if err != nil {
		return nil, nil, err
	}
	if r[0].Err != nil {
		if strings.Contains(r[0].Err.Error(), "ENOSESSION") {
			return nil, nil, ErrSessionUnknown
		}
		return nil, nil, r[0].Err
	}
	rec, err := s.session(ctx, u.SeafarerID, u.CallID)
	if err != nil {
		return nil, nil, err
	}
	if rec == nil || rec.State == "open" {
		return nil, nil, &wuyou.Error{Code: wuyou.EINTERNAL, Message: "the session's charge is not recorded"}
	}
	return r[0], &SessionCharge{Charged: int64(rec.Ch), Covered: int64(rec.Cov), Overage: int64(rec.Ov)}, nil
}

// sessionFingerprint is the fingerprint of a session's terminate: the same
// for every repeat, whatever it reports.
func sessionFingerprint(sessionID string) string { return "session:" + sessionID }

// Reserved sums what a seafarer's open sessions hold now, per unit
// (spelled out).
func (s *RedisStore) Reserved(ctx context.Context, seafarerID string) (map[string]int64, error) {
	m, err := s.rdb.HGetAll(ctx, s.keys(seafarerID).sessions).Result()
	if err != nil {
		return nil, classify(err)
	}
	return reservedOf(m, s.now()), nil
}

// reservedOf sums the holds of open sessions valid at now, per unit.
func reservedOf(sessions map[string]string, now time.Time) map[string]int64 {
	var out map[string]int64
	for _, v := range sessions {
		var r sessionRecord
		if json.Unmarshal([]byte(v), &r) != nil || r.State != "open" || int64(r.Exp) <= now.Unix() || r.Hold <= 0 {
			continue
		}
		if out == nil {
			out = map[string]int64{}
		}
		out[unitOrSeconds(r.Unit)] += int64(r.Hold)
	}
	return out
}

// checkSessionID refuses session ids that are empty, too long or not plain
// text.
func checkSessionID(id string) error {
	if problem := wuyou.CheckText(id, true, 128); problem != "" {
		return wuyou.Invalid([]wuyou.FieldError{{Field: "session_id", Message: problem}})
	}
	if strings.ContainsAny(id, "/?# ") {
		// The session's :update and :terminate paths could not name it.
		return wuyou.Invalid([]wuyou.FieldError{{Field: "session_id", Message: "must not contain /, ?, # or spaces: it is part of the session's paths"}})
	}
	return nil
}
