package api

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/quota"
)

// LedgerAuditor checks that balances are explained by the ledger; the quota
// store (*quota.RedisStore) is one. The server uses it when Config.Quota
// implements it.
type LedgerAuditor interface {
	// AuditPage audits a page of the seafarers holding quota state and
	// returns the cursor of the next page ("" at the end). EINVALID for a
	// malformed cursor.
	AuditPage(ctx context.Context, cursor string, limit int) ([]*quota.AuditReport, string, error)
	// AuditSystemOfRecord adds to a report the entries Redis holds that
	// the system of record does not.
	AuditSystemOfRecord(ctx context.Context, r *quota.AuditReport, sor quota.LedgerLister) error
}

// ledgerAudit answers GET /v1/ops/ledger-audit (union): for each seafarer of
// the page, whether every grant's remaining amount and every remembered
// event identity is explained by the ledger, and every entry is in the
// system of record (when there is one), and the differences when not.
// A page may hold fewer items than the limit with more to follow: the scan
// behind it is bounded per request. wuyouctl audit pages through it.
func (s *Server) ledgerAudit(c *fiber.Ctx) error {
	auditor, ok := s.cfg.Quota.(LedgerAuditor)
	if !ok {
		return wuyou.Errorf(wuyou.EUNAVAILABLE, "this deployment cannot audit the ledger")
	}
	limit, err := queryLimit(c)
	if err != nil {
		return err
	}
	reports, next, err := auditor.AuditPage(c.UserContext(), c.Query("cursor"), limit)
	if err != nil {
		return err
	}
	if s.cfg.Entries != nil { // the ledger's system of record holds every entry too
		for _, r := range reports {
			if err := auditor.AuditSystemOfRecord(c.UserContext(), r, s.cfg.Entries); err != nil {
				return err
			}
		}
	}
	if reports == nil {
		reports = []*quota.AuditReport{}
	}
	return c.JSON(page[*quota.AuditReport]{Items: reports, NextCursor: next})
}
