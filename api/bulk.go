package api

import (
	"bytes"
	"errors"
	"io"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/crew"
)

type bulkResult struct {
	Row    int                `json:"row"`
	Status string             `json:"status"`
	ID     string             `json:"id"`
	Errors []wuyou.FieldError `json:"errors"`
}

type bulkReport struct {
	Total   int          `json:"total"`
	Created int          `json:"created"`
	Updated int          `json:"updated"`
	Failed  int          `json:"failed"`
	Results []bulkResult `json:"results"`
}

// bulkEnrol enrols a crew list (CSV or a JSON array) row by row. Rows are
// independent: a bad row fails alone with every error it has. The body is
// read as a stream, one row at a time.
func (s *Server) bulkEnrol(c *fiber.Ctx) error {
	companyID, err := s.companyFor(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	if _, err := s.cfg.Crew.Company(ctx, companyID); err != nil {
		return err
	}
	var body io.Reader = bytes.NewReader(c.Body())
	if stream := c.Context().RequestBodyStream(); stream != nil {
		body = stream
	}
	var rows crew.RowReader
	switch ct := strings.ToLower(string(c.Request().Header.ContentType())); {
	case strings.HasPrefix(ct, "text/csv"):
		rows, err = crew.NewCSVRowReader(body)
	case strings.HasPrefix(ct, "application/json"):
		rows, err = crew.NewJSONRowReader(body)
	default:
		return wuyou.Errorf(wuyou.EINVALID, "Content-Type must be text/csv or application/json")
	}
	if err != nil {
		return err
	}
	rows = crew.Dedupe(rows)
	rep := bulkReport{Results: []bulkResult{}}
	for {
		row, err := rows.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return err
		}
		rep.Total++
		res := bulkResult{Row: row.N, Errors: row.Errors}
		if len(row.Errors) == 0 {
			sf, created, err := s.cfg.Crew.Enrol(ctx, companyID, row.Enrolment)
			switch {
			case err != nil && wuyou.ErrorCode(err) == wuyou.EINTERNAL:
				return err
			case err != nil:
				res.Errors = fieldErrors(err)
			case created:
				res.Status, res.ID = "created", sf.ID
				rep.Created++
			default:
				res.Status, res.ID = "updated", sf.ID
				rep.Updated++
			}
		}
		if res.Status == "" {
			res.Status = "failed"
			rep.Failed++
		}
		if res.Errors == nil {
			res.Errors = []wuyou.FieldError{}
		}
		rep.Results = append(rep.Results, res)
	}
	return c.JSON(rep)
}

// fieldErrors turns a domain error into per-field errors for a row report.
func fieldErrors(err error) []wuyou.FieldError {
	var we *wuyou.Error
	if errors.As(err, &we) && len(we.Fields) > 0 {
		return we.Fields
	}
	return []wuyou.FieldError{{Field: "", Message: wuyou.ErrorMessage(err)}}
}
