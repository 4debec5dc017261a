package crew

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wuyou/wuyou"
)

const (
	// claimLease is how long a fresh claim on a unique index whose owner's
	// record does not list the claimed value yet is taken to belong to a
	// request still in progress. Older such claims were left by a request
	// that died half-way and may be taken over.
	claimLease = 30 * time.Second
	// maxClaimHold is how long a request may hold claims it made before it
	// writes the record that lists them. A request that took longer gives up
	// (releasing its claims) rather than write, so a claim is never taken over
	// as stale while its owner is still about to write.
	maxClaimHold = claimLease / 2
	// lockTTL bounds how long a crashed request can keep a seafarer locked.
	// The profile write is fenced by the lock token, so a request whose lock
	// lapsed cannot overwrite a newer change.
	lockTTL = 10 * time.Second
	// defaultClaimWait is how long a request waits for a concurrent request
	// holding the same claim or lock to finish before reporting a conflict.
	defaultClaimWait = 2 * time.Second
	// cleanupTimeout bounds the release of claims and locks, which runs even
	// when the request's context has been cancelled.
	cleanupTimeout = 2 * time.Second
)

// RedisStore is the registry kept in Redis. It implements Service.
//
// Every key starts with the prefix; the part in braces is the hash tag that
// picks the Redis Cluster slot, and no command or script touches keys of two
// slots:
//
//	<prefix>:{s:<id>}:p               hash    seafarer profile: id, company_id, seafarer_book_no, name,
//	                                          nationality, msisdn, vessel_imo, vessel_name, sign_on,
//	                                          sign_off, union_member_no, status, created_at, updated_at
//	<prefix>:{s:<id>}:msisdns         list    MSISDNs held before the current one (whose period starts at the
//	                                          profile's msisdn_since, else created_at), oldest first, "msisdn|from|to"
//	<prefix>:{s:<id>}:lock            string  token of the request changing the seafarer (PX lockTTL)
//	<prefix>:{co:<id>}:p              hash    company: id, name, registration_no, created_at
//	<prefix>:{co:<id>}:crew           zset    the company's seafarer ids, all score 0 (ordered by id)
//	<prefix>:{co:<id>}:vessel:<imo>   zset    the company's seafarer ids on one vessel
//	<prefix>:{v:<imo>}:crew           zset    seafarer ids on one vessel, across companies
//	<prefix>:msisdn:<msisdn>          string  claim "<seafarer id> <unix ms>": who the MSISDN belongs to
//	<prefix>:{m:<msisdn>}:holders     hash    who held the MSISDN when, "<seafarer id>|<from>" → state
//	                                          (see resolve_at.go); derived from the seafarers' histories
//	<prefix>:book:<book no>           string  claim "<seafarer id> <unix ms>": who holds the book number
//	<prefix>:regno:<registration no>  string  claim "<company id> <unix ms>": who holds the registration number
//
// Other packages keep their own per-seafarer keys under SeafarerTag, so a
// script can touch a seafarer's profile and, say, its grants together.
//
// The profile is the truth; the unique indexes and the lists are derived
// from it. A unique value is claimed (SET NX on its index key, stamped with
// the Redis server's time) before the record listing it is written, so of
// two concurrent requests only one can win. A claim whose owner's record
// does not list the value is either a request still in progress (younger
// than claimLease: others wait, then get ECONFLICT) or debris of a request
// that died half-way (older: taken over with a compare-and-set). Lookups
// through an index check the owner's record, so debris never resolves. The
// lists are added to after the profile is written; enrolling the seafarer
// again repairs a list a crash left behind, and list reads check each
// member's profile against the filter.
type RedisStore struct {
	rdb    redis.UniversalClient
	prefix string
	now    wuyou.Clock

	// OnMSISDNAssigned, when not nil, is called after an enrolment or an
	// MSISDN change has been stored, with the number now resolving to the
	// seafarer and the time it started to (the start of its MSISDNPeriod).
	// It runs synchronously in the request, after every lock is released.
	OnMSISDNAssigned func(ctx context.Context, seafarerID, msisdn string, at time.Time)

	// claimWait is how long to wait for a concurrent request's unfinished
	// claim or lock; tests shorten it.
	claimWait time.Duration
}

var _ Service = (*RedisStore)(nil)

// NewRedisStore returns a registry keeping its keys under prefix in rdb. now
// stamps created_at, updated_at and the MSISDN history.
func NewRedisStore(rdb redis.UniversalClient, prefix string, now wuyou.Clock) *RedisStore {
	return &RedisStore{rdb: rdb, prefix: prefix, now: now, claimWait: defaultClaimWait}
}

// SeafarerTag returns the key stem "<prefix>:{s:<id>}" under which every
// per-seafarer key lives, in any package, so that they share a cluster slot.
func SeafarerTag(prefix, seafarerID string) string {
	return seafarerStem(prefix) + seafarerID + "}"
}

// seafarerStem is what every key under a seafarer's tag starts with.
func seafarerStem(prefix string) string { return prefix + ":{s:" }

// SeafarerOfKey reads a key under SeafarerTag(prefix, id): the seafarer's id
// and what follows the tag (":g" of "<prefix>:{s:<id>}:g"). ok is false for
// a key under no seafarer's tag.
func SeafarerOfKey(prefix, key string) (seafarerID, rest string, ok bool) {
	after, ok := strings.CutPrefix(key, seafarerStem(prefix))
	if !ok {
		return "", "", false
	}
	seafarerID, rest, ok = strings.Cut(after, "}")
	if !ok || seafarerID == "" {
		return "", "", false
	}
	return seafarerID, rest, true
}

// SeafarerKeysGlob is a SCAN pattern matching the keys under any seafarer's
// tag whose rest (what follows the tag, see SeafarerOfKey) matches restGlob.
// The pattern can match a key whose id holds a "}"; SeafarerOfKey then reads
// a different rest, so a scan checks each key it finds with SeafarerOfKey.
func SeafarerKeysGlob(prefix, restGlob string) string {
	return globEscape(seafarerStem(prefix)) + "*}" + restGlob
}

// globEscape makes s match itself in a SCAN pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (s *RedisStore) profileKey(id string) string { return SeafarerTag(s.prefix, id) + ":p" }
func (s *RedisStore) historyKey(id string) string { return SeafarerTag(s.prefix, id) + ":msisdns" }
func (s *RedisStore) lockKey(id string) string    { return SeafarerTag(s.prefix, id) + ":lock" }

func (s *RedisStore) companyTag(id string) string     { return s.prefix + ":{co:" + id + "}" }
func (s *RedisStore) companyKey(id string) string     { return s.companyTag(id) + ":p" }
func (s *RedisStore) crewKey(companyID string) string { return s.companyTag(companyID) + ":crew" }
func (s *RedisStore) companyVesselKey(companyID, imo string) string {
	return s.companyTag(companyID) + ":vessel:" + imo
}
func (s *RedisStore) vesselKey(imo string) string { return s.prefix + ":{v:" + imo + "}:crew" }

func (s *RedisStore) msisdnKey(msisdn string) string { return s.prefix + ":msisdn:" + msisdn }
func (s *RedisStore) bookKey(bookNo string) string   { return s.prefix + ":book:" + bookNo }
func (s *RedisStore) regNoKey(regNo string) string   { return s.prefix + ":regno:" + regNo }

// Scripts. Each touches one key, or keys of one hash tag.
var (
	// claimScript claims a unique index key for an owner, stamped with the
	// server's clock so every API replica ages claims alike.
	// KEYS[1] the index key. ARGV[1] the owner id.
	// Reply {1, claim} when this call claimed it, {0, claim} with the
	// existing claim otherwise.
	claimScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then return {0, cur} end
local t = redis.call('TIME')
local v = ARGV[1] .. ' ' .. string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
redis.call('SET', KEYS[1], v)
return {1, v}
`)

	// takeoverScript replaces a claim whose owner does not list the claimed
	// value, if it is still the claim that was checked and is old enough not
	// to belong to a request still in progress. A claim without a time
	// counts as old.
	// KEYS[1] the index key. ARGV[1] the claim as read, ARGV[2] the new
	// owner id, ARGV[3] the lease in milliseconds (0 for one's own claim).
	// Reply {1, claim} when taken over; {0, ""} when the key no longer holds
	// ARGV[1]; {-1, ARGV[1]} when the claim is younger than the lease.
	takeoverScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0, ''} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local at = tonumber(string.match(ARGV[1], ' (%d+)$')) or 0
if now - at < tonumber(ARGV[3]) then return {-1, ARGV[1]} end
local v = ARGV[2] .. ' ' .. string.format('%.0f', now)
redis.call('SET', KEYS[1], v)
return {1, v}
`)

	// releaseScript deletes a claim or lock if it still holds what this
	// holder wrote, so a holder never deletes what another wrote since.
	// KEYS[1] the claim or lock key. ARGV[1] the value written.
	// Reply 1 when deleted, 0 when the key held something else.
	releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

	// releaseOwnedScript deletes a claim if it belongs to an owner, whenever
	// it was made: used to give up a seafarer's previous MSISDN.
	// KEYS[1] the index key. ARGV[1] the owner id.
	// Reply 1 when deleted, 0 when the key is absent or another's.
	releaseOwnedScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and (cur == ARGV[1] or string.sub(cur, 1, #ARGV[1] + 1) == ARGV[1] .. ' ') then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

	// writeProfileScript stores a seafarer's profile and keeps its MSISDN
	// history, only while the writer holds the seafarer's lock. The current
	// MSISDN's period is in the profile (msisdn_since, else created_at); the
	// list keeps only numbers held before, so a seafarer who never changed
	// number has none (a list written before this layout ends with the
	// current number's open period, which is closed on the next change).
	// KEYS[1] profile hash, KEYS[2] MSISDN history list, KEYS[3] lock, all
	// under the seafarer's tag.
	// ARGV[1] lock token, ARGV[2] "create" or "update", ARGV[3] now
	// (RFC 3339), ARGV[4] the MSISDN, ARGV[5..] profile field, value pairs.
	// Reply the MSISDN the profile held before ("" when new); error
	// WUYOU_LOCK_LOST, WUYOU_EXISTS (create) or WUYOU_NOT_FOUND (update).
	writeProfileScript = redis.NewScript(`
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return redis.error_reply('WUYOU_LOCK_LOST') end
local exists = redis.call('EXISTS', KEYS[1]) == 1
if ARGV[2] == 'create' and exists then return redis.error_reply('WUYOU_EXISTS') end
if ARGV[2] == 'update' and not exists then return redis.error_reply('WUYOU_NOT_FOUND') end
local old = redis.call('HGET', KEYS[1], 'msisdn') or ''
if old ~= '' and old ~= ARGV[4] then
  local last = redis.call('LINDEX', KEYS[2], -1)
  if last and string.sub(last, -1) == '|' then
    redis.call('LSET', KEYS[2], -1, last .. ARGV[3])
  else
    local since = redis.call('HGET', KEYS[1], 'msisdn_since') or redis.call('HGET', KEYS[1], 'created_at')
    redis.call('RPUSH', KEYS[2], old .. '|' .. since .. '|' .. ARGV[3])
  end
  redis.call('HSET', KEYS[1], 'msisdn_since', ARGV[3])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
return old
`)
)

// Markers of writeProfileScript's refusals.
const (
	errMarkLockLost = "WUYOU_LOCK_LOST"
	errMarkExists   = "WUYOU_EXISTS"
	errMarkNotFound = "WUYOU_NOT_FOUND"
)

// CreateCompany validates and stores a new company. EINVALID; ECONFLICT when
// another company has the registration number.
func (s *RedisStore) CreateCompany(ctx context.Context, name, registrationNo string) (*Company, error) {
	name, registrationNo, err := validCompany(name, registrationNo)
	if err != nil {
		return nil, err
	}

	c := &Company{ID: newCompanyID(), Name: name, RegistrationNo: registrationNo, CreatedAt: s.now().UTC()}
	started := time.Now()
	key := s.regNoKey(registrationNo)
	owner, claim, err := s.claim(ctx, key, c.ID, s.companyHolds(registrationNo), "registration_no", "registration number "+registrationNo)
	if err != nil {
		return nil, fmt.Errorf("crew: create company: %w", err)
	}
	if owner != c.ID {
		return nil, conflict("registration_no", "a company with registration number "+registrationNo+" already exists")
	}
	if time.Since(started) > maxClaimHold {
		s.release(ctx, key, claim)
		return nil, tooSlow()
	}
	err = s.rdb.HSet(ctx, s.companyKey(c.ID),
		"id", c.ID, "name", c.Name, "registration_no", c.RegistrationNo, "created_at", formatTime(c.CreatedAt)).Err()
	if err != nil {
		// The company may or may not have been written; a claim left behind
		// either holds or is stale, and both are handled on the next claim.
		return nil, fmt.Errorf("crew: create company: store: %w", err)
	}
	return c, nil
}

// Company returns one company. ENOTFOUND.
func (s *RedisStore) Company(ctx context.Context, id string) (*Company, error) {
	if !plausibleID(id) {
		return nil, companyNotFound(id)
	}
	m, err := s.rdb.HGetAll(ctx, s.companyKey(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("crew: company %s: %w", id, err)
	}
	if len(m) == 0 {
		return nil, companyNotFound(id)
	}
	created, err := parseTime(m["created_at"])
	if err != nil {
		return nil, fmt.Errorf("crew: company %s: created_at: %w", id, err)
	}
	return &Company{ID: m["id"], Name: m["name"], RegistrationNo: m["registration_no"], CreatedAt: created}, nil
}

// Enrol creates a seafarer in the company, or updates the one with the same
// book number there (created reports which). A seafarer who had signed off is
// active again; a suspended one stays suspended. EINVALID; ENOTFOUND for an
// unknown company; ECONFLICT when the book number is enrolled in another
// company or the MSISDN belongs to another seafarer (the error's Fields name
// the field).
func (s *RedisStore) Enrol(ctx context.Context, companyID string, e Enrolment) (*Seafarer, bool, error) {
	e.Normalize()
	if err := e.Validate(); err != nil {
		return nil, false, err
	}
	if err := s.companyExists(ctx, companyID); err != nil {
		return nil, false, err
	}

	id := newSeafarerID()
	token, err := s.lock(ctx, id)
	if err != nil {
		return nil, false, err
	}
	started := time.Now()
	bookKey := s.bookKey(e.BookNo)
	owner, bookClaim, err := s.claim(ctx, bookKey, id, s.seafarerHolds("seafarer_book_no", e.BookNo),
		"seafarer_book_no", "seafarer book number "+e.BookNo)
	if err != nil {
		s.unlock(ctx, id, token)
		return nil, false, fmt.Errorf("crew: enrol: %w", err)
	}
	if owner != id {
		// Enrolled before: update that seafarer, if it is this company's.
		s.unlock(ctx, id, token)
		sf, err := s.change(ctx, owner, true, func(next *Seafarer) error {
			if next.CompanyID != companyID {
				return conflict("seafarer_book_no", "seafarer book number "+e.BookNo+" is enrolled with another company")
			}
			applyEnrolment(next, e)
			if next.Status == StatusSignedOff {
				next.Status = StatusActive
			}
			return nil
		})
		return sf, false, err
	}

	sf, err := s.create(ctx, id, token, started, companyID, e, bookKey, bookClaim)
	s.unlock(ctx, id, token)
	if err != nil {
		return nil, false, err
	}
	s.msisdnAssigned(ctx, sf.ID, sf.MSISDN, sf.CreatedAt)
	return sf, true, nil
}

// create stores a new seafarer whose id is locked and whose book number is
// claimed (bookClaim); it claims the MSISDN, and on a refusal gives up both
// claims.
func (s *RedisStore) create(ctx context.Context, id, token string, started time.Time, companyID string, e Enrolment, bookKey, bookClaim string) (*Seafarer, error) {
	msisdnKey := s.msisdnKey(e.MSISDN)
	var msisdnClaim string
	giveUp := func() {
		s.release(ctx, bookKey, bookClaim)
		if msisdnClaim != "" {
			s.release(ctx, msisdnKey, msisdnClaim)
		}
	}
	owner, msisdnClaim, err := s.claim(ctx, msisdnKey, id, s.seafarerHolds("msisdn", e.MSISDN), "msisdn", "MSISDN "+e.MSISDN)
	if err != nil {
		giveUp()
		return nil, fmt.Errorf("crew: enrol: %w", err)
	}
	if owner != id {
		giveUp()
		return nil, msisdnTaken(e.MSISDN)
	}
	if time.Since(started) > maxClaimHold {
		giveUp()
		return nil, tooSlow()
	}

	now := s.now().UTC()
	sf := &Seafarer{ID: id, CompanyID: companyID, BookNo: e.BookNo, Status: StatusActive, CreatedAt: now, UpdatedAt: now}
	applyEnrolment(sf, e)
	holding := &numberChange{SeafarerID: id, To: e.MSISDN, At: now}
	if err := holding.begin(ctx, s); err != nil {
		giveUp()
		holding.undo(ctx, s)
		return nil, fmt.Errorf("crew: enrol: %w", err)
	}
	if time.Since(started) > maxClaimHold {
		giveUp()
		holding.undo(ctx, s)
		return nil, tooSlow()
	}
	if _, err := s.writeProfile(ctx, sf, token, "create", now); err != nil {
		if refused(err) {
			giveUp()
			holding.undo(ctx, s)
		}
		// Otherwise the profile may have been written: the claims either
		// hold or are stale, and both are handled on the next claim.
		return nil, fmt.Errorf("crew: enrol: %w", err)
	}
	holding.confirm(ctx, s)
	if err := s.index(ctx, nil, sf); err != nil {
		return nil, fmt.Errorf("crew: enrol: %w", err)
	}
	return sf, nil
}

// Seafarer returns one seafarer. ENOTFOUND.
func (s *RedisStore) Seafarer(ctx context.Context, id string) (*Seafarer, error) {
	if !plausibleID(id) {
		return nil, seafarerNotFound(id)
	}
	m, err := s.rdb.HGetAll(ctx, s.profileKey(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("crew: seafarer %s: %w", id, err)
	}
	if len(m) == 0 {
		return nil, seafarerNotFound(id)
	}
	return seafarerFromProfile(m)
}

// UpdateSeafarer applies u. Setting status signed_off signs the seafarer off
// (give sign_off for the date). EINVALID, ENOTFOUND, ECONFLICT (MSISDN taken).
func (s *RedisStore) UpdateSeafarer(ctx context.Context, id string, u SeafarerUpdate) (*Seafarer, error) {
	u.Normalize()
	if err := ValidateUpdate(u); err != nil {
		return nil, err
	}
	if u == (SeafarerUpdate{}) {
		return s.Seafarer(ctx, id)
	}
	return s.change(ctx, id, u.MSISDN != nil, func(next *Seafarer) error {
		set := func(dst *string, p *string) {
			if p != nil {
				*dst = *p
			}
		}
		set(&next.MSISDN, u.MSISDN)
		set(&next.VesselIMO, u.VesselIMO)
		set(&next.VesselName, u.VesselName)
		set(&next.SignOff, u.SignOff)
		set(&next.Status, u.Status)
		return nil
	})
}

// change applies mutate to a seafarer under its lock and stores the result.
// The MSISDN is claimed when it changes, or always when reclaim is set (an
// enrolment: this repairs an index a crash left behind).
func (s *RedisStore) change(ctx context.Context, id string, reclaim bool, mutate func(next *Seafarer) error) (*Seafarer, error) {
	if !plausibleID(id) {
		return nil, seafarerNotFound(id)
	}
	token, err := s.lock(ctx, id)
	if err != nil {
		return nil, err
	}
	sf, assigned, err := s.changeLocked(ctx, id, token, reclaim, mutate)
	s.unlock(ctx, id, token)
	if err != nil {
		return nil, err
	}
	if assigned {
		s.msisdnAssigned(ctx, sf.ID, sf.MSISDN, sf.UpdatedAt)
	}
	return sf, nil
}

func (s *RedisStore) changeLocked(ctx context.Context, id, token string, reclaim bool, mutate func(next *Seafarer) error) (sf *Seafarer, assigned bool, err error) {
	started := time.Now()
	cur, err := s.Seafarer(ctx, id)
	if err != nil {
		return nil, false, err
	}
	next := *cur
	if err := mutate(&next); err != nil {
		return nil, false, err
	}
	if next.SignOn != "" && next.SignOff != "" && next.SignOff < next.SignOn {
		return nil, false, wuyou.Invalid([]wuyou.FieldError{{Field: "sign_off", Message: "must not be before sign_on (" + next.SignOn + ")"}})
	}

	moved := next.MSISDN != cur.MSISDN
	key := s.msisdnKey(next.MSISDN)
	var claim string
	if moved || reclaim {
		var owner string
		owner, claim, err = s.claim(ctx, key, id, s.seafarerHolds("msisdn", next.MSISDN), "msisdn", "MSISDN "+next.MSISDN)
		if err != nil {
			return nil, false, fmt.Errorf("crew: update seafarer %s: %w", id, err)
		}
		if owner != id {
			return nil, false, msisdnTaken(next.MSISDN)
		}
	}
	giveUp := func() {
		if claim != "" {
			s.release(ctx, key, claim)
		}
	}
	if time.Since(started) > maxClaimHold {
		giveUp()
		return nil, false, tooSlow()
	}

	next.UpdatedAt = s.now().UTC()
	var holding *numberChange
	if moved {
		holding, err = s.startNumberChange(ctx, id, cur.MSISDN, next.MSISDN, next.UpdatedAt)
		if err == nil {
			err = holding.begin(ctx, s)
			if err != nil {
				holding.undo(ctx, s)
			}
		}
		if err != nil {
			giveUp()
			return nil, false, fmt.Errorf("crew: update seafarer %s: %w", id, err)
		}
		if time.Since(started) > maxClaimHold {
			giveUp()
			holding.undo(ctx, s)
			return nil, false, tooSlow()
		}
	}
	old, err := s.writeProfile(ctx, &next, token, "update", next.UpdatedAt)
	if err != nil {
		if refused(err) {
			giveUp()
			if holding != nil {
				holding.undo(ctx, s)
			}
		}
		return nil, false, fmt.Errorf("crew: update seafarer %s: %w", id, err)
	}
	if holding != nil {
		holding.confirm(ctx, s)
	} else if reclaim {
		// An enrolment again: rewrite the holders index from the history,
		// repairing what a crash (or an index older than the history) left.
		if err := s.RecordMSISDNHolders(ctx, id); err != nil {
			return nil, false, fmt.Errorf("crew: update seafarer %s: %w", id, err)
		}
	}
	if old != "" && old != next.MSISDN {
		// The old number stops resolving now that the profile no longer lists
		// it; deleting the claim lets another seafarer take it at once. If
		// this fails the claim is stale and is taken over when next claimed.
		_ = s.releaseOwned(ctx, s.msisdnKey(old), id)
	}
	if err := s.index(ctx, cur, &next); err != nil {
		return nil, false, fmt.Errorf("crew: update seafarer %s: %w", id, err)
	}
	return &next, old != next.MSISDN, nil
}

// writeProfile stores sf with writeProfileScript and returns the MSISDN the
// profile held before. A refusal by the script (nothing was written) comes
// back as a *refusal wrapping a *wuyou.Error; any other error leaves it open
// whether the write happened.
func (s *RedisStore) writeProfile(ctx context.Context, sf *Seafarer, token, mode string, now time.Time) (string, error) {
	keys := []string{s.profileKey(sf.ID), s.historyKey(sf.ID), s.lockKey(sf.ID)}
	args := append([]any{token, mode, formatTime(now), sf.MSISDN}, profileFields(sf)...)
	old, err := writeProfileScript.Run(ctx, s.rdb, keys, args...).Text()
	switch {
	case err == nil:
		return old, nil
	case strings.Contains(err.Error(), errMarkLockLost):
		return "", &refusal{wuyou.Errorf(wuyou.ECONFLICT, "seafarer %s was being changed by another request; try again", sf.ID)}
	case strings.Contains(err.Error(), errMarkNotFound):
		return "", &refusal{seafarerNotFound(sf.ID)}
	case strings.Contains(err.Error(), errMarkExists):
		return "", &refusal{wuyou.Errorf(wuyou.EINTERNAL, "seafarer id %s is taken", sf.ID)}
	}
	return "", fmt.Errorf("store profile: %w", err)
}

// refusal is a write the script refused: nothing was written.
type refusal struct{ err error }

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

func refused(err error) bool {
	var r *refusal
	return errors.As(err, &r)
}

// index puts a seafarer in its company's and vessel's lists, and takes it off
// the lists of the vessel it left. Adding is repeated on every write, so a
// list a crash left behind is repaired by the next change.
func (s *RedisStore) index(ctx context.Context, prev, sf *Seafarer) error {
	pipe := s.rdb.Pipeline()
	if prev != nil && prev.VesselIMO != "" && prev.VesselIMO != sf.VesselIMO {
		pipe.ZRem(ctx, s.companyVesselKey(prev.CompanyID, prev.VesselIMO), sf.ID)
		pipe.ZRem(ctx, s.vesselKey(prev.VesselIMO), sf.ID)
	}
	member := redis.Z{Score: 0, Member: sf.ID}
	pipe.ZAdd(ctx, s.crewKey(sf.CompanyID), member)
	if sf.VesselIMO != "" {
		pipe.ZAdd(ctx, s.companyVesselKey(sf.CompanyID, sf.VesselIMO), member)
		pipe.ZAdd(ctx, s.vesselKey(sf.VesselIMO), member)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	return nil
}

// SeafarerByMSISDN resolves the seafarer an MSISDN belongs to now. ENOTFOUND.
func (s *RedisStore) SeafarerByMSISDN(ctx context.Context, msisdn string) (*Seafarer, error) {
	notFound := wuyou.Errorf(wuyou.ENOTFOUND, "no seafarer has MSISDN %s", msisdn)
	if !ValidMSISDN(msisdn) {
		return nil, notFound
	}
	claim, err := s.rdb.Get(ctx, s.msisdnKey(msisdn)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, notFound
	} else if err != nil {
		return nil, fmt.Errorf("crew: resolve MSISDN: %w", err)
	}
	sf, err := s.Seafarer(ctx, claimOwner(claim))
	if wuyou.ErrorCode(err) == wuyou.ENOTFOUND {
		return nil, notFound // debris of an enrolment that died half-way
	} else if err != nil {
		return nil, err
	}
	if sf.MSISDN != msisdn {
		return nil, notFound // the seafarer has moved to another number
	}
	return sf, nil
}

// MSISDNHistory returns the MSISDNs a seafarer has held, oldest first; the
// last one is current. ENOTFOUND.
func (s *RedisStore) MSISDNHistory(ctx context.Context, seafarerID string) ([]MSISDNPeriod, error) {
	if !plausibleID(seafarerID) {
		return nil, seafarerNotFound(seafarerID)
	}
	var entries *redis.StringSliceCmd
	var current *redis.SliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		entries = p.LRange(ctx, s.historyKey(seafarerID), 0, -1)
		current = p.HMGet(ctx, s.profileKey(seafarerID), "msisdn", "msisdn_since", "created_at")
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("crew: MSISDN history of %s: %w", seafarerID, err)
	}
	cur := current.Val()
	if cur[0] == nil {
		return nil, seafarerNotFound(seafarerID)
	}
	msisdn, _ := cur[0].(string)
	since, ok := cur[1].(string)
	if !ok {
		since, _ = cur[2].(string)
	}
	return parseHistory(seafarerID, entries.Val(), msisdn, since)
}

// parseHistory reads the list of numbers held before and appends the
// current one, unless the list (in the layout before msisdn_since) already
// ends with its open period.
func parseHistory(seafarerID string, entries []string, msisdn, since string) ([]MSISDNPeriod, error) {
	var err error
	if n := len(entries); n == 0 || !strings.HasSuffix(entries[n-1], "|") {
		entries = append(entries, msisdn+"|"+since+"|")
	}
	periods := make([]MSISDNPeriod, 0, len(entries))
	for _, entry := range entries {
		parts := strings.Split(entry, "|")
		if len(parts) != 3 {
			return nil, fmt.Errorf("crew: MSISDN history of %s: malformed entry %q", seafarerID, entry)
		}
		p := MSISDNPeriod{MSISDN: parts[0]}
		if p.From, err = parseTime(parts[1]); err != nil {
			return nil, fmt.Errorf("crew: MSISDN history of %s: %w", seafarerID, err)
		}
		if parts[2] != "" {
			if p.To, err = parseTime(parts[2]); err != nil {
				return nil, fmt.Errorf("crew: MSISDN history of %s: %w", seafarerID, err)
			}
		}
		periods = append(periods, p)
	}
	return periods, nil
}

// Seafarers lists a page of a company's seafarers ordered by id, optionally
// only those on f.VesselIMO or with f.Status, and the cursor of the next page
// ("" at the end). Limit defaults to 50 and is capped at 500. EINVALID
// (missing company, unknown status); ENOTFOUND for an unknown company.
func (s *RedisStore) Seafarers(ctx context.Context, f SeafarerFilter) ([]*Seafarer, string, error) {
	if f.CompanyID == "" {
		return nil, "", wuyou.Invalid([]wuyou.FieldError{{Field: "company_id", Message: "is required"}})
	}
	if err := checkStatusFilter(f.Status); err != nil {
		return nil, "", err
	}
	if err := s.companyExists(ctx, f.CompanyID); err != nil {
		return nil, "", err
	}
	f.VesselIMO = NormalizeIMO(f.VesselIMO)
	setKey := s.crewKey(f.CompanyID)
	if f.VesselIMO != "" {
		setKey = s.companyVesselKey(f.CompanyID, f.VesselIMO)
	}
	return s.page(ctx, setKey, f)
}

// EachSeafarer calls fn with every seafarer of f.CompanyID that matches f,
// in id order from f.Cursor on, reading f.Limit (default 500) profiles at a
// time, so a whole crew is never held in memory. It stops at fn's first
// error and returns it. Errors as Seafarers.
func (s *RedisStore) EachSeafarer(ctx context.Context, f SeafarerFilter, fn func(*Seafarer) error) error {
	if f.Limit <= 0 {
		f.Limit = MaxListLimit
	}
	return each(ctx, f, s.Seafarers, fn)
}

// VesselSeafarers calls fn with every seafarer on the vessel with IMO number
// imo, across all companies, with the given status ("" for any), in id
// order, a page at a time. It stops at fn's first error and returns it.
// EINVALID for a malformed IMO number or an unknown status.
func (s *RedisStore) VesselSeafarers(ctx context.Context, imo, status string, fn func(*Seafarer) error) error {
	imo = NormalizeIMO(imo)
	if msg := checkIMO(imo); msg != "" || imo == "" {
		if msg == "" {
			msg = "is required"
		}
		return wuyou.Invalid([]wuyou.FieldError{{Field: "vessel_imo", Message: msg}})
	}
	if err := checkStatusFilter(status); err != nil {
		return err
	}
	f := SeafarerFilter{VesselIMO: imo, Status: status, Limit: MaxListLimit}
	page := func(ctx context.Context, f SeafarerFilter) ([]*Seafarer, string, error) {
		return s.page(ctx, s.vesselKey(imo), f)
	}
	return each(ctx, f, page, fn)
}

// page reads seafarers listed in setKey after f.Cursor, keeping those whose
// profile matches f, until it has f.Limit of them or the list ends. The
// profile decides: a list member left behind by a vessel change that did
// not finish is skipped.
func (s *RedisStore) page(ctx context.Context, setKey string, f SeafarerFilter) ([]*Seafarer, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	items := make([]*Seafarer, 0, limit)
	after := f.Cursor
	for {
		from := "-"
		if after != "" {
			from = "(" + after
		}
		// One more than needed, to tell a full last page from a page with more after it.
		want := limit - len(items) + 1
		ids, err := s.rdb.ZRangeByLex(ctx, setKey, &redis.ZRangeBy{Min: from, Max: "+", Count: int64(want)}).Result()
		if err != nil {
			return nil, "", fmt.Errorf("crew: list seafarers: %w", err)
		}
		profiles, err := s.profiles(ctx, ids)
		if err != nil {
			return nil, "", err
		}
		for i, sf := range profiles {
			if len(items) == limit {
				return items, after, nil // ids[i] and maybe more follow
			}
			after = ids[i]
			if sf != nil && matches(sf, f) {
				items = append(items, sf)
			}
		}
		if len(ids) < want {
			return items, "", nil
		}
	}
}

// profiles reads the profiles of ids in one round trip per cluster node; a
// missing one is nil.
func (s *RedisStore) profiles(ctx context.Context, ids []string) ([]*Seafarer, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, s.profileKey(id))
	}
	if len(ids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("crew: read profiles: %w", err)
		}
	}
	out := make([]*Seafarer, len(ids))
	for i, cmd := range cmds {
		m := cmd.Val()
		if len(m) == 0 {
			continue
		}
		sf, err := seafarerFromProfile(m)
		if err != nil {
			return nil, err
		}
		out[i] = sf
	}
	return out, nil
}

func matches(sf *Seafarer, f SeafarerFilter) bool {
	return (f.CompanyID == "" || sf.CompanyID == f.CompanyID) &&
		(f.VesselIMO == "" || sf.VesselIMO == f.VesselIMO) &&
		(f.Status == "" || sf.Status == f.Status)
}

func (s *RedisStore) companyExists(ctx context.Context, id string) error {
	if !plausibleID(id) {
		return companyNotFound(id)
	}
	n, err := s.rdb.Exists(ctx, s.companyKey(id)).Result()
	if err != nil {
		return fmt.Errorf("crew: company %s: %w", id, err)
	}
	if n == 0 {
		return companyNotFound(id)
	}
	return nil
}

func (s *RedisStore) msisdnAssigned(ctx context.Context, seafarerID, msisdn string, at time.Time) {
	if s.OnMSISDNAssigned != nil {
		s.OnMSISDNAssigned(ctx, seafarerID, msisdn, at)
	}
}

// holdsFunc reports whether the record of ownerID lists the value a unique
// index key stands for.
type holdsFunc func(ctx context.Context, ownerID string) (bool, error)

func (s *RedisStore) seafarerHolds(field, value string) holdsFunc {
	return func(ctx context.Context, ownerID string) (bool, error) {
		return s.recordHolds(ctx, ownerID, s.profileKey, field, value)
	}
}

func (s *RedisStore) companyHolds(regNo string) holdsFunc {
	return func(ctx context.Context, ownerID string) (bool, error) {
		return s.recordHolds(ctx, ownerID, s.companyKey, "registration_no", regNo)
	}
}

func (s *RedisStore) recordHolds(ctx context.Context, ownerID string, key func(string) string, field, value string) (bool, error) {
	if !plausibleID(ownerID) {
		return false, nil
	}
	got, err := s.rdb.HGet(ctx, key(ownerID), field).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("check claim owner %s: %w", ownerID, err)
	}
	return got == value, nil
}

// claim makes ownerID the owner of the unique index key unless a live
// record holds it already. It returns the owner afterwards and, when this
// call wrote the key for ownerID, the claim written (to release it if the
// request fails before its record is stored). A claim of ownerID's own that
// its record does not list yet is stamped anew, so it is not taken over as
// stale while ownerID is about to list it. While another request's fresh
// claim is unfinished it waits up to s.claimWait, then returns ECONFLICT
// naming field.
func (s *RedisStore) claim(ctx context.Context, key, ownerID string, holds holdsFunc, field, what string) (owner, made string, err error) {
	wait := newBackoff(s.claimWait)
	for {
		code, cur, err := runPair(ctx, claimScript, s.rdb, key, ownerID)
		if err != nil {
			return "", "", fmt.Errorf("claim %s: %w", what, err)
		}
		if code == 1 {
			return ownerID, cur, nil
		}
		curOwner := claimOwner(cur)
		held, err := holds(ctx, curOwner)
		if err != nil {
			return "", "", fmt.Errorf("claim %s: %w", what, err)
		}
		if held {
			return curOwner, "", nil
		}
		lease := claimLease.Milliseconds()
		if curOwner == ownerID {
			lease = 0
		}
		code, taken, err := runPair(ctx, takeoverScript, s.rdb, key, cur, ownerID, lease)
		if err != nil {
			return "", "", fmt.Errorf("claim %s: take over stale claim: %w", what, err)
		}
		if code == 1 {
			return ownerID, taken, nil
		}
		// The claim changed since it was read (code 0), or belongs to a
		// request still in progress (-1): look again after a pause, until
		// that request has listed the value or given it up.
		if err := wait.next(ctx); err != nil {
			return "", "", s.busy(err, field, what+" is being enrolled by another request; try again")
		}
	}
}

// busy turns a wait that ran out into ECONFLICT, and passes a cancelled
// context through.
func (s *RedisStore) busy(err error, field, msg string) error {
	if errors.Is(err, errWaitedEnough) {
		return conflict(field, msg)
	}
	return err
}

// runPair runs a script replying {code, value}.
func runPair(ctx context.Context, script *redis.Script, rdb redis.UniversalClient, key string, args ...any) (int64, string, error) {
	reply, err := script.Run(ctx, rdb, []string{key}, args...).Slice()
	if err != nil {
		return 0, "", err
	}
	if len(reply) != 2 {
		return 0, "", fmt.Errorf("unexpected script reply %v", reply)
	}
	code, ok1 := reply[0].(int64)
	value, ok2 := reply[1].(string)
	if !ok1 || !ok2 {
		return 0, "", fmt.Errorf("unexpected script reply %v", reply)
	}
	return code, value, nil
}

// claimOwner returns the owner id of a claim "<owner> <unix ms>" (or of a
// bare "<owner>").
func claimOwner(claim string) string {
	owner, _, _ := strings.Cut(claim, " ")
	return owner
}

// release deletes a claim or lock this request wrote, if it still holds what
// was written. It runs even when ctx is cancelled; a failure leaves a claim
// that is stale (or a lock that expires), which is harmless.
func (s *RedisStore) release(ctx context.Context, key, value string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_ = releaseScript.Run(ctx, s.rdb, []string{key}, value).Err()
}

func (s *RedisStore) releaseOwned(ctx context.Context, key, ownerID string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	return releaseOwnedScript.Run(ctx, s.rdb, []string{key}, ownerID).Err()
}

// lock takes the seafarer's lock, so changes to one seafarer (its claims and
// its profile) run one at a time. It waits up to s.claimWait for another
// holder, then returns ECONFLICT.
func (s *RedisStore) lock(ctx context.Context, id string) (string, error) {
	token := newLockToken()
	wait := newBackoff(s.claimWait)
	for {
		ok, err := s.rdb.SetNX(ctx, s.lockKey(id), token, lockTTL).Result()
		if err != nil {
			return "", fmt.Errorf("crew: lock seafarer %s: %w", id, err)
		}
		if ok {
			return token, nil
		}
		if err := wait.next(ctx); err != nil {
			return "", s.busy(err, "", "seafarer "+id+" is being changed by another request; try again")
		}
	}
}

func (s *RedisStore) unlock(ctx context.Context, id, token string) {
	s.release(ctx, s.lockKey(id), token)
}

var errWaitedEnough = errors.New("waited long enough")

// backoff paces retries: short sleeps growing to 50ms, for at most a total
// time, or until the context ends.
type backoff struct {
	deadline time.Time
	delay    time.Duration
}

func newBackoff(total time.Duration) *backoff {
	return &backoff{deadline: time.Now().Add(total), delay: 2 * time.Millisecond}
}

func (b *backoff) next(ctx context.Context) error {
	if time.Now().After(b.deadline) {
		return errWaitedEnough
	}
	t := time.NewTimer(b.delay)
	defer t.Stop()
	b.delay = min(2*b.delay, 50*time.Millisecond)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func profileFields(sf *Seafarer) []any {
	return []any{
		"id", sf.ID,
		"company_id", sf.CompanyID,
		"seafarer_book_no", sf.BookNo,
		"name", sf.Name,
		"nationality", sf.Nationality,
		"msisdn", sf.MSISDN,
		"vessel_imo", sf.VesselIMO,
		"vessel_name", sf.VesselName,
		"sign_on", sf.SignOn,
		"sign_off", sf.SignOff,
		"union_member_no", sf.UnionMemberNo,
		"status", sf.Status,
		"created_at", formatTime(sf.CreatedAt),
		"updated_at", formatTime(sf.UpdatedAt),
	}
}

func seafarerFromProfile(m map[string]string) (*Seafarer, error) {
	sf := &Seafarer{
		ID:            m["id"],
		CompanyID:     m["company_id"],
		BookNo:        m["seafarer_book_no"],
		Name:          m["name"],
		Nationality:   m["nationality"],
		MSISDN:        m["msisdn"],
		VesselIMO:     m["vessel_imo"],
		VesselName:    m["vessel_name"],
		SignOn:        m["sign_on"],
		SignOff:       m["sign_off"],
		UnionMemberNo: m["union_member_no"],
		Status:        m["status"],
	}
	var err error
	if sf.CreatedAt, err = parseTime(m["created_at"]); err != nil {
		return nil, fmt.Errorf("crew: seafarer %s: created_at: %w", sf.ID, err)
	}
	if sf.UpdatedAt, err = parseTime(m["updated_at"]); err != nil {
		return nil, fmt.Errorf("crew: seafarer %s: updated_at: %w", sf.ID, err)
	}
	return sf, nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }

func tooSlow() error {
	return wuyou.Errorf(wuyou.EUNAVAILABLE, "the registry is responding slowly; nothing was changed, try again")
}

// SeafarerIDsByMSISDN resolves many MSISDNs in two pipelined round trips (the
// claims, then the owners' current numbers), with the same checks as
// SeafarerByMSISDN. MSISDNs that resolve to nobody are absent from the map.
func (s *RedisStore) SeafarerIDsByMSISDN(ctx context.Context, msisdns []string) (map[string]string, error) {
	claims := make([]*redis.StringCmd, len(msisdns))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range msisdns {
			if ValidMSISDN(m) {
				claims[i] = p.Get(ctx, s.msisdnKey(m))
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("crew: resolve MSISDNs: %w", err)
	}
	owners := make([]string, len(msisdns))
	current := make([]*redis.StringCmd, len(msisdns))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range claims {
			if c == nil || c.Err() != nil {
				continue
			}
			owners[i] = claimOwner(c.Val())
			current[i] = p.HGet(ctx, s.profileKey(owners[i]), "msisdn")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("crew: resolve MSISDNs: %w", err)
	}
	out := make(map[string]string, len(msisdns))
	for i, c := range current {
		// a claim whose owner is gone or has moved to another number is debris
		if c != nil && c.Err() == nil && c.Val() == msisdns[i] {
			out[msisdns[i]] = owners[i]
		}
	}
	return out, nil
}
