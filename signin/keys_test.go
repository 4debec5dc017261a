package signin

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/wuyou/wuyou/internal/pgtest"
	"github.com/wuyou/wuyou/token"
)

// clock is a settable clock shared by the rings of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func jwksKIDs(t *testing.T, jwks []byte) []string {
	t.Helper()
	keys, err := token.ParseJWKS(jwks)
	if err != nil && len(jwks) > 0 {
		var empty struct{ Keys []json.RawMessage }
		if json.Unmarshal(jwks, &empty) == nil && len(empty.Keys) == 0 {
			return nil
		}
		t.Fatalf("JWKS does not parse: %v\n%s", err, jwks)
	}
	var kids []string
	for _, k := range keys {
		if k.Alg != token.AlgEdDSA {
			t.Errorf("key %s is %s, want EdDSA", k.KID, k.Alg)
		}
		kids = append(kids, k.KID)
	}
	return kids
}

// A key signs for RotateEvery; the next one is published PublishAhead
// before it signs, the old one stays published until its last token has
// expired, and then it is gone. Two replicas rotating at once write one key.
func TestKeyRingRotatesPublishingAheadAndRetiringAfterTheTokensExpire(t *testing.T) {
	pool := pgtest.MustPool(t)
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	opts := KeyOptions{RotateEvery: 24 * time.Hour, PublishAhead: 10 * time.Minute, Refresh: time.Minute, TokenTTL: 2 * time.Hour, Leeway: 30 * time.Second}
	a, err := OpenKeyRing(ctx, pool, clk.Now, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenKeyRing(ctx, pool, clk.Now, opts)
	if err != nil {
		t.Fatal(err)
	}
	first, err := a.Signer()
	if err != nil {
		t.Fatal(err)
	}
	if other, _ := b.Signer(); other == nil || other.KID != first.KID {
		t.Fatalf("two replicas sign with different first keys: %v, %v", first.KID, other)
	}
	if kids := jwksKIDs(t, a.JWKS()); len(kids) != 1 || kids[0] != first.KID {
		t.Fatalf("JWKS = %v, want only %s", kids, first.KID)
	}

	// Not yet due: nothing is written. (The first key signs from a minute
	// before it was written, so it is due 24h − 11 min after.)
	clk.Add(23*time.Hour + 47*time.Minute)
	refreshBoth(t, a, b)
	if kids := jwksKIDs(t, a.JWKS()); len(kids) != 1 {
		t.Fatalf("rotated early: JWKS = %v", kids)
	}

	// Due: the next key is published, but the first still signs.
	clk.Add(3 * time.Minute)
	refreshBoth(t, a, b)
	kids := jwksKIDs(t, b.JWKS())
	if len(kids) != 2 {
		t.Fatalf("after two replicas rotated at once, JWKS = %v, want two keys", kids)
	}
	if s, _ := a.Signer(); s.KID != first.KID {
		t.Fatalf("the next key signs before it was published for PublishAhead")
	}
	next := kids[1]
	if next == first.KID {
		next = kids[0]
	}
	// A replica that has not refreshed yet knows the key when asked.
	c, err := OpenKeyRing(ctx, pool, clk.Now, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.PublicKey(ctx, next); !ok {
		t.Fatalf("a third replica does not know the published key %s", next)
	}

	// Its time comes: it signs; the first is still published for its tokens.
	clk.Add(10 * time.Minute)
	if s, _ := a.Signer(); s.KID != next {
		t.Fatalf("signer at the next key's start = %s, want %s", s.KID, next)
	}
	refreshBoth(t, a, b)
	if kids := jwksKIDs(t, a.JWKS()); len(kids) != 2 {
		t.Fatalf("the first key left the JWKS while its tokens live: %v", kids)
	}

	// Its last token expired (TTL and leeway after it stopped signing): gone.
	clk.Add(2*time.Hour + 31*time.Second)
	refreshBoth(t, a, b)
	if kids := jwksKIDs(t, a.JWKS()); len(kids) != 1 || kids[0] != next {
		t.Fatalf("after the first key's tokens expired JWKS = %v, want only %s", kids, next)
	}
	if _, ok := a.PublicKey(ctx, first.KID); ok {
		t.Fatalf("a retired key still verifies")
	}
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM signing_keys`).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("signing_keys holds %d rows (%v), want 1", rows, err)
	}
}

func refreshBoth(t *testing.T, rings ...*KeyRing) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(rings))
	for i, r := range rings {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = r.Refresh(context.Background()) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// A key stays published while any replica's tokens from it may live: a
// replica with a longer token lifetime (a rolling change of
// WUYOU_SEAFARER_TOKEN_TTL) keeps it from being deleted by one with a
// shorter.
func TestKeyRingKeepsAKeyWhileAnyReplicasTokensLive(t *testing.T) {
	pool := pgtest.MustPool(t)
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	short := KeyOptions{RotateEvery: 24 * time.Hour, TokenTTL: 2 * time.Hour}
	long := short
	long.TokenTTL = 10 * time.Hour
	a, err := OpenKeyRing(ctx, pool, clk.Now, short)
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenKeyRing(ctx, pool, clk.Now, long) // signs 10-hour tokens with the first key
	if err != nil {
		t.Fatal(err)
	}
	first, _ := b.Signer()
	clk.Add(23*time.Hour + 55*time.Minute) // rotation due: the next key signs 10 min after it is written
	refreshBoth(t, a, b)
	clk.Add(11 * time.Minute)
	refreshBoth(t, a)
	if s, _ := a.Signer(); s.KID == first.KID {
		t.Fatal("no rotation")
	}
	// Past the short replica's rule (2h), within the long one's tokens (10h).
	clk.Add(3 * time.Hour)
	refreshBoth(t, a)
	if _, ok := a.PublicKey(ctx, first.KID); !ok {
		t.Fatal("a key was deleted while the other replica's 10-hour tokens from it live")
	}
	clk.Add(8 * time.Hour)
	refreshBoth(t, a)
	if _, ok := a.PublicKey(ctx, first.KID); ok {
		t.Fatal("the key is still published after every token it signed expired")
	}
}

// A forged kid makes the ring read the table again at most once per
// reloadGap, so a flood of them costs one query each few seconds.
func TestKeyRingReloadsForUnknownKidsAtMostOncePerGap(t *testing.T) {
	pool := pgtest.MustPool(t)
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	r, err := OpenKeyRing(ctx, pool, clk.Now, KeyOptions{TokenTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.PublicKey(ctx, "forged"); ok {
		t.Fatal("a forged kid verified")
	}
	// Another replica writes a key; within the gap this one does not look.
	if _, err := pool.Exec(ctx, `INSERT INTO signing_keys SELECT 'copied', private_pem, created_at, signs_from + interval '1 day' FROM signing_keys`); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.PublicKey(ctx, "copied"); ok {
		t.Fatal("the ring read the table again within reloadGap of the last unknown kid")
	}
	clk.Add(reloadGap)
	if _, ok := r.PublicKey(ctx, "copied"); !ok {
		t.Fatal("after reloadGap an unknown kid does not make the ring read the table again")
	}
}

// The secret is made once and the same for every replica.
func TestSecretIsSharedAndMadeOnce(t *testing.T) {
	pool := pgtest.MustPool(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	got := make([][]byte, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Secret(ctx, pool, "otp", time.Now())
			if err != nil {
				t.Error(err)
			}
			got[i] = s
		}()
	}
	wg.Wait()
	for i := range got {
		if len(got[i]) != 32 || string(got[i]) != string(got[0]) {
			t.Fatalf("replica %d has secret %x, replica 0 %x", i, got[i], got[0])
		}
	}
}
