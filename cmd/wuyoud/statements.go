package main

import (
	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/quota"
)

// newStatements builds statements over the ledger in PostgreSQL, with the
// registry's and the programmes' names; amounts without a currency show the
// tariff's.
func newStatements(q *quota.PGStatements, p *quota.PGProgrammes, c *crew.PGStore, tariff *billing.Tariff, now wuyou.Clock) *billing.Statements {
	return &billing.Statements{
		Store: q, Registry: billing.JoinRegistry{Programmes: p, Crews: c}, Now: now,
		Currency:  tariff.Rate(billing.Call{Time: now()}, "").OveragePrice.Currency,
		CrewNames: c, ProgrammeNames: p,
	}
}
