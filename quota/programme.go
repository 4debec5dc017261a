package quota

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
	"github.com/redis/go-redis/v9"

	"github.com/wuyou/wuyou"
)

// Programme limits (contract §4).
const (
	maxProgrammeNameRunes = 200
	minPackSeconds        = 60
	maxPackSeconds        = 10_000_000
	minValidDays          = 1
	maxValidDays          = 3660
	maxPriority           = 1000
)

// Programmes, their issuances and grants are kept in PostgreSQL
// (PGProgrammes, PGGrants). Redis keeps only the programme's usage counter,
// which the metering path raises (P = "<prefix>:{p:<programme id>}"):
//
//	P:programme  hash  seconds_used: seconds drawn from the programme's grants
//	P:usedby     hash  seafarer id -> that seafarer's seconds already counted
func (s *RedisStore) programmeTag(programmeID string) string {
	return s.prefix + ":{p:" + programmeID + "}"
}

func (s *RedisStore) programmeKey(programmeID string) string {
	return s.programmeTag(programmeID) + ":programme"
}

// Validate checks a programme against the contract and returns nil or an
// EINVALID error whose Fields name every bad field.
func (in ProgrammeInput) Validate() error {
	var errs []wuyou.FieldError
	add := func(field, msg string) {
		errs = append(errs, wuyou.FieldError{Field: field, Message: msg})
	}
	name := strings.TrimSpace(in.Name)
	switch {
	case name == "":
		add("name", "is required")
	case !utf8.ValidString(name):
		add("name", "must be valid UTF-8")
	case hasControl(name):
		add("name", "must not contain control characters")
	case utf8.RuneCountInString(name) > maxProgrammeNameRunes:
		add("name", fmt.Sprintf("must be at most %d characters", maxProgrammeNameRunes))
	}
	if in.PackSeconds < minPackSeconds || in.PackSeconds > maxPackSeconds {
		add("pack_seconds", fmt.Sprintf("must be between %d and %d", minPackSeconds, maxPackSeconds))
	}
	if in.ValidDays < minValidDays || in.ValidDays > maxValidDays {
		add("valid_days", fmt.Sprintf("must be between %d and %d", minValidDays, maxValidDays))
	}
	if in.Priority < 0 || in.Priority > maxPriority {
		add("priority", fmt.Sprintf("must be between 0 and %d", maxPriority))
	}
	if in.BudgetPacks < 0 {
		add("budget_packs", "must not be negative (0 means unlimited)")
	}
	if in.StartsAt.IsZero() {
		add("starts_at", "is required")
	}
	switch {
	case in.EndsAt.IsZero():
		add("ends_at", "is required")
	case !in.StartsAt.IsZero() && !in.EndsAt.After(in.StartsAt):
		add("ends_at", "must be after starts_at")
	}
	return wuyou.Invalid(errs)
}

// ProgrammeUsage tells how many seconds the seafarers have drawn from a
// programme's grants (GET /v1/programmes/{id} seconds_used). RedisStore is
// one today (the debit counts each seafarer's use per programme and
// SyncProgrammeUsage carries it over); a sum over the ledger in PostgreSQL
// can replace it without touching the programmes' store.
type ProgrammeUsage interface {
	// SecondsUsed returns the seconds drawn from the programme's grants, 0
	// for a programme nothing was drawn from. Errors are the store's.
	SecondsUsed(ctx context.Context, programmeID string) (int64, error)
}

// SecondsUsed returns the programme's seconds_used as SyncProgrammeUsage
// last brought it up to date.
func (s *RedisStore) SecondsUsed(ctx context.Context, programmeID string) (int64, error) {
	n, err := s.rdb.HGet(ctx, s.programmeKey(programmeID), "seconds_used").Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("quota: programme %s seconds used: %w", programmeID, err)
	}
	return n, nil
}

// SeafarerProgramme names one seafarer's use of one programme.
type SeafarerProgramme struct{ SeafarerID, ProgrammeID string }

// syncUsageScript raises a programme's seconds_used to account for its
// seafarers' cumulative use of it, exactly once however often it runs.
//
// KEYS[1] programme hash, KEYS[2] per-programme hash seafarer id -> seconds
// already counted. ARGV: pairs of seafarer id and that seafarer's cumulative
// seconds drawn from the programme. Reply: the seconds added (0 when every
// pair is a repeat or stale).
var syncUsageScript = redis.NewScript(`
local added = 0
for i = 1, #ARGV, 2 do
  local counted = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0')
  local now = tonumber(ARGV[i+1])
  if now > counted then
    redis.call('HSET', KEYS[2], ARGV[i], now)
    added = added + now - counted
  end
end
if added > 0 then redis.call('HINCRBY', KEYS[1], 'seconds_used', added) end
return added
`)

// SyncProgrammeUsage brings programmes' seconds_used up to date with what the
// seafarers drew from them. A seafarer's use of a programme is kept by the
// debit itself (atomically with the draw) and only grows, so carrying it
// over is idempotent: repeating it after a crash, for a redelivered batch,
// adds nothing twice and misses nothing. Two pipelined round trips, one
// script per programme.
func (s *RedisStore) SyncProgrammeUsage(ctx context.Context, pairs []SeafarerProgramme) error {
	if len(pairs) == 0 {
		return nil
	}
	used := make([]*redis.StringCmd, len(pairs))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, sp := range pairs {
			used[i] = p.HGet(ctx, s.keys(sp.SeafarerID).usage, "used:"+sp.ProgrammeID)
		}
		return nil
	})
	if err != nil && err != redis.Nil {
		return fmt.Errorf("quota: programme usage: %w", err)
	}
	byProgramme := map[string][]any{}
	for i, sp := range pairs {
		if n, err := used[i].Int64(); err == nil { // else nothing drawn from it yet
			byProgramme[sp.ProgrammeID] = append(byProgramme[sp.ProgrammeID], sp.SeafarerID, n)
		}
	}
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for programmeID, args := range byProgramme {
			syncUsageScript.Run(ctx, p, []string{s.programmeKey(programmeID), s.programmeTag(programmeID) + ":usedby"}, args...)
		}
		return nil
	})
	if isNoScript(err) {
		if err := syncUsageScript.Load(ctx, s.rdb).Err(); err != nil {
			return fmt.Errorf("quota: programme usage: %w", err)
		}
		return s.SyncProgrammeUsage(ctx, pairs)
	}
	if err != nil {
		return fmt.Errorf("quota: programme usage: %w", err)
	}
	return nil
}

// fillCounters sets the derived fields from the stored counters.
func (p *Programme) fillCounters(packsIssued, secondsUsed int64) {
	p.PacksIssued = packsIssued
	p.SecondsGranted = packsIssued * p.PackSeconds
	p.SecondsUsed = secondsUsed
	p.BudgetRemainingPacks = nil
	if p.BudgetPacks > 0 {
		rem := max(p.BudgetPacks-packsIssued, 0)
		p.BudgetRemainingPacks = &rem
	}
}

// newID returns prefix + a ULID stamped with t.
func newID(prefix string, t time.Time) (string, error) {
	id, err := ulid.New(ulid.Timestamp(t), ulid.DefaultEntropy())
	if err != nil {
		return "", fmt.Errorf("quota: new id: %w", err)
	}
	return prefix + id.String(), nil
}

// hasControl reports whether s holds a control character (C0, DEL or C1).
// Names are shown on screens and statements; a NUL would also make
// PostgreSQL refuse the row.
func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}

// storableKey reports whether s can be stored and looked up as a text key
// in PostgreSQL: valid UTF-8 without NUL. Anything else names nothing
// stored, so lookups answer ENOTFOUND without asking the database.
func storableKey(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}
