package quota

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cenkalti/backoff/v5"

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

// A target's outcome is OutcomeIssued, OutcomeSkipped (not active) or one of
// the failure reasons above. ProposeIssue is what the issuer asks for an
// active seafarer; the store answers OutcomeIssued or ReasonBudgetExhausted.
const (
	OutcomeIssued  = "issued"
	OutcomeSkipped = "skipped"
	ProposeIssue   = "issue"
)

// MaxFailuresShown is how many failures Issuance returns; Failures pages
// through all of them.
const MaxFailuresShown = 1000

const (
	maxIdempotencyKeyRunes = 200
	maxTargetSeafarerIDs   = 100_000
	maxSeafarerIDLen       = 100
	// issuanceBatch targets are decided in one transaction, then granted.
	issuanceBatch = 500
	// lookupWorkers and grantWorkers bound the concurrent roster look-ups
	// and AddGrant calls within one batch.
	lookupWorkers = 16
	grantWorkers  = 16
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
	// Actor is who started the issuance; its grants' ledger entries name
	// them. nil for an issuance nobody started by hand.
	Actor *wuyou.Actor `json:"actor,omitempty"`
	// NextPosition is where a run resumes: every target before it is
	// decided, its grant is in the hot state and announced.
	NextPosition int64 `json:"-"`
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
			if id == "" || len(id) > maxSeafarerIDLen || !utf8.ValidString(id) || hasControl(id) {
				add(fmt.Sprintf("seafarer_ids[%d]", i), fmt.Sprintf("must be a seafarer id of 1 to %d characters, valid UTF-8 without control characters", maxSeafarerIDLen))
				break
			}
		}
	}
	for _, f := range []struct{ field, v string }{{"company_id", t.CompanyID}, {"vessel_imo", t.VesselIMO}} {
		switch {
		case len(f.v) > maxSeafarerIDLen:
			add(f.field, fmt.Sprintf("must be at most %d characters", maxSeafarerIDLen))
		case !utf8.ValidString(f.v) || hasControl(f.v):
			add(f.field, "must be valid UTF-8 without control characters")
		}
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

// IssuanceStore is the issuer's system of record (PGProgrammes is one):
// programmes and their budgets, issuances with their targets and outcomes,
// and the grants the issuances give. Each method is one transaction.
type IssuanceStore interface {
	// Programme returns a programme. ENOTFOUND.
	Programme(ctx context.Context, id string) (*Programme, error)
	// CreateIssuance records a new issuance and its targets under its
	// programme and idempotency key: "running", or "done" when it has no
	// targets. When the key is already taken it records nothing and
	// returns the issuance recorded under it with created false, or
	// ECONFLICT when that one was asked with another body. ENOTFOUND for
	// an unknown programme.
	CreateIssuance(ctx context.Context, in NewIssuance) (iss *Issuance, created bool, err error)
	// IssuanceByKey returns the issuance recorded under a programme's
	// idempotency key, nil when there is none, or ECONFLICT when it was
	// recorded for another body.
	IssuanceByKey(ctx context.Context, programmeID, key, bodyHash string) (*Issuance, error)
	// Issuance returns an issuance with its first MaxFailuresShown
	// failures and NextPosition. ENOTFOUND.
	Issuance(ctx context.Context, id string) (*Issuance, error)
	// Failures returns up to limit failures from offset, in target order.
	// ENOTFOUND.
	Failures(ctx context.Context, id string, offset, limit int) ([]IssuanceFailure, error)
	// Targets returns up to n target seafarer ids from position from.
	Targets(ctx context.Context, id string, from int64, n int) ([]string, error)
	// DecideBatch decides the batch's targets that have no outcome yet —
	// at most as many issued as the programme's budget has left, the rest
	// of those proposed ReasonBudgetExhausted — and inserts their grants,
	// counters and outcomes at once; targets already decided keep their
	// outcome and change nothing. It records Start as the issuance's
	// progress when larger. ENOTFOUND.
	DecideBatch(ctx context.Context, b IssuanceBatch) (*DecidedBatch, error)
	// FinishIssuance marks a running issuance done once every target is
	// decided; nil when it already is done.
	FinishIssuance(ctx context.Context, id string, at time.Time) error
	// RunningIssuances lists the ids of issuances not done.
	RunningIssuances(ctx context.Context) ([]string, error)
}

// HotGrants is where the metering draws from: the hot copy of each grant
// with its remaining seconds (RedisStore). AddGrant adds a grant once and
// returns its ledger entry, the one written when it was first added.
type HotGrants interface {
	AddGrant(ctx context.Context, in GrantInput) (added bool, entry *LedgerEntry, err error)
}

// NewIssuance is an issuance to record (IssuanceStore.CreateIssuance).
type NewIssuance struct {
	ID, ProgrammeID, IdempotencyKey string
	BodyHash                        string // IssuanceTarget.bodyHash of the request
	Target                          IssuanceTarget
	SeafarerIDs                     []string // resolved targets, each once, in order
	EffectiveAt, CreatedAt          time.Time
	Actor                           *wuyou.Actor // who started it (wuyou.ActorFrom the request), or nil
}

// IssuanceBatch is a run of an issuance's targets to decide: those at
// positions Start … Start+len(SeafarerIDs)-1, and what the roster says of
// each (ProposeIssue, OutcomeSkipped or ReasonSeafarerNotFound).
type IssuanceBatch struct {
	IssuanceID  string
	Start       int64
	SeafarerIDs []string
	Proposals   []string
	At          time.Time
}

// DecidedBatch is the outcome of IssuanceBatch. When Done the issuance was
// already done and nothing was decided.
type DecidedBatch struct {
	Done     bool
	Outcomes []string // per target, in order
	// Grants are the grants of every target of the batch decided
	// OutcomeIssued, by this call or an earlier one, except those voided
	// since: what the hot state must hold. Each carries the IssuedAt of its
	// row, which the issuer hands to the hot state unchanged, so Redis
	// breaks ties in the drawing order as PostgreSQL does (however late or
	// on whichever replica the hot step runs).
	Grants []GrantInput
}

// Issuer gives a programme's packs to seafarers in bulk.
//
// Delivery guarantee: each target is decided once per issuance in the
// system of record (IssuanceStore.DecideBatch: outcome, budget, counters and
// the grant row in one transaction, the budget taken in turns), then the
// grants of the batch are put in the hot state (HotGrants.AddGrant,
// idempotent by IssuanceGrantID) and announced (Publisher). Only then does
// the issuance's progress move past the batch (with the next batch's
// decision, or when it finishes). A crash between the commit and the hot
// step leaves grants that Redis lacks behind the progress mark; the next Run
// (Resume on start, or a replay of the request) decides the batch again,
// which returns the stored outcomes and grants and reserves nothing, and
// repeats the hot step. So every pack is granted once, never beyond the
// budget, and announced at least once. Runs of one issuance may overlap (a
// replica resuming while another still runs): they only repeat each
// other's idempotent work.
type Issuer struct {
	store  IssuanceStore
	hot    HotGrants
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

	// afterDecide, when set (tests), runs between the decision and the hot
	// step of each batch; an error from it ends the run there, like a crash.
	afterDecide func(issuanceID string, batchStart int64) error
}

// NewIssuer returns an issuer that records issuances in store, puts grants
// in hot and looks seafarers up in roster.
func NewIssuer(store IssuanceStore, hot HotGrants, roster Roster, now wuyou.Clock) *Issuer {
	bg, cancel := context.WithCancel(context.Background())
	return &Issuer{
		store: store, hot: hot, roster: roster, now: now,
		active: map[string]bool{}, stop: make(chan struct{}), bg: bg, cancelBG: cancel,
	}
}

func (i *Issuer) log() *slog.Logger {
	if i.Log != nil {
		return i.Log
	}
	return slog.Default()
}

// Start validates the request, resolves the target into a list of seafarer
// ids (deduplicated: one pack per seafarer per issuance) and records the
// issuance with it as running; it issues nothing (see Run).
//
// The idempotency key is scoped to the programme. The same key with the same
// body (target and effective_at, compared as a SHA-256 of their canonical
// JSON) returns the issuance recorded first with created=false; with another
// body it is ECONFLICT. EINVALID for a missing, over-long or unprintable
// key, a bad target, or an effective_at so early that the packs would
// already have expired or more than 3660 days ahead. ENOTFOUND for an
// unknown programme, and for an unknown company when the roster reports one
// (a company or vessel without crew gives an issuance of total 0, done at
// once).
func (i *Issuer) Start(ctx context.Context, programmeID, idempotencyKey string, t IssuanceTarget) (iss *Issuance, created bool, err error) {
	t.Normalize()
	var errs []wuyou.FieldError
	switch {
	case idempotencyKey == "":
		errs = append(errs, wuyou.FieldError{Field: "Idempotency-Key", Message: "is required"})
	case !utf8.ValidString(idempotencyKey) || hasControl(idempotencyKey):
		errs = append(errs, wuyou.FieldError{Field: "Idempotency-Key", Message: "must be valid UTF-8 without control characters"})
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
	if prog.Recurrence != nil {
		return nil, false, errRecurringIssuance(programmeID)
	}
	// A replay needs no walk of the roster.
	if iss, err := i.store.IssuanceByKey(ctx, programmeID, idempotencyKey, body); iss != nil || err != nil {
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
	return i.store.CreateIssuance(ctx, NewIssuance{
		ID: id, ProgrammeID: programmeID, IdempotencyKey: idempotencyKey, BodyHash: body, Target: t,
		SeafarerIDs: ids, EffectiveAt: effective, CreatedAt: now, Actor: wuyou.ActorFrom(ctx),
	})
}

// Issuance returns an issuance's progress and its first MaxFailuresShown
// failures. ENOTFOUND.
func (i *Issuer) Issuance(ctx context.Context, issuanceID string) (*Issuance, error) {
	return i.store.Issuance(ctx, issuanceID)
}

// Failures returns up to limit failures of an issuance from offset, in
// target order. ENOTFOUND.
func (i *Issuer) Failures(ctx context.Context, issuanceID string, offset, limit int) ([]IssuanceFailure, error) {
	return i.store.Failures(ctx, issuanceID, offset, limit)
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

// Run processes a started issuance to the end, a batch at a time, from
// where its runs got to. It is safe to call again after a crash or an
// error, and concurrently with itself for the same issuance: it never
// issues a seafarer two packs nor takes budget twice (see Issuer). It stops
// at a batch boundary when the issuer is closing (EUNAVAILABLE) and with
// ctx. ENOTFOUND.
func (i *Issuer) Run(ctx context.Context, issuanceID string) error {
	iss, err := i.store.Issuance(ctx, issuanceID)
	if err != nil {
		return err
	}
	if iss.Status == IssuanceDone {
		return nil
	}
	for next := iss.NextPosition; next < iss.Total; {
		if i.stopping() {
			return errShuttingDown(issuanceID)
		}
		ids, err := i.store.Targets(ctx, issuanceID, next, issuanceBatch)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return fmt.Errorf("quota: issuance %s: target list ends at %d of %d", issuanceID, next, iss.Total)
		}
		dec, err := i.decide(ctx, issuanceID, next, ids)
		if err != nil {
			return err
		}
		if dec.Done { // another run finished it
			return nil
		}
		if i.afterDecide != nil {
			if err := i.afterDecide(issuanceID, next); err != nil {
				return err
			}
		}
		added, err := i.addHot(ctx, issuanceID, dec.Grants)
		if err != nil {
			return err
		}
		for _, g := range added {
			if g.Entry != nil && iss.Actor != nil {
				actor := *iss.Actor
				g.Entry.Actor = &actor // whoever started it, however late this run is
			}
		}
		if i.Publisher != nil && len(added) > 0 {
			if err := i.Publisher.PublishGrants(ctx, added); err != nil {
				return fmt.Errorf("quota: issuance %s: publish grants: %w", issuanceID, err)
			}
		}
		next += int64(len(ids))
	}
	return i.store.FinishIssuance(ctx, issuanceID, i.now())
}

// decide looks the batch up in the roster and has the store decide it.
func (i *Issuer) decide(ctx context.Context, issuanceID string, batchStart int64, ids []string) (*DecidedBatch, error) {
	statuses, err := i.statuses(ctx, ids)
	if err != nil {
		return nil, err
	}
	proposals := make([]string, len(ids))
	for j := range ids {
		switch statuses[j] {
		case "":
			proposals[j] = ReasonSeafarerNotFound
		case crew.StatusActive: // the one roster status that receives packs
			proposals[j] = ProposeIssue
		default:
			proposals[j] = OutcomeSkipped
		}
	}
	dec, err := i.store.DecideBatch(ctx, IssuanceBatch{IssuanceID: issuanceID, Start: batchStart, SeafarerIDs: ids, Proposals: proposals, At: i.now()})
	if err != nil {
		return nil, err
	}
	if !dec.Done && len(dec.Outcomes) != len(ids) {
		return nil, fmt.Errorf("quota: decide issuance batch: %d outcomes for %d seafarers", len(dec.Outcomes), len(ids))
	}
	return dec, nil
}

// addHot is the hot step: every grant of the batch into the hot state
// (those a previous run added are left as they are). It returns them all
// with their ledger entries.
func (i *Issuer) addHot(ctx context.Context, issuanceID string, grants []GrantInput) ([]IssuedGrant, error) {
	out := make([]IssuedGrant, len(grants))
	err := fanout.Each(ctx, len(grants), grantWorkers, func(ctx context.Context, j int) error {
		_, entry, err := i.hot.AddGrant(ctx, grants[j])
		if err != nil {
			return fmt.Errorf("quota: issuance %s: grant to %s: %w", issuanceID, grants[j].SeafarerID, err)
		}
		out[j] = IssuedGrant{Grant: grants[j], Entry: entry}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Resume runs every issuance still "running" (after a restart), one after
// another, and returns when they are done, the issuer is closing or ctx ends.
// Running them again repeats the hot step of batches whose grants were
// committed but perhaps never reached Redis (see Issuer). Issuances this
// process already runs are left to that run. Errors of single issuances are
// logged and do not stop the others; it returns only a failure to list them.
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

	ids, err := i.store.RunningIssuances(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if i.stopping() || ctx.Err() != nil {
			return nil
		}
		if !i.claim(id) {
			continue
		}
		err := i.Run(ctx, id)
		i.release(id)
		if err != nil && !i.stopping() && ctx.Err() == nil {
			i.log().Error("issuance: resume failed", "issuance", id, "err", err)
		}
	}
	return nil
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
		// The waits between runs end at once when Close stops background
		// runs; a run itself stops at its next batch boundary.
		waits, cancel := context.WithCancel(i.bg)
		defer cancel()
		go func() {
			select {
			case <-i.stop:
				cancel()
			case <-waits.Done():
			}
		}()
		attempt := 0
		_, err := backoff.Retry(waits, func() (struct{}, error) {
			attempt++
			err := i.Run(i.bg, issuanceID)
			if err != nil && (i.stopping() || i.bg.Err() != nil || !transient(err)) {
				return struct{}{}, backoff.Permanent(err)
			}
			return struct{}{}, err
		}, backoff.WithBackOff(backgroundRetryWaits()), backoff.WithMaxTries(backgroundAttempts), backoff.WithMaxElapsedTime(0),
			backoff.WithNotify(func(err error, next time.Duration) {
				i.log().Warn("issuance: run failed; retrying", "issuance", issuanceID, "attempt", attempt, "err", err, "backoff", next.String())
			}))
		if err != nil && !i.stopping() && i.bg.Err() == nil {
			i.log().Error("issuance: giving up until the next start", "issuance", issuanceID, "attempts", attempt, "err", err)
		}
	}()
}

// backgroundRetryWaits are the waits between background runs of an
// issuance that failed: from backgroundBackoff, doubling, each drawn within
// ±50% of its step so replicas resuming issuances after the same outage do
// not retry in step.
func backgroundRetryWaits() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{
		InitialInterval:     backgroundBackoff,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         time.Minute,
	}
}

// transient reports whether a failed run may succeed when tried again: a
// dependency out of reach (EUNAVAILABLE) or an unexpected driver error, not
// an issuance that is missing or that a rule refuses.
func transient(err error) bool {
	switch wuyou.ErrorCode(err) {
	case wuyou.EUNAVAILABLE, wuyou.EINTERNAL:
		return true
	}
	return false
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
