package api

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/audit"
	"github.com/wuyou/wuyou/token"
)

// The staff audit trail (CONTRACT §7.5). auditWrites wraps every /v1
// route: a write (POST, PUT, PATCH, DELETE) made with a person's token
// (union, company, seafarer; the carrier is a system) that succeeds (2xx)
// becomes one audit record. Each write handler says what it did with
// noteWrite; a write route without a note is still recorded, by its method
// and route. A refused or failed request records nothing. The actor rides
// in the request's context (wuyou.WithActor), so what the write records on
// its way (an issuance, its grants' ledger entries) names them too.

// AuditLog is the trail (*audit.PGLog).
type AuditLog interface {
	// Append stores a record under a new id. Errors are the store's.
	Append(ctx context.Context, r audit.Record) (*audit.Record, error)
	// Records reads a page, newest first. EINVALID naming the field.
	Records(ctx context.Context, f audit.Filter) ([]audit.Record, string, error)
}

// auditWriteTimeout bounds the recording of one write, which runs after
// the write itself and whatever became of the client's connection.
const auditWriteTimeout = 5 * time.Second

type auditNoteKey struct{}

// auditNote is what a write handler says its write did.
type auditNote struct{ action, resource, summary string }

// noteWrite records, for the audit trail, what the request's write did: the
// action (audit.Action*), the resource below /v1 and a short summary. It
// is recorded only when the request succeeds.
func noteWrite(c *fiber.Ctx, action, resource, summary string) {
	c.Locals(auditNoteKey{}, auditNote{action: action, resource: resource, summary: summary})
}

// isPerson reports whether a role is a person's (whose writes are audited).
func isPerson(role string) bool {
	return role == token.RoleUnion || role == token.RoleCompany || role == token.RoleSeafarer
}

// auditWrites is the middleware that records successful writes of people.
func (s *Server) auditWrites() fiber.Handler {
	return func(c *fiber.Ctx) error {
		p := PrincipalOf(c)
		if !isWrite(c.Method()) || !isPerson(p.Role) {
			return c.Next()
		}
		actor := wuyou.Actor{Sub: p.Subject, Role: p.Role, CompanyID: p.CompanyID}
		c.SetUserContext(wuyou.WithActor(c.UserContext(), actor))
		if err := c.Next(); err != nil {
			return err // refused or failed: nothing was done to record
		}
		if status := c.Response().StatusCode(); status < 200 || status >= 300 {
			return nil
		}
		note, ok := c.Locals(auditNoteKey{}).(auditNote)
		if !ok {
			// A write route that says nothing of itself: its pattern, never
			// its path (which may hold an MSISDN).
			route := strings.TrimPrefix(c.Route().Path, "/v1/")
			note = auditNote{action: utils.CopyString(c.Method()) + " " + route, resource: route}
		}
		s.recordWrite(c, actor, note)
		return nil
	}
}

// recordWrite appends the record of a write that succeeded. The write is
// done and answered whatever happens here, so a record that cannot be
// stored is logged (without the summary, which may name people) for an
// operator to see, not turned into an error for the client.
func (s *Server) recordWrite(c *fiber.Ctx, actor wuyou.Actor, note auditNote) {
	if s.cfg.Audit == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.UserContext()), auditWriteTimeout)
	defer cancel()
	_, err := s.cfg.Audit.Append(ctx, audit.Record{
		At: s.cfg.Now(), Actor: actor, Action: note.action, Resource: note.resource,
		RequestID: requestIDOf(c), Summary: note.summary,
	})
	if err != nil {
		s.cfg.Log.Error("a staff write succeeded but its audit record was not stored",
			"action", note.action, "resource", note.resource, "request_id", requestIDOf(c), "err", err)
	}
}

// listAudit answers GET /v1/audit?actor=&resource=&from=&to=: union staff
// read the whole trail, a company only what its own tokens did.
func (s *Server) listAudit(c *fiber.Ctx) error {
	var errs []wuyou.FieldError
	field := func(err error) {
		var we *wuyou.Error
		if err != nil && errors.As(err, &we) {
			errs = append(errs, we.Fields...)
		}
	}
	limit, err := queryLimit(c)
	field(err)
	from, err := queryTime(c, "from")
	field(err)
	to, err := queryTime(c, "to")
	field(err)
	f := audit.Filter{Actor: c.Query("actor"), Resource: c.Query("resource"), From: from, To: to,
		Cursor: c.Query("cursor"), Limit: limit}
	if len(errs) == 0 {
		_, err = f.Check()
		field(err)
	}
	if err := wuyou.Invalid(errs); err != nil {
		return err
	}
	if p := PrincipalOf(c); p.Role == token.RoleCompany {
		f.CompanyID = p.CompanyID // never another company's records
	}
	if s.cfg.Audit == nil {
		return wuyou.Errorf(wuyou.EUNAVAILABLE, "the audit trail is not available on this server")
	}
	records, next, err := s.cfg.Audit.Records(c.UserContext(), f)
	if err != nil {
		return err
	}
	if records == nil {
		records = []audit.Record{}
	}
	return c.JSON(page[audit.Record]{Items: records, NextCursor: next})
}
