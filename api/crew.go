package api

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/audit"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/token"
)

// Tenancy: a company principal reaches only its own company and crew; a
// seafarer only itself. Another tenant's resource is reported as not found,
// so its existence does not leak.

func (s *Server) companyFor(c *fiber.Ctx) (string, error) {
	id := utils.CopyString(c.Params("id")) // kept in enrolled seafarers' records
	p := PrincipalOf(c)
	if p.Role == token.RoleCompany && p.CompanyID != id {
		return "", wuyou.Errorf(wuyou.ENOTFOUND, "company %s not found", id)
	}
	return id, nil
}

// seafarerFor loads the seafarer named by the :id parameter if the principal
// may see it.
func (s *Server) seafarerFor(c *fiber.Ctx, id string) (*crew.Seafarer, error) {
	notFound := wuyou.Errorf(wuyou.ENOTFOUND, "seafarer %s not found", id)
	p := PrincipalOf(c)
	if p.Role == token.RoleSeafarer && p.Subject != id {
		return nil, notFound
	}
	sf, err := s.cfg.Crew.Seafarer(c.UserContext(), id)
	if err != nil {
		return nil, err
	}
	if p.Role == token.RoleCompany && sf.CompanyID != p.CompanyID {
		return nil, notFound
	}
	return sf, nil
}

func bodyJSON(c *fiber.Ctx, v any) error {
	if err := c.BodyParser(v); err != nil {
		return wuyou.Errorf(wuyou.EINVALID, "body must be a JSON object of the documented fields: %v", err)
	}
	return nil
}

func (s *Server) createCompany(c *fiber.Ctx) error {
	var in struct {
		Name           string `json:"name"`
		RegistrationNo string `json:"registration_no"`
	}
	if err := bodyJSON(c, &in); err != nil {
		return err
	}
	co, err := s.cfg.Crew.CreateCompany(c.UserContext(), in.Name, in.RegistrationNo)
	if err != nil {
		return err
	}
	noteWrite(c, audit.ActionCompanyCreate, "companies/"+co.ID, fmt.Sprintf("created company %q, registration %q", co.Name, co.RegistrationNo))
	return c.Status(fiber.StatusCreated).JSON(co)
}

func (s *Server) getCompany(c *fiber.Ctx) error {
	id, err := s.companyFor(c)
	if err != nil {
		return err
	}
	co, err := s.cfg.Crew.Company(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(co)
}

func (s *Server) enrolSeafarer(c *fiber.Ctx) error {
	companyID, err := s.companyFor(c)
	if err != nil {
		return err
	}
	var in crew.Enrolment
	if err := bodyJSON(c, &in); err != nil {
		return err
	}
	sf, created, err := s.cfg.Crew.Enrol(c.UserContext(), companyID, in)
	if err != nil {
		return err
	}
	if created {
		c.Status(fiber.StatusCreated)
		noteWrite(c, audit.ActionSeafarerEnrol, "seafarers/"+sf.ID, fmt.Sprintf("enrolled book %s in company %s", sf.BookNo, companyID))
	} else {
		noteWrite(c, audit.ActionSeafarerEnrol, "seafarers/"+sf.ID, fmt.Sprintf("enrolment of book %s in company %s updated", sf.BookNo, companyID))
	}
	s.nudgeRecurring()
	return c.JSON(sf)
}

// seafarerView is a seafarer with its balance, as lists show it.
type seafarerView struct {
	*crew.Seafarer
	RemainingSeconds int64 `json:"remaining_seconds"`
}

func (s *Server) listSeafarers(c *fiber.Ctx) error {
	companyID, err := s.companyFor(c)
	if err != nil {
		return err
	}
	limit, err := queryLimit(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	if _, err := s.cfg.Crew.Company(ctx, companyID); err != nil {
		return err
	}
	list, next, err := s.cfg.Crew.Seafarers(ctx, crew.SeafarerFilter{
		CompanyID: companyID, VesselIMO: c.Query("vessel_imo"), Status: c.Query("status"),
		Query: c.Query("q"), Cursor: c.Query("cursor"), Limit: limit,
	})
	if err != nil {
		return err
	}
	ids := make([]string, len(list))
	for i, sf := range list {
		ids[i] = sf.ID
	}
	remaining, err := s.cfg.Quota.RemainingNow(ctx, ids)
	if err != nil {
		return err
	}
	out := page[seafarerView]{Items: make([]seafarerView, len(list)), NextCursor: next}
	for i, sf := range list {
		out.Items[i] = seafarerView{sf, remaining[sf.ID]}
	}
	return c.JSON(out)
}

func (s *Server) getSeafarer(c *fiber.Ctx) error {
	sf, err := s.seafarerFor(c, c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(sf)
}

// patchSeafarer answers PATCH /v1/seafarers/{id}: staff change what
// crew.SeafarerUpdate holds; a seafarer changes their own lang, and only it
// (seafarerUpdate).
func (s *Server) patchSeafarer(c *fiber.Ctx) error {
	return s.patchSeafarerOf(c, c.Params("id"))
}

// patchMe answers PATCH /v1/me: a seafarer changes their own lang, as
// PATCH /v1/seafarers/{their id} does.
func (s *Server) patchMe(c *fiber.Ctx) error {
	return s.patchSeafarerOf(c, PrincipalOf(c).Subject)
}

func (s *Server) patchSeafarerOf(c *fiber.Ctx, id string) error {
	sf, err := s.seafarerFor(c, id)
	if err != nil {
		return err
	}
	var u crew.SeafarerUpdate
	if PrincipalOf(c).Role == token.RoleSeafarer {
		if u, err = seafarerUpdate(c); err != nil {
			return err
		}
	} else if err := bodyJSON(c, &u); err != nil {
		return err
	}
	updated, err := s.cfg.Crew.UpdateSeafarer(c.UserContext(), sf.ID, u)
	if err != nil {
		return err
	}
	noteWrite(c, audit.ActionSeafarerUpdate, "seafarers/"+sf.ID, updateSummary(u, updated))
	if u != (crew.SeafarerUpdate{Lang: u.Lang}) {
		s.nudgeRecurring() // who is signed on may have changed; a lang alone changes nobody's
	}
	return c.JSON(updated)
}

// seafarerUpdate reads what a seafarer may change of themself: a body of
// exactly {"lang"}. Any other field is EFORBIDDEN naming it (whatever its
// value: the registry's fields are their company's and the union's to
// set); no lang, or one that is not a string, is EINVALID naming lang; the
// lang's value is the registry's rule (crew.PGStore.UpdateSeafarer: 400
// naming lang).
func seafarerUpdate(c *fiber.Ctx) (crew.SeafarerUpdate, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(c.Body(), &fields); err != nil || fields == nil {
		return crew.SeafarerUpdate{}, wuyou.Errorf(wuyou.EINVALID, `body must be a JSON object: {"lang"}`)
	}
	var others []string
	for name := range fields {
		if name != "lang" {
			others = append(others, name)
		}
	}
	if len(others) > 0 {
		sort.Strings(others)
		return crew.SeafarerUpdate{}, wuyou.Errorf(wuyou.EFORBIDDEN,
			"a seafarer may change only their lang, not %s: the rest is their company's or the union's to change", strings.Join(others, ", "))
	}
	var lang *string
	if raw, ok := fields["lang"]; ok {
		if err := json.Unmarshal(raw, &lang); err != nil {
			return crew.SeafarerUpdate{}, wuyou.Invalid([]wuyou.FieldError{{Field: "lang", Message: "must be a string: one of " + strings.Join(wuyou.Langs, ", ")}})
		}
	}
	if lang == nil {
		return crew.SeafarerUpdate{}, wuyou.Invalid([]wuyou.FieldError{{Field: "lang", Message: "is required: one of " + strings.Join(wuyou.Langs, ", ")}})
	}
	return crew.SeafarerUpdate{Lang: lang}, nil
}

// updateSummary names the fields a PATCH set, with the new status; numbers
// and names are left out (the trail says what changed, not to what).
func updateSummary(u crew.SeafarerUpdate, after *crew.Seafarer) string {
	var set []string
	for _, f := range [...]struct {
		name string
		v    *string
	}{{"msisdn", u.MSISDN}, {"vessel_imo", u.VesselIMO}, {"vessel_name", u.VesselName}, {"sign_on", u.SignOn}, {"sign_off", u.SignOff}, {"lang", u.Lang}} {
		if f.v != nil {
			set = append(set, f.name)
		}
	}
	if u.Status != nil {
		set = append(set, "status="+after.Status)
	}
	if len(set) == 0 {
		return "nothing changed"
	}
	return "set " + strings.Join(set, ", ")
}
