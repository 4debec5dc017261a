package api

// nudgeRecurring tells the monthly issue of recurring programmes that the
// registry changed (an enrolment, a sign-on or sign-off, a status), so a
// seafarer who became eligible gets the month's grant within moments rather
// than at the next scheduled sweep. Config.RecurringNudge must not block.
func (s *Server) nudgeRecurring() {
	if s.cfg.RecurringNudge != nil {
		s.cfg.RecurringNudge()
	}
}
