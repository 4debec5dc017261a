package sim

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/wuyou/wuyou/crew"
)

// MaxMSISDNs bounds how many subscribers one run simulates.
const MaxMSISDNs = 1_000_000

// ParseMSISDNRange expands "+8613800000001-+8613800000100" (the second
// plus is optional) into every MSISDN between the two, both included.
func ParseMSISDNRange(s string) ([]string, error) {
	loS, hiS, ok := strings.Cut(strings.TrimSpace(s), "-")
	hiS = strings.TrimSpace(hiS)
	if !strings.HasPrefix(hiS, "+") {
		hiS = "+" + hiS
	}
	loS = strings.TrimSpace(loS)
	if !ok || !crew.ValidMSISDN(loS) || !crew.ValidMSISDN(hiS) {
		return nil, fmt.Errorf("MSISDN range %q: want +FIRST-+LAST, each %s", s, crew.MSISDNRule)
	}
	if len(loS) != len(hiS) {
		return nil, fmt.Errorf("MSISDN range %q: both ends must have the same number of digits", s)
	}
	lo, _ := strconv.ParseUint(loS[1:], 10, 64)
	hi, _ := strconv.ParseUint(hiS[1:], 10, 64)
	if lo > hi {
		return nil, fmt.Errorf("MSISDN range %q: first is after last", s)
	}
	if hi-lo >= MaxMSISDNs {
		return nil, fmt.Errorf("MSISDN range %q: %d numbers, at most %d", s, hi-lo+1, MaxMSISDNs)
	}
	width := len(loS) - 1
	out := make([]string, 0, hi-lo+1)
	for n := lo; n <= hi; n++ {
		out = append(out, fmt.Sprintf("+%0*d", width, n))
	}
	return out, nil
}

// ReadMSISDNs reads subscribers from r: either one MSISDN a line, or a CSV
// file whose header row has an "msisdn" column (such as a crew list for
// `wuyouctl crew import`). Blank lines and lines starting with # are
// skipped; a number listed twice is used once.
func ReadMSISDNs(r io.Reader) ([]string, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	col, first := 0, true
	seen := map[string]bool{}
	var out []string
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		if first {
			first = false
			if i := headerColumn(rec); i >= 0 {
				col = i
				continue
			}
		}
		if col >= len(rec) {
			return nil, fmt.Errorf("line %d: no msisdn column", line)
		}
		m := strings.TrimSpace(rec[col])
		if m == "" {
			continue
		}
		if !crew.ValidMSISDN(m) {
			return nil, fmt.Errorf("line %d: MSISDN %q: must be %s", line, m, crew.MSISDNRule)
		}
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
		if len(out) > MaxMSISDNs {
			return nil, fmt.Errorf("more than %d MSISDNs", MaxMSISDNs)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no MSISDNs found")
	}
	return out, nil
}

func headerColumn(rec []string) int {
	for i, f := range rec {
		if strings.EqualFold(strings.TrimSpace(strings.TrimPrefix(f, "\ufeff")), "msisdn") {
			return i
		}
	}
	return -1
}
