package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wuyou/wuyou/billing"
)

// Union staff's operations: create and list companies, void a grant,
// close a period and reconcile a period with the carrier's settlement.
// Each is one API call (CONTRACT §4, §7.6); what the server refuses is
// printed as its problem and makes wuyouctl exit 1.

type company struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	RegistrationNo string    `json:"registration_no"`
	CreatedAt      time.Time `json:"created_at"`
}

func newCompanyCmd(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "company", Short: "Create and find shipping companies (union staff)"}
	cmd.AddCommand(newCompanyCreateCmd(opts), newCompanyListCmd(opts))
	return cmd
}

func newCompanyCreateCmd(opts *globalOptions) *cobra.Command {
	var name, registrationNo string
	cmd := &cobra.Command{
		Use:     "create --name NAME --registration-no NUMBER",
		Short:   "Create a shipping company and print its id",
		Example: `  wuyouctl company create --name "COSCO Shipping Lines" --registration-no 91310000MA1FL0001X`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(opts)
			if err != nil {
				return err
			}
			var co company
			_, err = c.do(cmd.Context(), apiRequest{method: http.MethodPost, path: "/v1/companies",
				json: map[string]string{"name": name, "registration_no": registrationNo}}, &co)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "created company %s: %s (registration no. %s)\n", co.ID, co.Name, co.RegistrationNo)
			return err
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the company's name (required)")
	cmd.Flags().StringVar(&registrationNo, "registration-no", "", "its registration number, unique among companies (required)")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("registration-no")
	return cmd
}

func newCompanyListCmd(opts *globalOptions) *cobra.Command {
	var query string
	cmd := &cobra.Command{
		Use:     "list [--q TEXT]",
		Short:   "List the companies, or those whose name contains TEXT (any case)",
		Example: "  wuyouctl company list --q cosco",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(opts)
			if err != nil {
				return err
			}
			return listCompanies(cmd.Context(), c, cmd.OutOrStdout(), query)
		},
	}
	cmd.Flags().StringVar(&query, "q", "", "only companies whose name contains this text")
	return cmd
}

// listCompanies prints every page of GET /v1/companies.
func listCompanies(ctx context.Context, c *client, w io.Writer, query string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tREGISTRATION NO.\tCREATED")
	n, cursor := 0, ""
	for {
		q := url.Values{"limit": {"500"}}
		if query != "" {
			q.Set("q", query)
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Items      []company `json:"items"`
			NextCursor string    `json:"next_cursor"`
		}
		if _, err := c.do(ctx, apiRequest{method: http.MethodGet, path: "/v1/companies?" + q.Encode()}, &page); err != nil {
			return err
		}
		for _, co := range page.Items {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", co.ID, co.Name, co.RegistrationNo, co.CreatedAt.UTC().Format(time.DateOnly))
			n++
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d companies\n", n)
	return err
}

func newGrantCmd(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "grant", Short: "Act on one seafarer's grant (union staff)"}
	cmd.AddCommand(&cobra.Command{
		Use:   "void SEAFARER_ID GRANT_ID",
		Short: "Void a grant: what is left of it is set to 0 and a void entry is written in the ledger",
		Long: `Void a grant: what is left of it is set to 0 and a void entry is written
in the ledger. Voiding a voided grant is refused (409); if the first void's
ledger entry was not recorded, the second records it.`,
		Example: "  wuyouctl grant void sf_01JD7Z8QK3 gr_01JD7Z9A1B",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(opts)
			if err != nil {
				return err
			}
			var e struct {
				ID      string `json:"id"`
				GrantID string `json:"grant_id"`
				Seconds int64  `json:"seconds"`
			}
			_, err = c.do(cmd.Context(), apiRequest{method: http.MethodPost,
				path: "/v1/seafarers/" + url.PathEscape(args[0]) + "/grants/" + url.PathEscape(args[1]) + ":void"}, &e)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "voided grant %s of %s: %s were left (ledger entry %s)\n",
				args[1], args[0], duration(e.Seconds), e.ID)
			return err
		},
	})
	return cmd
}

func newPeriodCmd(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "period", Short: "Close a statement period (union staff)"}
	cmd.AddCommand(&cobra.Command{
		Use:   "close YYYY-MM",
		Short: "Close a month that has ended: its statements no longer change",
		Long: `Close a month that has ended: its statements no longer change, and a call
of that month metered later is counted in the next open month as an
adjustment. Closing a closed month changes nothing.`,
		Example: "  wuyouctl period close 2026-11",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, _, err := billing.PeriodBounds(args[0]); err != nil {
				return usagef("period %q: must be a month as YYYY-MM", args[0])
			}
			c, err := newClient(opts)
			if err != nil {
				return err
			}
			var st billing.PeriodState
			if _, err := c.do(cmd.Context(), apiRequest{method: http.MethodPost, path: "/v1/periods/" + args[0] + ":close"}, &st); err != nil {
				return err
			}
			line := "period " + st.Period + " is " + st.Status
			if st.ClosedAt != nil {
				line += " since " + st.ClosedAt.UTC().Format(time.RFC3339)
			}
			if st.Seafarers != nil {
				line += fmt.Sprintf("; %d seafarers have figures in it", *st.Seafarers)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), line)
			return err
		},
	})
	return cmd
}

func newReconcileCmd(opts *globalOptions) *cobra.Command {
	var period string
	var asCSV, asJSON bool
	cmd := &cobra.Command{
		Use:   "reconcile SETTLEMENT.csv --period YYYY-MM [--csv|--json]",
		Short: "Compare the carrier's settlement of a month with Wuyou's figures",
		Long: `Compare the carrier's settlement of a month (CSV with the header
msisdn,calls,billable_seconds,covered_seconds) with Wuyou's figures of the
same calls, per MSISDN. The summary and the differences go to stdout;
--csv prints the report as CSV, --json the server's answer as is.

Exit status: 0 when the report was made, whatever it found; 1 when the
server refused the file.`,
		Example: "  wuyouctl reconcile cmcc-2026-11.csv --period 2026-11 --csv > reconciliation-2026-11.csv",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, _, err := billing.PeriodBounds(period); err != nil {
				return usagef("--period %q: must be a month as YYYY-MM", period)
			}
			if asCSV && asJSON {
				return usagef("--csv and --json exclude each other")
			}
			c, err := newClient(opts)
			if err != nil {
				return err
			}
			return reconcile(cmd.Context(), c, cmd.OutOrStdout(), args[0], period, asCSV, asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVar(&period, "period", "", "month as YYYY-MM (required)")
	f.BoolVar(&asCSV, "csv", false, "print the report as CSV")
	f.BoolVar(&asJSON, "json", false, "print the server's JSON answer")
	_ = cmd.MarkFlagRequired("period")
	return cmd
}

func reconcile(ctx context.Context, c *client, w io.Writer, path, period string, asCSV, asJSON bool) error {
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return err
	}
	var rep billing.Reconciliation
	raw, err := c.do(ctx, apiRequest{method: http.MethodPost, path: "/v1/reconciliations?" + url.Values{"period": {period}}.Encode(),
		body: file, contentLength: info.Size(), contentType: "text/csv"}, &rep)
	if err != nil {
		return err
	}
	switch {
	case asJSON:
		_, err := w.Write(append(bytes.TrimRight(raw, "\n"), '\n'))
		return err
	case asCSV:
		return rep.WriteCSV(w)
	}
	t := rep.Totals
	fmt.Fprintf(w, "reconciliation of %s with %s\n", period, filepath.Base(path))
	fmt.Fprintf(w, "Wuyou:   %d MSISDNs, %d calls, %s billable, %s covered\n", t.Wuyou.MSISDNs, t.Wuyou.Calls, duration(t.Wuyou.BillableSeconds), duration(t.Wuyou.CoveredSeconds))
	fmt.Fprintf(w, "carrier: %d MSISDNs, %d calls, %s billable, %s covered\n", t.Carrier.MSISDNs, t.Carrier.Calls, duration(t.Carrier.BillableSeconds), duration(t.Carrier.CoveredSeconds))
	fmt.Fprintf(w, "%d matched, %d differences, %d missing in Wuyou, %d missing in the carrier's file, %d invalid rows\n",
		rep.Matched, len(rep.Differences), len(rep.MissingInWuyou), len(rep.MissingInCarrier), rep.InvalidRowCount)
	if len(rep.Differences)+len(rep.MissingInWuyou)+len(rep.MissingInCarrier)+len(rep.InvalidRows) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MSISDN\tWHAT\tWUYOU\tCARRIER")
	listed := 0
	row := func(format string, a ...any) {
		if listed < maxListed {
			fmt.Fprintf(tw, format, a...)
		}
		listed++
	}
	for _, d := range rep.Differences {
		row("%s\t%s\t%d\t%d\n", d.MSISDN, d.Field, d.Wuyou, d.Carrier)
	}
	for _, r := range rep.MissingInWuyou {
		row("%s\tmissing in Wuyou\t-\t%d calls\n", r.MSISDN, r.Calls)
	}
	for _, r := range rep.MissingInCarrier {
		row("%s\tmissing in the carrier's file\t%d calls\t-\n", r.MSISDN, r.Calls)
	}
	for _, e := range rep.InvalidRows {
		row("%s\trow %d: %s\t\t\n", strings.TrimSpace(e.MSISDN), e.Row, e.Message)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if listed > maxListed {
		fmt.Fprintf(w, "… and %d more; --csv lists them all\n", listed-maxListed)
	}
	return nil
}
