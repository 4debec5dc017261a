// Package wuyou holds what every part of Wuyou shares: the domain error type
// and the clock. The domain itself lives in crew/, quota/, billing/ and
// carrier/; api/ is how people reach it and cmd/ wires it together.
package wuyou

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. Each maps to one HTTP status in api/ and nowhere else.
const (
	ECONFLICT      = "conflict"      // 409: duplicate, idempotency key reused with another body
	EINTERNAL      = "internal"      // 500: a bug or an unexpected driver error
	EINVALID       = "invalid"       // 400: malformed or invalid input
	ENOTFOUND      = "not_found"     // 404: absent, or another tenant's
	EUNAUTHORIZED  = "unauthorized"  // 401: no or bad credentials
	EFORBIDDEN     = "forbidden"     // 403: valid credentials, action not allowed
	EUNPROCESSABLE = "unprocessable" // 422: a business rule refuses it (budget exhausted)
	EUNAVAILABLE   = "unavailable"   // 503: a dependency is down
	ERATELIMITED   = "rate_limited"  // 429
	ETOOLARGE      = "too_large"     // 413: body or row limit exceeded
)

// FieldError names one invalid field of an input and why it is invalid.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is the one error type of the domain. Its Message is safe to show to
// the caller; anything else is wrapped as EINTERNAL.
type Error struct {
	Code    string
	Message string
	Fields  []FieldError
	// Reason is a short machine-readable word for business-rule refusals
	// (for example "budget_exhausted").
	Reason string
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return fmt.Sprintf("wuyou: %s: %s", e.Code, e.Message)
	}
	return fmt.Sprintf("wuyou: %s: %s %v", e.Code, e.Message, e.Fields)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EINVALID error listing every field error. It returns
// nil when fields is empty, so validators can end with `return wuyou.Invalid(errs)`.
func Invalid(fields []FieldError) error {
	if len(fields) == 0 {
		return nil
	}
	msg := fields[0].Field + ": " + fields[0].Message
	if len(fields) > 1 {
		msg = fmt.Sprintf("%s (and %d more)", msg, len(fields)-1)
	}
	return &Error{Code: EINVALID, Message: msg, Fields: fields}
}

// ErrorCode returns the code of err, or EINTERNAL when err is not an *Error.
// A nil error has no code.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the caller-safe message of err.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// Clock tells the time. Everything where time decides an outcome (expiry,
// effective dates, periods, the dedupe window) takes one, so tests do not sleep.
type Clock func() time.Time

// SystemClock is the wall clock in UTC.
func SystemClock() time.Time { return time.Now().UTC() }
