package api

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/quota"
)

// LedgerAuditor checks that the hot state's balances are explained by the
// ledger in the system of record (*quota.Auditor is one).
type LedgerAuditor interface {
	// AuditPage audits a page of seafarers and returns the cursor of the
	// next page ("" at the end). EINVALID for a malformed cursor.
	AuditPage(ctx context.Context, cursor string, limit int) ([]*quota.AuditReport, string, error)
}

// ledgerAudit answers GET /v1/ops/ledger-audit (union): for each seafarer of
// the page, whether every grant's remaining amount in Redis is what the
// system of record's grants and ledger leave of it, and whether Redis
// remembers exactly the events the ledger recorded; the differences when
// not. wuyouctl audit pages through it.
func (s *Server) ledgerAudit(c *fiber.Ctx) error {
	if s.cfg.Auditor == nil {
		return wuyou.Errorf(wuyou.EUNAVAILABLE, "this deployment cannot audit the ledger")
	}
	limit, err := queryLimit(c)
	if err != nil {
		return err
	}
	reports, next, err := s.cfg.Auditor.AuditPage(c.UserContext(), c.Query("cursor"), limit)
	if err != nil {
		return err
	}
	if reports == nil {
		reports = []*quota.AuditReport{}
	}
	return c.JSON(page[*quota.AuditReport]{Items: reports, NextCursor: next})
}
