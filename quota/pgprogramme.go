package quota

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wuyou/wuyou"
)

// PGProgrammes keeps welfare programmes, their issuances and the grants the
// issuances give in PostgreSQL (tables programmes, issuances,
// issuance_targets, grants: internal/pgschema/migrations/00004_programmes.sql).
// It is the Issuer's IssuanceStore (pgissuance.go): the budget is enforced
// in the transaction that inserts a batch's grants.
type PGProgrammes struct {
	pool  *pgxpool.Pool
	now   wuyou.Clock
	usage ProgrammeUsage
	// finalActions caches FinalAction by programme id.
	finalActions sync.Map
}

// NewPGProgrammes returns the store over pool, whose database is migrated.
// usage supplies a programme's seconds_used; nil shows 0.
func NewPGProgrammes(pool *pgxpool.Pool, now wuyou.Clock, usage ProgrammeUsage) *PGProgrammes {
	return &PGProgrammes{pool: pool, now: now, usage: usage}
}

// CreateProgramme validates and stores a new programme with nothing issued.
// EINVALID.
func (s *PGProgrammes) CreateProgramme(ctx context.Context, in ProgrammeInput) (*Programme, error) {
	in.normalizeRecurring()
	if err := in.Validate(); err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond) // as PostgreSQL keeps it
	id, err := newID(programmeIDPrefix, now)
	if err != nil {
		return nil, err
	}
	p := &Programme{
		ID: id, Name: strings.TrimSpace(in.Name), Unit: storedUnit(unitOrSeconds(in.Unit)), PackSeconds: in.packAmount(), ValidDays: in.ValidDays,
		Priority: in.Priority, BudgetPacks: in.BudgetPacks,
		StartsAt: in.StartsAt.UTC().Truncate(time.Microsecond), EndsAt: in.EndsAt.UTC().Truncate(time.Microsecond),
		CreatedAt: now, Recurrence: in.Recurrence, CompanyID: in.CompanyID, VesselIMO: in.VesselIMO, All: in.All,
		NotifyAt: normalNotifyAt(in.NotifyAt), FinalAction: in.FinalAction,
	}
	rec := recurrenceColumns(p)
	_, err = s.pool.Exec(ctx, `
INSERT INTO programmes (id, name, pack_seconds, valid_days, priority, budget_packs, starts_at, ends_at, created_at,
    recurrence_every, recurrence_while, rollover_max, time_zone, audience_company_id, audience_vessel_imo, audience_all, unit,
    notify_at, final_action)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, nullif($19, ''))`,
		append(append([]any{p.ID, p.Name, p.PackSeconds, p.ValidDays, p.Priority, p.BudgetPacks, p.StartsAt, p.EndsAt, p.CreatedAt}, rec...),
			unitOrSeconds(p.Unit), p.NotifyAt, p.FinalAction)...)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.ConstraintName == "programme_audience_company_fkey" {
		return nil, wuyou.Invalid([]wuyou.FieldError{{Field: "company_id", Message: "names no company"}})
	} else if err != nil {
		return nil, pgProgrammeError("create programme", err)
	}
	p.fillCounters(0, 0)
	if p.Recurrence != nil {
		if err := s.fillRecurring(ctx, s.pool, p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Programme returns a programme with its counters: packs issued, budget
// remaining and seconds granted as PostgreSQL counts them, seconds used as
// the ProgrammeUsage says. ENOTFOUND.
func (s *PGProgrammes) Programme(ctx context.Context, id string) (*Programme, error) {
	p, err := s.programme(ctx, s.pool, id, false)
	if err != nil {
		return nil, err
	}
	if s.usage != nil {
		used, err := s.usage.SecondsUsed(ctx, id)
		if err != nil {
			return nil, err
		}
		p.SecondsUsed = used
	}
	return p, nil
}

// FinalAction is a programme's final_action for real-time sessions; ""
// when it leaves it to the tariff (or is not known). A programme's
// final_action never changes, so it is read once.
func (s *PGProgrammes) FinalAction(ctx context.Context, id string) (string, error) {
	if v, ok := s.finalActions.Load(id); ok {
		return v.(string), nil
	}
	var a *string
	err := s.pool.QueryRow(ctx, `SELECT final_action FROM programmes WHERE id = $1`, id).Scan(&a)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("quota: final action of %s: %w", id, err)
	}
	s.finalActions.Store(id, deref(a))
	return deref(a), nil
}

// ProgrammeExists returns nil for a known programme. ENOTFOUND.
func (s *PGProgrammes) ProgrammeExists(ctx context.Context, id string) error {
	_, err := s.programme(ctx, s.pool, id, false)
	return err
}

// querier is a pool or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// programme reads a programme without its usage; forUpdate locks its row
// for the rest of the transaction q. ENOTFOUND.
func (s *PGProgrammes) programme(ctx context.Context, q querier, id string, forUpdate bool) (*Programme, error) {
	if id == "" || !storableKey(id) {
		return nil, wuyou.Errorf(wuyou.ENOTFOUND, "programme not found")
	}
	sql := `SELECT unit, ` + programmeColumns + ` FROM programmes WHERE id = $1`
	if forUpdate {
		sql += " FOR UPDATE"
	}
	p, err := scanProgrammeWithUnit(q.QueryRow(ctx, sql, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, wuyou.Errorf(wuyou.ENOTFOUND, "programme %s not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("quota: programme: %w", err)
	}
	if p.Recurrence != nil {
		if err := s.fillRecurring(ctx, q, p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// pgProgrammeError turns a refused value into EINVALID (validation runs
// first, so this is a last line) and wraps anything else.
func pgProgrammeError(op string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "22") || (strings.HasPrefix(pe.Code, "23") && pe.Code != "23505")) {
		return &wuyou.Error{Code: wuyou.EINVALID, Reason: pe.ConstraintName, Message: "programme refused: " + pe.Message}
	}
	return fmt.Errorf("quota: %s: %w", op, err)
}

// programmeIDPrefix starts every programme id (a ULID follows).
const programmeIDPrefix = "pg_"

// programmesSQL: a page of programmes after cursor $1 whose name contains
// pattern $2, one more than the limit $3 (see 00010_name_search.sql for
// the index).
const programmesSQL = `
SELECT unit, ` + programmeColumns + `
FROM programmes
WHERE id > $1 AND name ILIKE $2
ORDER BY id LIMIT $3`

// Programmes lists a page of programmes whose name contains f.Query
// (case-insensitive), ordered by id (oldest first), with their counters as
// Programme gives them, and the cursor of the next page ("" at the end).
// Seconds used are the ProgrammeUsage's, one indexed query per programme of
// the page. EINVALID naming the field (cursor, q).
func (s *PGProgrammes) Programmes(ctx context.Context, f wuyou.NameFilter) ([]*Programme, string, error) {
	f, err := f.Check(programmeIDPrefix)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.pool.Query(ctx, programmesSQL, f.Cursor, f.ContainsPattern(), f.Limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("quota: list programmes: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Programme, error) { return scanProgrammeWithUnit(r) })
	if err != nil {
		return nil, "", fmt.Errorf("quota: list programmes: %w", err)
	}
	next := ""
	if len(items) > f.Limit {
		items = items[:f.Limit]
		next = items[f.Limit-1].ID
	}
	for _, item := range items {
		if item.Recurrence != nil {
			if err := s.fillRecurring(ctx, s.pool, item); err != nil {
				return nil, "", err
			}
		}
	}
	if s.usage != nil {
		for _, item := range items {
			if item.SecondsUsed, err = s.usage.SecondsUsed(ctx, item.ID); err != nil {
				return nil, "", err
			}
		}
	}
	return items, next, nil
}

// ProgrammeName returns a programme's name (statements show it). ENOTFOUND.
func (s *PGProgrammes) ProgrammeName(ctx context.Context, id string) (string, error) {
	p, err := s.programme(ctx, s.pool, id, false)
	if err != nil {
		return "", err
	}
	return p.Name, nil
}
