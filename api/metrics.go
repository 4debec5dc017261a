package api

import (
	"log/slog"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/requestid"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/prometheus/client_golang/prometheus"
)

// Strings fiber hands out (c.Method(), c.Path(), c.Params(), c.Query(),
// c.Get() and what is read from the body without decoding) point into
// buffers fiber reuses for the next request on any connection. A string
// kept beyond its handler — a metric label, a map key, a goroutine's
// argument, a value logged later — must be copied (utils.CopyString), or it
// changes under its holder ("GET" becomes "GETT").

// requestIDKey is where requestIDs keeps a request's id (c.Locals).
type requestIDKey struct{}

// maxRequestIDLen bounds an id taken from the client.
const maxRequestIDLen = 128

// saneRequestID reports whether a client's X-Request-Id may be kept: 1 to
// 128 printable ASCII characters.
func saneRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// requestIDs gives every request an id: the client's X-Request-Id when it is
// sane, else a new one. The id is echoed in the response, written in the
// access log and put in problem+json as request_id.
func requestIDs() fiber.Handler {
	mw := requestid.New(requestid.Config{
		Header:     fiber.HeaderXRequestID,
		ContextKey: requestIDKey{},
		Generator:  utils.UUIDv4,
	})
	return func(c *fiber.Ctx) error {
		if id := c.Get(fiber.HeaderXRequestID); id != "" && !saneRequestID(id) {
			c.Request().Header.Del(fiber.HeaderXRequestID) // requestid then makes one
		}
		return mw(c)
	}
}

// requestIDOf is the request's id (a copy, safe to keep), or "" before
// requestIDs has run.
func requestIDOf(c *fiber.Ctx) string {
	id, _ := c.Locals(requestIDKey{}).(string)
	return utils.CopyString(id)
}

// operationsRoutes are polled by probes and scrapers; their access log lines
// are written at debug level so they do not drown the API's.
var operationsRoutes = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// observe records every request: its latency by method, route pattern and
// status, and one access log line. The route pattern (not the raw path)
// keeps label cardinality bounded and personal data — an MSISDN or a name
// in a path — out of the logs. An error is rendered here, so the status
// recorded is the one sent.
func observe(reg prometheus.Registerer, log *slog.Logger) fiber.Handler {
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "wuyou",
		Name:      "http_request_duration_seconds",
		Help:      "HTTP request latency by method, route and status.",
		Buckets:   []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"method", "route", "status"})
	reg.MustRegister(latency)
	return func(c *fiber.Ctx) error {
		start := time.Now()
		if err := c.Next(); err != nil {
			if herr := c.App().ErrorHandler(c, err); herr != nil {
				_ = c.SendStatus(fiber.StatusInternalServerError)
			}
		}
		elapsed := time.Since(start)
		status := c.Response().StatusCode()
		// Label values are kept by the registry: copy the method out of
		// fiber's buffer. The route pattern is the registered string.
		method, route := utils.CopyString(c.Method()), c.Route().Path
		latency.WithLabelValues(method, route, strconv.Itoa(status)).Observe(elapsed.Seconds())

		level := slog.LevelInfo
		if operationsRoutes[route] {
			level = slog.LevelDebug
		}
		log.LogAttrs(c.UserContext(), level, "request",
			slog.String("method", method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
			slog.String("request_id", requestIDOf(c)),
		)
		return nil
	}
}
