package crew

// Who held an MSISDN when a call was made (issue 13, defect 8).
//
// A usage event belongs to whoever held its MSISDN at the call's own time,
// not to whoever holds the number when the event arrives. With the holding
// periods [from, to) of an MSISDN (to open while the number is held):
//
//	owner(msisdn, t) = the holder whose period contains t;
//	                   else, if t is before the first period began, the
//	                     first holder of the number: a call from a number
//	                     nobody had enrolled yet is held as unregistered and
//	                     applied once the number is enrolled (contract §5);
//	                   else nobody (""): t falls in a gap between two
//	                     holders, or after the last holder gave it up.
//
// Periods of one number do not overlap when every API replica's clock
// agrees; if two do contain t, the one that began later wins. This file is
// the one home of the rule (ownerAt).
//
// The periods come from a reverse index kept next to each seafarer's own
// history (<prefix>:{s:<id>}:msisdns and the profile's msisdn_since):
//
//	<prefix>:{m:<msisdn>}:holders  hash  one field per holding period of the number,
//	                                     "<seafarer id>|<from>" → state (times RFC 3339, as in the
//	                                     seafarer's history):
//	                                       ""        held since from, still held
//	                                       "<to>"    held from from until to
//	                                       "?"       being assigned: unconfirmed
//	                                       "?<to>"   being given up at to: unconfirmed
//
// The seafarer's own history is the truth; the index is written in another
// hash slot than the profile, so it cannot be written in the same script.
// A change therefore marks the index as unconfirmed ("?…") before the
// profile script runs and confirms it after. A request that dies in between
// leaves an unconfirmed entry, and readers settle every unconfirmed entry
// from that seafarer's history, so a crash never misattributes. Readers
// also check the index against the MSISDN's claim: a claim owner without an
// open period, or an open period whose holder no longer has the claim (an
// index written before it existed, or lost), is settled the same way.
// Enrolling a seafarer again rewrites its whole index from its history.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

func (s *RedisStore) holdersKey(msisdn string) string {
	return s.prefix + ":{m:" + msisdn + "}:holders"
}

// holdingField names one holding period in the holders hash.
func holdingField(seafarerID string, from time.Time) string {
	return seafarerID + "|" + formatTime(from)
}

// Steps of holdScript.
const (
	holdOpening     = "opening"      // mark a period being assigned, if not recorded yet
	holdClosing     = "closing"      // mark a period being given up at ARGV[3], unless recorded closed
	holdOpen        = "open"         // confirm a period as held, if absent or marked opening
	holdClose       = "close"        // record a period closed at ARGV[3] (a fact from the history)
	holdUndoOpening = "undo-opening" // forget an opening mark nobody confirmed
	holdUndoClosing = "undo-closing" // take back this request's closing mark
)

// holdScript moves one holding period of an MSISDN between states. The
// states only move towards the truth: a recorded close is never reopened,
// and an unconfirmed mark of another request is never confirmed as open.
// KEYS[1] the holders hash. ARGV[1] the field "<seafarer id>|<from>",
// ARGV[2] the step (hold* above), ARGV[3] the period's end (RFC 3339) for
// closing, close and undo-closing, else "".
// Reply 1 when the field changed, 0 when the step did not apply.
var holdScript = redis.NewScript(`
local holders, field, step, to = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local cur = redis.call('HGET', holders, field)
local closed = cur and cur ~= '' and string.sub(cur, 1, 1) ~= '?'
if step == 'opening' then
  if cur then return 0 end
  redis.call('HSET', holders, field, '?')
elseif step == 'closing' then
  if closed then return 0 end
  redis.call('HSET', holders, field, '?' .. to)
elseif step == 'open' then
  if cur and cur ~= '?' then return 0 end
  redis.call('HSET', holders, field, '')
elseif step == 'close' then
  redis.call('HSET', holders, field, to)
elseif step == 'undo-opening' then
  if cur ~= '?' then return 0 end
  redis.call('HDEL', holders, field)
elseif step == 'undo-closing' then
  if cur ~= '?' .. to then return 0 end
  redis.call('HSET', holders, field, '')
else
  return redis.error_reply('WUYOU_BAD_STEP ' .. step)
end
return 1
`)

func (s *RedisStore) hold(ctx context.Context, msisdn, seafarerID string, from time.Time, step string, to time.Time) error {
	end := ""
	if !to.IsZero() {
		end = formatTime(to)
	}
	err := holdScript.Run(ctx, s.rdb, []string{s.holdersKey(msisdn)}, holdingField(seafarerID, from), step, end).Err()
	if err != nil {
		return fmt.Errorf("MSISDN %s holders: %s: %w", msisdn, step, err)
	}
	return nil
}

// numberChange is a seafarer taking MSISDN To at At, giving up From (held
// since FromSince), or taking its first number (From "") on enrolment.
type numberChange struct {
	SeafarerID string
	From       string
	FromSince  time.Time
	To         string
	At         time.Time
}

// begin marks the change in the holders index before the profile is
// written. On an error nothing needs undoing beyond what undo does.
func (c *numberChange) begin(ctx context.Context, s *RedisStore) error {
	if c.From != "" {
		if err := s.hold(ctx, c.From, c.SeafarerID, c.FromSince, holdClosing, c.At); err != nil {
			return err
		}
	}
	return s.hold(ctx, c.To, c.SeafarerID, c.At, holdOpening, time.Time{})
}

// confirm records the change once the profile holds it. A failure leaves
// the marks unconfirmed, which readers settle from the history, so it is
// not the request's failure.
func (c *numberChange) confirm(ctx context.Context, s *RedisStore) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if c.From != "" {
		_ = s.hold(ctx, c.From, c.SeafarerID, c.FromSince, holdClose, c.At)
	}
	_ = s.hold(ctx, c.To, c.SeafarerID, c.At, holdOpen, time.Time{})
}

// undo takes the marks back after the profile script refused the write.
// A failure leaves them unconfirmed, which is safe.
func (c *numberChange) undo(ctx context.Context, s *RedisStore) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_ = s.hold(ctx, c.To, c.SeafarerID, c.At, holdUndoOpening, time.Time{})
	if c.From != "" {
		_ = s.hold(ctx, c.From, c.SeafarerID, c.FromSince, holdUndoClosing, c.At)
	}
}

// startNumberChange returns the change of a seafarer's number from cur to
// next at at, reading since when cur's period began. Called under the
// seafarer's lock.
func (s *RedisStore) startNumberChange(ctx context.Context, id, cur, next string, at time.Time) (*numberChange, error) {
	c := &numberChange{SeafarerID: id, To: next, At: at}
	if cur == "" {
		return c, nil
	}
	history, err := s.MSISDNHistory(ctx, id)
	if err != nil {
		return nil, err
	}
	last := history[len(history)-1]
	if last.MSISDN != cur {
		return nil, fmt.Errorf("MSISDN history of %s ends with %s, the profile has %s", id, last.MSISDN, cur)
	}
	c.From, c.FromSince = cur, last.From
	return c, nil
}

// RecordMSISDNHolders writes every holding period of a seafarer's MSISDN
// history into the holders index, confirmed. It is idempotent and safe
// beside concurrent changes (a recorded close is never reopened); enrolling
// a seafarer again runs it, and it backfills seafarers enrolled before the
// index existed. ENOTFOUND.
func (s *RedisStore) RecordMSISDNHolders(ctx context.Context, seafarerID string) error {
	history, err := s.MSISDNHistory(ctx, seafarerID)
	if err != nil {
		return err
	}
	for _, p := range history {
		step := holdClose
		if p.To.IsZero() {
			step = holdOpen
		}
		if err := s.hold(ctx, p.MSISDN, seafarerID, p.From, step, p.To); err != nil {
			return fmt.Errorf("crew: record MSISDN holders of %s: %w", seafarerID, err)
		}
	}
	return nil
}

// holderPeriod is one seafarer's holding of an MSISDN, from until to (zero
// while held).
type holderPeriod struct {
	seafarerID string
	from, to   time.Time
}

func (p holderPeriod) contains(t time.Time) bool {
	return !t.Before(p.from) && (p.to.IsZero() || t.Before(p.to))
}

// ownerAt is the rule at the top of this file: the holder whose period
// contains t (the later-begun one if two do), else the first holder when t
// is before every period, else "".
func ownerAt(periods []holderPeriod, t time.Time) string {
	var owner, first *holderPeriod
	for i := range periods {
		p := &periods[i]
		if p.contains(t) && (owner == nil || p.from.After(owner.from)) {
			owner = p
		}
		if first == nil || p.from.Before(first.from) || (p.from.Equal(first.from) && p.seafarerID < first.seafarerID) {
			first = p
		}
	}
	switch {
	case owner != nil:
		return owner.seafarerID
	case first != nil && t.Before(first.from):
		return first.seafarerID
	}
	return ""
}

// SeafarerIDsAt attributes each call to the seafarer who held its MSISDN at
// the call's time, by the rule at the top of this file: out[i] is calls[i]'s
// seafarer id, "" for nobody (an invalid MSISDN resolves to nobody). The
// whole batch is read in one pipelined round trip, each MSISDN once; a
// number whose index is unconfirmed or disagrees with its claim (a change in
// progress or cut short) costs a second one, shared by the batch.
func (s *RedisStore) SeafarerIDsAt(ctx context.Context, calls []MSISDNAt) ([]string, error) {
	out := make([]string, len(calls))
	type read struct {
		holders *redis.MapStringStringCmd
		claim   *redis.StringCmd
	}
	reads := make(map[string]*read)
	var msisdns []string
	for _, c := range calls {
		if ValidMSISDN(c.MSISDN) && reads[c.MSISDN] == nil {
			reads[c.MSISDN] = &read{}
			msisdns = append(msisdns, c.MSISDN)
		}
	}
	if len(msisdns) == 0 {
		return out, nil
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range msisdns {
			reads[m].holders = p.HGetAll(ctx, s.holdersKey(m))
			reads[m].claim = p.Get(ctx, s.msisdnKey(m))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("crew: attribute calls: %w", err)
	}

	periods := make(map[string][]holderPeriod, len(msisdns))
	unsure := make(map[string]map[string]bool) // MSISDN → seafarers to settle from their history
	for _, m := range msisdns {
		r := reads[m]
		if err := r.claim.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("crew: attribute calls: claim of %s: %w", m, err)
		}
		if err := r.holders.Err(); err != nil {
			return nil, fmt.Errorf("crew: attribute calls: holders of %s: %w", m, err)
		}
		known, settle := readHolders(r.holders.Val(), claimOwner(r.claim.Val()))
		periods[m] = known
		if len(settle) > 0 {
			unsure[m] = settle
		}
	}
	if len(unsure) > 0 {
		if err := s.settle(ctx, periods, unsure); err != nil {
			return nil, err
		}
	}
	for i, c := range calls {
		if ValidMSISDN(c.MSISDN) {
			out[i] = ownerAt(periods[c.MSISDN], c.At)
		}
	}
	return out, nil
}

// readHolders parses a holders hash into the confirmed periods of holders
// that need no settling, and names the holders to settle from their own
// history: those with an unconfirmed or unreadable entry, the claim owner
// when it has no open period, and holders of an open period without the
// claim.
func readHolders(fields map[string]string, claimOwner string) ([]holderPeriod, map[string]bool) {
	settle := make(map[string]bool)
	var periods []holderPeriod
	ownerHolds := false
	for field, state := range fields {
		id, fromText, ok := strings.Cut(field, "|")
		from, err := parseTime(fromText)
		if !ok || err != nil || !plausibleID(id) {
			if plausibleID(id) {
				settle[id] = true
			}
			continue
		}
		p := holderPeriod{seafarerID: id, from: from}
		switch {
		case strings.HasPrefix(state, "?"):
			settle[id] = true
			continue
		case state == "":
			if id == claimOwner {
				ownerHolds = true
			} else {
				settle[id] = true
			}
		default:
			if p.to, err = parseTime(state); err != nil {
				settle[id] = true
				continue
			}
		}
		periods = append(periods, p)
	}
	if claimOwner != "" && plausibleID(claimOwner) && !ownerHolds {
		settle[claimOwner] = true
	}
	if len(settle) == 0 {
		return periods, nil
	}
	kept := periods[:0]
	for _, p := range periods {
		if !settle[p.seafarerID] {
			kept = append(kept, p)
		}
	}
	return kept, settle
}

// settle replaces, for each MSISDN in unsure, the periods of the named
// seafarers by those their own histories hold, read in one pipelined round
// trip. A seafarer with no profile held nothing.
func (s *RedisStore) settle(ctx context.Context, periods map[string][]holderPeriod, unsure map[string]map[string]bool) error {
	type read struct {
		entries *redis.StringSliceCmd
		current *redis.SliceCmd
	}
	reads := make(map[string]*read)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, ids := range unsure {
			for id := range ids {
				if reads[id] == nil {
					reads[id] = &read{
						entries: p.LRange(ctx, s.historyKey(id), 0, -1),
						current: p.HMGet(ctx, s.profileKey(id), "msisdn", "msisdn_since", "created_at"),
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("crew: attribute calls: read MSISDN histories: %w", err)
	}
	histories := make(map[string][]MSISDNPeriod, len(reads))
	for id, r := range reads {
		cur := r.current.Val()
		msisdn, ok := cur[0].(string)
		if !ok {
			continue // no profile: debris of an enrolment that never stored one
		}
		since, ok := cur[1].(string)
		if !ok {
			since, _ = cur[2].(string)
		}
		h, err := parseHistory(id, r.entries.Val(), msisdn, since)
		if err != nil {
			return err
		}
		histories[id] = h
	}
	for m, ids := range unsure {
		for id := range ids {
			for _, p := range histories[id] {
				if p.MSISDN == m {
					periods[m] = append(periods[m], holderPeriod{seafarerID: id, from: p.From, to: p.To})
				}
			}
		}
	}
	return nil
}
