package quota

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
)

// freeCall is a call to the union's hotline, as the consumer makes it from
// a rating that says Free: it bills nothing.
func freeCall(seafarerID, eventID string, callTime time.Time) Usage {
	u := voiceCall(seafarerID, eventID, callTime, 0)
	u.DurationSeconds, u.CalledNumber, u.Free = 305, "+861239500", true
	return u
}

func TestAFreeCallsRecordSaysFreeAndRecordsWrittenBeforeFreeCallsStillReadBack(t *testing.T) {
	call := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	at := call.Add(2 * time.Second)
	u := freeCall("sf-1", "cdr-free", call)
	rec := debitRecordHead(u, "0123456789abcdef0123", at) + "0" + billableSuffix(u) + " 0 0 CNY 0 2026-11 "
	e, err := decodeRecord(ledgerBucket(call), rec)
	require.NoError(t, err)
	require.True(t, e.Free)
	require.Equal(t, billing.TypeVoice, e.Type, "the mark is not part of the type")

	u.Free = false
	e, err = decodeRecord(ledgerBucket(call), debitRecordHead(u, "0123456789abcdef0123", at)+"0 0 0 CNY 0 2026-11 ")
	require.NoError(t, err)
	require.False(t, e.Free)

	// A record as written before free calls existed, field by field.
	old := "d 349200 0123456789abcdef0123 1500 cdr-1 v +8613800000001 125 +861012345678 SG 180 120 150 CNY 40 2026-11  gr_1:100 gr_2:20"
	e, err = decodeRecord(ledgerBucket(call), old)
	require.NoError(t, err)
	require.False(t, e.Free)
	require.Equal(t, billing.TypeVoice, e.Type)
	require.Equal(t, int64(180), e.BillableSeconds)
	require.Equal(t, []Draw{{GrantID: "gr_1", Seconds: 100}, {GrantID: "gr_2", Seconds: 20}}, e.Draws)
	e, err = decodeRecord(ledgerBucket(call), "d 349200 0123456789abcdef0123 1500 cdr-2 =carrier.usage.fax m 1 c SG 0 0 0 CNY 0 2026-11 ")
	require.NoError(t, err)
	require.Equal(t, "carrier.usage.fax", e.Type)
	require.False(t, e.Free)
}

func TestAFreeCallOnAnEmptyBalanceIsNeitherDrawnNorOverageAndIsRecordedAsFree(t *testing.T) {
	t.Parallel()
	s, _, _ := MustMeterStore(t, Options{})
	l, _ := MustPGLedger(t)
	ctx := context.Background()

	r := MustDebit(t, s, freeCall("sf-empty", "cdr-hotline", meterNow.Add(-time.Hour)))
	require.True(t, r.Entry.Free)
	require.Zero(t, r.Entry.CoveredSeconds)
	require.Zero(t, r.Entry.OverageSeconds)
	require.Zero(t, r.Entry.OverageAmount.Minor)
	require.Empty(t, r.Entry.Draws)
	require.Empty(t, r.Notes, "a free call on an empty balance announces nothing")
	again := MustDebit(t, s, freeCall("sf-empty", "cdr-hotline", meterNow.Add(-time.Hour)))
	require.True(t, again.Duplicate)
	require.True(t, again.Entry.Free, "a repeat carries the first application's entry (its pending record), free")
	mustRecord(t, s, l, "sf-empty", r.Entry)

	page, _, err := l.Ledger(ctx, "sf-empty", LedgerFilter{})
	require.NoError(t, err)
	require.Len(t, page, 1)
	require.True(t, page[0].Free, "PostgreSQL keeps the call as free")
	require.Equal(t, "+861239500", page[0].CalledNumber)
	b, err := json.Marshal(page[0])
	require.NoError(t, err)
	require.Contains(t, string(b), `"free":true`)
}

func TestAFreeCallLeavesTheGrantsAsTheyWere(t *testing.T) {
	t.Parallel()
	s, _, _ := MustMeterStore(t, Options{})
	MustAddGrant(t, s, activeGrant("sf-1", "gr_1", 600))
	r := MustDebit(t, s, freeCall("sf-1", "cdr-hotline", meterNow.Add(-time.Hour)))
	require.True(t, r.Entry.Free)
	require.Empty(t, r.Entry.Draws)
	require.Equal(t, int64(600), r.RemainingNow)
	a, err := s.Allowance(context.Background(), "sf-1")
	require.NoError(t, err)
	require.Equal(t, int64(600), a.RemainingSeconds)

	paid := MustDebit(t, s, voiceCall("sf-1", "cdr-paid", meterNow.Add(-time.Hour), 60))
	require.False(t, paid.Entry.Free)
	b, err := json.Marshal(paid.Entry)
	require.NoError(t, err)
	require.NotContains(t, string(b), `"free"`, "only free calls say so")
}

func TestAFreeCallThatBillsSomethingIsRefused(t *testing.T) {
	t.Parallel()
	s, _, _ := MustMeterStore(t, Options{})
	u := freeCall("sf-1", "cdr-bad", meterNow.Add(-time.Hour))
	u.BillableSeconds = 60
	_, err := s.Debit(context.Background(), u)
	require.Equal(t, wuyou.EINVALID, wuyou.ErrorCode(err))

	l, pool := MustPGLedger(t)
	bad := debitEntry("cdr-bad", ledgerSuiteT0.Add(time.Hour))
	bad.Free = true
	err = l.Append(context.Background(), pgBatch("sf-1", bad))
	var we *wuyou.Error
	require.ErrorAs(t, err, &we)
	require.Equal(t, "ledger_free_call_bills_nothing", we.Reason)
	require.Zero(t, countLedgerRows(t, pool))
}
