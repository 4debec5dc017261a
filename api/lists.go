package api

import (
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/quota"
)

// Lists of named things for union staff (CONTRACT §7.6): GET /v1/companies
// and GET /v1/programmes, a page at a time (?limit=, ?cursor=) and by name
// (?q=, case-insensitive substring).

// nameFilter reads ?q=, ?cursor= and ?limit=. The query's strings are
// copied: fiber reuses the request's buffer once the handler returns.
func nameFilter(c *fiber.Ctx) (wuyou.NameFilter, error) {
	limit, err := queryLimit(c)
	if err != nil {
		return wuyou.NameFilter{}, err
	}
	return wuyou.NameFilter{
		Query: utils.CopyString(c.Query("q")), Cursor: utils.CopyString(c.Query("cursor")), Limit: limit,
	}, nil
}

func (s *Server) listCompanies(c *fiber.Ctx) error {
	f, err := nameFilter(c)
	if err != nil {
		return err
	}
	items, next, err := s.cfg.Crew.Companies(c.UserContext(), f)
	if err != nil {
		return err
	}
	return c.JSON(page[*crew.Company]{Items: items, NextCursor: next})
}

func (s *Server) listProgrammes(c *fiber.Ctx) error {
	f, err := nameFilter(c)
	if err != nil {
		return err
	}
	if s.cfg.Programmes == nil {
		return wuyou.Errorf(wuyou.EUNAVAILABLE, "programmes are not available on this server")
	}
	items, next, err := s.cfg.Programmes.Programmes(c.UserContext(), f)
	if err != nil {
		return err
	}
	return c.JSON(page[*quota.Programme]{Items: items, NextCursor: next})
}
