package api

import (
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/wuyou/wuyou/audit"
	"github.com/wuyou/wuyou/crew"
)

// signVessel answers POST /v1/companies/{id}/vessels/{imo}:sign-off and
// :sign-on (that company, union): the company's whole crew on the vessel
// is signed off or on as of the body's "date" (YYYY-MM-DD; absent, or no
// body at all, is today in UTC) in one transaction, by the rules of
// crew.PGStore.SignVessel. A repeat changes nothing and says so (changed 0).
func (s *Server) signVessel(direction string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		companyID, err := s.companyFor(c)
		if err != nil {
			return err
		}
		var in struct {
			Date string `json:"date"`
		}
		if len(c.Body()) > 0 {
			if err := bodyJSON(c, &in); err != nil {
				return err
			}
		}
		done, err := s.cfg.Crew.SignVessel(c.UserContext(), crew.VesselSigning{
			CompanyID: companyID, VesselIMO: c.Params("imo"), Direction: direction, Date: in.Date,
		})
		if err != nil {
			return err
		}
		verb := "signed off"
		if direction == crew.SignOn {
			verb = "signed on"
		}
		noteWrite(c, audit.ActionSeafarerUpdate, "companies/"+companyID+"/vessels/"+done.VesselIMO,
			fmt.Sprintf("%s the crew of vessel %s as of %s: %d changed, %d unchanged", verb, done.VesselIMO, done.Date, done.Changed, done.Unchanged))
		s.nudgeRecurring()
		return c.JSON(done)
	}
}
