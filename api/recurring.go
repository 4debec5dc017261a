package api

import "github.com/wuyou/wuyou/quota"

// recurringAudience names a recurring programme's audience for the audit
// trail.
func recurringAudience(p *quota.Programme) string {
	switch {
	case p.CompanyID != "":
		return "company " + p.CompanyID
	case p.VesselIMO != "":
		return "vessel " + p.VesselIMO
	}
	return "everyone enrolled"
}

// nudgeRecurring tells the monthly issue of recurring programmes that the
// registry changed (an enrolment, a sign-on or sign-off, a status), so a
// seafarer who became eligible gets the month's grant within moments rather
// than at the next scheduled sweep. Config.RecurringNudge must not block.
func (s *Server) nudgeRecurring() {
	if s.cfg.RecurringNudge != nil {
		s.cfg.RecurringNudge()
	}
}
