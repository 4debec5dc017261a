package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/quota"
)

// Sessions is real-time credit control for the carrier (CONTRACT §7.3,
// carrier.Sessions).
type Sessions interface {
	Open(ctx context.Context, r carrier.SessionRequest) (*quota.SessionGrant, error)
	Update(ctx context.Context, sessionID string, used, requested int64) (*quota.SessionGrant, error)
	Terminate(ctx context.Context, sessionID string, used int64) (*quota.SessionCharge, error)
}

var errNoSessions = &wuyou.Error{Code: wuyou.EUNAVAILABLE, Message: "real-time sessions are not configured"}

// maxSessionAmount bounds requested and used: a year of seconds, 1 TiB,
// or 100,000 SMS are all far below it.
const maxSessionAmount = int64(1) << 40

// amountField checks one amount of a session request.
func amountField(errs []wuyou.FieldError, name string, v *int64, required bool) []wuyou.FieldError {
	switch {
	case v == nil && required:
		return append(errs, wuyou.FieldError{Field: name, Message: "is required"})
	case v == nil:
		return errs
	case *v < 0:
		return append(errs, wuyou.FieldError{Field: name, Message: "must not be negative"})
	case *v > maxSessionAmount:
		return append(errs, wuyou.FieldError{Field: name, Message: "is too large"})
	}
	return errs
}

// strictBody decodes a request body strictly: an unknown field or a
// value of the wrong type is a 400 naming it.
func strictBody(c *fiber.Ctx, v any) error {
	d := json.NewDecoder(bytes.NewReader(c.Body()))
	d.DisallowUnknownFields()
	err := d.Decode(v)
	if err == nil && d.More() {
		return wuyou.Errorf(wuyou.EINVALID, "body must be one JSON object")
	}
	if err == nil {
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return wuyou.Invalid([]wuyou.FieldError{{Field: typeErr.Field, Message: "must be " + jsonKind(typeErr.Type.String()) + ", not " + typeErr.Value}})
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if name, _ = strconv.Unquote(name); name == "" {
			name = `""` // a member with an empty name: named as written
		}
		return wuyou.Invalid([]wuyou.FieldError{{Field: name, Message: "is not a field of this request"}})
	}
	return wuyou.Errorf(wuyou.EINVALID, "body must be a JSON object of the documented fields: %v", err)
}

// jsonKind names a Go type as a JSON value.
func jsonKind(goType string) string {
	switch strings.TrimPrefix(goType, "*") {
	case "int64":
		return "a whole number"
	case "string":
		return "a string"
	case "time.Time":
		return "an RFC 3339 time"
	}
	return "a " + goType
}

// sessionOpenInput is the body of POST /v1/carrier/sessions.
type sessionOpenInput struct {
	SessionID      string     `json:"session_id"`
	MSISDN         string     `json:"msisdn"`
	Unit           string     `json:"unit"`
	Requested      *int64     `json:"requested"`
	CallTime       *time.Time `json:"call_time"`
	VisitedCountry string     `json:"visited_country"`
	CalledNumber   string     `json:"called_number"`
}

// sessionUpdateInput is the body of …:update; :terminate has only used.
type sessionUpdateInput struct {
	Used      *int64 `json:"used"`
	Requested *int64 `json:"requested"`
}

type sessionTerminateInput struct {
	Used *int64 `json:"used"`
}

func (s *Server) openSession(c *fiber.Ctx) error {
	if s.cfg.Sessions == nil {
		return errNoSessions
	}
	var in sessionOpenInput
	if err := strictBody(c, &in); err != nil {
		return err
	}
	var errs []wuyou.FieldError
	if p := wuyou.CheckText(in.SessionID, true, 128); p != "" {
		errs = append(errs, wuyou.FieldError{Field: "session_id", Message: p})
	}
	if !crew.ValidMSISDN(in.MSISDN) {
		errs = append(errs, wuyou.FieldError{Field: "msisdn", Message: "must be an E.164 number: + and 8 to 15 digits"})
	}
	if in.Unit == "" {
		in.Unit = billing.UnitSeconds
	}
	if !billing.ValidUnit(in.Unit) {
		errs = append(errs, wuyou.FieldError{Field: "unit", Message: "must be one of seconds, bytes, sms"})
	}
	errs = amountField(errs, "requested", in.Requested, true)
	if in.VisitedCountry != "" && !crew.ValidCountry(in.VisitedCountry) {
		errs = append(errs, wuyou.FieldError{Field: "visited_country", Message: "must be an ISO 3166 alpha-2 code"})
	}
	if p := wuyou.CheckText(in.CalledNumber, false, 32); p != "" {
		errs = append(errs, wuyou.FieldError{Field: "called_number", Message: p})
	}
	if err := wuyou.Invalid(errs); err != nil {
		return err
	}
	callTime := s.cfg.Now()
	if in.CallTime != nil {
		callTime = *in.CallTime
	}
	g, err := s.cfg.Sessions.Open(c.UserContext(), carrier.SessionRequest{
		SessionID: utils.CopyString(in.SessionID), MSISDN: in.MSISDN, Unit: in.Unit, Requested: *in.Requested,
		CallTime: callTime, VisitedCountry: in.VisitedCountry, CalledNumber: in.CalledNumber,
	})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(g)
}

// sessionIDParam is the session id of an :update or :terminate path, read
// from the path as sent and decoded as RFC 3986 decodes a path segment: a
// literal "+" stays "+" (Diameter and SIP session ids hold them, and
// clients rarely escape them), where the server's UnescapePath would make
// it a space and the session unknown (see pathSegment).
func sessionIDParam(c *fiber.Ctx, verb string) string {
	raw := string(c.Request().URI().PathOriginal())
	if i := strings.LastIndexByte(raw, '/'); i >= 0 {
		if seg, err := url.PathUnescape(raw[i+1:]); err == nil {
			if id, ok := strings.CutSuffix(seg, ":"+verb); ok {
				return id
			}
		}
	}
	return utils.CopyString(c.Params("id"))
}

func (s *Server) updateSession(c *fiber.Ctx) error {
	if s.cfg.Sessions == nil {
		return errNoSessions
	}
	var in sessionUpdateInput
	if err := strictBody(c, &in); err != nil {
		return err
	}
	errs := amountField(nil, "used", in.Used, true)
	errs = amountField(errs, "requested", in.Requested, true)
	if err := wuyou.Invalid(errs); err != nil {
		return err
	}
	g, err := s.cfg.Sessions.Update(c.UserContext(), sessionIDParam(c, "update"), *in.Used, *in.Requested)
	if err != nil {
		return err
	}
	return c.JSON(g)
}

func (s *Server) terminateSession(c *fiber.Ctx) error {
	if s.cfg.Sessions == nil {
		return errNoSessions
	}
	var in sessionTerminateInput
	if err := strictBody(c, &in); err != nil {
		return err
	}
	if err := wuyou.Invalid(amountField(nil, "used", in.Used, true)); err != nil {
		return err
	}
	ch, err := s.cfg.Sessions.Terminate(c.UserContext(), sessionIDParam(c, "terminate"), *in.Used)
	if err != nil {
		return err
	}
	return c.JSON(ch)
}
