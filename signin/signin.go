// Package signin lets a seafarer with nothing but a phone number sign in
// (CONTRACT §7.4): a one-time code goes by SMS, through the carrier's
// gateway, and the code is exchanged for a seafarer token Wuyou signs with
// its own Ed25519 key (KeyRing), published in /.well-known/jwks.json.
//
// What it promises:
//   - Codes are six random digits, stored only as an HMAC under a secret
//     shared by the replicas (PostgreSQL), single use, and expire after
//     Limits.CodeTTL.
//   - Sends are limited per number (a cooldown and a count per window) and
//     per client address (IPv6 by /64); tries are limited per code, per
//     number (an hour and a day) and per client address. Over a limit the answer is a Limited error (429 with
//     Retry-After) and nothing is compared.
//   - A code signs in only the seafarer its SMS went to, while they hold
//     the number, and gives one token however many verify it at once.
//   - Nobody learns whether a number is enrolled: a request for any
//     well-formed number is stored, limited and answered alike, and whether
//     an SMS goes out is decided afterwards, off the request's path.
package signin

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/sms"
	"github.com/wuyou/wuyou/token"
)

// Limits bound sign-in; zero fields take DefaultLimits' values.
type Limits struct {
	CodeTTL time.Duration // how long a code may be used (5 min)
	// Sends per number: one per SendCooldown, SendsPerNumber per SendWindow.
	SendCooldown   time.Duration
	SendsPerNumber int
	SendWindow     time.Duration
	// SendsPerAddress per SendWindow from one client address: a ship's crew
	// shares one satellite address, so this is higher than per number.
	SendsPerAddress int
	// TriesPerCode wrong tries and the code is gone; TriesPerNumber tries
	// per TryWindow for a number, whatever the codes, and TriesPerNumberDay
	// a day; TriesPerAddress per TryWindow from one client address.
	TriesPerCode      int
	TriesPerNumber    int
	TriesPerNumberDay int
	TriesPerAddress   int
	TryWindow         time.Duration
}

// DefaultLimits are the limits a deployment runs with.
var DefaultLimits = Limits{
	CodeTTL:           5 * time.Minute,
	SendCooldown:      time.Minute,
	SendsPerNumber:    5,
	SendWindow:        time.Hour,
	SendsPerAddress:   60,
	TriesPerCode:      5,
	TriesPerNumber:    10,
	TriesPerNumberDay: 30,
	TriesPerAddress:   100,
	TryWindow:         time.Hour,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	pick := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	pickN := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	pick(&l.CodeTTL, d.CodeTTL)
	pick(&l.SendCooldown, d.SendCooldown)
	pickN(&l.SendsPerNumber, d.SendsPerNumber)
	pick(&l.SendWindow, d.SendWindow)
	pickN(&l.SendsPerAddress, d.SendsPerAddress)
	pickN(&l.TriesPerCode, d.TriesPerCode)
	pickN(&l.TriesPerNumber, d.TriesPerNumber)
	pickN(&l.TriesPerNumberDay, d.TriesPerNumberDay)
	pickN(&l.TriesPerAddress, d.TriesPerAddress)
	pick(&l.TryWindow, d.TryWindow)
	return l
}

// Limited is a refusal over a limit: 429, Retry-After RetryAfter.
type Limited struct {
	RetryAfter time.Duration
	What       string // what was limited, said in the answer
}

func (e *Limited) Error() string {
	return fmt.Sprintf("too many %s; retry in %d seconds", e.What, e.RetryAfterSeconds())
}

// RetryAfterSeconds is RetryAfter in whole seconds, at least 1: the
// answer's Retry-After.
func (e *Limited) RetryAfterSeconds() int64 {
	return max(int64((e.RetryAfter+time.Second-1)/time.Second), 1)
}

// Unwrap makes a Limited a wuyou ERATELIMITED error.
func (e *Limited) Unwrap() error { return &wuyou.Error{Code: wuyou.ERATELIMITED, Message: e.Error()} }

// Counter counts hits in fixed windows across replicas
// (api.RedisRateLimitStore is one).
type Counter interface {
	Hit(ctx context.Context, key string, window time.Duration) (hits int, resetIn time.Duration, err error)
}

// Holders finds who holds a number now (crew.PGStore).
type Holders interface {
	SeafarerByMSISDN(ctx context.Context, msisdn string) (*crew.Seafarer, error)
}

// SMSSender hands a text to the carrier's SMS gateway (wuyou.sms.v1).
type SMSSender interface {
	SendSMS(ctx context.Context, seafarerID, msisdn, lang, kind, text string) error
}

// Config is what a Service is built from. Every field but Now, Log and
// Registry is required.
type Config struct {
	Redis    redis.UniversalClient
	Prefix   string // WUYOU_REDIS_PREFIX
	Secret   []byte // Secret(ctx, pool, "otp", …)
	Counter  Counter
	Holders  Holders
	SMS      SMSSender
	Keys     *KeyRing
	Issuer   string // the iss of the tokens (Issuer)
	Audience string // WUYOU_JWT_AUDIENCE
	TokenTTL time.Duration
	Limits   Limits
	Now      wuyou.Clock
	Log      *slog.Logger
	Registry prometheus.Registerer
}

// Issuer is the iss of the tokens Wuyou signs itself.
const Issuer = "urn:wuyou:signin"

// sendQueue bounds the SMS waiting to go out; past it a send is dropped
// (and counted), the code stays and the seafarer may ask again.
const sendQueue = 1024

// Service is the sign-in.
type Service struct {
	cfg     Config
	codes   codes
	jobs    chan smsJob
	wg      sync.WaitGroup
	metrics *metrics

	// mu guards closed: once Close began, a late request drops its SMS
	// instead of sending on the closed queue.
	mu     sync.RWMutex
	closed bool
	// stopWorkers ends the workers' sends when Close runs out of time.
	stopWorkers context.CancelFunc
}

type smsJob struct{ msisdn, code string }

// New returns a sign-in service; Start runs its SMS sender.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Redis == nil, cfg.Counter == nil, cfg.Holders == nil, cfg.SMS == nil, cfg.Keys == nil:
		return nil, errors.New("signin: Redis, Counter, Holders, SMS and Keys are required")
	case len(cfg.Secret) < 32:
		return nil, errors.New("signin: the secret must be at least 32 bytes")
	case cfg.Issuer == "" || cfg.Audience == "" || cfg.TokenTTL <= 0:
		return nil, errors.New("signin: Issuer, Audience and TokenTTL are required")
	}
	if cfg.Now == nil {
		cfg.Now = wuyou.SystemClock
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cfg.Limits = cfg.Limits.withDefaults()
	return &Service{
		cfg:     cfg,
		codes:   codes{rdb: cfg.Redis, prefix: cfg.Prefix, secret: cfg.Secret},
		jobs:    make(chan smsJob, sendQueue),
		metrics: newMetrics(cfg.Registry),
	}, nil
}

// TokenTTL is how long the tokens it signs live.
func (s *Service) TokenTTL() time.Duration { return s.cfg.TokenTTL }

// CodeTTL is how long a code lives.
func (s *Service) CodeTTL() time.Duration { return s.cfg.Limits.CodeTTL }

// Start runs the SMS sender until Close, with workers sending at once.
func (s *Service) Start(workers int) {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopWorkers = cancel
	for range max(workers, 1) {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for job := range s.jobs {
				if ctx.Err() != nil {
					s.metrics.sms.WithLabelValues("dropped").Inc()
					continue
				}
				s.send(ctx, job)
			}
		}()
	}
}

// Close stops taking codes and sends those queued until ctx ends; what is
// left then is dropped (counted), the sends in flight are cut short, and
// Close returns once the workers have.
func (s *Service) Close(ctx context.Context) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.jobs)
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		if s.stopWorkers != nil {
			s.stopWorkers()
		}
		<-done
	}
	if s.stopWorkers != nil {
		s.stopWorkers()
	}
}

// enqueue hands a code to the SMS workers, or drops it (counted) when the
// queue is full or the service is closing.
func (s *Service) enqueue(job smsJob) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		s.metrics.sms.WithLabelValues("dropped").Inc()
		return
	}
	select {
	case s.jobs <- job:
	default:
		s.metrics.sms.WithLabelValues("dropped").Inc()
		s.cfg.Log.Warn("sign-in SMS dropped: the send queue is full")
	}
}

// RequestCode starts a sign-in for msisdn from the client address addr:
// nil (202) for every well-formed number within the limits, enrolled or not.
// EINVALID names msisdn; *Limited over a limit.
func (s *Service) RequestCode(ctx context.Context, msisdn, addr string) error {
	if err := checkMSISDN(msisdn); err != nil {
		s.metrics.requests.WithLabelValues("send", "invalid").Inc()
		return err
	}
	if err := s.countAddress(ctx, "send", addr, s.cfg.Limits.SendsPerAddress, s.cfg.Limits.SendWindow, "code requests from this address"); err != nil {
		return err
	}
	code, err := newCode()
	if err != nil {
		return err
	}
	wait, err := s.codes.store(ctx, msisdn, code, s.cfg.Limits)
	if err != nil {
		return wuyou.Errorf(wuyou.EUNAVAILABLE, "sign-in codes cannot be stored now: %v", err)
	}
	if wait > 0 {
		s.metrics.requests.WithLabelValues("send", "limited").Inc()
		return &Limited{RetryAfter: wait, What: "code requests for this number"}
	}
	s.enqueue(smsJob{msisdn: msisdn, code: code})
	s.metrics.requests.WithLabelValues("send", "accepted").Inc()
	return nil
}

// send sends the code if the number belongs to a seafarer now.
func (s *Service) send(ctx context.Context, job smsJob) {
	sf, err := s.cfg.Holders.SeafarerByMSISDN(ctx, job.msisdn)
	if wuyou.ErrorCode(err) == wuyou.ENOTFOUND {
		s.metrics.sms.WithLabelValues("not_enrolled").Inc()
		return
	}
	if err != nil {
		s.metrics.sms.WithLabelValues("failed").Inc()
		s.cfg.Log.Warn("sign-in SMS not sent: the number's holder could not be read", "err", err)
		return
	}
	// The code answers for this seafarer only: if the number changes hands
	// before it is used, it signs nobody in.
	if bound, err := s.codes.bind(ctx, job.msisdn, job.code, sf.ID); err != nil || !bound {
		outcome := "superseded" // a newer code replaced it; its own job sends that one
		if err != nil {
			outcome = "failed"
			s.cfg.Log.Warn("sign-in SMS not sent: the code could not be bound to its seafarer", "seafarer_id", sf.ID, "err", err)
		}
		s.metrics.sms.WithLabelValues(outcome).Inc()
		return
	}
	text := sms.SignInCode(sf.Lang, job.code, s.cfg.Limits.CodeTTL)
	if err := s.cfg.SMS.SendSMS(ctx, sf.ID, job.msisdn, sf.Lang, KindCode, text); err != nil {
		s.metrics.sms.WithLabelValues("failed").Inc()
		s.cfg.Log.Warn("sign-in SMS not sent", "seafarer_id", sf.ID, "err", err)
		return
	}
	s.metrics.sms.WithLabelValues("sent").Inc()
}

// KindCode is the CloudEvents type of a sign-in code's SMS.
const KindCode = "wuyou.sms.otp"

// Token is a signed-in seafarer's bearer token.
type Token struct {
	AccessToken string
	ExpiresIn   time.Duration
	SeafarerID  string
}

// errWrongCode is the one answer to a wrong, used, expired or never-sent
// code, or a number nobody holds: the caller learns only that it failed.
var errWrongCode = &wuyou.Error{Code: wuyou.EUNAUTHORIZED, Message: "wrong or expired code"}

// Verify exchanges a code for a token. EINVALID names msisdn or code (not
// six digits); EUNAUTHORIZED for a wrong or expired code; *Limited over a
// limit, in which case the code was not compared.
func (s *Service) Verify(ctx context.Context, msisdn, code, addr string) (*Token, error) {
	var fields []wuyou.FieldError
	if err := checkMSISDN(msisdn); err != nil {
		fields = append(fields, wuyou.FieldError{Field: "msisdn", Message: msisdnRule})
	}
	if !sixDigits(code) {
		fields = append(fields, wuyou.FieldError{Field: "code", Message: "must be the six digits of the SMS"})
	}
	if len(fields) > 0 {
		s.metrics.requests.WithLabelValues("verify", "invalid").Inc()
		return nil, wuyou.Invalid(fields)
	}
	if err := s.countAddress(ctx, "try", addr, s.cfg.Limits.TriesPerAddress, s.cfg.Limits.TryWindow, "sign-in tries from this address"); err != nil {
		return nil, err
	}
	ok, sentTo, wait, err := s.codes.check(ctx, msisdn, code, s.cfg.Limits)
	switch {
	case err != nil:
		return nil, wuyou.Errorf(wuyou.EUNAVAILABLE, "sign-in codes cannot be checked now: %v", err)
	case wait > 0:
		s.metrics.requests.WithLabelValues("verify", "limited").Inc()
		return nil, &Limited{RetryAfter: wait, What: "sign-in tries for this number"}
	case !ok || sentTo == "":
		// sentTo is empty when no SMS carried the code: nobody holds the
		// number, so nobody can know it.
		s.metrics.requests.WithLabelValues("verify", "wrong").Inc()
		return nil, errWrongCode
	}
	// The right code: a token for the seafarer it was sent to, if they hold
	// the number still. Until the token is made the code stays usable, so
	// an outage here costs the seafarer no new code.
	sf, err := s.cfg.Holders.SeafarerByMSISDN(ctx, msisdn)
	if wuyou.ErrorCode(err) == wuyou.ENOTFOUND || (err == nil && sf.ID != sentTo) {
		// The number changed hands since the code was sent.
		s.metrics.requests.WithLabelValues("verify", "wrong").Inc()
		return nil, errWrongCode
	} else if err != nil {
		return nil, wuyou.Errorf(wuyou.EUNAVAILABLE, "the number's holder cannot be read now: %v", err)
	}
	key, err := s.cfg.Keys.Signer()
	if err != nil {
		return nil, err
	}
	raw, err := key.Mint(token.Claims{Issuer: s.cfg.Issuer, Audience: s.cfg.Audience, Subject: sf.ID, Role: token.RoleSeafarer, TTL: s.cfg.TokenTTL}, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	used, err := s.codes.consume(ctx, msisdn, code)
	if err != nil {
		return nil, wuyou.Errorf(wuyou.EUNAVAILABLE, "sign-in codes cannot be used now: %v", err)
	}
	if !used {
		// Another verify of the same code won: one code, one token.
		s.metrics.requests.WithLabelValues("verify", "wrong").Inc()
		return nil, errWrongCode
	}
	s.metrics.requests.WithLabelValues("verify", "ok").Inc()
	return &Token{AccessToken: raw, ExpiresIn: s.cfg.TokenTTL, SeafarerID: sf.ID}, nil
}

// countAddress counts one request from addr; *Limited past max a window.
// A counter that fails lets the request through (the number's own limits,
// in the same Redis, still hold or fail the request).
func (s *Service) countAddress(ctx context.Context, op, addr string, limit int, window time.Duration, what string) error {
	hits, resetIn, err := s.cfg.Counter.Hit(ctx, "otp:"+op+":ip:"+addressGroup(addr), window)
	if err != nil {
		s.cfg.Log.Warn("sign-in address limit not checked", "op", op, "err", err)
		return nil
	}
	if hits > limit {
		verb := map[string]string{"send": "send", "try": "verify"}[op]
		s.metrics.requests.WithLabelValues(verb, "limited").Inc()
		return &Limited{RetryAfter: resetIn, What: what}
	}
	return nil
}

// addressGroup is what the per-address limits count a client address
// under: an IPv4 address itself, an IPv6 address by its /64 (one
// subscriber's usual share: counting single IPv6 addresses would give an
// attacker 2^64 budgets).
func addressGroup(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	ip = ip.Unmap()
	if ip.Is6() {
		return netip.PrefixFrom(ip, 64).Masked().String()
	}
	return ip.String()
}

const msisdnRule = "must be E.164: + and 8 to 15 digits"

func checkMSISDN(msisdn string) error {
	if !crew.ValidMSISDN(msisdn) {
		return wuyou.Invalid([]wuyou.FieldError{{Field: "msisdn", Message: msisdnRule}})
	}
	return nil
}

func sixDigits(code string) bool {
	return len(code) == 6 && strings.Trim(code, "0123456789") == ""
}

// newCode is six uniformly random digits.
func newCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", fmt.Errorf("signin: random code: %w", err)
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

type metrics struct {
	requests *prometheus.CounterVec
	sms      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wuyou_signin_requests_total",
			Help: "Sign-in requests by op (send, verify) and outcome (accepted, ok, wrong, limited, invalid).",
		}, []string{"op", "outcome"}),
		sms: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wuyou_signin_sms_total",
			Help: "Sign-in codes by what became of their SMS (sent, not_enrolled, superseded, failed, dropped).",
		}, []string{"outcome"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.sms)
	}
	return m
}
