package quota

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
	"github.com/redis/go-redis/v9"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/internal/fanout"
)

// Issuance statuses.
const (
	IssuanceRunning = "running"
	IssuanceDone    = "done"
)

// Reasons a seafarer of an issuance got no pack (IssuanceFailure.Reason).
const (
	ReasonBudgetExhausted  = "budget_exhausted"
	ReasonSeafarerNotFound = "seafarer_not_found"
)

// MaxFailuresShown is how many failures Issuance returns; Failures pages
// through all of them.
const MaxFailuresShown = 1000

const (
	maxIdempotencyKeyRunes = 200
	maxTargetSeafarerIDs   = 100_000
	maxSeafarerIDLen       = 100
	// issuanceBatch targets are decided in one script call, then granted.
	issuanceBatch = 500
	// lookupWorkers and grantWorkers bound the concurrent roster look-ups
	// and AddGrant calls within one batch.
	lookupWorkers = 16
	grantWorkers  = 16
	// unstartedTargetsTTL bounds the life of a target list whose issuance
	// was never recorded (a crash or a lost idempotency race in Start).
	unstartedTargetsTTL = 24 * time.Hour
	// doneRetention is how long the target list and per-seafarer outcomes
	// of a finished issuance are kept; counters and failures stay.
	doneRetention = 30 * 24 * time.Hour
	// orphanAge: Resume forgets a running-set member without a record only
	// once its id is this old, so it never races a Start in progress.
	orphanAge = 10 * time.Minute
	// backgroundAttempts and backgroundBackoff govern retries of a
	// background run that fails (Redis unreachable, roster down).
	backgroundAttempts = 5
	backgroundBackoff  = time.Second
)

// IssuanceTarget is who an issuance gives packs to: exactly one of a list of
// seafarers, a company's crew or a vessel's crew.
type IssuanceTarget struct {
	SeafarerIDs []string   `json:"seafarer_ids,omitempty"`
	CompanyID   string     `json:"company_id,omitempty"`
	VesselIMO   string     `json:"vessel_imo,omitempty"`
	EffectiveAt *time.Time `json:"effective_at,omitempty"` // default: when the issuance starts
}

// Issuance is one run of issuing a programme's packs to a target, and its
// progress. Issued + Skipped + Failed == Total once Status is "done".
type Issuance struct {
	ID          string            `json:"id"`
	ProgrammeID string            `json:"programme_id"`
	Status      string            `json:"status"`
	Total       int64             `json:"total"`
	Issued      int64             `json:"issued"`
	Skipped     int64             `json:"skipped"` // seafarers not active
	Failed      int64             `json:"failed"`
	Failures    []IssuanceFailure `json:"failures"` // the first MaxFailuresShown
	EffectiveAt time.Time         `json:"effective_at"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
}

// IssuanceFailure is one seafarer who got no pack, and why
// (ReasonBudgetExhausted, ReasonSeafarerNotFound).
type IssuanceFailure struct {
	SeafarerID string `json:"seafarer_id"`
	Reason     string `json:"reason"`
}

// Roster is what issuance needs of the crew registry.
type Roster interface {
	// SeafarerStatus returns the seafarer's status (crew.StatusActive, ...) or a
	// wuyou ENOTFOUND error.
	SeafarerStatus(ctx context.Context, seafarerID string) (string, error)
	// CompanyCrew and VesselCrew stream the ids of a company's or a vessel's
	// seafarers (any status) to fn in a stable order. CompanyCrew returns a
	// wuyou ENOTFOUND error for an unknown company.
	CompanyCrew(ctx context.Context, companyID string, fn func(seafarerID string) error) error
	VesselCrew(ctx context.Context, imo string, fn func(seafarerID string) error) error
}

// BatchRoster is optionally implemented by a Roster that looks up many
// seafarers in one round trip; the issuer then uses it instead of
// concurrent SeafarerStatus calls.
type BatchRoster interface {
	// SeafarerStatuses returns the status of each seafarer in the order
	// given, "" for an unknown one.
	SeafarerStatuses(ctx context.Context, seafarerIDs []string) ([]string, error)
}

// GrantPublisher announces the grants an issuance added: their ledger
// entries on the ledger topic and a grant-issued notification each.
type GrantPublisher interface {
	// PublishGrants is called once per batch after the batch's grants are
	// stored and before the batch counts as done, so every grant is
	// published at least once: again after a crash or when a run is
	// repeated. Entry ids ("g_" + grant id) are deterministic, so readers
	// drop repeats. An error stops the run; the batch is redone on resume.
	PublishGrants(ctx context.Context, grants []IssuedGrant) error
}

// IssuedGrant is one grant an issuance gave a seafarer and its ledger entry.
type IssuedGrant struct {
	Grant GrantInput
	Entry *LedgerEntry
}

// Normalize trims the target's ids. It copies the id list rather than
// writing into the caller's.
func (t *IssuanceTarget) Normalize() {
	t.CompanyID = strings.TrimSpace(t.CompanyID)
	t.VesselIMO = strings.TrimSpace(t.VesselIMO)
	if t.SeafarerIDs != nil {
		ids := make([]string, len(t.SeafarerIDs))
		for i, id := range t.SeafarerIDs {
			ids[i] = strings.TrimSpace(id)
		}
		t.SeafarerIDs = ids
	}
	if t.EffectiveAt != nil {
		e := t.EffectiveAt.UTC().Truncate(time.Second) // grants keep whole seconds
		t.EffectiveAt = &e
	}
}

// Validate checks that exactly one target is given and that its ids are
// well-formed. EINVALID naming every bad field. Call Normalize first.
func (t IssuanceTarget) Validate() error {
	return wuyou.Invalid(t.fieldErrors())
}

func (t IssuanceTarget) fieldErrors() []wuyou.FieldError {
	var errs []wuyou.FieldError
	add := func(field, msg string) {
		errs = append(errs, wuyou.FieldError{Field: field, Message: msg})
	}
	given := 0
	if t.SeafarerIDs != nil {
		given++
	}
	if t.CompanyID != "" {
		given++
	}
	if t.VesselIMO != "" {
		given++
	}
	if given != 1 {
		add("target", "exactly one of seafarer_ids, company_id and vessel_imo is required")
	}
	switch n := len(t.SeafarerIDs); {
	case t.SeafarerIDs == nil:
	case n == 0:
		add("seafarer_ids", "must list at least one seafarer")
	case n > maxTargetSeafarerIDs:
		add("seafarer_ids", fmt.Sprintf("must list at most %d seafarers (issue to a company or a vessel instead)", maxTargetSeafarerIDs))
	default:
		for i, id := range t.SeafarerIDs {
			if id == "" || len(id) > maxSeafarerIDLen {
				add(fmt.Sprintf("seafarer_ids[%d]", i), fmt.Sprintf("must be a seafarer id of 1 to %d characters", maxSeafarerIDLen))
				break
			}
		}
	}
	if len(t.CompanyID) > maxSeafarerIDLen {
		add("company_id", fmt.Sprintf("must be at most %d characters", maxSeafarerIDLen))
	}
	if len(t.VesselIMO) > maxSeafarerIDLen {
		add("vessel_imo", fmt.Sprintf("must be at most %d characters", maxSeafarerIDLen))
	}
	return errs
}

// bodyHash identifies the request body behind an idempotency key: the
// SHA-256 of the canonical JSON of the normalized target.
func (t IssuanceTarget) bodyHash() string {
	js, _ := json.Marshal(t) // a struct of strings and a time cannot fail
	sum := sha256.Sum256(js)
	return hex.EncodeToString(sum[:])
}

// IssuanceGrantID is the id of the grant an issuance gives a seafarer. It is
// a function of both, so a retried issuance can only re-add the same grant.
func IssuanceGrantID(issuanceID, seafarerID string) string {
	sum := sha256.Sum256([]byte(issuanceID + "\x00" + seafarerID))
	return "gr_" + hex.EncodeToString(sum[:])[:20]
}

// Issuance layout. Everything about an issuance lives in its programme's
// slot (P = "<prefix>:{p:<programme id>}"), beside the programme's
// packs_issued counter, so the budget is enforced by one script across all
// of the programme's issuances:
//
//	P:idem             hash  idempotency key -> issuance id
//	P:is:<id>          hash  programme_id, idempotency_key, body (SHA-256),
//	                         status, total, issued, skipped, failed, next
//	                         (every target before it is fully processed),
//	                         effective (unix s), created_at, updated_at (unix ms)
//	P:is:<id>:targets  list  seafarer ids, deduplicated, in target order
//	P:is:<id>:outcomes hash  seafarer id -> issued|skipped|budget_exhausted|seafarer_not_found
//	P:is:<id>:failures list  "<reason>:<seafarer id>" in the order they failed
//
// Two single-key structures outside any programme find issuances by id:
//
//	<prefix>:issuance:<id>        string  programme id
//	<prefix>:issuances:running    set     ids of issuances not yet done
type issuanceKeys struct{ programme, idem, record, targets, outcomes, failures string }

func (s *RedisStore) issuanceKeys(programmeID, issuanceID string) issuanceKeys {
	p := s.programmeTag(programmeID)
	r := p + ":is:" + issuanceID
	return issuanceKeys{
		programme: s.programmeKey(programmeID), idem: p + ":idem",
		record: r, targets: r + ":targets", outcomes: r + ":outcomes", failures: r + ":failures",
	}
}

func (s *RedisStore) issuanceIndexKey(issuanceID string) string {
	return s.prefix + ":issuance:" + issuanceID
}

func (s *RedisStore) runningIssuancesKey() string { return s.prefix + ":issuances:running" }

// createIssuanceScript records a new issuance under an idempotency key, or
// names the issuance already recorded under it.
//
// KEYS[1] programme hash, KEYS[2] idempotency hash, KEYS[3] issuance hash,
// KEYS[4] target list (already written, with a TTL).
// ARGV[1] idempotency key, ARGV[2] issuance id, ARGV[3] body hash,
// ARGV[4] total, ARGV[5] effective (unix s), ARGV[6] now (unix ms),
// ARGV[7] programme id.
// Reply: {"created", id} (target list made permanent; status "done" when
// total is 0) or {"existing", id of the earlier issuance} (nothing changes);
// error "ENOTFOUND" when the programme does not exist.
var createIssuanceScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'created_at') == 0 then return redis.error_reply('ENOTFOUND') end
local prev = redis.call('HGET', KEYS[2], ARGV[1])
if prev then return {'existing', prev} end
local status = 'running'
if tonumber(ARGV[4]) == 0 then status = 'done' end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], 'programme_id', ARGV[7], 'idempotency_key', ARGV[1], 'body', ARGV[3],
  'status', status, 'total', ARGV[4], 'issued', 0, 'skipped', 0, 'failed', 0, 'next', 0,
  'effective', ARGV[5], 'created_at', ARGV[6], 'updated_at', ARGV[6])
redis.call('PERSIST', KEYS[4])
return {'created', ARGV[2]}
`)

// decideScript is step A of issuing to a batch of seafarers: it records each
// seafarer's outcome in the issuance once and, for an active seafarer,
// reserves one pack of the programme's budget — or records budget_exhausted
// when none is left. A seafarer whose outcome is already recorded (a retry
// after a crash, a concurrent run, a repeated id) gets the recorded outcome
// back and changes nothing, so the budget and the counters move exactly once
// per (issuance, seafarer).
//
// KEYS[1] programme hash, KEYS[2] issuance hash, KEYS[3] outcome hash,
// KEYS[4] failure list.
// ARGV[1] now (unix ms), ARGV[2] progress: index before which every target
// is fully processed (grants added), saved as the issuance's "next" when
// larger; then pairs ARGV[i] seafarer id, ARGV[i+1] proposal: "issue"
// (active), "skipped" (not active) or "seafarer_not_found".
// Reply: {"done"} when the issuance is already done (nothing changes), else
// {"ok", outcome per seafarer in order}, outcomes being "issued", "skipped",
// "budget_exhausted" or "seafarer_not_found".
var decideScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], 'status') ~= 'running' then return {'done'} end
local budget = tonumber(redis.call('HGET', KEYS[1], 'budget_packs') or '0')
local issued = tonumber(redis.call('HGET', KEYS[1], 'packs_issued') or '0')
local out = {'ok'}
local nIssued, nSkipped, nFailed = 0, 0, 0
for i = 3, #ARGV, 2 do
  local id, want = ARGV[i], ARGV[i+1]
  local got = redis.call('HGET', KEYS[3], id)
  if not got then
    if want == 'issue' then
      if budget > 0 and issued >= budget then
        got = 'budget_exhausted'
      else
        issued = issued + 1
        got = 'issued'
      end
    else
      got = want
    end
    redis.call('HSET', KEYS[3], id, got)
    if got == 'issued' then
      nIssued = nIssued + 1
    elseif got == 'skipped' then
      nSkipped = nSkipped + 1
    else
      nFailed = nFailed + 1
      redis.call('RPUSH', KEYS[4], got .. ':' .. id)
    end
  end
  out[#out+1] = got
end
if nIssued > 0 then
  redis.call('HINCRBY', KEYS[1], 'packs_issued', nIssued)
  redis.call('HINCRBY', KEYS[2], 'issued', nIssued)
end
if nSkipped > 0 then redis.call('HINCRBY', KEYS[2], 'skipped', nSkipped) end
if nFailed > 0 then redis.call('HINCRBY', KEYS[2], 'failed', nFailed) end
if tonumber(ARGV[2]) > tonumber(redis.call('HGET', KEYS[2], 'next') or '0') then
  redis.call('HSET', KEYS[2], 'next', ARGV[2])
end
redis.call('HSET', KEYS[2], 'updated_at', ARGV[1])
return out
`)

// finishScript marks an issuance done once every target has an outcome and
// lets its target list and outcomes expire.
//
// KEYS[1] issuance hash, KEYS[2] target list, KEYS[3] outcome hash.
// ARGV[1] now (unix ms), ARGV[2] retention of list and outcomes (s).
// Reply: 1 when marked done now, 0 when it already was; error "EINCOMPLETE"
// when the counters do not add up to the total (nothing changes).
var finishScript = redis.NewScript(`
local st = redis.call('HMGET', KEYS[1], 'status', 'total', 'issued', 'skipped', 'failed')
if st[1] == 'done' then return 0 end
local total = tonumber(st[2])
local decided = tonumber(st[3]) + tonumber(st[4]) + tonumber(st[5])
if decided ~= total then
  return redis.error_reply('EINCOMPLETE ' .. decided .. ' of ' .. total .. ' targets decided')
end
redis.call('HSET', KEYS[1], 'status', 'done', 'next', total, 'updated_at', ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[3], ARGV[2])
return 1
`)

// Issuer gives a programme's packs to seafarers in bulk.
//
// Delivery guarantee: each target seafarer is decided once per issuance
// (step A, decideScript, in the programme's slot: outcome recorded, budget
// reserved, counters bumped — atomically), then an "issued" seafarer's grant
// is added (step B, RedisStore.AddGrant, in the seafarer's slot, idempotent
// by IssuanceGrantID). A crash between A and B leaves the outcome recorded
// and the grant missing; the next Run repeats A (which returns the recorded
// outcome and reserves nothing) and B (which adds the grant if missing). The
// issuance's progress ("next") moves only past targets whose B is done (and
// whose grants the Publisher accepted), so every reserved pack is eventually
// granted exactly once and announced at least once. Runs of the same
// issuance may overlap (a replica resuming while another still runs): they
// only repeat each other's idempotent work.
type Issuer struct {
	store  *RedisStore
	roster Roster
	now    wuyou.Clock

	// Log receives the errors of background runs; nil means slog.Default().
	// Set it before the first call.
	Log *slog.Logger
	// Publisher, when set (before the first call), announces every grant
	// the issuer adds.
	Publisher GrantPublisher

	mu       sync.Mutex
	closed   bool
	active   map[string]bool // issuances this process is running
	wg       sync.WaitGroup  // background runs and Resume
	stop     chan struct{}   // closed by Close: stop at the next batch boundary
	bg       context.Context // background runs; cancelled when Close gives up waiting
	cancelBG context.CancelFunc

	// afterDecide, when set (tests), runs between step A and step B of each
	// batch; an error from it ends the run there, like a crash.
	afterDecide func(issuanceID string, batchStart int64) error
}

// NewIssuer returns an issuer over store that looks seafarers up in roster.
func NewIssuer(store *RedisStore, roster Roster, now wuyou.Clock) *Issuer {
	bg, cancel := context.WithCancel(context.Background())
	return &Issuer{
		store: store, roster: roster, now: now,
		active: map[string]bool{}, stop: make(chan struct{}), bg: bg, cancelBG: cancel,
	}
}

func (i *Issuer) log() *slog.Logger {
	if i.Log != nil {
		return i.Log
	}
	return slog.Default()
}

// issuanceState is what Run needs of a stored issuance beyond Issuance.
type issuanceState struct {
	*Issuance
	body string // SHA-256 of the request body
	next int64
}

// Start validates the request, resolves the target into a stored list of
// seafarer ids (deduplicated: one pack per seafarer per issuance) and
// records the issuance as running; it issues nothing (see Run).
//
// The idempotency key is scoped to the programme. The same key with the same
// body (target and effective_at, compared as a SHA-256 of their canonical
// JSON) returns the issuance recorded first with created=false; with another
// body it is ECONFLICT. EINVALID for a missing or over-long key, a bad
// target, or an effective_at so early that the packs would already have
// expired or more than 3660 days ahead. ENOTFOUND for an unknown programme,
// and for an unknown company when the roster reports one (a company or
// vessel without crew gives an issuance of total 0, done at once).
func (i *Issuer) Start(ctx context.Context, programmeID, idempotencyKey string, t IssuanceTarget) (iss *Issuance, created bool, err error) {
	t.Normalize()
	var errs []wuyou.FieldError
	switch {
	case idempotencyKey == "":
		errs = append(errs, wuyou.FieldError{Field: "Idempotency-Key", Message: "is required"})
	case utf8.RuneCountInString(idempotencyKey) > maxIdempotencyKeyRunes:
		errs = append(errs, wuyou.FieldError{Field: "Idempotency-Key", Message: fmt.Sprintf("must be at most %d characters", maxIdempotencyKeyRunes)})
	}
	errs = append(errs, t.fieldErrors()...)
	if err := wuyou.Invalid(errs); err != nil {
		return nil, false, err
	}
	body := t.bodyHash()
	prog, err := i.store.Programme(ctx, programmeID)
	if err != nil {
		return nil, false, err
	}
	// A replay needs no walk of the roster.
	if iss, err := i.replay(ctx, programmeID, idempotencyKey, body); iss != nil || err != nil {
		return iss, false, err
	}

	now := i.now().UTC()
	effective := now.Truncate(time.Second)
	if t.EffectiveAt != nil {
		effective = *t.EffectiveAt
	}
	switch {
	case !effective.Add(time.Duration(prog.ValidDays) * 24 * time.Hour).After(now):
		return nil, false, wuyou.Invalid([]wuyou.FieldError{{Field: "effective_at",
			Message: fmt.Sprintf("packs effective then would already have expired (they are valid %d days)", prog.ValidDays)}})
	case effective.After(now.AddDate(0, 0, maxValidDays)):
		return nil, false, wuyou.Invalid([]wuyou.FieldError{{Field: "effective_at",
			Message: fmt.Sprintf("must be at most %d days from now", maxValidDays)}})
	}
	ids, err := i.resolve(ctx, t)
	if err != nil {
		return nil, false, err
	}
	id, err := newID("is_", now)
	if err != nil {
		return nil, false, err
	}
	k := i.store.issuanceKeys(programmeID, id)
	if err := i.writeTargets(ctx, k.targets, ids); err != nil {
		return nil, false, err
	}
	// Findable and resumable before it exists, so no crash leaves a recorded
	// issuance that neither Issuance nor Resume can find. Resume forgets an
	// id that never got a record (see orphanAge).
	if err := i.register(ctx, programmeID, id); err != nil {
		return nil, false, err
	}
	res, err := createIssuanceScript.Run(ctx, i.store.rdb,
		[]string{k.programme, k.idem, k.record, k.targets},
		idempotencyKey, id, body, len(ids), effective.Unix(), now.UnixMilli(), programmeID,
	).StringSlice()
	switch {
	case err != nil && strings.Contains(err.Error(), "ENOTFOUND"):
		i.unregister(ctx, k, id)
		return nil, false, wuyou.Errorf(wuyou.ENOTFOUND, "programme %s not found", programmeID)
	case err != nil:
		return nil, false, fmt.Errorf("quota: start issuance: %w", err)
	case len(res) != 2:
		return nil, false, fmt.Errorf("quota: start issuance: unexpected reply %q", res)
	case res[0] == "existing":
		// A concurrent Start with the same key won.
		i.unregister(ctx, k, id)
		iss, err := i.replay(ctx, programmeID, idempotencyKey, body)
		if err == nil && iss == nil {
			err = fmt.Errorf("quota: start issuance: idempotency key names missing issuance %s", res[1])
		}
		return iss, false, err
	}
	iss = &Issuance{
		ID: id, ProgrammeID: programmeID, Status: IssuanceRunning, Total: int64(len(ids)),
		Failures: []IssuanceFailure{}, EffectiveAt: effective,
		CreatedAt: time.UnixMilli(now.UnixMilli()).UTC(), UpdatedAt: time.UnixMilli(now.UnixMilli()).UTC(),
	}
	if iss.Total == 0 {
		iss.Status = IssuanceDone
		if err := i.store.rdb.SRem(ctx, i.store.runningIssuancesKey(), id).Err(); err != nil {
			return nil, false, fmt.Errorf("quota: start issuance: %w", err)
		}
	}
	return iss, true, nil
}

// replay returns the issuance recorded under the key, nil when there is none,
// or ECONFLICT when it was recorded for another body. It re-registers the
// issuance, repairing a registration lost to a crash.
func (i *Issuer) replay(ctx context.Context, programmeID, key, body string) (*Issuance, error) {
	k := i.store.issuanceKeys(programmeID, "")
	id, err := i.store.rdb.HGet(ctx, k.idem, key).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("quota: issuance by key: %w", err)
	}
	st, err := i.state(ctx, programmeID, id, true)
	if err != nil {
		return nil, err
	}
	if st.body != body {
		return nil, &wuyou.Error{Code: wuyou.ECONFLICT,
			Message: fmt.Sprintf("Idempotency-Key was already used for issuance %s with a different body", id)}
	}
	if st.Status == IssuanceRunning {
		if err := i.register(ctx, programmeID, id); err != nil {
			return nil, err
		}
	}
	return st.Issuance, nil
}

// register makes an issuance findable by id and resumable.
func (i *Issuer) register(ctx context.Context, programmeID, id string) error {
	_, err := i.store.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, i.store.issuanceIndexKey(id), programmeID, 0)
		p.SAdd(ctx, i.store.runningIssuancesKey(), id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("quota: register issuance: %w", err)
	}
	return nil
}

// unregister removes what Start wrote for an issuance it did not record.
// Best effort: leftovers expire (targets) or are forgotten by Resume.
func (i *Issuer) unregister(ctx context.Context, k issuanceKeys, id string) {
	_, _ = i.store.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, k.targets)
		p.Del(ctx, i.store.issuanceIndexKey(id))
		p.SRem(ctx, i.store.runningIssuancesKey(), id)
		return nil
	})
}

// resolve lists the target's seafarer ids, each once, in target order.
func (i *Issuer) resolve(ctx context.Context, t IssuanceTarget) ([]string, error) {
	seen := map[string]bool{}
	var ids []string
	add := func(id string) error {
		if id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
		return nil
	}
	var err error
	switch {
	case t.SeafarerIDs != nil:
		for _, id := range t.SeafarerIDs {
			_ = add(id)
		}
	case t.CompanyID != "":
		err = i.roster.CompanyCrew(ctx, t.CompanyID, add)
	case t.VesselIMO != "":
		err = i.roster.VesselCrew(ctx, t.VesselIMO, add)
	}
	if err != nil {
		if wuyou.ErrorCode(err) == wuyou.EINTERNAL {
			return nil, fmt.Errorf("quota: resolve issuance target: %w", err)
		}
		return nil, err
	}
	return ids, nil
}

// writeTargets stores the target list with a TTL that the create script
// removes, so a list whose issuance is never recorded goes away.
func (i *Issuer) writeTargets(ctx context.Context, key string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	const chunk = 1000
	_, err := i.store.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for lo := 0; lo < len(ids); lo += chunk {
			hi := min(lo+chunk, len(ids))
			args := make([]any, hi-lo)
			for j, id := range ids[lo:hi] {
				args[j] = id
			}
			p.RPush(ctx, key, args...)
		}
		p.Expire(ctx, key, unstartedTargetsTTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("quota: store issuance targets: %w", err)
	}
	return nil
}

// Issuance returns an issuance's progress and its first MaxFailuresShown
// failures. ENOTFOUND.
func (i *Issuer) Issuance(ctx context.Context, issuanceID string) (*Issuance, error) {
	programmeID, err := i.programmeOf(ctx, issuanceID)
	if err != nil {
		return nil, err
	}
	st, err := i.state(ctx, programmeID, issuanceID, true)
	if err != nil {
		return nil, err
	}
	return st.Issuance, nil
}

// Failures returns up to limit failures of an issuance from offset, in the
// order they happened. ENOTFOUND.
func (i *Issuer) Failures(ctx context.Context, issuanceID string, offset, limit int) ([]IssuanceFailure, error) {
	programmeID, err := i.programmeOf(ctx, issuanceID)
	if err != nil {
		return nil, err
	}
	if offset < 0 || limit <= 0 {
		return []IssuanceFailure{}, nil
	}
	k := i.store.issuanceKeys(programmeID, issuanceID)
	vals, err := i.store.rdb.LRange(ctx, k.failures, int64(offset), int64(offset+limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("quota: issuance failures: %w", err)
	}
	return failuresFrom(vals), nil
}

func (i *Issuer) programmeOf(ctx context.Context, issuanceID string) (string, error) {
	if issuanceID == "" {
		return "", wuyou.Errorf(wuyou.ENOTFOUND, "issuance not found")
	}
	programmeID, err := i.store.rdb.Get(ctx, i.store.issuanceIndexKey(issuanceID)).Result()
	if errors.Is(err, redis.Nil) {
		return "", wuyou.Errorf(wuyou.ENOTFOUND, "issuance %s not found", issuanceID)
	} else if err != nil {
		return "", fmt.Errorf("quota: issuance: %w", err)
	}
	return programmeID, nil
}

// state reads an issuance record, with its first failures when asked.
// ENOTFOUND when there is no record.
func (i *Issuer) state(ctx context.Context, programmeID, issuanceID string, withFailures bool) (*issuanceState, error) {
	k := i.store.issuanceKeys(programmeID, issuanceID)
	var rec *redis.MapStringStringCmd
	var fails *redis.StringSliceCmd
	_, err := i.store.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		rec = p.HGetAll(ctx, k.record)
		if withFailures {
			fails = p.LRange(ctx, k.failures, 0, MaxFailuresShown-1)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("quota: issuance: %w", err)
	}
	m := rec.Val()
	if m["status"] == "" {
		return nil, wuyou.Errorf(wuyou.ENOTFOUND, "issuance %s not found", issuanceID)
	}
	var n [8]int64
	for j, f := range []string{"total", "issued", "skipped", "failed", "next", "effective", "created_at", "updated_at"} {
		v, err := strconv.ParseInt(m[f], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("quota: issuance %s: malformed %s %q", issuanceID, f, m[f])
		}
		n[j] = v
	}
	st := &issuanceState{
		Issuance: &Issuance{
			ID: issuanceID, ProgrammeID: m["programme_id"], Status: m["status"],
			Total: n[0], Issued: n[1], Skipped: n[2], Failed: n[3], Failures: []IssuanceFailure{},
			EffectiveAt: time.Unix(n[5], 0).UTC(), CreatedAt: time.UnixMilli(n[6]).UTC(), UpdatedAt: time.UnixMilli(n[7]).UTC(),
		},
		body: m["body"], next: n[4],
	}
	if withFailures {
		st.Failures = failuresFrom(fails.Val())
	}
	return st, nil
}

func failuresFrom(vals []string) []IssuanceFailure {
	out := make([]IssuanceFailure, 0, len(vals))
	for _, v := range vals {
		reason, id, _ := strings.Cut(v, ":")
		out = append(out, IssuanceFailure{SeafarerID: id, Reason: reason})
	}
	return out
}

// errShuttingDown is what a run stopped by Close returns.
func errShuttingDown(issuanceID string) error {
	return wuyou.Errorf(wuyou.EUNAVAILABLE, "shutting down; issuance %s resumes on the next start", issuanceID)
}

func (i *Issuer) stopping() bool {
	select {
	case <-i.stop:
		return true
	default:
		return false
	}
}

// Run processes a started issuance to the end, a batch at a time. It is
// safe to call again after a crash or an error, and concurrently with itself
// for the same issuance: it never issues a seafarer two packs nor reserves
// budget twice (see Issuer). It stops at a batch boundary when the issuer is
// closing (EUNAVAILABLE) and with ctx. ENOTFOUND.
func (i *Issuer) Run(ctx context.Context, issuanceID string) error {
	programmeID, err := i.programmeOf(ctx, issuanceID)
	if err != nil {
		return err
	}
	st, err := i.state(ctx, programmeID, issuanceID, false)
	if err != nil {
		return err
	}
	if st.Status == IssuanceDone {
		return i.forgetRunning(ctx, issuanceID)
	}
	prog, err := i.store.Programme(ctx, programmeID)
	if err != nil {
		return err
	}
	k := i.store.issuanceKeys(programmeID, issuanceID)
	grant := GrantInput{
		ProgrammeID: programmeID, Seconds: prog.PackSeconds, Priority: prog.Priority,
		EffectiveAt: st.EffectiveAt, ExpiresAt: st.EffectiveAt.Add(time.Duration(prog.ValidDays) * 24 * time.Hour),
	}
	for next := st.next; next < st.Total; {
		if i.stopping() {
			return errShuttingDown(issuanceID)
		}
		ids, err := i.store.rdb.LRange(ctx, k.targets, next, next+issuanceBatch-1).Result()
		if err != nil {
			return fmt.Errorf("quota: issuance %s targets: %w", issuanceID, err)
		}
		if len(ids) == 0 {
			return fmt.Errorf("quota: issuance %s: target list ends at %d of %d", issuanceID, next, st.Total)
		}
		outcomes, done, err := i.decide(ctx, k, next, ids)
		if err != nil {
			return err
		}
		if done { // another run finished it
			return i.forgetRunning(ctx, issuanceID)
		}
		if i.afterDecide != nil {
			if err := i.afterDecide(issuanceID, next); err != nil {
				return err
			}
		}
		added, err := i.addGrants(ctx, issuanceID, grant, ids, outcomes)
		if err != nil {
			return err
		}
		if i.Publisher != nil && len(added) > 0 {
			if err := i.Publisher.PublishGrants(ctx, added); err != nil {
				return fmt.Errorf("quota: issuance %s: publish grants: %w", issuanceID, err)
			}
		}
		next += int64(len(ids))
	}
	err = finishScript.Run(ctx, i.store.rdb, []string{k.record, k.targets, k.outcomes},
		i.now().UnixMilli(), int64(doneRetention/time.Second)).Err()
	if err != nil {
		return fmt.Errorf("quota: finish issuance %s: %w", issuanceID, err)
	}
	return i.forgetRunning(ctx, issuanceID)
}

func (i *Issuer) forgetRunning(ctx context.Context, issuanceID string) error {
	if err := i.store.rdb.SRem(ctx, i.store.runningIssuancesKey(), issuanceID).Err(); err != nil {
		return fmt.Errorf("quota: issuance %s: %w", issuanceID, err)
	}
	return nil
}

// decide looks the batch up in the roster and runs step A for it.
func (i *Issuer) decide(ctx context.Context, k issuanceKeys, batchStart int64, ids []string) (outcomes []string, done bool, err error) {
	statuses, err := i.statuses(ctx, ids)
	if err != nil {
		return nil, false, err
	}
	args := make([]any, 0, 2+2*len(ids))
	args = append(args, i.now().UnixMilli(), batchStart)
	for j, id := range ids {
		proposal := "skipped"
		switch statuses[j] {
		case "":
			proposal = ReasonSeafarerNotFound
		case crew.StatusActive: // the one roster status that receives packs
			proposal = "issue"
		}
		args = append(args, id, proposal)
	}
	res, err := decideScript.Run(ctx, i.store.rdb, []string{k.programme, k.record, k.outcomes, k.failures}, args...).StringSlice()
	if err != nil {
		return nil, false, fmt.Errorf("quota: decide issuance batch: %w", err)
	}
	if len(res) == 1 && res[0] == "done" {
		return nil, true, nil
	}
	if len(res) != len(ids)+1 {
		return nil, false, fmt.Errorf("quota: decide issuance batch: %d outcomes for %d seafarers", len(res)-1, len(ids))
	}
	return res[1:], false, nil
}

// statuses returns each seafarer's roster status, "" for an unknown one.
func (i *Issuer) statuses(ctx context.Context, ids []string) ([]string, error) {
	if b, ok := i.roster.(BatchRoster); ok {
		out, err := b.SeafarerStatuses(ctx, ids)
		if err != nil {
			return nil, fmt.Errorf("quota: roster: %w", err)
		}
		if len(out) != len(ids) {
			return nil, fmt.Errorf("quota: roster: %d statuses for %d seafarers", len(out), len(ids))
		}
		return out, nil
	}
	out := make([]string, len(ids))
	err := fanout.Each(ctx, len(ids), lookupWorkers, func(ctx context.Context, j int) error {
		s, err := i.roster.SeafarerStatus(ctx, ids[j])
		switch {
		case wuyou.ErrorCode(err) == wuyou.ENOTFOUND:
			out[j] = ""
		case err != nil:
			return fmt.Errorf("quota: roster: seafarer %s: %w", ids[j], err)
		default:
			out[j] = s
		}
		return nil
	})
	return out, err
}

// addGrants is step B: the grant of every seafarer decided "issued". It
// returns them all, those a previous run already added included.
func (i *Issuer) addGrants(ctx context.Context, issuanceID string, g GrantInput, ids, outcomes []string) ([]IssuedGrant, error) {
	var grants []IssuedGrant
	for j, o := range outcomes {
		if o == "issued" {
			in := g
			in.SeafarerID = ids[j]
			in.ID = IssuanceGrantID(issuanceID, ids[j])
			grants = append(grants, IssuedGrant{Grant: in})
		}
	}
	err := fanout.Each(ctx, len(grants), grantWorkers, func(ctx context.Context, j int) error {
		_, entry, err := i.store.AddGrant(ctx, grants[j].Grant)
		if err != nil {
			return fmt.Errorf("quota: issuance %s: grant to %s: %w", issuanceID, grants[j].Grant.SeafarerID, err)
		}
		grants[j].Entry = entry
		return nil
	})
	if err != nil {
		return nil, err
	}
	return grants, nil
}

// claim marks an issuance as run by this process; false when it already is
// or the issuer is closing. A claim adds to the wait group Close waits for.
func (i *Issuer) claim(issuanceID string) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed || i.active[issuanceID] {
		return false
	}
	i.active[issuanceID] = true
	i.wg.Add(1)
	return true
}

func (i *Issuer) release(issuanceID string) {
	i.mu.Lock()
	delete(i.active, issuanceID)
	i.mu.Unlock()
	i.wg.Done()
}

// StartAndRun starts an issuance and, when it is new and has at most
// syncLimit targets, runs it before returning (status "done"). Otherwise it
// runs it in the background, detached from ctx, and returns it "running";
// a replay of a running issuance also sets it running here, in case the
// process that started it died. A synchronous run that fails falls back to
// the background. Errors as Start.
func (i *Issuer) StartAndRun(ctx context.Context, programmeID, key string, t IssuanceTarget, syncLimit int) (*Issuance, bool, error) {
	iss, created, err := i.Start(ctx, programmeID, key, t)
	if err != nil || iss.Status == IssuanceDone {
		return iss, created, err
	}
	if created && iss.Total <= int64(syncLimit) && i.claim(iss.ID) {
		err := i.Run(ctx, iss.ID)
		i.release(iss.ID)
		if err == nil {
			done, err := i.Issuance(ctx, iss.ID)
			if err != nil {
				return nil, false, err
			}
			return done, created, nil
		}
		if !i.stopping() {
			i.log().Warn("issuance: synchronous run failed; continuing in the background", "issuance", iss.ID, "err", err)
		}
	}
	i.runInBackground(iss.ID)
	return iss, created, nil
}

// runInBackground runs an issuance on its own goroutine unless this process
// already runs it or is closing, retrying a failed run a few times.
func (i *Issuer) runInBackground(issuanceID string) {
	if !i.claim(issuanceID) {
		return
	}
	go func() {
		defer i.release(issuanceID)
		backoff := backgroundBackoff
		for attempt := 1; ; attempt++ {
			err := i.Run(i.bg, issuanceID)
			if err == nil || i.stopping() || i.bg.Err() != nil {
				return
			}
			if attempt == backgroundAttempts {
				i.log().Error("issuance: giving up until the next start", "issuance", issuanceID, "attempts", attempt, "err", err)
				return
			}
			i.log().Warn("issuance: run failed; retrying", "issuance", issuanceID, "attempt", attempt, "err", err)
			select {
			case <-time.After(backoff):
			case <-i.stop:
				return
			}
			backoff *= 2
		}
	}()
}

// Resume runs every issuance still "running" (after a restart), one after
// another, and returns when they are done, the issuer is closing or ctx ends.
// Issuances this process already runs are left to that run. An id in the
// running set without a record (a Start that crashed before recording it) is
// forgotten once orphanAge old. Errors of single issuances are logged and do
// not stop the others; it returns only a failure to list them.
func (i *Issuer) Resume(ctx context.Context) error {
	i.mu.Lock()
	if i.closed {
		i.mu.Unlock()
		return nil
	}
	i.wg.Add(1)
	i.mu.Unlock()
	defer i.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(i.bg, cancel)()

	ids, err := i.store.rdb.SMembers(ctx, i.store.runningIssuancesKey()).Result()
	if err != nil {
		return fmt.Errorf("quota: running issuances: %w", err)
	}
	for _, id := range ids {
		if i.stopping() || ctx.Err() != nil {
			return nil
		}
		if _, err := i.programmeOf(ctx, id); wuyou.ErrorCode(err) == wuyou.ENOTFOUND {
			i.forgetOrphan(ctx, id)
			continue
		}
		if !i.claim(id) {
			continue
		}
		err := i.Run(ctx, id)
		i.release(id)
		switch {
		case wuyou.ErrorCode(err) == wuyou.ENOTFOUND:
			i.forgetOrphan(ctx, id)
		case err != nil && !i.stopping() && ctx.Err() == nil:
			i.log().Error("issuance: resume failed", "issuance", id, "err", err)
		}
	}
	return nil
}

// forgetOrphan drops a running-set member that has no record, once old
// enough that no Start can still be about to record it.
func (i *Issuer) forgetOrphan(ctx context.Context, issuanceID string) {
	u, err := ulid.Parse(strings.TrimPrefix(issuanceID, "is_"))
	if err == nil && i.now().Sub(ulid.Time(u.Time())) < orphanAge {
		return
	}
	_, _ = i.store.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SRem(ctx, i.store.runningIssuancesKey(), issuanceID)
		p.Del(ctx, i.store.issuanceIndexKey(issuanceID))
		return nil
	})
}

// Close stops background runs and Resume at their next batch boundary and
// waits for them; unfinished issuances stay "running" and resume on the next
// start. When ctx ends first, it cancels them mid-batch (still safe: a batch
// is idempotent) and returns ctx's error. After Close, StartAndRun only
// records issuances.
func (i *Issuer) Close(ctx context.Context) error {
	i.mu.Lock()
	if !i.closed {
		i.closed = true
		close(i.stop)
	}
	i.mu.Unlock()
	done := make(chan struct{})
	go func() {
		i.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		i.cancelBG()
		return nil
	case <-ctx.Done():
		i.cancelBG()
		<-done
		return ctx.Err()
	}
}
