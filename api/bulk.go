package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/audit"
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
	// Rows are enrolled bulkParallelism at a time: each enrolment is a few
	// Redis round trips, and rows of one file never contend (Dedupe has
	// refused repeated book numbers and MSISDNs). Results keep file order.
	chunk := make([]crew.Row, 0, bulkParallelism)
	for done := false; !done; {
		chunk = chunk[:0]
		for len(chunk) < bulkParallelism {
			row, err := rows.Next()
			if errors.Is(err, io.EOF) {
				done = true
				break
			} else if err != nil {
				return err
			}
			chunk = append(chunk, row)
		}
		results, err := s.enrolRows(ctx, companyID, chunk)
		if err != nil {
			return err
		}
		for _, res := range results {
			rep.Total++
			switch res.Status {
			case "created":
				rep.Created++
			case "updated":
				rep.Updated++
			default:
				rep.Failed++
			}
			rep.Results = append(rep.Results, res)
		}
	}
	noteWrite(c, audit.ActionSeafarerBulkEnrol, "companies/"+companyID, fmt.Sprintf("bulk enrolment of %d rows: %d created, %d updated, %d failed",
		rep.Total, rep.Created, rep.Updated, rep.Failed))
	s.nudgeRecurring()
	return c.JSON(rep)
}

// bulkParallelism bounds the enrolments of one bulk request in flight.
const bulkParallelism = 32

// enrolRows enrols valid rows concurrently and reports each row. An
// unexpected error (Redis down) fails the request; rows already enrolled stay.
func (s *Server) enrolRows(ctx context.Context, companyID string, rows []crew.Row) ([]bulkResult, error) {
	results := make([]bulkResult, len(rows))
	errs := make([]error, len(rows))
	var wg sync.WaitGroup
	for i, row := range rows {
		results[i] = bulkResult{Row: row.N, Status: "failed", Errors: row.Errors}
		if len(row.Errors) > 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sf, created, err := s.cfg.Crew.Enrol(ctx, companyID, row.Enrolment)
			switch {
			case err != nil && wuyou.ErrorCode(err) == wuyou.EINTERNAL:
				errs[i] = err
			case err != nil:
				results[i].Errors = fieldErrors(err)
			case created:
				results[i].Status, results[i].ID = "created", sf.ID
			default:
				results[i].Status, results[i].ID = "updated", sf.ID
			}
		}()
	}
	wg.Wait()
	for i := range results {
		if results[i].Errors == nil {
			results[i].Errors = []wuyou.FieldError{}
		}
	}
	return results, errors.Join(errs...)
}

// fieldErrors turns a domain error into per-field errors for a row report.
func fieldErrors(err error) []wuyou.FieldError {
	var we *wuyou.Error
	if errors.As(err, &we) && len(we.Fields) > 0 {
		return we.Fields
	}
	return []wuyou.FieldError{{Field: "", Message: wuyou.ErrorMessage(err)}}
}
