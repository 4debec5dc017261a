package quota

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/internal/redistest"
)

// propertyT0 anchors the property tests' times. Grants start and end on a
// 3-hour grid after it, so equal expiries (and equal priorities) are common
// and the issued-order tie-break is exercised; calls land on the grid or one
// second either side of it, so effective and expiry boundaries are hit.
var propertyT0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

const propertyGrid = 3 * time.Hour

// meterHarness drives one seafarer's balance in the Redis store and in the
// model with the same operations.
type meterHarness struct {
	ctx      context.Context
	store    *RedisStore
	seafarer string
	now      time.Time
	model    *meterModel

	identities []meterIdentity         // every identity sent so far, in order
	first      map[meterIdentity]Usage // what each identity was first sent with
	grantIDs   []string                // every grant added so far, in order
	nextGrant  int
	nextEvent  int

	// The system of record, as the consumer and the issuer keep it:
	// entries the store returned are recorded now and then (the "record"
	// action), so repeats are seen both while their record is pending and
	// after it was recorded.
	ledger   *PGLedger
	unstored []SeafarerEntry
	stored   map[string]bool // entry ids recorded
}

// returned notes an entry the store returned, to record later.
func (h *meterHarness) returned(e *LedgerEntry) {
	if e != nil {
		h.unstored = append(h.unstored, SeafarerEntry{SeafarerID: h.seafarer, Entry: e})
	}
}

// record stores the entries returned so far and forgets their pending
// records: the end of a batch in the consumer.
func (h *meterHarness) record(t require.TestingT) {
	require.NoError(t, h.ledger.Append(h.ctx, h.unstored))
	require.NoError(t, h.store.Recorded(h.ctx, h.unstored))
	for _, e := range h.unstored {
		h.stored[e.Entry.ID] = true
	}
	h.unstored = nil
}

type meterIdentity struct{ Source, EventID string }

func (id meterIdentity) key() string { return id.Source + "\x00" + id.EventID }

var propertySources = []string{"urn:carrier:cmcc:roaming", "urn:carrier:cmcc:maritime"}

func newMeterHarness(rdb redis.UniversalClient, prefix string, ledger *PGLedger, seafarer string) *meterHarness {
	h := &meterHarness{ctx: context.Background(), seafarer: seafarer, now: propertyT0.Add(24 * time.Hour), model: newMeterModel(),
		first: map[meterIdentity]Usage{}, ledger: ledger, stored: map[string]bool{}}
	// The windows are longer than any sequence's span, so nothing is
	// forgotten or trimmed while the model remembers it.
	h.store = NewRedisStore(rdb, prefix, func() time.Time { return h.now }, Options{DedupeWindow: 90 * 24 * time.Hour})
	return h
}

// TestMeteringFollowsTheRulesForAnySequenceOfGrantsCallsAndVoids checks the
// Redis store against the model after every step of random sequences of
// grants, calls (late, early, repeated), batches and voids, and at the end
// checks PRODUCT.md's invariants on what the store alone exposes.
func TestMeteringFollowsTheRulesForAnySequenceOfGrantsCallsAndVoids(t *testing.T) {
	rdb, prefix := redistest.MustClient(t)
	ledger, _ := MustPGLedger(t)
	var runs atomic.Int64
	actions := []string{
		"grant", "grant", "grant", "regrant",
		"debit", "debit", "debit", "debit", "debit", "duplicate", "duplicate",
		"batch", "void", "void-unknown", "tick", "tick", "tick", "record",
	}
	rapid.Check(t, func(rt *rapid.T) {
		h := newMeterHarness(rdb, prefix, ledger, fmt.Sprintf("prop-%d", runs.Add(1)))
		steps := rapid.IntRange(1, 60).Draw(rt, "steps")
		for range steps {
			switch rapid.SampledFrom(actions).Draw(rt, "action") {
			case "grant":
				h.addGrant(rt, h.newGrantID(rt))
			case "regrant":
				if len(h.grantIDs) == 0 {
					h.addGrant(rt, h.newGrantID(rt))
					continue
				}
				h.addGrant(rt, rapid.SampledFrom(h.grantIDs).Draw(rt, "existing grant"))
			case "debit":
				h.debit(rt, h.newIdentity(rt))
			case "duplicate":
				if len(h.identities) == 0 {
					h.debit(rt, h.newIdentity(rt))
					continue
				}
				h.debit(rt, rapid.SampledFrom(h.identities).Draw(rt, "earlier identity"))
			case "batch":
				h.debitBatch(rt)
			case "void":
				if len(h.grantIDs) == 0 {
					continue
				}
				h.void(rt, rapid.SampledFrom(h.grantIDs).Draw(rt, "grant to void"))
			case "void-unknown":
				h.void(rt, "gr_never_issued")
			case "tick":
				h.now = h.now.Add(rapid.SampledFrom([]time.Duration{time.Millisecond, time.Second, time.Hour, propertyGrid, 6 * time.Hour}).Draw(rt, "tick"))
			case "record":
				h.record(rt)
			}
			h.requireStoreMatchesModel(rt)
		}
		h.record(rt)
		requireLedgerExplainsEveryBalance(rt, h.store, h.ledger, h.seafarer, rapid.IntRange(1, 12).Draw(rt, "page size"))
		entries := readWholeLedger(rt, h.ledger, h.seafarer, 500)
		require.Len(rt, entries, h.model.ledgerEntries, "one ledger entry per grant added, call applied and grant voided")
	})
}

func (h *meterHarness) newGrantID(t *rapid.T) string {
	h.nextGrant++
	// A random letter makes id order differ from issue order.
	return fmt.Sprintf("gr_%c%d", 'a'+rapid.IntRange(0, 5).Draw(t, "grant id letter"), h.nextGrant)
}

func (h *meterHarness) newIdentity(t *rapid.T) meterIdentity {
	h.nextEvent++
	// Identities are claimed across seafarers: each harness has its own.
	return meterIdentity{Source: rapid.SampledFrom(propertySources).Draw(t, "source"), EventID: fmt.Sprintf("cdr-%s-%d", h.seafarer, h.nextEvent)}
}

func (h *meterHarness) addGrant(t *rapid.T, id string) {
	eff := propertyT0.Add(time.Duration(rapid.IntRange(0, 16).Draw(t, "effective slot")) * propertyGrid)
	exp := eff.Add(time.Duration(rapid.IntRange(1, 8).Draw(t, "validity slots")) * propertyGrid)
	in := GrantInput{
		ID: id, SeafarerID: h.seafarer,
		ProgrammeID: rapid.SampledFrom([]string{"pr_A", "pr_B", ""}).Draw(t, "programme"),
		Seconds:     rapid.Int64Range(1, 40).Draw(t, "half minutes") * 30,
		EffectiveAt: eff, ExpiresAt: exp, Priority: rapid.IntRange(0, 3).Draw(t, "priority"),
	}
	added, entry, err := h.store.AddGrant(h.ctx, in)
	require.NoError(t, err)
	wantAdded := h.model.addGrant(modelGrant{
		ID: id, ProgrammeID: in.ProgrammeID, Granted: in.Seconds, Effective: eff.Unix(), Expires: exp.Unix(),
		Priority: in.Priority, IssuedMs: h.now.UnixMilli(),
	})
	require.Equal(t, wantAdded, added, "grant %s added", id)
	h.returned(entry)
	if added {
		h.grantIDs = append(h.grantIDs, id)
		require.Equal(t, "g_"+id, entry.ID)
		require.Equal(t, KindGrant, entry.Kind)
		require.Equal(t, in.Seconds, entry.Seconds)
	}
}

// usageFor draws a call for id: its call time on the grid (±1s), up to one
// grid slot ahead of now; billable a whole number of minutes, maybe 0. An
// identity sent before is mostly sent again as it was (a redelivery), and
// sometimes with other content (a conflicting duplicate).
func (h *meterHarness) usageFor(t *rapid.T, id meterIdentity) Usage {
	if u, ok := h.first[id]; ok && rapid.IntRange(0, 3).Draw(t, "redelivered as sent") > 0 {
		return u
	}
	slots := int(h.now.Sub(propertyT0)/propertyGrid) + 1
	callTime := propertyT0.Add(time.Duration(rapid.IntRange(0, slots).Draw(t, "call slot"))*propertyGrid +
		time.Duration(rapid.IntRange(-1, 1).Draw(t, "call jitter"))*time.Second)
	billable := rapid.Int64Range(0, 20).Draw(t, "billable minutes") * 60
	return Usage{
		SeafarerID: h.seafarer, MSISDN: "+8613800000001", Source: id.Source, EventID: id.EventID,
		Type: "carrier.usage.voice", CallTime: callTime, DurationSeconds: max(billable-7, 0), BillableSeconds: billable,
		CalledNumber: "+861012345678", VisitedCountry: "SG",
		OveragePrice: billing.Money{Minor: rapid.Int64Range(0, 300).Draw(t, "price"), Currency: rapid.SampledFrom([]string{"CNY", "USD"}).Draw(t, "currency")},
		Increment:    rapid.SampledFrom([]int64{0, 6, 30, 60}).Draw(t, "increment"),
	}
}

func (h *meterHarness) debit(t *rapid.T, id meterIdentity) {
	u := h.usageFor(t, id)
	got, err := h.store.Debit(h.ctx, u)
	require.NoError(t, err)
	h.returned(got.Entry)
	h.identities = append(h.identities, id)
	h.requireDebitMatchesModel(t, id, u, got)
}

// debitBatch sends a batch mixing new identities, earlier ones and
// identities repeated within the batch itself.
func (h *meterHarness) debitBatch(t *rapid.T) {
	n := rapid.IntRange(1, 6).Draw(t, "batch size")
	ids := make([]meterIdentity, n)
	us := make([]Usage, n)
	for i := range ids {
		switch {
		case i > 0 && rapid.IntRange(0, 3).Draw(t, "repeat within batch") == 0:
			ids[i] = ids[rapid.IntRange(0, i-1).Draw(t, "batch identity")]
		case len(h.identities) > 0 && rapid.IntRange(0, 3).Draw(t, "repeat earlier") == 0:
			ids[i] = rapid.SampledFrom(h.identities).Draw(t, "earlier identity")
		default:
			ids[i] = h.newIdentity(t)
		}
		us[i] = h.usageFor(t, ids[i])
	}
	got, err := h.store.DebitBatch(h.ctx, us)
	require.NoError(t, err)
	require.Len(t, got, n)
	for i := range us {
		h.identities = append(h.identities, ids[i])
		h.returned(got[i].Entry)
		h.requireDebitMatchesModel(t, ids[i], us[i], got[i])
	}
}

func (h *meterHarness) requireDebitMatchesModel(t *rapid.T, id meterIdentity, u Usage, got *DebitResult) {
	require.NoError(t, got.Err)
	if f, ok := h.first[id]; ok && f.fingerprint() != u.fingerprint() {
		require.True(t, got.Conflicting, "event %s sent again with other content conflicts", id.EventID)
		require.Nil(t, got.Entry, "a conflicting duplicate changes nothing")
		return
	} else if !ok {
		h.first[id] = u
	}
	require.False(t, got.Conflicting, "event %s", id.EventID)
	want, duplicate := h.model.debit(id.key(), u.CallTime.Unix(), u.BillableSeconds, u.OveragePrice.Minor, u.Increment, u.OveragePrice.Currency)
	require.Equal(t, duplicate, got.Duplicate, "event %s duplicate", id.EventID)
	if duplicate && h.stored[DebitEntryID(id.Source, id.EventID)] {
		// Its entry is recorded and published: a repeat has nothing to finish.
		require.Nil(t, got.Entry, "a repeat of %s, recorded already", id.EventID)
	} else {
		requireDebitEntry(t, id, want, got.Entry)
	}
	if !duplicate {
		remaining, granted := h.model.remainingAt(h.now.Unix())
		require.Equal(t, remaining, got.RemainingNow, "remaining now after %s", id.EventID)
		require.Equal(t, granted, got.GrantedNow, "granted now after %s", id.EventID)
	}
}

// requireDebitEntry requires e to be the ledger entry of the first
// application of id, as the model computed it.
func requireDebitEntry(t require.TestingT, id meterIdentity, want *modelDebit, e *LedgerEntry) {
	require.NotNil(t, e, "entry of %s", id.EventID)
	require.Equal(t, DebitEntryID(id.Source, id.EventID), e.ID)
	require.Equal(t, KindDebit, e.Kind)
	require.Equal(t, id.Source, e.Source)
	require.Equal(t, id.EventID, e.EventID)
	require.NotNil(t, e.CallTime)
	require.Equal(t, want.CallTime, e.CallTime.Unix(), "call time of %s", id.EventID)
	require.Equal(t, want.Billable, e.BillableSeconds, "billable of %s", id.EventID)
	require.Equal(t, want.Covered, e.CoveredSeconds, "covered of %s", id.EventID)
	require.Equal(t, want.Overage, e.OverageSeconds, "overage of %s", id.EventID)
	require.Equal(t, billing.Money{Minor: want.OverageMinor, Currency: want.PriceCurrency}, e.OverageAmount, "overage amount of %s", id.EventID)
	require.Equal(t, want.Draws, e.Draws, "draws of %s", id.EventID)
}

func (h *meterHarness) void(t *rapid.T, grantID string) {
	entry, err := h.store.VoidGrant(h.ctx, h.seafarer, grantID)
	removed, code := h.model.void(grantID)
	require.Equal(t, code, wuyou.ErrorCode(err), "voiding %s: %v", grantID, err)
	if code != "" {
		return
	}
	h.returned(entry)
	require.Equal(t, "v_"+grantID, entry.ID)
	require.Equal(t, KindVoid, entry.Kind)
	require.Equal(t, removed, entry.Seconds, "seconds removed by voiding %s", grantID)
}

// requireStoreMatchesModel compares every grant and the balance now.
func (h *meterHarness) requireStoreMatchesModel(t *rapid.T) {
	now := h.now.Unix()
	a, err := h.store.Allowance(h.ctx, h.seafarer)
	require.NoError(t, err)
	order := h.model.drawingOrder()
	require.Len(t, a.Grants, len(order))
	for i, g := range a.Grants {
		w := order[i]
		require.Equal(t, w.ID, g.ID, "grant %d in drawing order", i)
		require.Equal(t, w.Remaining, g.RemainingSeconds, "remaining of %s", g.ID)
		require.Equal(t, w.Granted, g.GrantedSeconds, "granted of %s", g.ID)
		require.Equal(t, w.ProgrammeID, g.ProgrammeID, "programme of %s", g.ID)
		require.Equal(t, w.statusAt(now), g.Status, "status of %s", g.ID)
		require.Equal(t, w.IssuedMs, g.IssuedAt.UnixMilli(), "issued at of %s", g.ID)
	}
	remaining, _ := h.model.remainingAt(now)
	require.Equal(t, remaining, a.RemainingSeconds, "allowance remaining now")
	require.Equal(t, remaining/60, a.RemainingMinutes)
	billable, overage := h.model.usageIn(billing.PeriodOf(h.now))
	require.Equal(t, billable, a.UsedSeconds, "used seconds this period")
	require.Equal(t, overage, a.OverageSeconds, "overage seconds this period")
}

// readWholeLedger follows the cursor through every page of a seafarer's
// ledger, requiring newest-first order across pages.
func readWholeLedger(t require.TestingT, s *PGLedger, seafarerID string, limit int) []*LedgerEntry {
	var all []*LedgerEntry
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10000, "ledger paging does not end")
		page, next, err := s.Ledger(context.Background(), seafarerID, LedgerFilter{Limit: limit, Cursor: cursor})
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), limit)
		all = append(all, page...)
		if next == "" {
			break
		}
		require.NotEmpty(t, page, "a page with a next cursor has entries")
		cursor = next
	}
	for i := 1; i < len(all); i++ {
		require.LessOrEqual(t, ledgerTime(all[i]).Unix(), ledgerTime(all[i-1]).Unix(), "ledger newest first at %d", i)
	}
	return all
}

// requireLedgerExplainsEveryBalance checks PRODUCT.md's invariants on what
// the store exposes, without the model: remaining never below zero;
// billable = covered + overage for every call; the calls never cover more
// than was granted; grants − draws − voids = remaining; the allowance counts
// the grants active now; every ledger entry is unique.
func requireLedgerExplainsEveryBalance(t require.TestingT, s *RedisStore, l *PGLedger, seafarerID string, pageSize int) {
	ctx := context.Background()
	entries := readWholeLedger(t, l, seafarerID, pageSize)
	seen := map[string]bool{}
	var granted, covered, drawn, voided int64
	for _, e := range entries {
		require.False(t, seen[e.ID], "ledger entry %s listed twice", e.ID)
		seen[e.ID] = true
		switch e.Kind {
		case KindGrant:
			granted += e.Seconds
		case KindVoid:
			require.GreaterOrEqual(t, e.Seconds, int64(0))
			voided += e.Seconds
		case KindDebit:
			require.Equal(t, e.BillableSeconds, e.CoveredSeconds+e.OverageSeconds, "billable = covered + overage for %s", e.ID)
			require.GreaterOrEqual(t, e.OverageSeconds, int64(0))
			var sum int64
			for _, d := range e.Draws {
				require.Positive(t, d.Seconds, "draw of %s from %s", e.ID, d.GrantID)
				sum += d.Seconds
			}
			require.Equal(t, e.CoveredSeconds, sum, "draws of %s add up to covered", e.ID)
			covered += e.CoveredSeconds
			drawn += sum
		default:
			require.Failf(t, "unknown ledger kind", "%s: %q", e.ID, e.Kind)
		}
	}
	require.LessOrEqual(t, covered, granted, "calls never cover more than was granted")

	grants, err := s.Grants(ctx, seafarerID)
	require.NoError(t, err)
	var remaining, remainingNow, grantedTotal int64
	now := s.now()
	for _, g := range grants {
		require.GreaterOrEqual(t, g.RemainingSeconds, int64(0), "remaining of %s", g.ID)
		require.LessOrEqual(t, g.RemainingSeconds, g.GrantedSeconds, "remaining of %s", g.ID)
		remaining += g.RemainingSeconds
		grantedTotal += g.GrantedSeconds
		if !g.Voided && !now.Before(g.EffectiveAt) && now.Before(g.ExpiresAt) {
			remainingNow += g.RemainingSeconds
		}
	}
	require.Equal(t, grantedTotal, granted, "one grant entry per grant")
	require.Equal(t, remaining, granted-drawn-voided, "grants − draws − voids = remaining")

	a, err := s.Allowance(ctx, seafarerID)
	require.NoError(t, err)
	require.Equal(t, remainingNow, a.RemainingSeconds, "allowance counts the grants active now")
	byID, err := s.RemainingNow(ctx, []string{seafarerID})
	require.NoError(t, err)
	require.Equal(t, remainingNow, byID[seafarerID])
}

// TestDebitBatchAppliesAnIdentityRepeatedWithinTheBatchOnce: however often
// one event appears in a batch, it is applied once and every repeat returns
// the first application's entry.
func TestDebitBatchAppliesAnIdentityRepeatedWithinTheBatchOnce(t *testing.T) {
	rdb, prefix := redistest.MustClient(t)
	ledger, _ := MustPGLedger(t)
	var runs atomic.Int64
	rapid.Check(t, func(rt *rapid.T) {
		h := newMeterHarness(rdb, prefix, ledger, fmt.Sprintf("batch-%d", runs.Add(1)))
		for range rapid.IntRange(0, 3).Draw(rt, "grants") {
			h.addGrant(rt, h.newGrantID(rt))
		}
		distinct := make([]meterIdentity, rapid.IntRange(1, 4).Draw(rt, "distinct events"))
		for i := range distinct {
			distinct[i] = h.newIdentity(rt)
		}
		n := rapid.IntRange(len(distinct)+1, 3*len(distinct)+1).Draw(rt, "batch size")
		us := make([]Usage, n)
		ids := make([]meterIdentity, n)
		sent := map[meterIdentity]Usage{}
		for i := range us {
			ids[i] = distinct[min(i, len(distinct)-1)]
			if i >= len(distinct) {
				ids[i] = rapid.SampledFrom(distinct).Draw(rt, "repeated event")
			}
			if u, ok := sent[ids[i]]; ok {
				us[i] = u // redelivered as sent
				continue
			}
			us[i] = h.usageFor(rt, ids[i])
			sent[ids[i]] = us[i]
		}
		// Shuffle so the repeats are not always after all the originals.
		perm := rapid.Permutation(indexes(n)).Draw(rt, "order")
		shuffledUs, shuffledIDs := make([]Usage, n), make([]meterIdentity, n)
		for i, j := range perm {
			shuffledUs[i], shuffledIDs[i] = us[j], ids[j]
		}
		got, err := h.store.DebitBatch(h.ctx, shuffledUs)
		require.NoError(rt, err)
		first := map[meterIdentity]*LedgerEntry{}
		for i, r := range got {
			id := shuffledIDs[i]
			if e, ok := first[id]; ok {
				require.True(rt, r.Duplicate, "repeat of %s at %d", id.EventID, i)
				require.Equal(rt, e, r.Entry, "a repeat returns the first application")
				continue
			}
			require.False(rt, r.Duplicate, "first of %s at %d", id.EventID, i)
			first[id] = r.Entry
		}
		require.Len(rt, first, len(distinct))
		for i := range shuffledUs {
			h.returned(got[i].Entry)
			h.requireDebitMatchesModel(rt, shuffledIDs[i], shuffledUs[i], got[i])
		}
		h.record(rt)
		requireLedgerExplainsEveryBalance(rt, h.store, h.ledger, h.seafarer, 3)
	})
}

func indexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
