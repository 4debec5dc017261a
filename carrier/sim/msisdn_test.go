package sim_test

import (
	"strings"
	"testing"

	"github.com/wuyou/wuyou/carrier/sim"
	"github.com/wuyou/wuyou/crew"
)

func TestMSISDNRangeIncludesBothEnds(t *testing.T) {
	t.Parallel()
	got, err := sim.ParseMSISDNRange("+8613800000001-+8613800000100")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 100 || got[0] != "+8613800000001" || got[99] != "+8613800000100" {
		t.Fatalf("got %d numbers from %s to %s", len(got), got[0], got[len(got)-1])
	}
	if got, err := sim.ParseMSISDNRange("+86138000000001-86138000000003"); err != nil || len(got) != 3 {
		t.Fatalf("second end without plus: %v, %v", got, err)
	}
}

func TestMSISDNRangeRefusesNonsense(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]string{
		"no dash":           "+8613800000001",
		"no plus":           "8613800000001-8613800000002",
		"reversed":          "+8613800000100-+8613800000001",
		"different lengths": "+8613800000001-+86138000000100",
		"too many":          "+8613800000000-+8613899999999",
		"letters":           "+86138000000ab-+8613800000100",
		"starts with +0":    "+0123456789-+0123456799",
	} {
		if _, err := sim.ParseMSISDNRange(in); err == nil {
			t.Errorf("%s: %q accepted", name, in)
		}
	}
}

func TestMSISDNsReadFromAPlainListOrACrewCSV(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		in   string
		want string
	}{
		"one a line":              {"+8613800000001\n\n# crew of MV Dongfang\n+8613800000002\n", "+8613800000001,+8613800000002"},
		"CSV with msisdn column":  {"seafarer_book_no,name,MSISDN,vessel_imo\nB1,Li Wei,+8613800000001,9300001\nB2,\"Wang, Fang\",+8613800000002,9300001\n", "+8613800000001,+8613800000002"},
		"listed twice, used once": {"+8613800000001\n+8613800000001\n", "+8613800000001"},
	} {
		got, err := sim.ReadMSISDNs(strings.NewReader(c.in))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if strings.Join(got, ",") != c.want {
			t.Errorf("%s: got %v, want %s", name, got, c.want)
		}
	}
	for name, in := range map[string]string{
		"empty":          "# nothing\n",
		"not E.164":      "13800000001\n",
		"bad CSV number": "name,msisdn\nLi Wei,13800000001\n",
		"starts with +0": "+0123456789\n",
	} {
		if _, err := sim.ReadMSISDNs(strings.NewReader(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// carriersim refuses what Wuyou refuses: it uses crew's one MSISDN rule, so
// it never generates events for a number enrolment would not accept.
func TestSimulatorUsesCrewsMSISDNRule(t *testing.T) {
	t.Parallel()
	cfg := sim.DefaultConfig()
	cfg.MSISDNs = []string{"+0123456789"}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), crew.MSISDNRule) {
		t.Fatalf("a +0 MSISDN: %v", err)
	}
	cfg.MSISDNs = []string{"+8613800000001"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}
