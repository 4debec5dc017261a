package api

import (
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/audit"
	"github.com/wuyou/wuyou/billing"
	"github.com/wuyou/wuyou/quota"
	"github.com/wuyou/wuyou/sms"
	"github.com/wuyou/wuyou/token"
)

func (s *Server) getAllowance(c *fiber.Ctx) error {
	return s.allowance(c, c.Params("id"))
}

func (s *Server) getMyAllowance(c *fiber.Ctx) error {
	return s.allowance(c, PrincipalOf(c).Subject)
}

// allowance answers a seafarer reading its own balance with one Redis round
// trip: the token already names the seafarer, so the profile is read only
// when there are no grants at all (to tell "nothing yet" from "no such
// seafarer"). Staff reads check tenancy on the profile first.
func (s *Server) allowance(c *fiber.Ctx, id string) error {
	ctx := c.UserContext()
	p := PrincipalOf(c)
	self := p.Role == token.RoleSeafarer && p.Subject == id
	if !self {
		if _, err := s.seafarerFor(c, id); err != nil {
			return err
		}
	}
	a, err := s.cfg.Quota.Allowance(ctx, id)
	if err != nil {
		return err
	}
	if self && len(a.Grants) == 0 {
		if _, err := s.seafarerFor(c, id); err != nil {
			return err
		}
	}
	return c.JSON(a)
}

// carrierAllowance answers the carrier's balance question by MSISDN, with
// nothing about the seafarer beyond the balance. With ?format=text it is one
// SMS of text in the seafarer's language (or ?lang=) for the carrier's USSD
// and IVR to read out as is (CONTRACT §7.4; the words are package sms's).
func (s *Server) carrierAllowance(c *fiber.Ctx) error {
	msisdn := pathSegment(c, "msisdn") // "+" as written or as %2B
	text, lang, err := textQuery(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	sf, err := s.cfg.Crew.SeafarerByMSISDN(ctx, msisdn)
	if err != nil {
		return err
	}
	a, err := s.cfg.Quota.Allowance(ctx, sf.ID)
	if err != nil {
		return err
	}
	if text {
		if lang == "" {
			lang = sf.Lang
		}
		hs := make([]sms.Holding, len(a.Balances))
		for i, b := range a.Balances {
			hs[i] = sms.Holding{Unit: b.Unit, Remaining: b.Remaining, ExpiresAt: b.ExpiresAt}
		}
		c.Set(fiber.HeaderContentType, "text/plain; charset=utf-8")
		return c.SendString(sms.Balance(lang, hs))
	}
	out := struct {
		MSISDN           string     `json:"msisdn"`
		RemainingSeconds int64      `json:"remaining_seconds"`
		RemainingMinutes int64      `json:"remaining_minutes"`
		ExpiresAt        *time.Time `json:"expires_at"`
	}{MSISDN: msisdn, RemainingSeconds: a.RemainingSeconds, RemainingMinutes: a.RemainingMinutes}
	if t := a.EarliestExpiry(); !t.IsZero() {
		out.ExpiresAt = &t
	}
	return c.JSON(out)
}

// textQuery reads ?format= (json, the default, or text) and ?lang= (a
// language of package sms, "" when not given).
func textQuery(c *fiber.Ctx) (text bool, lang string, err error) {
	var errs []wuyou.FieldError
	switch c.Query("format") {
	case "", "json":
	case "text":
		text = true
	default:
		errs = append(errs, wuyou.FieldError{Field: "format", Message: "must be json or text"})
	}
	if v := c.Query("lang"); v != "" {
		var ok bool
		if lang, ok = wuyou.Lang(v); !ok {
			errs = append(errs, wuyou.FieldError{Field: "lang", Message: "must be one of " + strings.Join(wuyou.Langs, ", ")})
		}
	}
	return text, lang, wuyou.Invalid(errs)
}

func queryTime(c *fiber.Ctx, name string) (time.Time, error) {
	v := c.Query(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, wuyou.Invalid([]wuyou.FieldError{{Field: name, Message: "must be an RFC 3339 timestamp"}})
	}
	return t, nil
}

// getUsage lists ledger entries, newest first. A company never sees the
// numbers its crew called: they are masked to the last four digits. Nor
// does it see calls to the tariff's free numbers at all (emergency,
// medical advice, the union's hotline): that a seafarer called one is
// theirs and the union's to know, not their employer's.
func (s *Server) getUsage(c *fiber.Ctx) error {
	sf, err := s.seafarerFor(c, c.Params("id"))
	if err != nil {
		return err
	}
	from, err := queryTime(c, "from")
	if err != nil {
		return err
	}
	to, err := queryTime(c, "to")
	if err != nil {
		return err
	}
	limit, err := queryLimit(c)
	if err != nil {
		return err
	}
	if s.cfg.Entries == nil {
		return wuyou.Errorf(wuyou.EUNAVAILABLE, "the ledger is not available")
	}
	company := PrincipalOf(c).Role == token.RoleCompany
	entries, next, err := s.cfg.Entries.Ledger(c.UserContext(), sf.ID, quota.LedgerFilter{From: from, To: to, Limit: limit,
		Cursor: c.Query("cursor"), WithoutFree: company})
	if err != nil {
		return err
	}
	if company {
		for _, e := range entries {
			e.CalledNumber = MaskNumber(e.CalledNumber)
		}
	}
	return c.JSON(page[*quota.LedgerEntry]{Items: entries, NextCursor: next})
}

// MaskNumber keeps only the last four digits of a phone number.
func MaskNumber(n string) string {
	if len(n) <= 4 {
		return strings.Repeat("*", len(n))
	}
	return strings.Repeat("*", len(n)-4) + n[len(n)-4:]
}

// errNoProgrammes answers programme routes of a server built without a
// programmes store.
var errNoProgrammes = wuyou.Errorf(wuyou.EUNAVAILABLE, "programmes are not available")

func (s *Server) createProgramme(c *fiber.Ctx) error {
	var in quota.ProgrammeInput
	if err := bodyJSON(c, &in); err != nil {
		return err
	}
	if s.cfg.Programmes == nil {
		return errNoProgrammes
	}
	p, err := s.cfg.Programmes.CreateProgramme(c.UserContext(), in)
	if err != nil {
		return err
	}
	// Amounts in the programme's unit: "3600 s", "2147483648 bytes", "50 sms".
	unit := "s"
	if u := quota.UnitName(p.Unit); u != billing.UnitSeconds {
		unit = u
	}
	summary := fmt.Sprintf("created programme %q: packs of %d %s valid %d days, priority %d, budget %d packs (0: unlimited)",
		p.Name, p.PackSeconds, unit, p.ValidDays, p.Priority, p.BudgetPacks)
	if r := p.Recurrence; r != nil {
		summary = fmt.Sprintf("created recurring programme %q: %d %s a month (rollover up to %d %s, months of %s) while signed on, to %s, priority %d, budget %d packs a month (0: unlimited)",
			p.Name, p.PackSeconds, unit, r.RolloverMax, unit, r.TimeZone, recurringAudience(p), p.Priority, p.BudgetPacks)
	}
	noteWrite(c, audit.ActionProgrammeCreate, "programmes/"+p.ID, summary)
	return c.Status(fiber.StatusCreated).JSON(p)
}

func (s *Server) getProgramme(c *fiber.Ctx) error {
	if s.cfg.Programmes == nil {
		return errNoProgrammes
	}
	p, err := s.cfg.Programmes.Programme(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(p)
}

// syncIssuanceLimit: issuances up to this many seafarers finish before the
// response; larger ones run in the background (GET /v1/issuances/{id}).
const syncIssuanceLimit = 100

func (s *Server) startIssuance(c *fiber.Ctx) error {
	// A large issuance runs on after this handler returns: its programme id
	// and key must not point into fiber's reused buffers.
	key := utils.CopyString(c.Get("Idempotency-Key"))
	if key == "" {
		return wuyou.Invalid([]wuyou.FieldError{{Field: "Idempotency-Key", Message: "header required"}})
	}
	var t quota.IssuanceTarget
	if err := bodyJSON(c, &t); err != nil {
		return err
	}
	iss, created, err := s.cfg.Issuer.StartAndRun(c.UserContext(), utils.CopyString(c.Params("id")), key, t, syncIssuanceLimit)
	if err != nil {
		return err
	}
	summary := fmt.Sprintf("issued programme %s to %s: %s, %d targets, %d issued, %d skipped, %d failed",
		iss.ProgrammeID, issuanceAudience(t), iss.Status, iss.Total, iss.Issued, iss.Skipped, iss.Failed)
	if !created {
		summary = "repeated (same Idempotency-Key and body): " + summary
	}
	noteWrite(c, audit.ActionIssuanceStart, "issuances/"+iss.ID, summary)
	return c.Status(fiber.StatusAccepted).JSON(iss)
}

// issuanceAudience says whom an issuance was asked to give packs to.
func issuanceAudience(t quota.IssuanceTarget) string {
	switch {
	case t.CompanyID != "":
		return "company " + t.CompanyID
	case t.VesselIMO != "":
		return "vessel " + t.VesselIMO
	}
	return fmt.Sprintf("%d listed seafarers", len(t.SeafarerIDs))
}

func (s *Server) getIssuance(c *fiber.Ctx) error {
	iss, err := s.cfg.Issuer.Issuance(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(iss)
}

func (s *Server) voidGrant(c *fiber.Ctx) error {
	sf, err := s.seafarerFor(c, c.Params("id"))
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	grantID := utils.CopyString(c.Params("grant_id")) // kept in the ledger entry
	if s.cfg.Grants != nil {
		// The system of record first. Voided there before: the hot state
		// may still lack the void (a crash in between), so go on; the hot
		// state answers whether anything was left to do.
		err := s.cfg.Grants.VoidGrant(ctx, sf.ID, grantID, s.cfg.Now())
		if err != nil && wuyou.ErrorCode(err) != wuyou.ECONFLICT {
			return err
		}
	}
	e, err := s.cfg.Quota.VoidGrant(ctx, sf.ID, grantID)
	if wuyou.ErrorCode(err) == wuyou.ECONFLICT && s.cfg.Ledger != nil {
		// Voided before. If recording that void failed, voiding again is
		// how it is repaired: record the stored entry (a no-op when it is
		// recorded), then answer the conflict.
		if stored, serr := s.cfg.Quota.StoredVoid(ctx, sf.ID, grantID); serr == nil && stored != nil {
			if stored.Actor == nil {
				// The hot state's copy names nobody: the entry names who
				// finishes the void by repeating it, as the first answer
				// asked. An entry recorded before keeps its own actor.
				stored.Actor = wuyou.ActorFrom(ctx)
			}
			if rerr := s.cfg.Ledger.RecordLedger(ctx, sf.ID, stored); rerr != nil {
				s.cfg.Log.Warn("a void's ledger entry could not be recorded yet", "entry", stored.ID, "err", rerr)
			}
		}
	}
	if err != nil {
		return err
	}
	e.Actor = wuyou.ActorFrom(ctx) // the void's entry names who voided
	if s.cfg.Ledger != nil {
		if err := s.cfg.Ledger.RecordLedger(ctx, sf.ID, e); err != nil {
			s.cfg.Log.Error("void applied but its ledger entry not recorded; voiding again records it", "entry", e.ID, "err", err)
			if a := wuyou.ActorFrom(ctx); a != nil {
				// The grant is voided whatever the answer: the trail says so.
				s.recordWrite(c, *a, auditNote{audit.ActionGrantVoid, "seafarers/" + sf.ID + "/grants/" + grantID,
					fmt.Sprintf("voided grant %s: %d s removed; its ledger entry not recorded yet", grantID, e.Seconds)})
			}
			return &wuyou.Error{Code: wuyou.EUNAVAILABLE, Message: "the grant is voided, but its ledger entry could not be recorded yet; repeat the request to record it"}
		}
	}
	noteWrite(c, audit.ActionGrantVoid, "seafarers/"+sf.ID+"/grants/"+grantID, fmt.Sprintf("voided grant %s: %d s removed", grantID, e.Seconds))
	return c.JSON(e)
}
