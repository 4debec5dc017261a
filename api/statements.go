package api

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/audit"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/token"
)

// Billing is what the API needs for statements, periods and reconciliation.
type Billing interface {
	// Statement builds payer's statement of period. EINVALID, ENOTFOUND.
	Statement(ctx context.Context, period string, payer billing.Payer) (*billing.Statement, error)
	// ClosePeriod freezes period's statements. EINVALID, EUNPROCESSABLE
	// (the period has not ended).
	ClosePeriod(ctx context.Context, period string) (*billing.PeriodState, error)
	// Reconcile compares the carrier's settlement CSV with Wuyou's figures.
	// EINVALID.
	Reconcile(ctx context.Context, period string, settlement io.Reader) (*billing.Reconciliation, error)
}

const mimeCSV = "text/csv"

// wantsCSV reports whether the client prefers CSV to JSON.
func wantsCSV(c *fiber.Ctx) bool {
	return c.Accepts(fiber.MIMEApplicationJSON, mimeCSV) == mimeCSV
}

func (s *Server) billing() (Billing, error) {
	if s.cfg.Billing == nil {
		return nil, wuyou.Errorf(wuyou.EUNAVAILABLE, "statements are not available on this server")
	}
	return s.cfg.Billing, nil
}

// getStatement answers GET /v1/statements?period=&payer=. Union staff read
// any statement; a company only its own company: statement (another
// company's is not found, other payers are forbidden), without free calls
// (billing.Statement.WithoutFreeCalls).
func (s *Server) getStatement(c *fiber.Ctx) error {
	var errs []wuyou.FieldError
	period := c.Query("period")
	if _, _, err := billing.PeriodBounds(period); err != nil {
		errs = append(errs, wuyou.FieldError{Field: "period", Message: "must be a month as YYYY-MM"})
	}
	payer, err := billing.ParsePayer(c.Query("payer"))
	if err != nil {
		errs = append(errs, wuyou.FieldError{Field: "payer", Message: "must be programme:{id}, company:{id} or seafarer:{id}"})
	}
	if err := wuyou.Invalid(errs); err != nil {
		return err
	}
	if p := PrincipalOf(c); p.Role == token.RoleCompany {
		switch {
		case payer.Kind != billing.PayerCompany:
			return wuyou.Errorf(wuyou.EFORBIDDEN, "a company may read only its own company statement")
		case payer.ID != p.CompanyID:
			return wuyou.Errorf(wuyou.ENOTFOUND, "company %s not found", payer.ID)
		}
	}
	b, err := s.billing()
	if err != nil {
		return err
	}
	st, err := b.Statement(c.UserContext(), period, payer)
	if err != nil {
		return err
	}
	// A company never learns that its crew called a free number (the
	// union's hotline about their employer): its view has no free calls.
	var view interface{ WriteCSV(io.Writer) error } = st
	if PrincipalOf(c).Role == token.RoleCompany {
		view = st.WithoutFreeCalls()
	}
	if wantsCSV(c) {
		var buf bytes.Buffer
		if err := view.WriteCSV(&buf); err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, mimeCSV+"; charset=utf-8")
		c.Set(fiber.HeaderContentDisposition, `attachment; filename="statement-`+period+`-`+payer.Kind+`-`+payer.ID+`.csv"`)
		return c.Send(buf.Bytes())
	}
	return c.JSON(view)
}

// closePeriod answers POST /v1/periods/{YYYY-MM}:close.
func (s *Server) closePeriod(c *fiber.Ctx) error {
	b, err := s.billing()
	if err != nil {
		return err
	}
	st, err := b.ClosePeriod(c.UserContext(), utils.CopyString(c.Params("period")))
	if err != nil {
		return err
	}
	summary := "closed period " + st.Period
	if st.Seafarers != nil {
		summary += fmt.Sprintf(": %d seafarers' figures frozen", *st.Seafarers)
	}
	noteWrite(c, audit.ActionPeriodClose, "periods/"+st.Period, summary)
	return c.JSON(st)
}

// reconcile answers POST /v1/reconciliations?period=YYYY-MM with the
// carrier's settlement CSV as the body, read as a stream one row at a time.
func (s *Server) reconcile(c *fiber.Ctx) error {
	period := c.Query("period")
	if _, _, err := billing.PeriodBounds(period); err != nil {
		return err
	}
	if ct := strings.ToLower(string(c.Request().Header.ContentType())); !strings.HasPrefix(ct, mimeCSV) {
		return wuyou.Errorf(wuyou.EINVALID, "Content-Type must be text/csv: the carrier's settlement with header %s",
			strings.Join(billing.SettlementColumns, ","))
	}
	b, err := s.billing()
	if err != nil {
		return err
	}
	var body io.Reader = bytes.NewReader(c.Body())
	if stream := c.Context().RequestBodyStream(); stream != nil {
		body = stream
	}
	rep, err := b.Reconcile(c.UserContext(), period, bufio.NewReaderSize(body, 64<<10))
	if err != nil {
		return err
	}
	noteWrite(c, audit.ActionReconcile, "periods/"+rep.Period, fmt.Sprintf("reconciled with the carrier's settlement: %d matched, %d differences, %d missing in Wuyou, %d missing at the carrier, %d invalid rows",
		rep.Matched, len(rep.Differences), len(rep.MissingInWuyou), len(rep.MissingInCarrier), rep.InvalidRowCount))
	if wantsCSV(c) {
		var buf bytes.Buffer
		if err := rep.WriteCSV(&buf); err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, mimeCSV+"; charset=utf-8")
		return c.Send(buf.Bytes())
	}
	return c.JSON(rep)
}
