package quota

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
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

// Programme layout (P = "<prefix>:{p:<programme id>}", one hash slot per
// programme, shared with the programme's issuances so that a budget check and
// the reservation it allows are one atomic script; see issuance.go):
//
//	P:programme  hash  name, pack_seconds, valid_days, priority, budget_packs,
//	                   starts_at, ends_at, created_at (RFC 3339 UTC), and the
//	                   counters packs_issued and seconds_used
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

// CreateProgramme validates and stores a new programme with nothing issued.
// EINVALID.
func (s *RedisStore) CreateProgramme(ctx context.Context, in ProgrammeInput) (*Programme, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	id, err := newID("pg_", now)
	if err != nil {
		return nil, err
	}
	p := &Programme{
		ID: id, Name: strings.TrimSpace(in.Name), PackSeconds: in.PackSeconds, ValidDays: in.ValidDays,
		Priority: in.Priority, BudgetPacks: in.BudgetPacks, StartsAt: in.StartsAt.UTC(), EndsAt: in.EndsAt.UTC(),
		CreatedAt: now,
	}
	err = s.rdb.HSet(ctx, s.programmeKey(id),
		"name", p.Name,
		"pack_seconds", p.PackSeconds,
		"valid_days", p.ValidDays,
		"priority", p.Priority,
		"budget_packs", p.BudgetPacks,
		"starts_at", p.StartsAt.Format(time.RFC3339Nano),
		"ends_at", p.EndsAt.Format(time.RFC3339Nano),
		"created_at", p.CreatedAt.Format(time.RFC3339Nano),
		"packs_issued", 0,
		"seconds_used", 0,
	).Err()
	if err != nil {
		return nil, fmt.Errorf("quota: create programme: %w", err)
	}
	p.fillCounters(0, 0)
	return p, nil
}

// Programme returns a programme with its counters. ENOTFOUND.
func (s *RedisStore) Programme(ctx context.Context, id string) (*Programme, error) {
	if id == "" {
		return nil, wuyou.Errorf(wuyou.ENOTFOUND, "programme not found")
	}
	m, err := s.rdb.HGetAll(ctx, s.programmeKey(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("quota: programme: %w", err)
	}
	// A hash without created_at was never created (a stray usage counter at most).
	if m["created_at"] == "" {
		return nil, wuyou.Errorf(wuyou.ENOTFOUND, "programme %s not found", id)
	}
	return programmeFrom(id, m)
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

func programmeFrom(id string, m map[string]string) (*Programme, error) {
	bad := func(field string) error {
		return fmt.Errorf("quota: programme %s: malformed %s %q", id, field, m[field])
	}
	num := func(field string) (int64, error) {
		v := m[field]
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, bad(field)
		}
		return n, nil
	}
	tm := func(field string) (time.Time, error) {
		t, err := time.Parse(time.RFC3339Nano, m[field])
		if err != nil {
			return time.Time{}, bad(field)
		}
		return t.UTC(), nil
	}
	p := &Programme{ID: id, Name: m["name"]}
	var n [6]int64
	for i, f := range []string{"pack_seconds", "valid_days", "priority", "budget_packs", "packs_issued", "seconds_used"} {
		v, err := num(f)
		if err != nil {
			return nil, err
		}
		n[i] = v
	}
	p.PackSeconds, p.ValidDays, p.Priority, p.BudgetPacks = n[0], int(n[1]), int(n[2]), n[3]
	var err error
	if p.StartsAt, err = tm("starts_at"); err != nil {
		return nil, err
	}
	if p.EndsAt, err = tm("ends_at"); err != nil {
		return nil, err
	}
	if p.CreatedAt, err = tm("created_at"); err != nil {
		return nil, err
	}
	p.fillCounters(n[4], n[5])
	return p, nil
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

// ProgrammeExists returns nil for a known programme. ENOTFOUND.
func (s *RedisStore) ProgrammeExists(ctx context.Context, id string) error {
	_, err := s.Programme(ctx, id)
	return err
}
