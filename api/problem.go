package api

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/wuyou/wuyou"
)

// problem is an RFC 9457 problem document.
type problem struct {
	Type   string             `json:"type"`
	Title  string             `json:"title"`
	Status int                `json:"status"`
	Detail string             `json:"detail"`
	Reason string             `json:"reason,omitempty"`
	Errors []wuyou.FieldError `json:"errors,omitempty"`
	// Checks is /readyz's answer when a dependency is not ready.
	Checks map[string]string `json:"checks,omitempty"`
	// RequestID is the request's X-Request-Id, for matching a report to
	// the access log.
	RequestID string `json:"request_id,omitempty"`
}

// notReady is /readyz's refusal: each dependency checked, "ok" or what
// went wrong.
type notReady struct{ checks map[string]string }

func (e *notReady) Error() string { return "a dependency is not ready" }

// statusOf is the one place where domain error codes become HTTP statuses.
var statusOf = map[string]int{
	wuyou.EINVALID:       http.StatusBadRequest,
	wuyou.EUNAUTHORIZED:  http.StatusUnauthorized,
	wuyou.EFORBIDDEN:     http.StatusForbidden,
	wuyou.ENOTFOUND:      http.StatusNotFound,
	wuyou.ECONFLICT:      http.StatusConflict,
	wuyou.ETOOLARGE:      http.StatusRequestEntityTooLarge,
	wuyou.EUNPROCESSABLE: http.StatusUnprocessableEntity,
	wuyou.ERATELIMITED:   http.StatusTooManyRequests,
	wuyou.EUNAVAILABLE:   http.StatusServiceUnavailable,
	wuyou.EINTERNAL:      http.StatusInternalServerError,
}

// errorHandler renders every error as problem+json. Only unknown errors are
// logged with detail; the client sees "internal error" for them. Log lines
// name the route pattern, never the raw path: a path may hold an MSISDN.
func errorHandler(log *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		p := problem{Type: "about:blank"}
		var we *wuyou.Error
		var fe *fiber.Error
		var nr *notReady
		route := c.Route().Path
		switch {
		case errors.As(err, &nr):
			p.Status, p.Detail, p.Checks = http.StatusServiceUnavailable, nr.Error(), nr.checks
		case errors.As(err, &we):
			p.Status = statusOf[we.Code]
			p.Detail, p.Errors, p.Reason = we.Message, we.Fields, we.Reason
			p.Type = "https://wuyou.dev/problems/" + we.Code
		case errors.As(err, &fe):
			p.Status, p.Detail = fe.Code, fe.Message
		case dependencyDown(err):
			p.Status, p.Detail = http.StatusServiceUnavailable, "a dependency is unavailable; retry shortly"
			log.Warn("dependency unavailable", "method", utils.CopyString(c.Method()), "route", route, "request_id", requestIDOf(c), "err", err)
		default:
			p.Status, p.Detail = http.StatusInternalServerError, "internal error"
			log.Error("request failed", "method", utils.CopyString(c.Method()), "route", route, "request_id", requestIDOf(c), "err", err)
		}
		if p.Status == 0 {
			p.Status = http.StatusInternalServerError
		}
		p.Title = http.StatusText(p.Status)
		p.RequestID = requestIDOf(c)
		if p.Status == http.StatusServiceUnavailable {
			c.Set(fiber.HeaderRetryAfter, "5")
		}
		// An error that knows when to come back says so (signin.Limited).
		var wait interface{ RetryAfterSeconds() int64 }
		if errors.As(err, &wait) {
			c.Set(fiber.HeaderRetryAfter, strconv.FormatInt(wait.RetryAfterSeconds(), 10))
		}
		c.Status(p.Status)
		c.Set(fiber.HeaderContentType, "application/problem+json")
		return c.JSON(p, "application/problem+json")
	}
}

// dependencyDown reports errors of an unreachable or unresponsive Redis or
// Kafka: network errors and timeouts. They are 503, not 500.
func dependencyDown(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrClosed)
}
