package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wuyou/wuyou/quota"
)

// auditPageSize is how many seafarers one request audits (the API's maximum).
const auditPageSize = 500

func newAuditCmd(opts *globalOptions) *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Check that every balance is explained by the ledger",
		Long: `Check, for every seafarer holding grants or remembered calls, that each
grant's remaining amount is its grant entry less the seconds its debits drew
and its void removed, and that every remembered event identity has its
debit entry. The server does the checking (GET /v1/ops/ledger-audit, union
token); this pages through every seafarer.

Exits 0 with a one-line summary when every balance is explained, 1 listing
the differences (seafarer, grant or event identity, what the ledger says,
what is stored) when not. Grants whose ledger entries may be older than the
ledger horizon cannot be checked; they are counted as unverifiable, not as
differences (--verbose lists them).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(opts)
			if err != nil {
				return err
			}
			return runAudit(cmd.Context(), c, cmd.OutOrStdout(), verbose)
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "also list unverifiable grants")
	return cmd
}

func runAudit(ctx context.Context, c *client, w io.Writer, verbose bool) error {
	var seafarers, bad, differences, grants, identities, unverifiable int
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := false
	cursor := ""
	for {
		q := url.Values{"limit": {strconv.Itoa(auditPageSize)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var p struct {
			Items      []quota.AuditReport `json:"items"`
			NextCursor string              `json:"next_cursor"`
		}
		if _, err := c.do(ctx, apiRequest{method: http.MethodGet, path: "/v1/ops/ledger-audit?" + q.Encode()}, &p); err != nil {
			return err
		}
		for _, r := range p.Items {
			seafarers++
			grants += r.GrantsChecked
			identities += r.IdentitiesChecked
			unverifiable += len(r.Unverifiable)
			if !r.OK {
				bad++
			}
			rows := len(r.Differences)
			if verbose {
				rows += len(r.Unverifiable)
			}
			if rows > 0 && !header {
				fmt.Fprintln(tw, "SEAFARER\tGRANT\tKIND\tEXPECTED\tACTUAL\tDETAIL")
				header = true
			}
			for _, d := range r.Differences {
				differences++
				what := d.GrantID
				if d.Identity != "" {
					what = "event " + d.Identity
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", r.SeafarerID, orDash(what), d.Kind, d.Expected, d.Actual, d.Detail)
			}
			if verbose {
				for _, g := range r.Unverifiable {
					fmt.Fprintf(tw, "%s\t%s\tunverifiable\t-\t-\tentries may be past the ledger horizon\n", r.SeafarerID, g)
				}
			}
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if header {
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "audited %d seafarers: %d grants and %d event identities checked, %d grants unverifiable (past the ledger horizon), %d differences\n",
		seafarers, grants, identities, unverifiable, differences)
	if bad > 0 {
		return fmt.Errorf("ledger audit: %d differences in %d of %d seafarers", differences, bad, seafarers)
	}
	return nil
}
