package crew_test

import (
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/carrier"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/quota"
)

// PGStore answers, without adapters, every interface the rest of Wuyou
// declares for the registry. (Checked here: these packages import crew.)
var (
	_ quota.Roster      = (*crew.PGStore)(nil)
	_ quota.BatchRoster = (*crew.PGStore)(nil)
	_ carrier.Resolver  = (*crew.PGStore)(nil)
	_ carrier.MSISDNs   = (*crew.PGStore)(nil)
	_ billing.Crews     = (*crew.PGStore)(nil)
)
