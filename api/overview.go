package api

import (
	"context"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/quota"
)

// Overview reads a statement period's figures by day and the companies
// with the most overage (quota.PGStatements).
type Overview interface {
	// MonthOverview is period's overview with top companies by overage.
	// EINVALID (period, top).
	MonthOverview(ctx context.Context, period string, top int) (*quota.MonthOverview, error)
}

// defaultTopOverage is how many companies an overview ranks when not asked.
const defaultTopOverage = 5

// monthOverview answers GET /v1/ops/overview?period=YYYY-MM&top=N (union):
// what the console's overview draws. period defaults to this month.
func (s *Server) monthOverview(c *fiber.Ctx) error {
	var errs []wuyou.FieldError
	period := c.Query("period")
	if period == "" {
		period = billing.PeriodOf(s.cfg.Now())
	} else if _, _, err := billing.PeriodBounds(period); err != nil {
		errs = append(errs, wuyou.FieldError{Field: "period", Message: "must be a month as YYYY-MM"})
	}
	top := defaultTopOverage
	if v := c.Query("top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > quota.MaxTopOverage {
			errs = append(errs, wuyou.FieldError{Field: "top", Message: "must be an integer from 0 to " + strconv.Itoa(quota.MaxTopOverage)})
		}
		top = n
	}
	if err := wuyou.Invalid(errs); err != nil {
		return err
	}
	if s.cfg.Overview == nil {
		return wuyou.Errorf(wuyou.EUNAVAILABLE, "the overview is not available on this server")
	}
	o, err := s.cfg.Overview.MonthOverview(c.UserContext(), period, top)
	if err != nil {
		return err
	}
	return c.JSON(o)
}
