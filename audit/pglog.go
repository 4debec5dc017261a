package audit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"

	"github.com/wuyou/wuyou"
)

// PGLog keeps the audit trail in PostgreSQL, table audit_records.
type PGLog struct {
	pool *pgxpool.Pool
}

// NewPGLog returns the trail over pool, whose database is migrated.
func NewPGLog(pool *pgxpool.Pool) *PGLog { return &PGLog{pool: pool} }

// Append stores r under a new id stamped with r.At (now when zero) and
// returns it as stored. Text PostgreSQL cannot keep (NUL, invalid UTF-8) is
// made safe first: a record is never refused for what a request held.
// Errors wrap the driver's.
func (l *PGLog) Append(ctx context.Context, r Record) (*Record, error) {
	if r.At.IsZero() {
		r.At = time.Now()
	}
	r.At = r.At.UTC().Truncate(time.Microsecond)
	id, err := ulid.New(ulid.Timestamp(r.At), ulid.DefaultEntropy())
	if err != nil {
		return nil, fmt.Errorf("audit: new id: %w", err)
	}
	r.ID = IDPrefix + id.String()
	clean := func(s string) string { return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "") }
	r.Actor = wuyou.Actor{Sub: clean(r.Actor.Sub), Role: clean(r.Actor.Role), CompanyID: clean(r.Actor.CompanyID)}
	r.Action, r.Resource, r.RequestID, r.Summary = clean(r.Action), clean(r.Resource), clean(r.RequestID), Summary(clean(r.Summary))
	var company *string
	if r.Actor.CompanyID != "" {
		company = &r.Actor.CompanyID
	}
	_, err = l.pool.Exec(ctx, `
INSERT INTO audit_records (id, at, actor_sub, actor_role, actor_company_id, action, resource, request_id, summary)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		r.ID, r.At, r.Actor.Sub, r.Actor.Role, company, r.Action, r.Resource, r.RequestID, r.Summary)
	if err != nil {
		return nil, fmt.Errorf("audit: append: %w", err)
	}
	return &r, nil
}

// Records returns a page of records matching f (see Filter), newest first,
// and the cursor of the next page ("" after the last). EINVALID as
// Filter.Check; other errors wrap the driver's.
func (l *PGLog) Records(ctx context.Context, f Filter) ([]Record, string, error) {
	f, err := f.Check()
	if err != nil {
		return nil, "", err
	}
	var q strings.Builder
	q.WriteString(`SELECT id, at, actor_sub, actor_role, coalesce(actor_company_id, ''), action, resource, request_id, summary
FROM audit_records WHERE true`)
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Actor != "" {
		q.WriteString(" AND actor_sub = " + arg(f.Actor))
	}
	if f.Resource != "" {
		q.WriteString(" AND resource = " + arg(f.Resource))
	}
	if f.CompanyID != "" {
		q.WriteString(" AND actor_company_id = " + arg(f.CompanyID))
	}
	if !f.From.IsZero() {
		q.WriteString(" AND at >= " + arg(f.From))
	}
	if !f.To.IsZero() {
		q.WriteString(" AND at < " + arg(f.To))
	}
	if f.Cursor != "" {
		q.WriteString(" AND id < " + arg(f.Cursor))
	}
	q.WriteString(" ORDER BY id DESC LIMIT " + arg(f.Limit+1))
	rows, err := l.pool.Query(ctx, q.String(), args...)
	if err != nil {
		return nil, "", fmt.Errorf("audit: read: %w", err)
	}
	page := make([]Record, 0, min(f.Limit+1, 64))
	var r Record
	_, err = pgx.ForEachRow(rows, []any{&r.ID, &r.At, &r.Actor.Sub, &r.Actor.Role, &r.Actor.CompanyID, &r.Action, &r.Resource, &r.RequestID, &r.Summary}, func() error {
		r.At = r.At.UTC()
		page = append(page, r)
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("audit: read: %w", err)
	}
	if len(page) <= f.Limit {
		return page, "", nil
	}
	page = page[:f.Limit]
	return page, page[len(page)-1].ID, nil
}
