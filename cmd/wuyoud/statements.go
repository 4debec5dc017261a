package main

import (
	"context"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/quota"
)

// statementRegistry adapts the crew registry and the programmes to
// billing.Registry.
type statementRegistry struct {
	crew  *crew.RedisStore
	quota *quota.RedisStore
}

func (r statementRegistry) ProgrammeExists(ctx context.Context, id string) error {
	_, err := r.quota.Programme(ctx, id)
	return err
}

func (r statementRegistry) SeafarerExists(ctx context.Context, id string) error {
	_, err := r.crew.Seafarer(ctx, id)
	return err
}

func (r statementRegistry) CompanyCrew(ctx context.Context, companyID string, fn func(string) error) error {
	if _, err := r.crew.Company(ctx, companyID); err != nil {
		return err
	}
	return r.crew.EachSeafarer(ctx, crew.SeafarerFilter{CompanyID: companyID}, func(sf *crew.Seafarer) error { return fn(sf.ID) })
}

// newStatements builds statements over the quota store; amounts without a
// currency show the tariff's.
func newStatements(q *quota.RedisStore, c *crew.RedisStore, tariff *billing.Tariff, now wuyou.Clock) *billing.Statements {
	return &billing.Statements{
		Store: q, Registry: statementRegistry{crew: c, quota: q}, Now: now,
		Currency: tariff.Rate(billing.Call{Time: now()}, "").OveragePrice.Currency,
	}
}
