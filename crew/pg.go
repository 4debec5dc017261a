package crew

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wuyou/wuyou"
)

// PGStore is the registry kept in PostgreSQL: tables companies, seafarers
// and msisdn_holdings (internal/pgschema/migrations/00003_registry.sql). It
// implements Service and answers, without adapters, what the rest of Wuyou
// asks of the registry: issuances (quota.Roster, quota.BatchRoster),
// attribution of calls (carrier.Resolver: SeafarerIDsAt), notifications
// (carrier.MSISDNs) and statements (billing.Crews).
//
// Uniqueness is the database's. A registration number, a book number and
// the current holder of an MSISDN are each one constraint, and PGStore turns
// the violation of each into an ECONFLICT naming the field. Every enrolment
// and update is one transaction: the seafarer's row is locked (FOR UPDATE)
// while it changes, so changes of one seafarer run one at a time, and of
// concurrent requests for one book number or one MSISDN exactly one wins.
// A transaction that lost a race the database can only report as a
// deadlock, a serialization failure or two overlapping periods of one
// number (a number released and taken in the same instant) is run again.
type PGStore struct {
	pool *pgxpool.Pool
	now  wuyou.Clock

	// OnMSISDNAssigned, when not nil, is called after an enrolment or an
	// MSISDN change has been committed, with the number now resolving to
	// the seafarer and the time it started to (the start of its
	// MSISDNPeriod). It runs synchronously in the request, after the
	// transaction.
	OnMSISDNAssigned func(ctx context.Context, seafarerID, msisdn string, at time.Time)
}

var _ Service = (*PGStore)(nil)

// NewPGStore returns a registry over pool, whose database is migrated. now
// stamps created_at, updated_at and the MSISDN history; it is cut to the
// microsecond, as PostgreSQL keeps times, so what a method returns is what
// was stored.
func NewPGStore(pool *pgxpool.Pool, now wuyou.Clock) *PGStore {
	return &PGStore{pool: pool, now: now}
}

func (s *PGStore) clock() time.Time { return s.now().Truncate(time.Microsecond).UTC() }

// Names of the constraints whose violation is the caller's conflict, not a
// bug (00003_registry.sql).
const (
	pgRegistrationNoKey   = "companies_registration_no_key"
	pgCompanyFK           = "seafarers_company_fkey"
	pgOneCurrentHolder    = "msisdn_holdings_one_current_holder"
	pgPeriodsDoNotOverlap = "msisdn_holdings_periods_do_not_overlap"
)

// maxTxAttempts bounds how often a transaction that lost a race is run again.
const maxTxAttempts = 4

// errRetry asks inTx to run the transaction again: what it read changed
// under it in a way no constraint reports.
var errRetry = errors.New("crew: the registry changed during the transaction")

// inTx runs fn in a transaction, again (up to maxTxAttempts in all) when it
// lost a race the database reports as a deadlock, a serialization failure
// or overlapping periods of one MSISDN: each run reads afresh, so the next
// one sees what the winner committed. Before each new run it waits a few
// milliseconds drawn at random, so two writers that collided do not
// collide again in step. The last run's error is returned; any other error
// ends it at once, and so does ctx.
func (s *PGStore) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := pgx.BeginFunc(ctx, s.pool, fn)
		if err != nil && !lostRace(err) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(&backoff.ExponentialBackOff{
		InitialInterval: 5 * time.Millisecond, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: 50 * time.Millisecond,
	}), backoff.WithMaxTries(maxTxAttempts), backoff.WithMaxElapsedTime(0))
	return err
}

func lostRace(err error) bool {
	if errors.Is(err, errRetry) {
		return true
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "40001", "40P01": // serialization_failure, deadlock_detected
		return true
	case "23P01": // exclusion_violation
		return pe.ConstraintName == pgPeriodsDoNotOverlap
	}
	return false
}

// violated returns the constraint err violates and its SQLSTATE, or "".
func violated(err error) (constraint, code string) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.ConstraintName, pe.Code
	}
	return "", ""
}

// pgText reports whether PostgreSQL can keep s as text: valid UTF-8 without
// NUL bytes. Validation refuses both in every field, and ids, cursors and
// numbers to look up that fail this name nothing, so no such value ever
// reaches the database as an error.
func pgText(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

// pgID reports whether id can name a record here.
func pgID(id string) bool { return plausibleID(id) && pgText(id) }

// checkPGDates refuses dates the contract's format allows and PostgreSQL's
// date does not: the year 0000 (there is no year 0; 1 BC follows AD 1).
func checkPGDates(fields ...string) error {
	var errs []wuyou.FieldError
	for i := 0; i+1 < len(fields); i += 2 {
		if strings.HasPrefix(fields[i+1], "0000-") {
			errs = append(errs, wuyou.FieldError{Field: fields[i], Message: "is not a real date"})
		}
	}
	return wuyou.Invalid(errs)
}

// CreateCompany validates and stores a new company. EINVALID; ECONFLICT when
// another company has the registration number.
func (s *PGStore) CreateCompany(ctx context.Context, name, registrationNo string) (*Company, error) {
	name, registrationNo, err := validCompany(name, registrationNo)
	if err != nil {
		return nil, err
	}
	c := &Company{ID: newCompanyID(), Name: name, RegistrationNo: registrationNo, CreatedAt: s.clock()}
	_, err = s.pool.Exec(ctx, `INSERT INTO companies (id, name, registration_no, created_at) VALUES ($1, $2, $3, $4)`,
		c.ID, c.Name, c.RegistrationNo, c.CreatedAt)
	if constraint, _ := violated(err); constraint == pgRegistrationNoKey {
		return nil, conflict("registration_no", "a company with registration number "+registrationNo+" already exists")
	} else if err != nil {
		return nil, fmt.Errorf("crew: create company: %w", err)
	}
	return c, nil
}

// Company returns one company. ENOTFOUND.
func (s *PGStore) Company(ctx context.Context, id string) (*Company, error) {
	if !pgID(id) {
		return nil, companyNotFound(id)
	}
	c := &Company{}
	err := s.pool.QueryRow(ctx, `SELECT id, name, registration_no, created_at FROM companies WHERE id = $1`, id).
		Scan(&c.ID, &c.Name, &c.RegistrationNo, &c.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, companyNotFound(id)
	} else if err != nil {
		return nil, fmt.Errorf("crew: company %s: %w", id, err)
	}
	c.CreatedAt = c.CreatedAt.UTC()
	return c, nil
}

func (s *PGStore) companyExists(ctx context.Context, q querier, id string) error {
	if !pgID(id) {
		return companyNotFound(id)
	}
	var ok bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT FROM companies WHERE id = $1)`, id).Scan(&ok); err != nil {
		return fmt.Errorf("crew: company %s: %w", id, err)
	}
	if !ok {
		return companyNotFound(id)
	}
	return nil
}

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// profileColumns are a seafarer's fields as seafarer_profiles gives them,
// in scanProfile's order; dates as the contract writes them, "" for none.
const profileColumns = `id, company_id, seafarer_book_no, name, nationality, msisdn, vessel_imo, vessel_name,
    coalesce(to_char(sign_on, 'YYYY-MM-DD'), ''), coalesce(to_char(sign_off, 'YYYY-MM-DD'), ''),
    union_member_no, lang, status, created_at, updated_at`

func scanProfile(row pgx.Row) (*Seafarer, error) {
	sf := &Seafarer{}
	err := row.Scan(&sf.ID, &sf.CompanyID, &sf.BookNo, &sf.Name, &sf.Nationality, &sf.MSISDN, &sf.VesselIMO,
		&sf.VesselName, &sf.SignOn, &sf.SignOff, &sf.UnionMemberNo, &sf.Lang, &sf.Status, &sf.CreatedAt, &sf.UpdatedAt)
	if err != nil {
		return nil, err
	}
	sf.CreatedAt, sf.UpdatedAt = sf.CreatedAt.UTC(), sf.UpdatedAt.UTC()
	return sf, nil
}

// Enrol creates a seafarer in the company, or updates the one with the same
// book number there (created reports which). A seafarer who had signed off is
// active again; a suspended one stays suspended. EINVALID; ENOTFOUND for an
// unknown company; ECONFLICT when the book number is enrolled in another
// company or the MSISDN belongs to another seafarer (the error's Fields name
// the field).
//
// The new seafarer's row is inserted ON CONFLICT (seafarer_book_no) DO
// NOTHING: of concurrent enrolments of one book number one inserts, the
// others wait for it to commit and then update what it stored (or insert,
// if it was refused). The MSISDN is taken by inserting its holding period,
// which msisdn_holdings_one_current_holder lets only one seafarer hold.
func (s *PGStore) Enrol(ctx context.Context, companyID string, e Enrolment) (*Seafarer, bool, error) {
	e.Normalize()
	if err := e.Validate(); err != nil {
		return nil, false, err
	}
	if err := checkPGDates("sign_on", e.SignOn, "sign_off", e.SignOff); err != nil {
		return nil, false, err
	}
	if !pgID(companyID) {
		return nil, false, companyNotFound(companyID)
	}
	var (
		sf       *Seafarer
		created  bool
		assigned time.Time // when the MSISDN started to resolve to sf; zero if it already did
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.clock()
		sf = &Seafarer{ID: newSeafarerID(), CompanyID: companyID, BookNo: e.BookNo, Lang: wuyou.DefaultLang, Status: StatusActive, CreatedAt: now, UpdatedAt: now}
		applyEnrolment(sf, e)
		tag, err := tx.Exec(ctx, `
INSERT INTO seafarers (id, company_id, seafarer_book_no, name, nationality, vessel_imo, vessel_name, sign_on, sign_off,
    union_member_no, status, created_at, updated_at, lang)
VALUES ($1, $2, $3, $4, $5, $6, $7, nullif($8, '')::date, nullif($9, '')::date, $10, $11, $12, $12, $13)
ON CONFLICT (seafarer_book_no) DO NOTHING`,
			sf.ID, sf.CompanyID, sf.BookNo, sf.Name, sf.Nationality, sf.VesselIMO, sf.VesselName, sf.SignOn, sf.SignOff,
			sf.UnionMemberNo, sf.Status, now, sf.Lang)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			created = true
			assigned, err = takeNumber(ctx, tx, sf.ID, sf.MSISDN, now)
			return err
		}

		// Enrolled before: update that seafarer, if it is this company's.
		created = false
		cur, since, err := lockSeafarer(ctx, tx, "seafarer_book_no", e.BookNo)
		if errors.Is(err, pgx.ErrNoRows) {
			return errRetry // refused and rolled back since our insert saw it
		} else if err != nil {
			return err
		}
		if cur.CompanyID != companyID {
			if err := s.companyExists(ctx, tx, companyID); err != nil {
				return err
			}
			return conflict("seafarer_book_no", "seafarer book number "+e.BookNo+" is enrolled with another company")
		}
		next := *cur
		applyEnrolment(&next, e)
		if next.Status == StatusSignedOff {
			next.Status = StatusActive
		}
		sf = &next
		assigned, err = s.write(ctx, tx, cur, sf, since)
		return err
	})
	if err != nil {
		return nil, false, s.refused("enrol", err, companyID, e.MSISDN)
	}
	s.msisdnAssigned(ctx, sf.ID, sf.MSISDN, assigned)
	return sf, created, nil
}

// refused turns what a write's transaction returned into the error the
// caller gets: domain errors as they are, the violation of a registry
// constraint as the conflict or absence it stands for, anything else
// wrapped.
func (s *PGStore) refused(op string, err error, companyID, msisdn string) error {
	var de *wuyou.Error
	if errors.As(err, &de) {
		return err
	}
	switch constraint, _ := violated(err); constraint {
	case pgOneCurrentHolder, pgPeriodsDoNotOverlap:
		return msisdnTaken(msisdn)
	case pgCompanyFK:
		return companyNotFound(companyID)
	}
	return fmt.Errorf("crew: %s: %w", op, err)
}

// lockSeafarer locks the seafarer whose column equals value (FOR UPDATE) and
// reads it, with since when it holds its current MSISDN. The read is a
// statement of its own, after the lock is granted, so it sees what a
// request that held the lock before committed. pgx.ErrNoRows when there is
// none.
func lockSeafarer(ctx context.Context, tx pgx.Tx, column, value string) (*Seafarer, time.Time, error) {
	var id string
	// column is one of two names written in this file, never input.
	if err := tx.QueryRow(ctx, `SELECT id FROM seafarers WHERE `+column+` = $1 FOR UPDATE`, value).Scan(&id); err != nil {
		return nil, time.Time{}, err
	}
	var since *time.Time
	sf := &Seafarer{}
	err := tx.QueryRow(ctx, `SELECT `+profileColumns+`, msisdn_since FROM seafarer_profiles WHERE id = $1`, id).
		Scan(&sf.ID, &sf.CompanyID, &sf.BookNo, &sf.Name, &sf.Nationality, &sf.MSISDN, &sf.VesselIMO,
			&sf.VesselName, &sf.SignOn, &sf.SignOff, &sf.UnionMemberNo, &sf.Lang, &sf.Status, &sf.CreatedAt, &sf.UpdatedAt, &since)
	if err != nil {
		return nil, time.Time{}, err
	}
	sf.CreatedAt, sf.UpdatedAt = sf.CreatedAt.UTC(), sf.UpdatedAt.UTC()
	if since == nil {
		return sf, time.Time{}, nil
	}
	return sf, since.UTC(), nil
}

// write stores next over cur (whose row tx has locked; its current MSISDN
// held since since) and, when the MSISDN changes, closes the old number's
// period and opens the new one's. It returns when the new number started to
// resolve to the seafarer, zero when the number did not change.
func (s *PGStore) write(ctx context.Context, tx pgx.Tx, cur, next *Seafarer, since time.Time) (time.Time, error) {
	if next.SignOn != "" && next.SignOff != "" && next.SignOff < next.SignOn {
		return time.Time{}, wuyou.Invalid([]wuyou.FieldError{{Field: "sign_off", Message: "must not be before sign_on (" + next.SignOn + ")"}})
	}
	now := s.clock()
	next.UpdatedAt = now
	_, err := tx.Exec(ctx, `
UPDATE seafarers SET name = $2, nationality = $3, vessel_imo = $4, vessel_name = $5, sign_on = nullif($6, '')::date,
    sign_off = nullif($7, '')::date, union_member_no = $8, status = $9, updated_at = $10, lang = $11
WHERE id = $1`,
		next.ID, next.Name, next.Nationality, next.VesselIMO, next.VesselName, next.SignOn, next.SignOff,
		next.UnionMemberNo, next.Status, now, next.Lang)
	if err != nil || next.MSISDN == cur.MSISDN {
		return time.Time{}, err
	}
	// A replica whose clock is behind the one that began the current period
	// ends it no earlier than it began.
	at := now
	if since.After(at) {
		at = since
	}
	if _, err := tx.Exec(ctx, `UPDATE msisdn_holdings SET held_to = $2 WHERE seafarer_id = $1 AND held_to IS NULL`, next.ID, at); err != nil {
		return time.Time{}, err
	}
	return takeNumber(ctx, tx, next.ID, next.MSISDN, at)
}

// takeNumber opens seafarerID's holding period of msisdn at at, or when the
// number's last period ended if that is later (a replica whose clock is
// behind the one that released the number), and returns when it begins.
// msisdn_holdings_one_current_holder refuses it while another seafarer
// holds the number.
func takeNumber(ctx context.Context, tx pgx.Tx, seafarerID, msisdn string, at time.Time) (time.Time, error) {
	var from time.Time
	err := tx.QueryRow(ctx, `
INSERT INTO msisdn_holdings (msisdn, seafarer_id, held_from)
SELECT $1, $2, greatest($3::timestamptz, max(held_to)) FROM msisdn_holdings WHERE msisdn = $1
RETURNING held_from`, msisdn, seafarerID, at).Scan(&from)
	return from.UTC(), err
}

// Seafarer returns one seafarer. ENOTFOUND.
func (s *PGStore) Seafarer(ctx context.Context, id string) (*Seafarer, error) {
	if !pgID(id) {
		return nil, seafarerNotFound(id)
	}
	sf, err := scanProfile(s.pool.QueryRow(ctx, `SELECT `+profileColumns+` FROM seafarer_profiles WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, seafarerNotFound(id)
	} else if err != nil {
		return nil, fmt.Errorf("crew: seafarer %s: %w", id, err)
	}
	return sf, nil
}

// UpdateSeafarer applies u, signing the seafarer off or on by the rules of
// signing.go. EINVALID naming the field, ENOTFOUND, ECONFLICT (MSISDN taken).
func (s *PGStore) UpdateSeafarer(ctx context.Context, id string, u SeafarerUpdate) (*Seafarer, error) {
	u.Normalize()
	if err := ValidateUpdate(u); err != nil {
		return nil, err
	}
	for _, d := range [...]struct {
		field string
		p     *string
	}{{"sign_on", u.SignOn}, {"sign_off", u.SignOff}} {
		if d.p == nil {
			continue
		}
		if err := checkPGDates(d.field, *d.p); err != nil {
			return nil, err
		}
	}
	if u == (SeafarerUpdate{}) {
		return s.Seafarer(ctx, id)
	}
	if !pgID(id) {
		return nil, seafarerNotFound(id)
	}
	var (
		sf       *Seafarer
		assigned time.Time
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		cur, since, err := lockSeafarer(ctx, tx, "id", id)
		if errors.Is(err, pgx.ErrNoRows) {
			return seafarerNotFound(id)
		} else if err != nil {
			return err
		}
		next, err := updated(*cur, u, s.clock().Format(dateLayout))
		if err != nil {
			return err
		}
		sf = &next
		assigned, err = s.write(ctx, tx, cur, sf, since)
		return err
	})
	if err != nil {
		msisdn := ""
		if u.MSISDN != nil {
			msisdn = *u.MSISDN
		}
		return nil, s.refused("update seafarer "+id, err, "", msisdn)
	}
	s.msisdnAssigned(ctx, sf.ID, sf.MSISDN, assigned)
	return sf, nil
}

func (s *PGStore) msisdnAssigned(ctx context.Context, seafarerID, msisdn string, at time.Time) {
	if s.OnMSISDNAssigned != nil && !at.IsZero() {
		s.OnMSISDNAssigned(ctx, seafarerID, msisdn, at)
	}
}

// Seafarers lists a page of a company's seafarers ordered by id, optionally
// only those on f.VesselIMO or with f.Status, and the cursor of the next page
// ("" at the end): the last id of the page. Limit defaults to 50 and is
// capped at 500. EINVALID (missing company, unknown status, a cursor that is
// not text); ENOTFOUND for an unknown company.
func (s *PGStore) Seafarers(ctx context.Context, f SeafarerFilter) ([]*Seafarer, string, error) {
	if f.CompanyID == "" {
		return nil, "", wuyou.Invalid([]wuyou.FieldError{{Field: "company_id", Message: "is required"}})
	}
	if err := checkStatusFilter(f.Status); err != nil {
		return nil, "", err
	}
	if err := s.companyExists(ctx, s.pool, f.CompanyID); err != nil {
		return nil, "", err
	}
	f.VesselIMO = NormalizeIMO(f.VesselIMO)
	f.Query = strings.TrimSpace(f.Query)
	if msg := wuyou.CheckText(f.Query, false, wuyou.MaxNameQueryRunes); msg != "" {
		return nil, "", wuyou.Invalid([]wuyou.FieldError{{Field: "q", Message: msg}})
	}
	return s.page(ctx, f)
}

// numberQuery returns the digits of q when q reads as a phone number
// (digits with an optional leading +, spaces or dashes), else "".
func numberQuery(q string) string {
	digits := make([]byte, 0, len(q))
	for i, r := range q {
		switch {
		case r >= '0' && r <= '9':
			digits = append(digits, byte(r))
		case r == '+' && i == 0, r == ' ', r == '-':
		default:
			return ""
		}
	}
	return string(digits)
}

// page reads the seafarers matching f after f.Cursor, one more than the
// limit to tell a full last page from a page with more after it. The
// conditions are written out for the filters given, so each shape of
// query gets a plan that fits it (seafarers_by_company, or
// seafarers_by_vessel for a vessel).
func (s *PGStore) page(ctx context.Context, f SeafarerFilter) ([]*Seafarer, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	if !pgText(f.Cursor) || !pgText(f.VesselIMO) {
		field := "cursor"
		if !pgText(f.VesselIMO) {
			field = "vessel_imo"
		}
		return nil, "", wuyou.Invalid([]wuyou.FieldError{{Field: field, Message: "is not valid UTF-8 text without NUL bytes"}})
	}
	var where []string
	var args []any
	cond := func(column, value string) {
		args = append(args, value)
		where = append(where, column+" = $"+strconv.Itoa(len(args)))
	}
	if f.CompanyID != "" {
		cond("company_id", f.CompanyID)
	}
	if f.VesselIMO != "" {
		cond("vessel_imo", f.VesselIMO)
	}
	if f.Status != "" {
		cond("status", f.Status)
	}
	if f.Query != "" {
		args = append(args, wuyou.NameFilter{Query: f.Query}.ContainsPattern())
		match := "name ILIKE $" + strconv.Itoa(len(args))
		if digits := numberQuery(f.Query); digits != "" {
			args = append(args, "%"+digits+"%")
			match += " OR msisdn LIKE $" + strconv.Itoa(len(args))
		}
		where = append(where, "("+match+")")
	}
	args = append(args, f.Cursor)
	where = append(where, "id > $"+strconv.Itoa(len(args)))
	args = append(args, limit+1)
	sql := `SELECT ` + profileColumns + ` FROM seafarer_profiles WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY id LIMIT $` + strconv.Itoa(len(args))

	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", fmt.Errorf("crew: list seafarers: %w", err)
	}
	items := make([]*Seafarer, 0, limit)
	for rows.Next() {
		sf, err := scanProfile(rows)
		if err != nil {
			rows.Close()
			return nil, "", fmt.Errorf("crew: list seafarers: %w", err)
		}
		items = append(items, sf)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("crew: list seafarers: %w", err)
	}
	if len(items) > limit {
		items = items[:limit]
		return items, items[limit-1].ID, nil
	}
	return items, "", nil
}

// EachSeafarer calls fn with every seafarer of f.CompanyID that matches f,
// in id order from f.Cursor on, reading f.Limit (default 500) at a time, so
// a whole crew is never held in memory. It stops at fn's first error and
// returns it. Errors as Seafarers.
func (s *PGStore) EachSeafarer(ctx context.Context, f SeafarerFilter, fn func(*Seafarer) error) error {
	if f.Limit <= 0 {
		f.Limit = MaxListLimit
	}
	return each(ctx, f, s.Seafarers, fn)
}

// VesselSeafarers calls fn with every seafarer on the vessel with IMO number
// imo, across all companies, with the given status ("" for any), in id
// order, a page at a time. It stops at fn's first error and returns it.
// EINVALID for a malformed IMO number or an unknown status.
func (s *PGStore) VesselSeafarers(ctx context.Context, imo, status string, fn func(*Seafarer) error) error {
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
	return each(ctx, SeafarerFilter{VesselIMO: imo, Status: status, Limit: MaxListLimit}, s.page, fn)
}

// SeafarerByMSISDN resolves the seafarer an MSISDN belongs to now. ENOTFOUND.
func (s *PGStore) SeafarerByMSISDN(ctx context.Context, msisdn string) (*Seafarer, error) {
	notFound := wuyou.Errorf(wuyou.ENOTFOUND, "no seafarer has MSISDN %s", msisdn)
	if !ValidMSISDN(msisdn) {
		return nil, notFound
	}
	sf, err := scanProfile(s.pool.QueryRow(ctx, `SELECT `+profileColumns+` FROM seafarer_profiles
WHERE id = (SELECT seafarer_id FROM msisdn_holdings WHERE msisdn = $1 AND held_to IS NULL)`, msisdn))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound
	} else if err != nil {
		return nil, fmt.Errorf("crew: resolve MSISDN: %w", err)
	}
	return sf, nil
}

// SeafarerIDsByMSISDN maps each MSISDN held now to its holder, in one query.
// MSISDNs that resolve to nobody (invalid ones included) are absent.
func (s *PGStore) SeafarerIDsByMSISDN(ctx context.Context, msisdns []string) (map[string]string, error) {
	valid := make([]string, 0, len(msisdns))
	for _, m := range msisdns {
		if ValidMSISDN(m) {
			valid = append(valid, m)
		}
	}
	out := make(map[string]string, len(valid))
	if len(valid) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT msisdn, seafarer_id FROM msisdn_holdings WHERE msisdn = ANY($1::text[]) AND held_to IS NULL`, valid)
	if err != nil {
		return nil, fmt.Errorf("crew: resolve MSISDNs: %w", err)
	}
	var m, id string
	_, err = pgx.ForEachRow(rows, []any{&m, &id}, func() error {
		out[m] = id
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("crew: resolve MSISDNs: %w", err)
	}
	return out, nil
}

// MSISDNHistory returns the MSISDNs a seafarer has held, oldest first; the
// last one is current. ENOTFOUND.
func (s *PGStore) MSISDNHistory(ctx context.Context, seafarerID string) ([]MSISDNPeriod, error) {
	if !pgID(seafarerID) {
		return nil, seafarerNotFound(seafarerID)
	}
	rows, err := s.pool.Query(ctx, `
SELECT msisdn, held_from, held_to FROM msisdn_holdings WHERE seafarer_id = $1 ORDER BY held_from, id`, seafarerID)
	if err != nil {
		return nil, fmt.Errorf("crew: MSISDN history of %s: %w", seafarerID, err)
	}
	var history []MSISDNPeriod
	var p MSISDNPeriod
	var to *time.Time
	_, err = pgx.ForEachRow(rows, []any{&p.MSISDN, &p.From, &to}, func() error {
		p.From, p.To = p.From.UTC(), time.Time{}
		if to != nil {
			p.To = to.UTC()
		}
		history = append(history, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("crew: MSISDN history of %s: %w", seafarerID, err)
	}
	if len(history) == 0 { // every seafarer holds a number from its enrolment on
		return nil, seafarerNotFound(seafarerID)
	}
	return history, nil
}

// seafarerIDsAtSQL attributes each (MSISDN, call time) pair, numbered by its
// place in the batch, by the rule of resolve_at.go: the holder whose period
// contains the time (the later-begun if two do), else the number's first
// holder when the time is before every period, else nobody (”). Each
// lateral lookup is a range scan of msisdn_holdings_by_msisdn.
//
// Call times go to the microsecond, cut towards the past; periods begin and
// end on whole microseconds, so the cut never moves a call across a bound.
const seafarerIDsAtSQL = `
SELECT c.n, coalesce(held.seafarer_id, first.seafarer_id, '')
FROM unnest($1::text[], $2::timestamptz[]) WITH ORDINALITY AS c(msisdn, at, n)
LEFT JOIN LATERAL (
    SELECT h.seafarer_id FROM msisdn_holdings h
    WHERE h.msisdn = c.msisdn AND h.held_from <= c.at AND (h.held_to IS NULL OR c.at < h.held_to)
    ORDER BY h.held_from DESC
    LIMIT 1) held ON true
LEFT JOIN LATERAL (
    SELECT f.seafarer_id
    FROM (SELECT h.seafarer_id, h.held_from FROM msisdn_holdings h WHERE h.msisdn = c.msisdn
          ORDER BY h.held_from, h.seafarer_id LIMIT 1) f
    WHERE c.at < f.held_from) first ON true`

// SeafarerIDsAt attributes each call to the seafarer who held its MSISDN at
// the call's time, by the rule at the top of resolve_at.go: out[i] is
// calls[i]'s seafarer id, "" for nobody (an invalid MSISDN resolves to
// nobody). The whole batch is one query.
func (s *PGStore) SeafarerIDsAt(ctx context.Context, calls []MSISDNAt) ([]string, error) {
	out := make([]string, len(calls))
	msisdns := make([]string, 0, len(calls))
	times := make([]time.Time, 0, len(calls))
	place := make([]int, 0, len(calls)) // place[k]: the call the k-th pair sent is
	for i, c := range calls {
		if ValidMSISDN(c.MSISDN) {
			msisdns, times, place = append(msisdns, c.MSISDN), append(times, c.At), append(place, i)
		}
	}
	if len(place) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, seafarerIDsAtSQL, msisdns, times)
	if err != nil {
		return nil, fmt.Errorf("crew: attribute calls: %w", err)
	}
	var n int64
	var id string
	_, err = pgx.ForEachRow(rows, []any{&n, &id}, func() error {
		if n < 1 || int(n) > len(place) {
			return fmt.Errorf("row %d of %d pairs", n, len(place))
		}
		out[place[n-1]] = id
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("crew: attribute calls: %w", err)
	}
	return out, nil
}

// SeafarerStatus returns a seafarer's status. ENOTFOUND.
func (s *PGStore) SeafarerStatus(ctx context.Context, id string) (string, error) {
	if !pgID(id) {
		return "", seafarerNotFound(id)
	}
	var status string
	err := s.pool.QueryRow(ctx, `SELECT status FROM seafarers WHERE id = $1`, id).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", seafarerNotFound(id)
	} else if err != nil {
		return "", fmt.Errorf("crew: seafarer %s: %w", id, err)
	}
	return status, nil
}

// SeafarerStatuses returns the status of each seafarer in the order given,
// "" for an unknown one, in one query (quota.BatchRoster).
func (s *PGStore) SeafarerStatuses(ctx context.Context, ids []string) ([]string, error) {
	out := make([]string, len(ids))
	asked := make([]string, 0, len(ids))
	place := make([]int, 0, len(ids))
	for i, id := range ids {
		if pgID(id) {
			asked, place = append(asked, id), append(place, i)
		}
	}
	if len(asked) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `
SELECT a.n, coalesce(s.status, '')
FROM unnest($1::text[]) WITH ORDINALITY AS a(id, n)
LEFT JOIN seafarers s ON s.id = a.id`, asked)
	if err != nil {
		return nil, fmt.Errorf("crew: seafarer statuses: %w", err)
	}
	var n int64
	var status string
	_, err = pgx.ForEachRow(rows, []any{&n, &status}, func() error {
		if n < 1 || int(n) > len(place) {
			return fmt.Errorf("row %d of %d ids", n, len(place))
		}
		out[place[n-1]] = status
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("crew: seafarer statuses: %w", err)
	}
	return out, nil
}

// SeafarerExists returns nil for an enrolled seafarer. ENOTFOUND.
func (s *PGStore) SeafarerExists(ctx context.Context, id string) error {
	_, err := s.SeafarerStatus(ctx, id)
	return err
}

// MSISDNOf returns a seafarer's current MSISDN. ENOTFOUND.
func (s *PGStore) MSISDNOf(ctx context.Context, id string) (string, error) {
	if !pgID(id) {
		return "", seafarerNotFound(id)
	}
	var msisdn string
	err := s.pool.QueryRow(ctx, `SELECT msisdn FROM seafarer_profiles WHERE id = $1`, id).Scan(&msisdn)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", seafarerNotFound(id)
	} else if err != nil {
		return "", fmt.Errorf("crew: seafarer %s: %w", id, err)
	}
	return msisdn, nil
}

// CompanyCrew calls fn with the id of every seafarer of a company, any
// status, in id order. ENOTFOUND for an unknown company.
func (s *PGStore) CompanyCrew(ctx context.Context, companyID string, fn func(seafarerID string) error) error {
	return s.EachSeafarer(ctx, SeafarerFilter{CompanyID: companyID}, func(sf *Seafarer) error { return fn(sf.ID) })
}

// VesselCrew calls fn with the id of every seafarer on a vessel, across
// companies, any status, in id order. EINVALID for a malformed IMO number.
func (s *PGStore) VesselCrew(ctx context.Context, imo string, fn func(seafarerID string) error) error {
	return s.VesselSeafarers(ctx, imo, "", func(sf *Seafarer) error { return fn(sf.ID) })
}

// companiesSQL: a page of companies after cursor $1 whose name contains
// pattern $2 ('%' for all), one more than the limit $3. The keyset is the
// primary key; a name search is served by companies_name_trgm where
// pg_trgm could be installed (00010_name_search.sql), else by a scan of the
// table, which holds one row per shipping company.
const companiesSQL = `
SELECT id, name, registration_no, created_at FROM companies
WHERE id > $1 AND name ILIKE $2
ORDER BY id LIMIT $3`

// Companies lists a page of companies whose name contains f.Query
// (case-insensitive), ordered by id (oldest first), and the cursor of the
// next page ("" at the end): the last id of the page. Limit defaults to 50
// and is capped at 500. EINVALID naming the field (cursor, q).
func (s *PGStore) Companies(ctx context.Context, f wuyou.NameFilter) ([]*Company, string, error) {
	f, err := f.Check(companyIDPrefix)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.pool.Query(ctx, companiesSQL, f.Cursor, f.ContainsPattern(), f.Limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("crew: list companies: %w", err)
	}
	items := make([]*Company, 0, f.Limit)
	c := Company{}
	_, err = pgx.ForEachRow(rows, []any{&c.ID, &c.Name, &c.RegistrationNo, &c.CreatedAt}, func() error {
		co := c
		co.CreatedAt = co.CreatedAt.UTC()
		items = append(items, &co)
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("crew: list companies: %w", err)
	}
	if len(items) > f.Limit {
		items = items[:f.Limit]
		return items, items[f.Limit-1].ID, nil
	}
	return items, "", nil
}

// SeafarerName is who a seafarer is on a statement: their name and the
// company they sail for.
type SeafarerName struct {
	Name        string `json:"name"`
	CompanyID   string `json:"company_id"`
	CompanyName string `json:"company_name"`
}

// SeafarerNames maps each known seafarer of ids to their name and company,
// in one query; unknown ids are absent.
func (s *PGStore) SeafarerNames(ctx context.Context, ids []string) (map[string]SeafarerName, error) {
	valid := make([]string, 0, len(ids))
	for _, id := range ids {
		if pgID(id) {
			valid = append(valid, id)
		}
	}
	out := make(map[string]SeafarerName, len(valid))
	if len(valid) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `
SELECT s.id, s.name, s.company_id, c.name FROM seafarers s JOIN companies c ON c.id = s.company_id
WHERE s.id = ANY($1::text[])`, valid)
	if err != nil {
		return nil, fmt.Errorf("crew: seafarers' names: %w", err)
	}
	var id string
	var n SeafarerName
	_, err = pgx.ForEachRow(rows, []any{&id, &n.Name, &n.CompanyID, &n.CompanyName}, func() error {
		out[id] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("crew: seafarers' names: %w", err)
	}
	return out, nil
}

// CompanyName returns a company's name. ENOTFOUND.
func (s *PGStore) CompanyName(ctx context.Context, id string) (string, error) {
	c, err := s.Company(ctx, id)
	if err != nil {
		return "", err
	}
	return c.Name, nil
}
