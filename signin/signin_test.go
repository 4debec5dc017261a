package signin

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/internal/pgtest"
	"github.com/wuyou/wuyou/internal/redistest"
)

// holders is a fake roster; block, when set, holds every lookup until closed.
type holders struct {
	mu      sync.Mutex
	by      map[string]*crew.Seafarer
	lookups int
	block   chan struct{}
	down    atomic.Bool // the roster is out of reach
}

func (h *holders) SeafarerByMSISDN(_ context.Context, msisdn string) (*crew.Seafarer, error) {
	if h.block != nil {
		<-h.block
	}
	if h.down.Load() {
		return nil, errors.New("roster unreachable")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lookups++
	if sf, ok := h.by[msisdn]; ok {
		return sf, nil
	}
	return nil, wuyou.Errorf(wuyou.ENOTFOUND, "no seafarer has that MSISDN")
}

type sentSMS struct{ seafarerID, msisdn, lang, kind, text string }

// outbox records the SMS handed to the gateway.
type outbox struct {
	mu   sync.Mutex
	sent []sentSMS
	cond chan struct{}
}

func (o *outbox) SendSMS(_ context.Context, seafarerID, msisdn, lang, kind, text string) error {
	o.mu.Lock()
	o.sent = append(o.sent, sentSMS{seafarerID, msisdn, lang, kind, text})
	o.mu.Unlock()
	select {
	case o.cond <- struct{}{}:
	default:
	}
	return nil
}

func (o *outbox) all() []sentSMS {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]sentSMS(nil), o.sent...)
}

var codeInText = regexp.MustCompile(`^(\d{6}) `)

// codeFor waits for the next SMS to msisdn and returns its code.
func (o *outbox) codeFor(t *testing.T, msisdn string, after int) string {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		for _, m := range o.all()[after:] {
			if m.msisdn == msisdn {
				c := codeInText.FindStringSubmatch(m.text)
				if c == nil {
					t.Fatalf("SMS without a leading code: %q", m.text)
				}
				return c[1]
			}
		}
		select {
		case <-o.cond:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no SMS to %s within 5 s", msisdn)
		}
	}
}

const (
	enrolled   = "+8613800000001"
	enrolledEN = "+8613800000002"
	stranger   = "+8613899999999"
)

type fixture struct {
	svc   *Service
	rdb   redis.UniversalClient
	pre   string
	box   *outbox
	roll  *holders
	keys  *KeyRing
	clock *clock
}

func newFixture(t *testing.T, limits Limits) *fixture {
	t.Helper()
	pool := pgtest.MustPool(t)
	rdb, prefix := redistest.MustClient(t)
	ctx := context.Background()
	clk := &clock{t: time.Now().UTC()}
	keys, err := OpenKeyRing(ctx, pool, clk.Now, KeyOptions{TokenTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := Secret(ctx, pool, "otp", clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{rdb: rdb, pre: prefix, box: &outbox{cond: make(chan struct{}, 1)}, keys: keys, clock: clk,
		roll: &holders{by: map[string]*crew.Seafarer{
			enrolled:   {ID: "sf_zh", MSISDN: enrolled, Lang: wuyou.LangZH},
			enrolledEN: {ID: "sf_en", MSISDN: enrolledEN, Lang: wuyou.LangEN},
		}}}
	f.svc, err = New(Config{Redis: rdb, Prefix: prefix, Secret: secret, Counter: windowCounter{rdb, prefix}, Holders: f.roll, SMS: f.box,
		Keys: keys, Issuer: Issuer, Audience: "wuyou", TokenTTL: time.Hour, Limits: limits, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.svc.Start(2)
	t.Cleanup(func() { f.svc.Close(context.Background()) })
	return f
}

// windowCounter is a plain fixed-window counter in the test Redis (the
// service uses api.RedisRateLimitStore, which api's tests cover).
type windowCounter struct {
	rdb    redis.UniversalClient
	prefix string
}

func (w windowCounter) Hit(ctx context.Context, key string, window time.Duration) (int, time.Duration, error) {
	k := w.prefix + ":rl:" + key
	n, err := w.rdb.Incr(ctx, k).Result()
	if err != nil {
		return 0, 0, err
	}
	if n == 1 {
		w.rdb.PExpire(ctx, k, window)
	}
	ttl, err := w.rdb.PTTL(ctx, k).Result()
	return int(n), ttl, err
}

func (f *fixture) request(t *testing.T, msisdn, addr string) error {
	t.Helper()
	return f.svc.RequestCode(context.Background(), msisdn, addr)
}

func (f *fixture) verify(msisdn, code, addr string) (*Token, error) {
	return f.svc.Verify(context.Background(), msisdn, code, addr)
}

func isLimited(err error) (*Limited, bool) {
	var l *Limited
	return l, errors.As(err, &l) && wuyou.ErrorCode(err) == wuyou.ERATELIMITED
}

// wrongCode is another six-digit code than code.
func wrongCode(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}

// The round trip: a code by SMS in the seafarer's language, exchanged once
// for a seafarer token naming them.
func TestCodeBySMSBecomesASeafarerTokenOnce(t *testing.T) {
	f := newFixture(t, Limits{})
	for _, tc := range []struct{ msisdn, id, lang, word string }{
		{enrolled, "sf_zh", wuyou.LangZH, "验证码"},
		{enrolledEN, "sf_en", wuyou.LangEN, "sign-in code"},
	} {
		before := len(f.box.all())
		if err := f.request(t, tc.msisdn, "10.0.0.1"); err != nil {
			t.Fatal(err)
		}
		code := f.box.codeFor(t, tc.msisdn, before)
		m := f.box.all()[before]
		if m.seafarerID != tc.id || m.lang != tc.lang || m.kind != KindCode || !strings.Contains(m.text, tc.word) {
			t.Errorf("SMS = %+v, want to %s in %s", m, tc.id, tc.lang)
		}
		tok, err := f.verify(tc.msisdn, code, "10.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if tok.SeafarerID != tc.id || tok.ExpiresIn != time.Hour || tok.AccessToken == "" {
			t.Errorf("token = %+v", tok)
		}
		// Single use: the same code again is refused.
		if _, err := f.verify(tc.msisdn, code, "10.0.0.1"); wuyou.ErrorCode(err) != wuyou.EUNAUTHORIZED {
			t.Errorf("replayed code: err = %v, want unauthorized", err)
		}
	}
}

// A code answers only for the number it was sent to.
func TestCodeForAnotherNumberIsRefused(t *testing.T) {
	f := newFixture(t, Limits{})
	if err := f.request(t, enrolled, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	code := f.box.codeFor(t, enrolled, 0)
	if _, err := f.verify(enrolledEN, code, "10.0.0.1"); wuyou.ErrorCode(err) != wuyou.EUNAUTHORIZED {
		t.Fatalf("another number's code: err = %v, want unauthorized", err)
	}
	// The code still works for its own number (a try elsewhere did not burn it).
	if _, err := f.verify(enrolled, code, "10.0.0.1"); err != nil {
		t.Fatalf("own code after another number tried it: %v", err)
	}
}

// Guessing: after TriesPerCode wrong tries the code is gone, so even the
// right one fails; after TriesPerNumber tries in the window nothing is
// compared at all, whatever codes were sent meanwhile.
func TestGuessingStopsAtTheLimitsEvenForTheRightCode(t *testing.T) {
	f := newFixture(t, Limits{TriesPerCode: 3, TriesPerNumber: 5, SendCooldown: 100 * time.Millisecond})
	if err := f.request(t, enrolled, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	code := f.box.codeFor(t, enrolled, 0)
	for i := range 3 {
		if _, err := f.verify(enrolled, wrongCode(code), "10.0.0.1"); wuyou.ErrorCode(err) != wuyou.EUNAUTHORIZED {
			t.Fatalf("wrong try %d: err = %v, want unauthorized", i+1, err)
		}
	}
	if _, err := f.verify(enrolled, code, "10.0.0.1"); wuyou.ErrorCode(err) != wuyou.EUNAUTHORIZED {
		t.Fatalf("the right code after %d wrong tries: err = %v, want unauthorized (the code is gone)", 3, err)
	}
	// A new code: the number has two tries left in the window (5 − 3; the
	// try after the code was gone compared nothing and counted nothing).
	time.Sleep(150 * time.Millisecond) // the cooldown
	if err := f.request(t, enrolled, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	code = f.box.codeFor(t, enrolled, 1)
	for i := range 2 {
		if _, err := f.verify(enrolled, wrongCode(code), "10.0.0.1"); wuyou.ErrorCode(err) != wuyou.EUNAUTHORIZED {
			t.Fatalf("try %d: err = %v", 4+i, err)
		}
	}
	_, err := f.verify(enrolled, code, "10.0.0.1")
	l, ok := isLimited(err)
	if !ok {
		t.Fatalf("the right code past the number's tries: err = %v, want rate limited", err)
	}
	if l.RetryAfter <= 0 || l.RetryAfter > time.Hour {
		t.Errorf("Retry-After = %s, want within the try window", l.RetryAfter)
	}
	// And from another address too: the limit is the number's.
	if _, err := f.verify(enrolled, code, "10.9.9.9"); err == nil {
		t.Fatal("the right code from another address passed the number's limit")
	}
}

// Sends per number: a cooldown, then a count per window; both say when to
// come back.
func TestSendsPerNumberAreLimited(t *testing.T) {
	const cooldown = 300 * time.Millisecond
	f := newFixture(t, Limits{SendCooldown: cooldown, SendsPerNumber: 3})
	if err := f.request(t, enrolled, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	err := f.request(t, enrolled, "10.0.0.2")
	if l, ok := isLimited(err); !ok || l.RetryAfter > cooldown || l.RetryAfter <= 0 {
		t.Fatalf("second send within the cooldown: %v, want limited for under the cooldown", err)
	}
	for i := range 2 {
		time.Sleep(cooldown + 50*time.Millisecond)
		if err := f.request(t, enrolled, "10.0.0.1"); err != nil {
			t.Fatalf("send %d after the cooldown: %v", i+2, err)
		}
	}
	time.Sleep(cooldown + 50*time.Millisecond)
	l, ok := isLimited(f.request(t, enrolled, "10.0.0.1"))
	if !ok || l.RetryAfter <= cooldown {
		t.Fatalf("a fourth send in the window: %v, want limited until the window's end", l)
	}
	// Only the accepted sends became SMS.
	waitFor(t, func() bool { return len(f.box.all()) == 3 })
	time.Sleep(100 * time.Millisecond)
	if n := len(f.box.all()); n != 3 {
		t.Fatalf("%d SMS, want 3", n)
	}
}

// The cooldown outlives the code: burning a code with wrong tries, or
// using it, does not let the next SMS go at once (SMS bombing a victim).
func TestCooldownHoldsAfterTheCodeIsBurntOrUsed(t *testing.T) {
	f := newFixture(t, Limits{TriesPerCode: 2, SendCooldown: time.Minute})
	if err := f.request(t, enrolled, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	code := f.box.codeFor(t, enrolled, 0)
	for range 2 {
		f.verify(enrolled, wrongCode(code), "10.0.0.1")
	}
	if _, ok := isLimited(f.request(t, enrolled, "10.0.0.1")); !ok {
		t.Fatal("a burnt code lifted the cooldown")
	}
	if err := f.request(t, enrolledEN, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	code = f.box.codeFor(t, enrolledEN, 1)
	if _, err := f.verify(enrolledEN, code, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := isLimited(f.request(t, enrolledEN, "10.0.0.1")); !ok {
		t.Fatal("a used code lifted the cooldown")
	}
}

// A code answers for the seafarer it was sent to: if the number changes
// hands before it is used, it signs in nobody, neither the new holder nor
// anyone; if nobody holds the number any more, likewise.
func TestCodeSignsInOnlyTheSeafarerItWasSentTo(t *testing.T) {
	f := newFixture(t, Limits{})
	if err := f.request(t, enrolled, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	code := f.box.codeFor(t, enrolled, 0)
	f.roll.mu.Lock()
	f.roll.by[enrolled] = &crew.Seafarer{ID: "sf_next", MSISDN: enrolled, Lang: wuyou.LangZH}
	f.roll.mu.Unlock()
	if tok, err := f.verify(enrolled, code, "10.0.0.1"); wuyou.ErrorCode(err) != wuyou.EUNAUTHORIZED {
		t.Fatalf("a code sent to sf_zh, the number now sf_next's: %+v, %v; want unauthorized", tok, err)
	}
	f.roll.mu.Lock()
	delete(f.roll.by, enrolled)
	f.roll.mu.Unlock()
	if _, err := f.verify(enrolled, code, "10.0.0.1"); wuyou.ErrorCode(err) != wuyou.EUNAUTHORIZED {
		t.Fatalf("a code for a number nobody holds now: %v; want unauthorized", err)
	}
}

// Of many verifies of one right code at once, exactly one gets a token.
func TestOneCodeOneTokenUnderConcurrentVerifies(t *testing.T) {
	f := newFixture(t, Limits{TriesPerNumber: 100, TriesPerAddress: 1000})
	if err := f.request(t, enrolled, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	code := f.box.codeFor(t, enrolled, 0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	tokens, wrong := 0, 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := f.verify(enrolled, code, "10.0.0.1")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && tok != nil:
				tokens++
			case wuyou.ErrorCode(err) == wuyou.EUNAUTHORIZED:
				wrong++
			default:
				t.Errorf("verify: %v", err)
			}
		}()
	}
	wg.Wait()
	if tokens != 1 || wrong != 15 {
		t.Fatalf("%d tokens and %d refusals for one code, want 1 and 15", tokens, wrong)
	}
}

// A right code stays usable when the token cannot be made (the roster is
// down): the seafarer tries again without a new SMS.
func TestARightCodeSurvivesAnOutageBeforeTheToken(t *testing.T) {
	f := newFixture(t, Limits{})
	if err := f.request(t, enrolled, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	code := f.box.codeFor(t, enrolled, 0)
	f.roll.down.Store(true)
	if _, err := f.verify(enrolled, code, "10.0.0.1"); wuyou.ErrorCode(err) != wuyou.EUNAVAILABLE {
		t.Fatalf("with the roster down: %v, want unavailable", err)
	}
	f.roll.down.Store(false)
	if _, err := f.verify(enrolled, code, "10.0.0.1"); err != nil {
		t.Fatalf("the same code after the outage: %v", err)
	}
}

// Tries are limited per client address too, IPv6 clients by their /64:
// rotating addresses within one subscriber's prefix gains nothing.
func TestTriesPerAddressCountIPv6ByItsSlash64(t *testing.T) {
	f := newFixture(t, Limits{TriesPerAddress: 4, TriesPerNumber: 100})
	if err := f.request(t, enrolled, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	code := f.box.codeFor(t, enrolled, 0)
	for i := range 4 {
		addr := fmt.Sprintf("2001:db8:1:2::%x", i+1)
		if _, err := f.verify(enrolled, "999999", addr); wuyou.ErrorCode(err) != wuyou.EUNAUTHORIZED {
			t.Fatalf("try %d from %s: %v", i+1, addr, err)
		}
	}
	if _, ok := isLimited(func() error { _, err := f.verify(enrolled, code, "2001:db8:1:2:ffff::9"); return err }()); !ok {
		t.Fatal("a fifth try from the same /64 was not limited")
	}
	if _, err := f.verify(enrolled, code, "2001:db8:1:3::1"); err != nil {
		t.Fatalf("another /64: %v", err)
	}
}

// A day's tries are limited too: an attacker who waits out each hour still
// gets no more than TriesPerNumberDay guesses a day.
func TestTriesPerNumberADayAreLimited(t *testing.T) {
	f := newFixture(t, Limits{TriesPerNumber: 100, TriesPerNumberDay: 4, TriesPerCode: 100})
	if err := f.request(t, enrolled, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	code := f.box.codeFor(t, enrolled, 0)
	for range 4 {
		f.verify(enrolled, wrongCode(code), "10.0.0.1")
	}
	_, err := f.verify(enrolled, code, "10.0.0.1")
	if l, ok := isLimited(err); !ok || l.RetryAfter <= time.Hour {
		t.Fatalf("the fifth try of the day: %v, want limited until the day's window ends", err)
	}
}

// Tries without a live code count against nobody: a stranger cannot lock a
// seafarer out without spending the number's sends first.
func TestTriesWithoutACodeAreNotCounted(t *testing.T) {
	f := newFixture(t, Limits{TriesPerNumber: 3})
	for range 10 {
		if _, err := f.verify(enrolled, "123456", "10.0.0.1"); wuyou.ErrorCode(err) != wuyou.EUNAUTHORIZED {
			t.Fatalf("a try with no code sent: %v", err)
		}
	}
	if err := f.request(t, enrolled, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.verify(enrolled, f.box.codeFor(t, enrolled, 0), "10.0.0.1"); err != nil {
		t.Fatalf("the seafarer's own code after a stranger's tries: %v", err)
	}
}

// A stop sends what was queued, and a request arriving after it began is
// answered without a panic (its SMS dropped).
func TestCloseSendsTheQueueAndLateRequestsDoNotPanic(t *testing.T) {
	f := newFixture(t, Limits{SendsPerAddress: 1000})
	f.roll.block = make(chan struct{})
	for i := range 5 {
		if err := f.request(t, fmt.Sprintf("+86139000%04d", i), "10.0.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.request(t, enrolled, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { f.svc.Close(context.Background()); close(closed) }()
	time.Sleep(50 * time.Millisecond)
	if err := f.request(t, enrolledEN, "10.0.0.1"); err != nil { // after Close began
		t.Fatal(err)
	}
	close(f.roll.block)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if len(f.box.all()) != 1 || f.box.all()[0].msisdn != enrolled {
		t.Fatalf("SMS after the stop: %+v, want the one queued for %s", f.box.all(), enrolled)
	}
	// A stop that runs out of time cuts the queue short and still returns.
	g := newFixture(t, Limits{SendsPerAddress: 1000})
	g.roll.block = make(chan struct{})
	defer close(g.roll.block)
	for i := range 3 {
		if err := g.request(t, fmt.Sprintf("+86139000%04d", i), "10.0.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() { g.svc.Close(ctx); close(done) }()
	time.Sleep(200 * time.Millisecond)
	g.roll.block <- struct{}{} // release the lookups in flight
	g.roll.block <- struct{}{}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close past its deadline did not return")
	}
}

// Flooding sends from one address across many numbers (SMS pumping) stops at
// the address's limit; another address is not affected.
func TestFloodingSendsFromOneAddressIsLimited(t *testing.T) {
	f := newFixture(t, Limits{SendsPerAddress: 10})
	for i := range 10 {
		if err := f.request(t, fmt.Sprintf("+86139000%04d", i), "203.0.113.7"); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if _, ok := isLimited(f.request(t, "+8613900009999", "203.0.113.7")); !ok {
		t.Fatal("the eleventh send from one address was not limited")
	}
	if err := f.request(t, enrolled, "198.51.100.1"); err != nil {
		t.Fatalf("another address: %v", err)
	}
}

// Enumeration: a number nobody holds gets the same answer, the same limits
// and the same Redis work as an enrolled one; whose number it is is looked
// up only after the answer (a lookup held up does not hold up the answer),
// and only an enrolled number gets an SMS.
func TestAnswersDoNotTellWhetherANumberIsEnrolled(t *testing.T) {
	f := newFixture(t, Limits{SendCooldown: time.Minute})
	f.roll.block = make(chan struct{})
	for _, n := range []string{enrolled, stranger} {
		done := make(chan error, 1)
		go func() { done <- f.request(t, n, "10.0.0.1") }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v", n, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the answer for %s waited for the roster lookup", n)
		}
	}
	// The same limit for both, with the same wait.
	e1, e2 := f.request(t, enrolled, "10.0.0.1"), f.request(t, stranger, "10.0.0.1")
	l1, ok1 := isLimited(e1)
	l2, ok2 := isLimited(e2)
	if !ok1 || !ok2 || l1.RetryAfterSeconds() != l2.RetryAfterSeconds() || wuyou.ErrorMessage(e1) != wuyou.ErrorMessage(e2) {
		t.Fatalf("second sends: enrolled %v, stranger %v: want the same refusal", e1, e2)
	}
	// The same keys in Redis for both numbers.
	if k1, k2 := f.keysOf(t, enrolled), f.keysOf(t, stranger); k1 != k2 {
		t.Fatalf("Redis holds %d keys for an enrolled number, %d for a stranger's", k1, k2)
	}
	close(f.roll.block)
	f.box.codeFor(t, enrolled, 0)
	time.Sleep(100 * time.Millisecond)
	for _, m := range f.box.all() {
		if m.msisdn == stranger {
			t.Fatal("an SMS went to a number nobody holds")
		}
	}
	// Verifying a stranger's number: the same 401 as a wrong code.
	_, e1 = f.verify(enrolled, "123456", "10.0.0.1")
	_, e2 = f.verify(stranger, "123456", "10.0.0.1")
	if wuyou.ErrorCode(e1) != wuyou.EUNAUTHORIZED || wuyou.ErrorMessage(e1) != wuyou.ErrorMessage(e2) || wuyou.ErrorCode(e2) != wuyou.ErrorCode(e1) {
		t.Fatalf("verify: enrolled %v, stranger %v: want the same 401", e1, e2)
	}
}

// keysOf counts the Redis keys of a number's sign-in state.
func (f *fixture) keysOf(t *testing.T, msisdn string) int {
	t.Helper()
	n := 0
	for _, k := range f.svc.codes.keys(msisdn).all() {
		c, err := f.rdb.Exists(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		n += int(c)
	}
	return n
}

// Redis never holds a code or a number in the clear.
func TestRedisHoldsNeitherCodesNorNumbers(t *testing.T) {
	f := newFixture(t, Limits{})
	if err := f.request(t, enrolled, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	code := f.box.codeFor(t, enrolled, 0)
	ctx := context.Background()
	keys, err := f.rdb.Keys(ctx, f.pre+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatal("no keys under the prefix: the test looks in the wrong place")
	}
	digits := strings.TrimPrefix(enrolled, "+")
	for _, k := range keys {
		if strings.Contains(k, digits) {
			t.Errorf("key %s names the number", k)
		}
		var vals []string
		switch f.rdb.Type(ctx, k).Val() {
		case "hash":
			for fld, v := range f.rdb.HGetAll(ctx, k).Val() {
				vals = append(vals, fld, v)
			}
		case "string":
			vals = append(vals, f.rdb.Get(ctx, k).Val())
		}
		for _, v := range vals {
			if strings.Contains(v, code) || strings.Contains(v, digits) {
				t.Errorf("key %s holds %q, which shows the code or the number", k, v)
			}
		}
	}
}

// A code expires after CodeTTL.
func TestCodeExpires(t *testing.T) {
	f := newFixture(t, Limits{CodeTTL: 300 * time.Millisecond})
	if err := f.request(t, enrolled, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	code := f.box.codeFor(t, enrolled, 0)
	time.Sleep(400 * time.Millisecond)
	if _, err := f.verify(enrolled, code, "10.0.0.1"); wuyou.ErrorCode(err) != wuyou.EUNAUTHORIZED {
		t.Fatalf("an expired code: err = %v, want unauthorized", err)
	}
}

// Malformed input is refused before anything is counted, naming the field.
func TestMalformedInputNamesTheField(t *testing.T) {
	f := newFixture(t, Limits{})
	for _, tc := range []struct{ msisdn, code, field string }{
		{"13800000001", "123456", "msisdn"},
		{"+86 138 0000 0001", "123456", "msisdn"},
		{enrolled, "12345", "code"},
		{enrolled, "12345a", "code"},
		{enrolled, "１２３４５６", "code"}, // full-width digits
	} {
		_, err := f.verify(tc.msisdn, tc.code, "10.0.0.1")
		var we *wuyou.Error
		if !errors.As(err, &we) || we.Code != wuyou.EINVALID || len(we.Fields) != 1 || we.Fields[0].Field != tc.field {
			t.Errorf("verify(%q, %q) = %v, want invalid naming %s", tc.msisdn, tc.code, err, tc.field)
		}
	}
	if err := f.request(t, "+12", "10.0.0.1"); wuyou.ErrorCode(err) != wuyou.EINVALID {
		t.Errorf("request for +12: %v, want invalid", err)
	}
	if f.keysOf(t, enrolled) != 0 {
		t.Error("refused input left state in Redis")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
