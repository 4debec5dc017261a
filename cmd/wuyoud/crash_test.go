package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/carrier/sim"
	"github.com/wuyou/wuyou/token"
)

// TestSIGKILLAtRandomPointsNeverLosesOrDoubleAppliesEvents runs wuyoud as a
// real process against a real Redis and a Kafka-protocol broker that lives
// in the test (so it outlives every kill), and kills it with SIGKILL at
// random moments while it consumes a stream with redeliveries, restarting it
// each time. Whatever a kill interrupts — a debit pipeline, the publishing
// of its ledger entries, the offset commit — the last instance must end with
// every distinct event applied exactly once: per seafarer the used seconds
// equal the billable seconds of its distinct calls, the ledger holds one
// debit per distinct call and the balance is what the model says. The last
// instance then stops on SIGTERM with exit code 0.
func TestSIGKILLAtRandomPointsNeverLosesOrDoubleAppliesEvents(t *testing.T) {
	events, kills, msisdns := 20000, 5, 200
	if testing.Short() {
		events, kills, msisdns = 3000, 3, 60
	}
	const (
		group      = "crash"
		partitions = 4
		home       = "CN"
	)
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill schedule seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x5deece66d))

	began := time.Now()
	bin := MustBuildWuyoud(t)
	st := MustWuyouStack(t, partitions)
	union := st.MustToken(t, token.RoleUnion, "staff-1", "")
	procs := &processLog{dir: t.TempDir()}
	t.Cleanup(func() { procs.RequireNoRaceOrPanic(t) })

	p := procs.MustStart(t, bin, st, group)

	// Seed over the API of the first instance: a crew, and one pack each of
	// three sizes (the smallest runs out, the largest does not).
	var numbers []string
	for i := 1; i <= msisdns; i++ {
		numbers = append(numbers, fmt.Sprintf("+86136%08d", i))
	}
	companyID := MustCompany(t, p.api, union, "Crash Shipping")
	crew := MustEnrolCrew(t, p.api, union, companyID, numbers)
	effective, start := sim.CallWindow(time.Now())
	packs := []int64{1800, 7200, 60000}
	grants := map[string]*modelGrant{}
	programmeOf := map[string]string{} // seafarer id -> programme id
	for i, size := range packs {
		programmeID := MustProgramme(t, p.api, union, size, effective)
		var ids []string
		for j := i; j < len(crew); j += len(packs) {
			ids = append(ids, crew[j].ID)
			grants[crew[j].ID] = &modelGrant{Seconds: size, Effective: effective, Expires: effective.Add(30 * 24 * time.Hour)}
			programmeOf[crew[j].ID] = programmeID
		}
		MustIssue(t, p.api, union, programmeID, ids, effective)
	}

	cfg := sim.DefaultConfig()
	cfg.Seed = 7
	cfg.Home = home
	cfg.MSISDNs = numbers
	cfg.Duplicates, cfg.Reorder = 0.10, 0.05
	cfg.Start, cfg.Step = start, 200*time.Millisecond
	msgs, summary := MustSimStream(t, cfg, events)
	require.EqualValues(t, events, summary.Totals.Distinct+summary.Totals.Duplicates)

	// The stream arrives in kills+1 parts, one before each instance starts,
	// so every instance finds work. Each instance is killed at a random
	// point of its work: once it has read a random share of its part (up to
	// 80%, so some kills fall before its first commit and some after), plus
	// a random pause that lands in a claim, a debit, a store, a publish or a
	// commit.
	parts := splitEven(msgs, kills+1)
	var busyKills int
	for i := range kills {
		if p == nil {
			p = procs.MustStart(t, bin, st, group)
		}
		if MustKillWhileStreaming(t, st, p, group, partitions, kafkaMessages(parts[i]), rng, i+1) > 0 {
			busyKills++
		}
		p = nil
		// The broker notices a killed member only when its session times
		// out (10s); the first restart waits for that. Later restarts skip
		// the wait: the test removes the dead member from the group (a
		// LeaveGroup on its behalf). For the data it is the same: the
		// dead member's uncommitted messages go to the next member.
		if i > 0 {
			MustRemoveGroupMembers(t, st, group)
		}
	}
	if testing.Short() && busyKills == 0 {
		// With 3,000 events an instance often keeps up with the producer,
		// so its kills may all fall between batches; the full run (CI's)
		// has enough in flight that one must not.
		t.Logf("no kill of this short run interrupted consumption; the accounts were checked all the same")
	} else {
		require.Positive(t, busyKills, "some kill interrupted consumption")
	}

	MustProduce(t, st.brokers, st.topics.Usage, kafkaMessages(parts[kills]))
	p = procs.MustStart(t, bin, st, group)
	drain := time.Now()
	MustWaitCommittedToEnd(t, st, group, st.topics.Usage, partitions, 5*time.Minute)
	t.Logf("the last instance applied the rest in %s; %s since the test began", time.Since(drain).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))

	RequireEveryPromiseKept(t, st, p.api, union, crew, grants, programmeOf, distinctCalls(msgs, home))
	p.MustTerminate(t, 20*time.Second)
}

// MustKillWhileStreaming produces part to the usage topic, 40 messages
// every 10 ms (so batches are in flight, not a backlog gone), and SIGKILLs p
// at a random point of its work: once it has read a random share of part
// (up to 80 %), plus a random pause that lands in a debit, a publish or a
// commit, waiting up to 2 s more for messages in flight when it has caught
// up. It returns how many messages were read but not committed when it
// killed p, after the whole part is produced.
func MustKillWhileStreaming(t *testing.T, st *wuyouStack, p *wuyoudProcess, group string, partitions int, part []kafka.Message, rng *rand.Rand, n int) int64 {
	t.Helper()
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for rest := part; len(rest) > 0; {
			k := min(len(rest), 40)
			MustProduce(t, st.brokers, st.topics.Usage, rest[:k])
			rest = rest[k:]
			time.Sleep(10 * time.Millisecond)
		}
	}()
	target := 1 + rng.Float64()*0.8*float64(len(part))
	started := time.Now()
	reached := started.Add(15 * time.Second)
	MustWaitFor(t, 60*time.Second, "the instance to consume", func() bool {
		consumed := p.MustMetrics(t)[metricConsumed]
		return consumed >= target || (consumed > 0 && time.Now().After(reached))
	})
	time.Sleep(time.Duration(rng.Int64N(int64(300 * time.Millisecond))))
	behind := committedBehind(t, st, group, st.topics.Usage, partitions)
	for deadline := time.Now().Add(2 * time.Second); behind == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Duration(1+rng.Int64N(20)) * time.Millisecond)
		behind = committedBehind(t, st, group, st.topics.Usage, partitions)
	}
	t.Logf("kill %d, %s after its start, at about %.0f of %d messages read, %d not committed",
		n, time.Since(started).Round(time.Millisecond), target, len(part), behind)
	p.MustKill(t)
	<-produced
	return behind
}

// MustRemoveGroupMembers removes every member of a consumer group, as
// LeaveGroup requests on their behalf.
func MustRemoveGroupMembers(tb testing.TB, st *wuyouStack, group string) {
	tb.Helper()
	info := st.broker.GroupInfo(group)
	if info == nil || len(info.Members) == 0 {
		return
	}
	req := &kafka.LeaveGroupRequest{Addr: kafka.TCP(st.brokers...), GroupID: group}
	for _, m := range info.Members {
		req.Members = append(req.Members, kafka.LeaveGroupRequestMember{ID: m.MemberID})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := (&kafka.Client{}).LeaveGroup(ctx, req)
	require.NoError(tb, err)
	require.NoError(tb, res.Error)
	for _, m := range res.Members {
		require.NoError(tb, m.Error, "removing member %s", m.ID)
	}
}

// splitEven cuts msgs into n consecutive parts of nearly equal size.
func splitEven[T any](msgs []T, n int) [][]T {
	out := make([][]T, n)
	for i := range n {
		out[i] = msgs[i*len(msgs)/n : (i+1)*len(msgs)/n]
	}
	return out
}

// MustBuildWuyoud builds the wuyoud binary into a temporary directory, with
// the race detector when the test itself runs with it (so the packages come
// from the build cache the test binary filled).
func MustBuildWuyoud(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "wuyoud")
	args := []string{"build", "-o", bin}
	if raceEnabled() {
		args = append(args, "-race")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(goTool, append(args, ".")...)
	out, err := cmd.CombinedOutput()
	require.NoError(tb, err, "go build: %s", out)
	return bin
}

func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// processLog starts wuyoud processes and keeps each one's output.
type processLog struct {
	dir  string
	logs []string
}

// wuyoudProcess is one running wuyoud.
type wuyoudProcess struct {
	cmd     *exec.Cmd
	api     apiClient
	logPath string
	done    chan struct{}
	waitErr error
}

// MustStart starts wuyoud configured by WUYOU_* variables only, and waits
// until it answers /healthz. A port taken between choosing and binding it
// makes the process exit at once; it is then started again on another.
func (pl *processLog) MustStart(tb testing.TB, bin string, st *wuyouStack, group string) *wuyoudProcess {
	tb.Helper()
	for attempt := 0; ; attempt++ {
		p, ok := pl.start(tb, bin, st, group)
		if ok {
			return p
		}
		require.Less(tb, attempt, 3, "wuyoud exited during start-up: %v\n%s", p.waitErr, tail(p.logPath))
	}
}

func (pl *processLog) start(tb testing.TB, bin string, st *wuyouStack, group string) (*wuyoudProcess, bool) {
	tb.Helper()
	addr := MustFreeAddr(tb)
	logPath := filepath.Join(pl.dir, fmt.Sprintf("wuyoud-%d.log", len(pl.logs)))
	pl.logs = append(pl.logs, logPath)
	logFile, err := os.Create(logPath)
	require.NoError(tb, err)
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + pl.dir}
	for k, v := range st.env(addr, group) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(tb, cmd.Start())
	p := &wuyoudProcess{cmd: cmd, api: apiClient{base: "http://" + addr}, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.done:
			return p, false
		default:
		}
		if res, err := testHTTP.Get(p.api.base + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p, true
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("wuyoud did not answer /healthz within a minute:\n%s", tail(logPath))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// MustMetrics reads the process's metrics, failing with its log if it died.
func (p *wuyoudProcess) MustMetrics(tb testing.TB) map[string]float64 {
	tb.Helper()
	select {
	case <-p.done:
		tb.Fatalf("wuyoud exited: %v\n%s", p.waitErr, tail(p.logPath))
	default:
	}
	return p.api.MustMetrics(tb)
}

// MustKill sends SIGKILL and waits for the process to be gone.
func (p *wuyoudProcess) MustKill(tb testing.TB) {
	tb.Helper()
	require.NoError(tb, p.cmd.Process.Signal(syscall.SIGKILL))
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		tb.Fatal("wuyoud survived SIGKILL for 10s")
	}
	var exit *exec.ExitError
	require.True(tb, errors.As(p.waitErr, &exit), "killed wuyoud: %v", p.waitErr)
}

// MustTerminate sends SIGTERM and requires a clean exit (code 0) within
// timeout: requests finished, the consumer's batch committed.
func (p *wuyoudProcess) MustTerminate(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	require.NoError(tb, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.done:
	case <-time.After(timeout):
		tb.Fatalf("wuyoud did not exit within %s of SIGTERM:\n%s", timeout, tail(p.logPath))
	}
	require.NoError(tb, p.waitErr, "wuyoud exits 0 on SIGTERM:\n%s", tail(p.logPath))
}

// RequireNoRaceOrPanic fails when any process reported a data race or a
// panic, even one that was killed afterwards.
func (pl *processLog) RequireNoRaceOrPanic(tb testing.TB) {
	tb.Helper()
	for _, path := range pl.logs {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
			if bytes.Contains(b, []byte(bad)) {
				tb.Errorf("%s reports %q:\n%s", filepath.Base(path), bad, tail(path))
			}
		}
	}
}

// tail returns the last lines of a log file.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}
