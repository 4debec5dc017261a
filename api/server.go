// Package api is how people and the carrier's systems reach Wuyou over HTTP:
// routes, authentication, tenancy checks, problem+json errors, metrics and
// the OpenAPI document. It holds no state of its own.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	json "github.com/goccy/go-json"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/quota"
	"github.com/wuyou/wuyou/token"
	"github.com/wuyou/wuyou/web"
)

// Quota is what the API needs of the quota package.
type Quota interface {
	Allowance(ctx context.Context, seafarerID string) (*quota.Allowance, error)
	RemainingNow(ctx context.Context, seafarerIDs []string) (map[string]int64, error)
	VoidGrant(ctx context.Context, seafarerID, grantID string) (*quota.LedgerEntry, error)
	// StoredVoid is the entry a grant's void wrote, or nil.
	StoredVoid(ctx context.Context, seafarerID, grantID string) (*quota.LedgerEntry, error)
}

// GrantVoider marks a grant voided in the system of record: ENOTFOUND for
// a grant the seafarer does not hold, ECONFLICT when it is voided already.
type GrantVoider interface {
	VoidGrant(ctx context.Context, seafarerID, grantID string, at time.Time) error
}

// Programmes keeps the welfare programmes (quota.PGProgrammes).
type Programmes interface {
	CreateProgramme(ctx context.Context, in quota.ProgrammeInput) (*quota.Programme, error)
	Programme(ctx context.Context, id string) (*quota.Programme, error)
	// Programmes lists a page of programmes by name. EINVALID (cursor, q).
	Programmes(ctx context.Context, f wuyou.NameFilter) ([]*quota.Programme, string, error)
}

// Issuer runs pack issuances.
type Issuer interface {
	StartAndRun(ctx context.Context, programmeID, key string, t quota.IssuanceTarget, syncLimit int) (*quota.Issuance, bool, error)
	Issuance(ctx context.Context, id string) (*quota.Issuance, error)
}

// LedgerRecorder records ledger entries written by the API (voids): in the
// system of record, then on the ledger topic. Recording one again changes
// nothing.
type LedgerRecorder interface {
	RecordLedger(ctx context.Context, seafarerID string, e *quota.LedgerEntry) error
}

// LedgerReader reads a seafarer's ledger, newest first (quota.PGLedger).
type LedgerReader interface {
	Ledger(ctx context.Context, seafarerID string, f quota.LedgerFilter) ([]*quota.LedgerEntry, string, error)
}

// Config is what the server is built from.
type Config struct {
	Crew       crew.Service
	Quota      Quota
	Programmes Programmes // nil answers 503
	// Grants, when set, is where a void is recorded first: the system of
	// record's grants (quota.PGGrants).
	Grants GrantVoider
	Issuer Issuer
	Ledger LedgerRecorder // nil records nothing beyond Quota
	// Entries is where GET …/usage reads the ledger: the system of record
	// (quota.PGLedger). nil answers 503.
	Entries LedgerReader
	Billing Billing // statements, periods, reconciliation; nil answers 503
	// Auditor answers GET /v1/ops/ledger-audit; nil answers 503.
	Auditor LedgerAuditor
	// Overview answers GET /v1/ops/overview; nil answers 503.
	Overview Overview
	// Sessions answers the carrier's real-time credit control; nil answers
	// 503.
	Sessions Sessions
	// Audit is the staff audit trail (audit.go): every successful write of
	// a person is recorded there, GET /v1/audit reads it. nil records
	// nothing and answers 503.
	Audit    AuditLog
	Verifier *Verifier
	// Ready names the dependencies /readyz checks; each must answer quickly.
	Ready    map[string]func(context.Context) error
	Registry *prometheus.Registry
	Log      *slog.Logger
	Now      wuyou.Clock
	// RecurringNudge, when set, is called after an enrolment, a bulk
	// enrolment, a PATCH of a seafarer or a vessel's sign-on or sign-off
	// succeeds (quota.RecurringEngine.Nudge): a seafarer who became
	// eligible for a recurring programme gets the month's grant at once.
	// It must not block.
	RecurringNudge func()
	// BodyLimit bounds every request body (bulk enrolment included); 0
	// means crew.MaxBulkBytes (16 MiB). Larger bodies get 413.
	BodyLimit int
	// WriteRateLimit is how many write requests (POST, PUT, PATCH, DELETE
	// under /v1) one principal may make a minute; 0 means
	// DefaultWriteRateLimit, negative no limit. Over it: 429 with Retry-After.
	WriteRateLimit int
	// SignIn is the seafarers' one-time-code sign-in; nil answers 503.
	SignIn SignIn
	// OwnKeys publishes the keys of Wuyou's own tokens at
	// /.well-known/jwks.json; nil answers 404.
	OwnKeys JWKSource
	// TrustedProxies are the proxies whose X-Forwarded-For names the
	// client address sign-in limits count (WUYOU_TRUSTED_PROXIES).
	TrustedProxies []netip.Prefix
	// RateLimitStorage holds the write budgets. nil keeps them in this
	// process, so each replica limits alone; a RedisRateLimitStore shares
	// them between every replica on the same Redis.
	RateLimitStorage fiber.Storage
}

// Server is the HTTP API.
type Server struct {
	cfg Config
	app *fiber.App
	ln  net.Listener
}

// New builds the server and its routes.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = wuyou.SystemClock
	}
	if cfg.BodyLimit == 0 {
		cfg.BodyLimit = crew.MaxBulkBytes
	}
	if cfg.WriteRateLimit == 0 {
		cfg.WriteRateLimit = DefaultWriteRateLimit
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg}
	s.app = fiber.New(fiber.Config{
		ErrorHandler: refuseOversized(errorHandler(cfg.Log)),
		// Answers are encoded by goccy/go-json (encoding/json's output,
		// without its reflection on every call); request bodies are still
		// decoded by encoding/json, whose error messages the API passes on.
		JSONEncoder:           json.Marshal,
		BodyLimit:             cfg.BodyLimit,
		DisableStartupMessage: true,
		// A client gets ReadTimeout to send a request and WriteTimeout to
		// take the answer; an idle keep-alive connection is closed after
		// IdleTimeout.
		ReadTimeout:  30 * time.Second,
		WriteTimeout: 60 * time.Second,
		IdleTimeout:  120 * time.Second,
		// Request head and body limits: see limits.go.
		ReadBufferSize:               readBufferSize,
		ReduceMemoryUsage:            true,
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		// Paths are matched decoded (a %3A in ":void", %2B in an MSISDN).
		// UnescapePath decodes by query rules ("+" is a space), so an MSISDN
		// parameter is read with pathSegment, where "+" stays "+".
		UnescapePath: true,
	})
	s.routes()
	return s
}

// App exposes the fiber app, for tests (app.Test) and benchmarks.
func (s *Server) App() *fiber.App { return s.app }

func (s *Server) routes() {
	app := s.app
	app.Use(requestIDs(), observe(s.cfg.Registry, s.cfg.Log))
	app.Use(limitBody(s.cfg.BodyLimit))

	app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	app.Get("/readyz", s.readyz)
	metrics := fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}))
	app.Get("/metrics", func(c *fiber.Ctx) error { metrics(c.Context()); return nil })
	app.Get("/openapi.json", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(openAPIDocument)
	})

	// Sign-in needs no token: registered before /v1's authentication,
	// whose middleware it never reaches (CONTRACT §7.4).
	app.Get("/.well-known/jwks.json", s.jwks)
	small := []fiber.Handler{limitBody(signInBodyLimit), bufferChunkedBody(signInBodyLimit)}
	app.Post("/v1/auth/otp", append(small, s.requestCode)...)
	app.Post(`/v1/auth/otp\:verify`, append(small, s.verifyCode)...)

	// Order matters: a request is authenticated before it may cost a Redis
	// round trip (the rate limit) or a buffered body.
	v1 := app.Group("/v1", Authenticate(s.cfg.Verifier), s.limitWrites(), bufferChunkedBody(s.cfg.BodyLimit), s.auditWrites())
	staff := Require(token.RoleUnion, token.RoleCompany)
	anyPerson := Require(token.RoleUnion, token.RoleCompany, token.RoleSeafarer)
	union := Require(token.RoleUnion)

	v1.Post("/companies", union, s.createCompany)
	v1.Get("/companies", union, s.listCompanies)
	v1.Get("/companies/:id", staff, s.getCompany)
	v1.Post("/companies/:id/seafarers", staff, s.enrolSeafarer)
	v1.Post(`/companies/:id/seafarers\:bulk`, staff, s.bulkEnrol)
	v1.Get("/companies/:id/seafarers", staff, s.listSeafarers)
	v1.Get("/seafarers/:id", anyPerson, s.getSeafarer)
	v1.Patch("/seafarers/:id", anyPerson, s.patchSeafarer) // a seafarer: their own lang only
	v1.Patch("/me", Require(token.RoleSeafarer), s.patchMe)
	v1.Post(`/companies/:id/vessels/:imo\:sign-off`, staff, s.signVessel(crew.SignOff))
	v1.Post(`/companies/:id/vessels/:imo\:sign-on`, staff, s.signVessel(crew.SignOn))
	v1.Get("/seafarers/:id/allowance", anyPerson, s.getAllowance)
	v1.Get("/seafarers/:id/usage", anyPerson, s.getUsage)
	v1.Get("/me/allowance", Require(token.RoleSeafarer), s.getMyAllowance)

	v1.Post("/programmes", union, s.createProgramme)
	v1.Get("/programmes", union, s.listProgrammes)
	v1.Get("/programmes/:id", union, s.getProgramme)
	v1.Post("/programmes/:id/issuances", union, s.startIssuance)
	v1.Get("/issuances/:id", union, s.getIssuance)
	v1.Post(`/seafarers/:id/grants/:grant_id\:void`, union, s.voidGrant)

	// Union staff "may do everything" (CONTRACT §2), so they can ask as the carrier would.
	v1.Get("/carrier/subscribers/:msisdn/allowance", Require(token.RoleCarrier, token.RoleUnion), s.carrierAllowance)
	carrierOnly := Require(token.RoleCarrier, token.RoleUnion)
	v1.Post("/carrier/sessions", carrierOnly, s.openSession)
	v1.Post(`/carrier/sessions/:id\:update`, carrierOnly, s.updateSession)
	v1.Post(`/carrier/sessions/:id\:terminate`, carrierOnly, s.terminateSession)

	v1.Get("/statements", staff, s.getStatement)
	v1.Post(`/periods/:period\:close`, union, s.closePeriod)
	v1.Post("/reconciliations", union, s.reconcile)
	v1.Get("/ops/ledger-audit", union, s.ledgerAudit)
	v1.Get("/audit", staff, s.listAudit) // a company reads only its own records
	v1.Get("/ops/overview", union, s.monthOverview)
	web.Mount(app) // the seafarer page "/", the staff "/console" and their "/assets/*"
	app.Use(func(c *fiber.Ctx) error {
		return wuyou.Errorf(wuyou.ENOTFOUND, "no route %s %s", c.Method(), c.Path())
	})
}

// readyTimeout bounds /readyz as a whole.
const readyTimeout = 2 * time.Second

// readyz runs every check at once and answers within readyTimeout even when
// a check ignores its context (a Redis client bounds socket reads by its own
// ReadTimeout, not by the context): such a check is reported as timed out
// and left to finish on its own.
func (s *Server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), readyTimeout)
	defer cancel()
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(s.cfg.Ready))
	for name, check := range s.cfg.Ready {
		go func() { results <- result{name, check(ctx)} }()
	}
	status := map[string]string{}
	for name := range s.cfg.Ready {
		status[name] = "no answer within " + readyTimeout.String()
	}
	ok := true
wait:
	for range s.cfg.Ready {
		select {
		case r := <-results:
			if r.err != nil {
				status[r.name], ok = r.err.Error(), false
			} else {
				status[r.name] = "ok"
			}
		case <-ctx.Done():
			ok = false
			break wait
		}
	}
	if !ok {
		return &notReady{checks: status} // problem+json with "checks", see problem.go
	}
	return c.JSON(status)
}

// Listen binds addr synchronously, so a taken port is an error here and not
// a goroutine's log line, then serves in the background.
func (s *Server) Listen(addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("api: listen %s: %w", addr, err)
	}
	s.ln = ln
	go func() {
		if err := s.app.Listener(lingeringListener{ln}); err != nil && !errors.Is(err, net.ErrClosed) {
			s.cfg.Log.Error("http server stopped", "err", err)
		}
	}()
	return ln.Addr(), nil
}

// Shutdown stops accepting connections and waits for in-flight requests.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.app.ShutdownWithContext(ctx)
}

// queryLimit parses ?limit= (default 50, max 500).
func queryLimit(c *fiber.Ctx) (int, error) {
	v := c.Query("limit")
	if v == "" {
		return 50, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 500 {
		return 0, wuyou.Invalid([]wuyou.FieldError{{Field: "limit", Message: "must be an integer from 1 to 500"}})
	}
	return n, nil
}

// page is the contract's list envelope.
type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}
