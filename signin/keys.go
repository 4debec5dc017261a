package signin

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/token"
)

// KeyRing is Wuyou's own signing keys for seafarer tokens, kept in
// PostgreSQL (table signing_keys) and shared by every replica.
//
// Rotation: a key signs for RotateEvery. The next key is written
// PublishAhead before it starts signing, so every replica has published it
// (and can verify its tokens) before the first of them exists; a replica
// that meets a kid it does not know reads the table again at once, at most
// once per reloadGap. A key that stopped signing stays published until the
// last token any replica may have signed with it has expired (its
// retire_after, which each replica raises while the key signs there, and
// TokenTTL and clock leeway after the next key took over), then it is
// deleted.
//
// It is safe for concurrent use.
type KeyRing struct {
	pool *pgxpool.Pool
	now  wuyou.Clock
	opts KeyOptions

	mu      sync.RWMutex
	keys    []ringKey // by signs_from, oldest first
	jwks    []byte
	loaded  time.Time
	reload  sync.Mutex // one reload at a time
	lastGap time.Time  // when an unknown kid last made it reload
}

type ringKey struct {
	key       *token.SigningKey
	public    ed25519.PublicKey
	signsFrom time.Time
}

// KeyOptions tune the ring; zero values take the defaults.
type KeyOptions struct {
	// RotateEvery is how long one key signs (default 30 days).
	RotateEvery time.Duration
	// PublishAhead is how long a key is published before it signs (default
	// 10 minutes). It must be longer than Refresh.
	PublishAhead time.Duration
	// Refresh is how often Run reads the table again (default 1 minute).
	Refresh time.Duration
	// TokenTTL is how long the tokens signed live; a retired key is
	// published this long (and Leeway) after it stopped signing.
	TokenTTL time.Duration
	// Leeway is the clock skew verifiers allow (default 30 s).
	Leeway time.Duration
	Log    *slog.Logger
}

// reloadGap bounds reloads caused by unknown kids: a flood of forged kids
// costs one query per reloadGap.
const reloadGap = 5 * time.Second

// keyRingLock is the advisory lock key of a rotation ("wuyou-signin-keys").
const keyRingLock = 0x77757969_6b657973

// OpenKeyRing reads the keys, writing the first one (or the next, when
// rotation is due) if needed.
func OpenKeyRing(ctx context.Context, pool *pgxpool.Pool, now wuyou.Clock, opts KeyOptions) (*KeyRing, error) {
	if now == nil {
		now = wuyou.SystemClock
	}
	if opts.RotateEvery <= 0 {
		opts.RotateEvery = 30 * 24 * time.Hour
	}
	if opts.Refresh <= 0 {
		opts.Refresh = time.Minute
	}
	if opts.PublishAhead <= 0 {
		opts.PublishAhead = 10 * time.Minute
	}
	if opts.PublishAhead <= opts.Refresh {
		return nil, fmt.Errorf("signin: keys must be published ahead (%s) for longer than the ring's refresh (%s)", opts.PublishAhead, opts.Refresh)
	}
	if opts.RotateEvery <= opts.PublishAhead {
		return nil, fmt.Errorf("signin: a key must sign (%s) for longer than it is published ahead (%s)", opts.RotateEvery, opts.PublishAhead)
	}
	if opts.TokenTTL <= 0 {
		return nil, errors.New("signin: the ring needs the tokens' TTL")
	}
	if opts.Leeway <= 0 {
		opts.Leeway = 30 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	r := &KeyRing{pool: pool, now: now, opts: opts}
	if err := r.Refresh(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Run refreshes the ring every Refresh until ctx ends. A failed refresh is
// logged; the ring goes on with the keys it has.
func (r *KeyRing) Run(ctx context.Context) {
	t := time.NewTicker(r.opts.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.Refresh(ctx); err != nil && ctx.Err() == nil {
				r.opts.Log.Warn("signing keys not refreshed; going on with the keys read before", "err", err)
			}
		}
	}
}

// Refresh rotates when due (writing the next key ahead of time, deleting
// keys whose tokens have all expired), vouches for the tokens this replica
// may sign until its next refresh, and reads the table.
func (r *KeyRing) Refresh(ctx context.Context) error {
	r.reload.Lock()
	defer r.reload.Unlock()
	now := r.now().UTC()
	var rows []keyRow
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		var err error
		if rows, err = readKeys(ctx, tx); err != nil {
			return err
		}
		if r.rotationDue(rows, now) || len(r.retiredRows(rows, now)) > 0 {
			// Another replica may be rotating: take the lock, read again.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(keyRingLock)); err != nil {
				return err
			}
			if rows, err = readKeys(ctx, tx); err != nil {
				return err
			}
			if r.rotationDue(rows, now) {
				row, err := r.nextKey(rows, now)
				if err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `INSERT INTO signing_keys (kid, private_pem, created_at, signs_from) VALUES ($1, $2, $3, $4)`,
					row.kid, row.pem, now, row.signsFrom); err != nil {
					return err
				}
				rows = append(rows, row)
				r.opts.Log.Info("signing key written", "kid", row.kid, "signs_from", row.signsFrom)
			}
			for _, kid := range r.retiredRows(rows, now) {
				if _, err := tx.Exec(ctx, `DELETE FROM signing_keys WHERE kid = $1`, kid); err != nil {
					return err
				}
				r.opts.Log.Info("signing key retired: every token it signed has expired", "kid", kid)
			}
		}
		// The key this replica signs with until its next refresh stays
		// published until the last token it may sign meanwhile expires,
		// whatever the other replicas' token lifetime (a rolling change of
		// WUYOU_SEAFARER_TOKEN_TTL) or clocks.
		if kid := signerAt(rows, now); kid != "" {
			until := now.Add(r.opts.Refresh + r.opts.TokenTTL + r.opts.Leeway)
			if _, err := tx.Exec(ctx, `UPDATE signing_keys SET retire_after = $2
WHERE kid = $1 AND (retire_after IS NULL OR retire_after < $2)`, kid, until); err != nil {
				return err
			}
		}
		rows, err = readKeys(ctx, tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("signin: signing keys: %w", err)
	}
	return r.load(rows, now)
}

// keyRow is one row of signing_keys.
type keyRow struct {
	kid, pem    string
	signsFrom   time.Time
	retireAfter *time.Time
}

func readKeys(ctx context.Context, tx pgx.Tx) ([]keyRow, error) {
	rows, err := tx.Query(ctx, `SELECT kid, private_pem, signs_from, retire_after FROM signing_keys ORDER BY signs_from`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (keyRow, error) {
		var k keyRow
		err := row.Scan(&k.kid, &k.pem, &k.signsFrom, &k.retireAfter)
		return k, err
	})
}

// signerAt is the kid of the key that signs at now among rows (by
// signs_from), or "".
func signerAt(rows []keyRow, now time.Time) string {
	for i := len(rows) - 1; i >= 0; i-- {
		if !rows[i].signsFrom.After(now) {
			return rows[i].kid
		}
	}
	return ""
}

// rotationDue reports whether the next key must be written now: there is
// none, or the newest starts signing within PublishAhead of its end.
func (r *KeyRing) rotationDue(rows []keyRow, now time.Time) bool {
	if len(rows) == 0 {
		return true
	}
	newest := rows[len(rows)-1].signsFrom
	return !newest.Add(r.opts.RotateEvery).After(now.Add(r.opts.PublishAhead))
}

// retireMargin is how long past the last expiry a replica vouched for a key
// is kept anyway: published keys cost nothing, refused tokens do.
const retireMargin = 5 * time.Minute

// retiredRows are the kids of keys no live token can need: replaced by a
// later key for this replica's token lifetime and leeway, and past the
// latest expiry any replica vouched for, with retireMargin.
func (r *KeyRing) retiredRows(rows []keyRow, now time.Time) []string {
	var out []string
	for i := 0; i+1 < len(rows); i++ {
		replaced := rows[i+1].signsFrom
		if !now.After(replaced.Add(r.opts.TokenTTL + r.opts.Leeway)) {
			continue
		}
		if ra := rows[i].retireAfter; ra != nil && !now.After(ra.Add(retireMargin)) {
			continue
		}
		out = append(out, rows[i].kid)
	}
	return out
}

// nextKey makes the key that follows rows: the first one signs at once
// (no token exists yet that a replica could fail to verify), a later one
// when the newest has signed RotateEvery, and not before PublishAhead from
// now.
func (r *KeyRing) nextKey(rows []keyRow, now time.Time) (keyRow, error) {
	k, err := token.GenerateSigningKey(token.AlgEdDSA)
	if err != nil {
		return keyRow{}, err
	}
	pem, err := k.PrivatePEM()
	if err != nil {
		return keyRow{}, err
	}
	// The first key signs at once, a minute back: a replica whose clock
	// is behind the writer's has it in force too.
	from := now.Add(-time.Minute)
	if len(rows) > 0 {
		from = rows[len(rows)-1].signsFrom.Add(r.opts.RotateEvery)
		if earliest := now.Add(r.opts.PublishAhead); from.Before(earliest) {
			from = earliest
		}
	}
	return keyRow{kid: k.KID, pem: string(pem), signsFrom: from.Truncate(time.Microsecond)}, nil
}

// load replaces the ring's keys with rows.
func (r *KeyRing) load(rows []keyRow, now time.Time) error {
	keys := make([]ringKey, 0, len(rows))
	for _, row := range rows {
		k, err := token.ParseSigningKeyPEM([]byte(row.pem), row.kid)
		if err != nil {
			return fmt.Errorf("signin: signing key %s: %w", row.kid, err)
		}
		public, ok := k.Private.Public().(ed25519.PublicKey)
		if !ok || k.Alg != token.AlgEdDSA {
			return fmt.Errorf("signin: signing key %s is not Ed25519", row.kid)
		}
		keys = append(keys, ringKey{key: k, public: public, signsFrom: row.signsFrom})
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].signsFrom.Before(keys[j].signsFrom) })
	published := make([]*token.SigningKey, 0, len(keys))
	for i := range keys {
		published = append(published, keys[i].key)
	}
	var jwks []byte
	if len(published) > 0 {
		var err error
		if jwks, err = token.JWKS(published...); err != nil {
			return fmt.Errorf("signin: %w", err)
		}
	} else {
		jwks = []byte("{\"keys\":[]}\n")
	}
	r.mu.Lock()
	r.keys, r.jwks, r.loaded = keys, jwks, now
	r.mu.Unlock()
	return nil
}

// Signer is the key that signs now: the newest whose signs_from has come.
func (r *KeyRing) Signer() (*token.SigningKey, error) {
	now := r.now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	for i := len(r.keys) - 1; i >= 0; i-- {
		if !r.keys[i].signsFrom.After(now) {
			return r.keys[i].key, nil
		}
	}
	return nil, wuyou.Errorf(wuyou.EUNAVAILABLE, "no signing key is in force yet")
}

// JWKS is the public JWKS of every published key.
func (r *KeyRing) JWKS() []byte {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.jwks
}

// PublicKey is the public key published under kid. A kid the ring does not
// know makes it read the table again (at most once per reloadGap), so a key
// another replica wrote a moment ago verifies here too.
func (r *KeyRing) PublicKey(ctx context.Context, kid string) (ed25519.PublicKey, bool) {
	if k, ok := r.find(kid); ok {
		return k, true
	}
	r.mu.Lock()
	due := r.now().Sub(r.lastGap) >= reloadGap
	if due {
		r.lastGap = r.now()
	}
	r.mu.Unlock()
	if !due {
		return nil, false
	}
	if err := r.Refresh(ctx); err != nil {
		r.opts.Log.Warn("signing keys not read again for an unknown kid", "err", err)
		return nil, false
	}
	return r.find(kid)
}

func (r *KeyRing) find(kid string) (ed25519.PublicKey, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, k := range r.keys {
		if k.key.KID == kid {
			return k.public, true
		}
	}
	return nil, false
}

// Secret is the named secret shared by every replica, created (32 random
// bytes) by the first that asks.
func Secret(ctx context.Context, pool *pgxpool.Pool, name string, now time.Time) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	// Two replicas starting together: the one whose insert waited on the
	// other's sees neither row in its statement's snapshot, and asks again.
	for attempt := 0; ; attempt++ {
		var secret []byte
		err := pool.QueryRow(ctx, `WITH ins AS (
    INSERT INTO signin_secrets (name, secret, created_at) VALUES ($1, $2, $3)
    ON CONFLICT (name) DO NOTHING RETURNING secret)
SELECT secret FROM ins UNION ALL SELECT secret FROM signin_secrets WHERE name = $1 LIMIT 1`, name, fresh, now).Scan(&secret)
		if errors.Is(err, pgx.ErrNoRows) && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("signin: secret %s: %w", name, err)
		}
		return secret, nil
	}
}
