package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wuyou/wuyou/billing"
)

func newStatementCmd(opts *globalOptions) *cobra.Command {
	var period, payer string
	var asCSV, asJSON bool
	cmd := &cobra.Command{
		Use:   "statement --period YYYY-MM --payer programme:ID|company:ID|seafarer:ID [--csv]",
		Short: "Show what a programme, a company or a seafarer owes for one month",
		Long: `Show a payer's statement of one period (a calendar month in UTC, by each
call's own time): totals, then one line per seafarer (programme and company
payers) or per call (seafarer payer). Lines marked with a period in ADJUSTS
are calls of that earlier, closed period metered after it closed.

--csv prints the lines as CSV with a header row (money in minor units);
--json prints the server's answer as is.`,
		Example: `  wuyouctl statement --period 2026-11 --payer programme:pg_01JD7Z8QK3
  wuyouctl statement --period 2026-11 --payer company:co_01JD7Z8QK3 --csv > alpha-2026-11.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, _, err := billing.PeriodBounds(period); err != nil {
				return fmt.Errorf("--period %q: must be a month as YYYY-MM", period)
			}
			if _, err := billing.ParsePayer(payer); err != nil {
				return fmt.Errorf("--payer %q: must be programme:ID, company:ID or seafarer:ID", payer)
			}
			if asCSV && asJSON {
				return fmt.Errorf("--csv and --json exclude each other")
			}
			c, err := newClient(opts)
			if err != nil {
				return err
			}
			return showStatement(cmd.Context(), c, cmd.OutOrStdout(), period, payer, asCSV, asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVar(&period, "period", "", "month as YYYY-MM (required)")
	f.StringVar(&payer, "payer", "", "programme:ID, company:ID or seafarer:ID (required)")
	f.BoolVar(&asCSV, "csv", false, "print the lines as CSV")
	f.BoolVar(&asJSON, "json", false, "print the server's JSON answer")
	_ = cmd.MarkFlagRequired("period")
	_ = cmd.MarkFlagRequired("payer")
	return cmd
}

func showStatement(ctx context.Context, c *client, w io.Writer, period, payer string, asCSV, asJSON bool) error {
	q := url.Values{"period": {period}, "payer": {payer}}
	var st billing.Statement
	raw, err := c.do(ctx, apiRequest{method: http.MethodGet, path: "/v1/statements?" + q.Encode()}, &st)
	if err != nil {
		return err
	}
	switch {
	case asJSON:
		_, err := w.Write(append(bytes.TrimRight(raw, "\n"), '\n'))
		return err
	case asCSV:
		// A company's own statement comes without the free calls (they are
		// the seafarers' to know): its CSV leaves their columns out too.
		var top map[string]json.RawMessage
		if json.Unmarshal(raw, &top) == nil {
			if _, has := top["free_calls"]; !has {
				return st.WithoutFreeCalls().WriteCSV(w)
			}
		}
		return st.WriteCSV(w)
	}
	return printStatement(w, &st)
}

func printStatement(w io.Writer, st *billing.Statement) error {
	state := st.Status
	if st.ClosedAt != nil {
		state += " at " + st.ClosedAt.UTC().Format(time.RFC3339)
	}
	payer := st.Payer
	if st.PayerName != "" {
		payer += " " + st.PayerName
	}
	fmt.Fprintf(w, "statement of %s for %s (%s)\n", st.Period, payer, state)
	fmt.Fprintf(w, "%d calls: %s billable, %s covered, %s overage\n", st.Calls,
		duration(st.BillableSeconds), duration(st.CoveredSeconds), duration(st.OverageSeconds))
	for _, u := range st.Units {
		events := "sessions"
		if u.Unit == "sms" {
			events = "messages"
		}
		fmt.Fprintf(w, "%s: %d %s: %s billable, %s covered, %s overage (overage amount %s)\n", unitTitle(u.Unit), u.Events, events,
			amount(u.Unit, u.Billable), amount(u.Unit, u.Covered), amount(u.Unit, u.Overage), money(u.OverageAmount))
	}
	fmt.Fprintf(w, "welfare cost %s, overage amount %s\n", money(st.WelfareCost), money(st.OverageAmount))
	if len(st.Lines) == 0 {
		_, err := fmt.Fprintln(w, "no lines")
		return err
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	calls := strings.HasPrefix(st.Payer, billing.PayerSeafarer+":")
	named := false // a NAME column when the server names the seafarers
	for _, l := range st.Lines {
		named = named || l.SeafarerName != ""
	}
	if calls {
		fmt.Fprintln(tw, "CALL TIME\tMSISDN\tCOUNTRY\tADJUSTS\tBILLABLE\tCOVERED\tOVERAGE\tOVERAGE AMOUNT\tWELFARE COST")
	} else {
		if named {
			fmt.Fprint(tw, "NAME\tCOMPANY\t")
		}
		fmt.Fprintln(tw, "SEAFARER\tADJUSTS\tCALLS\tBILLABLE\tCOVERED\tOVERAGE\tOVERAGE AMOUNT\tWELFARE COST")
	}
	for _, l := range st.Lines {
		figures := fmt.Sprintf("%s\t%s\t%s\t%s\t%s", duration(l.BillableSeconds), duration(l.CoveredSeconds),
			duration(l.OverageSeconds), money(l.OverageAmount), money(l.WelfareCost))
		if calls {
			at := ""
			if l.CallTime != nil {
				at = l.CallTime.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", at, l.MSISDN, l.VisitedCountry, l.AdjustsPeriod, figures)
		} else {
			if named {
				fmt.Fprintf(tw, "%s\t%s\t", l.SeafarerName, l.CompanyName)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", l.SeafarerID, l.AdjustsPeriod, l.Calls, figures)
		}
	}
	return tw.Flush()
}

// money renders minor units as a decimal amount with its currency:
// 12345 CNY is "123.45 CNY" (every currency Wuyou prices in has two decimals).
func money(m billing.Money) string {
	sign := ""
	n := m.Minor
	if n < 0 {
		sign, n = "-", -n
	}
	return strings.TrimSpace(fmt.Sprintf("%s%d.%02d %s", sign, n/100, n%100, m.Currency))
}
