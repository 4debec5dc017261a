package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/quota"
)

// flakyRecorder fails its first `fail` recordings, then records.
type flakyRecorder struct {
	mu       sync.Mutex
	fail     int
	recorded []*quota.LedgerEntry
}

func (r *flakyRecorder) RecordLedger(_ context.Context, _ string, e *quota.LedgerEntry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		return errors.New("postgres: connection refused")
	}
	r.recorded = append(r.recorded, e)
	return nil
}

// A void whose ledger entry cannot be recorded answers 503 (the grant is
// voided); voiding again answers 409 and records the entry the first void
// wrote, so repeating the request is how the record is repaired.
func TestAVoidWhoseEntryCannotBeRecordedIsRecordedWhenRepeated(t *testing.T) {
	f := MustAPIFixture(t)
	rec := &flakyRecorder{fail: 1}
	cfg := f.server.cfg
	cfg.Ledger, cfg.Registry = rec, nil // a registry of its own
	f.app = New(cfg).App()

	grants, err := f.quota.Grants(context.Background(), f.a1.ID)
	require.NoError(t, err)
	require.NotEmpty(t, grants)
	path := "/v1/seafarers/" + f.a1.ID + "/grants/" + grants[0].ID + ":void"

	status, _, body := f.do(t, apiRequest{method: "POST", path: path, token: f.union})
	require.Equal(t, http.StatusServiceUnavailable, status, "%s", body)
	require.Empty(t, rec.recorded)
	after, err := f.quota.Grants(context.Background(), f.a1.ID)
	require.NoError(t, err)
	require.True(t, after[0].Voided, "the void itself was applied")

	status, _, body = f.do(t, apiRequest{method: "POST", path: path, token: f.union})
	require.Equal(t, http.StatusConflict, status, "%s", body)
	require.Len(t, rec.recorded, 1, "the repeat recorded the first void's entry")
	require.Equal(t, "v_"+grants[0].ID, rec.recorded[0].ID)
	require.Equal(t, grants[0].RemainingSeconds, rec.recorded[0].Seconds, "the seconds the first void removed")

	// Voiding a third time records it again: recording is idempotent downstream.
	status, _, _ = f.do(t, apiRequest{method: "POST", path: path, token: f.union})
	require.Equal(t, http.StatusConflict, status)
}

// A void recorded at once answers 200 with the entry it recorded.
func TestAVoidIsRecordedBeforeItIsAnswered(t *testing.T) {
	f := MustAPIFixture(t)
	rec := &flakyRecorder{}
	cfg := f.server.cfg
	cfg.Ledger, cfg.Registry = rec, nil // a registry of its own
	f.app = New(cfg).App()
	grants, err := f.quota.Grants(context.Background(), f.a2.ID)
	require.NoError(t, err)
	status, _, body := f.do(t, apiRequest{method: "POST", path: "/v1/seafarers/" + f.a2.ID + "/grants/" + grants[0].ID + ":void", token: f.union})
	require.Equal(t, http.StatusOK, status, "%s", body)
	var e quota.LedgerEntry
	require.NoError(t, json.Unmarshal(body, &e))
	require.Len(t, rec.recorded, 1)
	require.Equal(t, e.ID, rec.recorded[0].ID)
}
