package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wuyou/wuyou"
)

// The commands in this file talk to the API: crew import (bulk enrolment),
// allowance and issue. Each answer the server refuses is printed as its
// problem document ("409 Conflict: …" and the field errors) and makes
// wuyouctl exit 1.

// bulkReport is the answer of POST /v1/companies/{id}/seafarers:bulk.
type bulkReport struct {
	Total   int          `json:"total"`
	Created int          `json:"created"`
	Updated int          `json:"updated"`
	Failed  int          `json:"failed"`
	Results []bulkResult `json:"results"`
}

type bulkResult struct {
	Row    int          `json:"row"`
	Status string       `json:"status"`
	ID     string       `json:"id"`
	Errors []fieldError `json:"errors"`
}

func newCrewCmd(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "crew",
		Short: "Enrol shipping companies' crews",
	}
	cmd.AddCommand(newCrewImportCmd(opts))
	return cmd
}

func newCrewImportCmd(opts *globalOptions) *cobra.Command {
	var companyID, failedOut string
	cmd := &cobra.Command{
		Use:   "import FILE.csv --company ID [--failed-out FILE]",
		Short: "Enrol a crew list from a CSV file, row by row",
		Long: `Enrol a crew list from a CSV file, row by row.

The file's first line names the columns with the contract's field names
(seafarer_book_no, name, nationality, msisdn, vessel_imo, vessel_name,
sign_on, sign_off, union_member_no; the first, second and fourth are
required). It is streamed to the server with a progress bar on stderr; the
server enrols every good row and reports each bad one, which fails alone.

The summary and a table of the failed rows go to stdout. When any row
failed, the failed rows are also written as CSV (to --failed-out, by
default FILE.failed.csv beside the input): the original header and fields
plus an "errors" column. Fix them there and import that file again: the
server ignores the errors column, and rows already enrolled are updated,
not duplicated.

Exit status: 0 when every row was enrolled; 1 when any row failed or the
request was refused.`,
		Example: `  wuyouctl crew import crew-list.csv --company co_01JD7Z8
  wuyouctl crew import crew-list.failed.csv --company co_01JD7Z8 --failed-out still-failing.csv`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(opts)
			if err != nil {
				return err
			}
			return importCrew(cmd.Context(), c, cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], companyID, failedOut)
		},
	}
	f := cmd.Flags()
	f.StringVar(&companyID, "company", "", "id of the company that enrols the crew")
	f.StringVar(&failedOut, "failed-out", "", "where to write the failed rows as CSV (default: FILE.failed.csv, only when a row failed)")
	_ = cmd.MarkFlagRequired("company") // cannot fail: the flag exists
	return cmd
}

// defaultFailedOut is FILE.failed.csv for FILE.csv.
func defaultFailedOut(input string) string {
	ext := filepath.Ext(input)
	if !strings.EqualFold(ext, ".csv") {
		return input + ".failed.csv"
	}
	return strings.TrimSuffix(input, ext) + ".failed" + ext
}

func importCrew(ctx context.Context, c *client, stdout, stderr io.Writer, path, companyID, failedOut string) error {
	if failedOut == "" {
		failedOut = defaultFailedOut(path)
	}
	if same, err := sameFile(path, failedOut); err != nil {
		return err
	} else if same {
		return fmt.Errorf("--failed-out %s is the input file; name another file", failedOut)
	}
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return err
	}

	// The server answers only after the whole body, so the bar counts the
	// bytes sent; once they are all sent, the rows are being enrolled.
	bar := newProgressBar(stderr, "uploading "+filepath.Base(path), info.Size(), true)
	body := &progressReader{r: file, bar: bar, atEOF: func() {
		bar.Finish()
		fmt.Fprintln(stderr, "uploaded; the server is enrolling the rows…")
	}}
	var rep bulkReport
	_, err = c.do(ctx, apiRequest{
		method:        http.MethodPost,
		path:          "/v1/companies/" + url.PathEscape(companyID) + "/seafarers:bulk",
		body:          body,
		contentLength: info.Size(),
		contentType:   "text/csv",
	}, &rep)
	bar.Finish()
	if err != nil {
		return err
	}

	fmt.Fprintf(stdout, "%s: %d rows: %d created, %d updated, %d failed\n", filepath.Base(path), rep.Total, rep.Created, rep.Updated, rep.Failed)
	failed := failedRows(rep)
	if len(failed) == 0 {
		return nil
	}
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROW\tFIELD\tMESSAGE")
	listed := 0
	for _, res := range rep.Results {
		if res.Status != "failed" {
			continue
		}
		if listed == maxListed {
			break
		}
		listed++
		for _, e := range res.Errors {
			fmt.Fprintf(tw, "%d\t%s\t%s\n", res.Row, e.Field, e.Message)
		}
		if len(res.Errors) == 0 {
			fmt.Fprintf(tw, "%d\t\t%s\n", res.Row, "failed (the server gave no reason)")
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := writeFailedRows(path, failedOut, failed); err != nil {
		return fmt.Errorf("%d of %d rows failed; writing them to %s: %w", len(failed), rep.Total, failedOut, err)
	}
	if more := len(failed) - listed; more > 0 {
		fmt.Fprintf(stdout, "… and %d more failed rows, all in %s\n", more, failedOut)
	}
	fmt.Fprintf(stdout, "\nwrote the %d failed rows to %s: fix them there and import that file again\n", len(failed), failedOut)
	return fmt.Errorf("%d of %d rows failed", len(failed), rep.Total)
}

// maxListed bounds the failed rows or seafarers a command lists on stdout,
// so that a list of thousands does not scroll the summary away; the
// failed-rows file and the server hold them all.
const maxListed = 100

// sameFile reports whether a and b name one existing file.
func sameFile(a, b string) (bool, error) {
	ai, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	bi, err := os.Stat(b)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return os.SameFile(ai, bi), nil
}

// failedRows maps the number of each failed row to its errors, written as
// one cell: "field: message; field: message".
func failedRows(rep bulkReport) map[int]string {
	failed := make(map[int]string)
	for _, res := range rep.Results {
		if res.Status != "failed" {
			continue
		}
		msgs := make([]string, 0, len(res.Errors))
		for _, e := range res.Errors {
			if e.Field == "" {
				msgs = append(msgs, e.Message)
			} else {
				msgs = append(msgs, e.Field+": "+e.Message)
			}
		}
		failed[res.Row] = strings.Join(msgs, "; ")
	}
	return failed
}

// utf8BOM is what Excel writes at the start of a "CSV UTF-8" file.
const utf8BOM = "\uFEFF"

// writeFailedRows re-reads the CSV at in and writes to out its header plus
// an "errors" column, and each failed row with its errors.
//
// Rows are numbered as the server numbers them: data rows from 1, the
// header and blank lines not counted, read with the same CSV rules
// (leading spaces of a field dropped). A row shorter than the header is
// padded so that its errors land in the errors column; a line that is not
// valid CSV is kept whole in the first column. A byte order mark and CRLF
// line ends are kept, so the file opens in Excel as the original did.
func writeFailedRows(in, out string, failed map[int]string) error {
	data, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	bom := bytes.HasPrefix(data, []byte(utf8BOM))
	data = bytes.TrimPrefix(data, []byte(utf8BOM))
	firstLine, _, _ := bytes.Cut(data, []byte("\n"))

	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		return fmt.Errorf("%s: reading the header again: %w", in, err)
	}

	var buf bytes.Buffer
	if bom {
		buf.WriteString(utf8BOM)
	}
	w := wuyou.NewCSVWriter(&buf) // cells made safe for spreadsheets, as the server's exports are
	w.UseCRLF = bytes.HasSuffix(firstLine, []byte("\r"))
	if err := w.Write(append(slices.Clone(header), "errors")); err != nil {
		return err
	}
	row, written := 0, 0
	for {
		start := r.InputOffset()
		record, err := r.Read()
		var pe *csv.ParseError
		switch {
		case errors.Is(err, io.EOF):
		case errors.As(err, &pe) && pe.StartLine == pe.Line:
			// The server fails such a line alone; keep its text.
			line := strings.Trim(string(data[start:r.InputOffset()]), "\r\n")
			record = []string{line}
		case err != nil:
			return fmt.Errorf("%s: %w (has the file changed since it was sent?)", in, err)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		row++
		msg, ok := failed[row]
		if !ok {
			continue
		}
		for len(record) < len(header) {
			record = append(record, "")
		}
		if err := w.Write(append(record, msg)); err != nil {
			return err
		}
		written++
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	if written != len(failed) {
		return fmt.Errorf("the server reported failed rows up to row %d but %s has %d rows (has the file changed since it was sent?)",
			slices.Max(keys(failed)), in, row)
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

func keys(m map[int]string) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// allowance is the answer of GET /v1/seafarers/{id}/allowance.
type allowance struct {
	SeafarerID       string    `json:"seafarer_id"`
	RemainingSeconds int64     `json:"remaining_seconds"`
	RemainingMinutes int64     `json:"remaining_minutes"`
	Grants           []grant   `json:"grants"`
	Period           string    `json:"period"`
	UsedSeconds      int64     `json:"used_seconds"`
	OverageSeconds   int64     `json:"overage_seconds"`
	AsOf             time.Time `json:"as_of"`
	Balances         []balance `json:"balances"`
}

// balance is what the seafarer holds of one unit (CONTRACT 7.2).
type balance struct {
	Unit      string `json:"unit"`
	Granted   int64  `json:"granted"`
	Remaining int64  `json:"remaining"`
}

type grant struct {
	ID          string `json:"id"`
	ProgrammeID string `json:"programme_id"`
	// Unit, Granted and Remaining are the grant's amounts in its unit;
	// an answer without a unit (before units) has seconds only.
	Unit             string    `json:"unit"`
	Granted          int64     `json:"granted"`
	Remaining        int64     `json:"remaining"`
	GrantedSeconds   int64     `json:"granted_seconds"`
	RemainingSeconds int64     `json:"remaining_seconds"`
	EffectiveAt      time.Time `json:"effective_at"`
	ExpiresAt        time.Time `json:"expires_at"`
	Priority         int       `json:"priority"`
	Status           string    `json:"status"`
}

func newAllowanceCmd(opts *globalOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "allowance SEAFARER_ID",
		Short: "Show a seafarer's free minutes left and each grant's expiry and status",
		Long: `Show a seafarer's free minutes left and each grant's expiry and status.

Minutes left count only grants active now; a pending grant (not yet
effective) is listed but not counted. --json prints the server's answer as is.`,
		Example: `  wuyouctl allowance sf_01JD7Z8QK3
  wuyouctl allowance sf_01JD7Z8QK3 --json | jq .remaining_minutes`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(opts)
			if err != nil {
				return err
			}
			var a allowance
			raw, err := c.do(cmd.Context(), apiRequest{method: http.MethodGet, path: "/v1/seafarers/" + url.PathEscape(args[0]) + "/allowance"}, &a)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				_, err := out.Write(append(bytes.TrimRight(raw, "\n"), '\n'))
				return err
			}
			return printAllowance(out, &a)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the server's JSON answer")
	return cmd
}

func printAllowance(w io.Writer, a *allowance) error {
	fmt.Fprintf(w, "%s: %d minutes left (%d s), as of %s\n", a.SeafarerID, a.RemainingMinutes, a.RemainingSeconds, a.AsOf.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "this period (%s): %s used, %s overage\n", a.Period, duration(a.UsedSeconds), duration(a.OverageSeconds))
	for _, b := range a.Balances {
		if b.Unit != "seconds" {
			fmt.Fprintf(w, "%s: %s left of %s\n", unitTitle(b.Unit), amount(b.Unit, b.Remaining), amount(b.Unit, b.Granted))
		}
	}
	if len(a.Grants) == 0 {
		_, err := fmt.Fprintln(w, "no grants")
		return err
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GRANT\tPROGRAMME\tLEFT\tGRANTED\tEFFECTIVE\tEXPIRES\tSTATUS")
	for _, g := range a.Grants {
		left, granted := duration(g.RemainingSeconds), duration(g.GrantedSeconds)
		if g.Unit != "" && g.Unit != "seconds" {
			left, granted = amount(g.Unit, g.Remaining), amount(g.Unit, g.Granted)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.ID, g.ProgrammeID, left, granted,
			g.EffectiveAt.UTC().Format(time.RFC3339), g.ExpiresAt.UTC().Format(time.RFC3339), g.Status)
	}
	return tw.Flush()
}

// unitTitle names a unit other than seconds for a person.
func unitTitle(unit string) string {
	switch unit {
	case "bytes":
		return "data"
	case "sms":
		return "SMS"
	}
	return unit
}

// amount renders an amount in its unit: seconds as duration does, bytes in
// KB, MB or GB of 1024 (one decimal when not whole), sms as a count.
func amount(unit string, n int64) string {
	switch unit {
	case "bytes":
		for _, u := range []struct {
			name string
			size int64
		}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}} {
			if n >= u.size {
				if n%u.size == 0 {
					return fmt.Sprintf("%d %s", n/u.size, u.name)
				}
				return fmt.Sprintf("%.1f %s", float64(n)/float64(u.size), u.name)
			}
		}
		return fmt.Sprintf("%d bytes", n)
	case "sms":
		return fmt.Sprintf("%d sms", n)
	}
	return duration(n)
}

// duration renders seconds as whole minutes and the seconds over: "60 min",
// "2 min 5 s", "45 s".
func duration(seconds int64) string {
	m, s := seconds/60, seconds%60
	switch {
	case m == 0:
		return fmt.Sprintf("%d s", s)
	case s == 0:
		return fmt.Sprintf("%d min", m)
	}
	return fmt.Sprintf("%d min %d s", m, s)
}

// issuance is the answer of the issuance endpoints.
type issuance struct {
	ID          string            `json:"id"`
	ProgrammeID string            `json:"programme_id"`
	Status      string            `json:"status"`
	Total       int64             `json:"total"`
	Issued      int64             `json:"issued"`
	Skipped     int64             `json:"skipped"`
	Failed      int64             `json:"failed"`
	Failures    []issuanceFailure `json:"failures"`
}

type issuanceFailure struct {
	SeafarerID string `json:"seafarer_id"`
	Reason     string `json:"reason"`
}

// issuanceTarget is the body of POST /v1/programmes/{id}/issuances.
type issuanceTarget struct {
	SeafarerIDs []string `json:"seafarer_ids,omitempty"`
	CompanyID   string   `json:"company_id,omitempty"`
	VesselIMO   string   `json:"vessel_imo,omitempty"`
	EffectiveAt string   `json:"effective_at,omitempty"`
}

// maxPollFailures is how many polls in a row may fail (a blip on the link,
// a 503) before issue stops waiting; the issuance goes on regardless.
const maxPollFailures = 5

func newIssueCmd(opts *globalOptions) *cobra.Command {
	var (
		target                     issuanceTarget
		seafarersFile, effectiveAt string
		key                        string
		poll                       time.Duration
	)
	cmd := &cobra.Command{
		Use:   "issue PROGRAMME_ID --company ID | --vessel IMO | --seafarers FILE [--effective-at RFC3339] [--idempotency-key K]",
		Short: "Issue a programme's packs to a company's crew, a vessel's crew or a list of seafarers",
		Long: `Issue a programme's packs to a company's crew, a vessel's crew or a list of
seafarers (FILE: one seafarer id a line; blank lines and lines starting with
# are ignored), one pack per seafarer, then wait for the issuance to finish
with a progress bar on stderr.

Re-running the same command is safe: the default idempotency key is a hash
of the programme and the target, so the server answers with the issuance it
already ran instead of issuing again. To issue the same programme to the same
target a second time on purpose, pass a new --idempotency-key.

Exit status: 0 when every seafarer got a pack or was skipped (not active);
1 when any failed (for example budget_exhausted) or the request was refused.`,
		Example: `  wuyouctl issue pg_01JD7Z8 --company co_01JD7Z8
  wuyouctl issue pg_01JD7Z8 --vessel 9074729 --effective-at 2027-01-01T00:00:00Z
  wuyouctl issue pg_01JD7Z8 --seafarers winners.txt --idempotency-key spring-2027-winners`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			programmeID := args[0]
			if seafarersFile != "" {
				ids, err := readSeafarerIDs(seafarersFile)
				if err != nil {
					return err
				}
				target.SeafarerIDs = ids
			}
			if effectiveAt != "" {
				t, err := time.Parse(time.RFC3339, effectiveAt)
				if err != nil {
					return fmt.Errorf("--effective-at %q: must be an RFC 3339 time such as 2027-01-01T00:00:00Z", effectiveAt)
				}
				target.EffectiveAt = t.UTC().Format(time.RFC3339)
			}
			defaultKey := key == ""
			if defaultKey {
				key = defaultIdempotencyKey(programmeID, target)
			}
			c, err := newClient(opts)
			if err != nil {
				return err
			}
			return issue(cmd.Context(), c, cmd.OutOrStdout(), cmd.ErrOrStderr(), programmeID, key, defaultKey, target, poll)
		},
	}
	f := cmd.Flags()
	f.StringVar(&target.CompanyID, "company", "", "issue to every seafarer of this company")
	f.StringVar(&target.VesselIMO, "vessel", "", "issue to every seafarer on the vessel with this IMO number")
	f.StringVar(&seafarersFile, "seafarers", "", "issue to the seafarers listed in FILE, one id a line")
	f.StringVar(&effectiveAt, "effective-at", "", "when the packs take effect, RFC 3339 (default: now)")
	f.StringVar(&key, "idempotency-key", "", "idempotency key (default: a hash of the programme and the target)")
	f.DurationVar(&poll, "poll", time.Second, "how often to ask for progress")
	_ = f.MarkHidden("poll")
	cmd.MarkFlagsMutuallyExclusive("company", "vessel", "seafarers")
	cmd.MarkFlagsOneRequired("company", "vessel", "seafarers")
	return cmd
}

// readSeafarerIDs reads one seafarer id a line, skipping blank lines and
// # comments.
func readSeafarerIDs(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	for first := true; sc.Scan(); first = false {
		line := sc.Text()
		if first {
			line = strings.TrimPrefix(line, utf8BOM)
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ids = append(ids, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%s lists no seafarer ids", path)
	}
	return ids, nil
}

// defaultIdempotencyKey is a hash of the programme and the target, so the
// same command run twice names the same issuance. A list of seafarers is
// hashed as a set: the same ids in another order are the same target (the
// server then answers 409 rather than issue a second time). effective_at
// is left out for the same reason: a second run with another effective
// time is refused, not issued again.
func defaultIdempotencyKey(programmeID string, t issuanceTarget) string {
	h := sha256.New()
	fmt.Fprintf(h, "wuyouctl issue\x00%s\x00", programmeID)
	switch {
	case t.CompanyID != "":
		fmt.Fprintf(h, "company\x00%s", t.CompanyID)
	case t.VesselIMO != "":
		fmt.Fprintf(h, "vessel\x00%s", t.VesselIMO)
	default:
		ids := slices.Clone(t.SeafarerIDs)
		slices.Sort(ids)
		fmt.Fprintf(h, "seafarers\x00%s", strings.Join(slices.Compact(ids), "\x00"))
	}
	return "wuyouctl-" + hex.EncodeToString(h.Sum(nil))[:32]
}

// issue starts the issuance and waits for it. defaultKey says the key was
// derived from the command line rather than given.
func issue(ctx context.Context, c *client, stdout, stderr io.Writer, programmeID, key string, defaultKey bool, target issuanceTarget, poll time.Duration) error {
	var iss issuance
	_, err := c.do(ctx, apiRequest{
		method: http.MethodPost,
		path:   "/v1/programmes/" + url.PathEscape(programmeID) + "/issuances",
		header: http.Header{"Idempotency-Key": {key}},
		json:   target,
	}, &iss)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusConflict && defaultKey {
		return fmt.Errorf("%w\n(this programme was issued to this target before with other options; to issue again on purpose, pass a new --idempotency-key)", err)
	} else if err != nil {
		return err
	}
	if iss.Status != "done" {
		bar := newProgressBar(stderr, "issuing", iss.Total, false)
		bar.Set(iss.Issued + iss.Skipped + iss.Failed)
		failures := 0
		for iss.Status != "done" {
			select {
			case <-ctx.Done():
				bar.Finish()
				return fmt.Errorf("stopped waiting; issuance %s goes on on the server: %w", iss.ID, ctx.Err())
			case <-time.After(poll):
			}
			var next issuance
			_, err := c.do(ctx, apiRequest{method: http.MethodGet, path: "/v1/issuances/" + url.PathEscape(iss.ID)}, &next)
			if err != nil {
				var ae *apiError
				if failures++; failures < maxPollFailures && ctx.Err() == nil && (!errors.As(err, &ae) || ae.Status >= 500) {
					continue
				}
				bar.Finish()
				return fmt.Errorf("stopped waiting; issuance %s goes on on the server: %w", iss.ID, err)
			}
			failures = 0
			iss = next
			bar.Set(iss.Issued + iss.Skipped + iss.Failed)
		}
		bar.Finish()
	}

	fmt.Fprintf(stdout, "issuance %s of programme %s: %s (idempotency key %s)\n", iss.ID, iss.ProgrammeID, iss.Status, key)
	fmt.Fprintf(stdout, "%d seafarers: %d issued, %d skipped (not active), %d failed\n", iss.Total, iss.Issued, iss.Skipped, iss.Failed)
	if iss.Failed == 0 {
		return nil
	}
	if len(iss.Failures) > 0 {
		fmt.Fprintln(stdout)
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEAFARER\tREASON")
		shown := iss.Failures[:min(len(iss.Failures), maxListed)]
		for _, f := range shown {
			fmt.Fprintf(tw, "%s\t%s\n", f.SeafarerID, f.Reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if more := iss.Failed - int64(len(shown)); more > 0 {
			fmt.Fprintf(stdout, "… and %d more (GET /v1/issuances/%s lists the first %d)\n", more, iss.ID, len(iss.Failures))
		}
	}
	return fmt.Errorf("%d of %d seafarers got no pack", iss.Failed, iss.Total)
}
