package web_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/wuyou/wuyou/quota"
	"github.com/wuyou/wuyou/token"
)

// Browser tests drive Debian's chromium, headless, against the real API and
// pages. Without chromium they are skipped, except in CI (CI=true), where
// they install it (browser-test.sh) and must run. Screenshots go to
// test-artifacts/web/ (WUYOU_TEST_ARTIFACTS overrides).

// browserBudget bounds each browser test, chromium start included.
const browserBudget = 60 * time.Second

var installChromium sync.Once

func chromiumPath(t *testing.T) string {
	t.Helper()
	find := func() string {
		for _, name := range []string{os.Getenv("WUYOU_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
			if name == "" {
				continue
			}
			if p, err := exec.LookPath(name); err == nil {
				return p
			}
		}
		return ""
	}
	if p := find(); p != "" {
		return p
	}
	if os.Getenv("CI") != "true" {
		t.Skip("browser tests skipped: no chromium found. Run `bash web/browser-test.sh` (installs Debian's chromium as root) or set WUYOU_CHROMIUM; with CI=true they install it and run.")
	}
	installChromium.Do(func() {
		out, err := exec.Command("bash", "browser-test.sh", "--install").CombinedOutput()
		t.Logf("browser-test.sh --install: %v\n%s", err, lastLines(string(out), 20))
	})
	if p := find(); p != "" {
		return p
	}
	t.Fatal("CI=true and chromium could not be installed: the browser tests must run in CI")
	return ""
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// tab is one headless browser with one page, and what it saw go wrong.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string         // exceptions and console errors
	encoded  map[string]int64 // request id -> bytes transferred
	urls     map[string]string
}

type viewport struct {
	width, height int64
	mobile        bool
}

var (
	phone   = viewport{375, 812, true}
	desktop = viewport{1280, 900, false}
)

// mustTab starts chromium with a fresh profile, the browser's language set
// to lang, and the given viewport.
func mustTab(t *testing.T, lang string, vp viewport) *tab {
	t.Helper()
	path := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("lang", lang),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(int(vp.width), int(vp.height)),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	if err := chromedp.Do(bctx); err != nil { // starts the browser, with no deadline
		t.Fatalf("starting chromium %s: %v", path, err)
	}
	ctx, cancel := context.WithTimeout(bctx, browserBudget)
	t.Cleanup(cancel)

	tb := &tab{t: t, ctx: ctx, encoded: map[string]int64{}, urls: map[string]string{}}
	must(t, chromedp.Listen(bctx, tb.observe))
	version, err := chromedp.CallBrowser(ctx, browser.GetVersion, cdp.Empty{})
	must(t, err)
	_, err = chromedp.Call(ctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{
		UserAgent: strings.Replace(version.UserAgent, "HeadlessChrome", "Chrome", 1), AcceptLanguage: lang,
	})
	must(t, err)
	// Record CSP violations from the first script on: the page must cause none.
	_, err = chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `window.__csp = []; document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`,
	})
	must(t, err)
	tb.resize(vp)
	t.Cleanup(tb.checkClean)
	return tb
}

func (tb *tab) resize(vp viewport) {
	tb.t.Helper()
	opts := []chromedp.EmulateViewportOption{}
	if vp.mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulateScale(2))
	}
	tb.do(chromedp.EmulateViewport(vp.width, vp.height, opts...))
}

// observe runs on chromedp's reading goroutine: it only records.
func (tb *tab) observe(ev any) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		msg := ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			msg += " " + ev.ExceptionDetails.Exception.Description
		}
		tb.problems = append(tb.problems, "exception: "+msg)
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			tb.problems = append(tb.problems, "console.error")
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError {
			tb.problems = append(tb.problems, "log: "+ev.Entry.Text+" "+ev.Entry.URL)
		}
	case *network.EventRequestWillBeSent:
		tb.urls[string(ev.RequestID)] = ev.Request.URL
	case *network.EventLoadingFinished:
		tb.encoded[string(ev.RequestID)] = int64(ev.EncodedDataLength)
	}
}

func (tb *tab) resetTransfers() {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.encoded = map[string]int64{}
}

// transferred is the bytes the page has pulled over the network so far
// (headers and compressed bodies), and the URLs.
func (tb *tab) transferred() (int64, []string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var total int64
	var urls []string
	for id, n := range tb.encoded {
		total += n
		urls = append(urls, tb.urls[id])
	}
	return total, urls
}

func (tb *tab) checkClean() {
	tb.mu.Lock()
	problems := tb.problems
	tb.mu.Unlock()
	for _, p := range problems {
		tb.t.Errorf("the page reported a problem: %s", p)
	}
	csp, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]string](`window.__csp || []`))
	if err == nil && len(csp) > 0 {
		tb.t.Errorf("Content-Security-Policy violations: %q", csp)
	}
}

func (tb *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, steps...); err != nil {
		tb.t.Fatal(err)
	}
}

func (tb *tab) eval(js string) string {
	tb.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		tb.t.Fatalf("%s: %v", js, err)
	}
	return s
}

func (tb *tab) text(id string) string {
	tb.t.Helper()
	return strings.TrimSpace(tb.eval(`document.getElementById(` + quote(id) + `).textContent`))
}

// waitFor polls a JavaScript condition until it holds.
func (tb *tab) waitFor(what, js string) {
	tb.t.Helper()
	if _, err := chromedp.Run(tb.ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		tb.t.Fatalf("waiting for %s (%s): %v\npage text: %s", what, js, err, tb.bodyText())
	}
}

func (tb *tab) bodyText() string {
	s, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
	return s
}

// screenshot saves the whole page as an artifact.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := os.Getenv("WUYOU_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "test-artifacts", "web")
	}
	must(tb.t, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, name+".png")
	must(tb.t, os.WriteFile(path, png, 0o644))
	tb.t.Logf("screenshot %s", path)
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

// seafarerScene seeds the demo and meters four calls of the first demo
// seafarer this month: one before the packs took effect (all overage) and
// three covered by the 60-minute pack that expires in five days, which is
// drawn first because it expires first.
func seafarerScene(t *testing.T) (*stack, string) {
	now := time.Now().UTC()
	monthStart := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	if now.Sub(monthStart) < 15*time.Minute {
		t.Skip("the month has just begun: the scene's calls would fall in the last one; run again in a few minutes")
	}
	s := mustStack(t)
	effective := now.Add(-8 * time.Minute)
	s.seedDemo(effective)
	sf := s.seafarers[0]
	short := s.programme("Holiday top-up", 60, 5, 100)
	s.issue(short, "holiday", quota.IssuanceTarget{SeafarerIDs: []string{sf.ID}, EffectiveAt: &effective})
	s.call(sf, "cdr-1", now.Add(-10*time.Minute), 130, "BR") // before the packs: 3 min overage
	s.call(sf, "cdr-2", now.Add(-5*time.Minute), 125, "SG")  // 3 min covered
	s.call(sf, "cdr-3", now.Add(-4*time.Minute), 610, "JP")  // 11 min covered
	s.call(sf, "cdr-4", now.Add(-3*time.Minute), 45, "NL")   // 1 min covered
	return s, s.token(token.RoleSeafarer, sf.ID, "")
}

// TestBrowser_SeafarerSeesMinutesLeftPacksAndThisMonthsCalls: 300 + 60
// minutes granted, 15 covered, so 345 left; the four calls with their
// countries and who paid; the warning that 45 minutes expire within a week;
// the first view, API answers included, under 50 KB over the network.
func TestBrowser_SeafarerSeesMinutesLeftPacksAndThisMonthsCalls(t *testing.T) {
	s, tok := seafarerScene(t)
	tb := mustTab(t, "en-GB", phone)

	// Pasting a token that is not one says so; the page stays on sign-in.
	tb.do(chromedp.Navigate(s.base + "/"))
	tb.waitFor("the sign-in form", `!document.getElementById('signin').hidden`)
	tb.do(chromedp.Click(chromedp.CSS(".token-signin summary")), // the token form is the second way in, folded
		chromedp.SendKeys(chromedp.ID("token"), "not-a-token"), chromedp.Click(chromedp.CSS("#signin-form button")))
	tb.waitFor("the bad-token message", `!document.getElementById('signin-error').hidden`)
	if got := tb.text("signin-error"); !strings.Contains(got, "not a valid token") {
		t.Errorf("bad token message = %q", got)
	}
	tb.screenshot("seafarer-signin-en-phone")

	// The union's app hands the token over in the link's fragment: kept in
	// sessionStorage, gone from the address bar. Measured as a first visit:
	// nothing from the cache.
	_, err := chromedp.Call(tb.ctx, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true})
	must(t, err)
	tb.do(chromedp.Navigate("about:blank"))
	tb.resetTransfers()
	tb.do(chromedp.Navigate(s.base + "/#token=" + tok))
	tb.waitFor("four calls", `document.querySelectorAll('#calls tr').length === 4`)
	if got := tb.text("remaining"); got != "345" {
		t.Errorf("minutes left = %q, want 345", got)
	}
	if loc, err := chromedp.Run(tb.ctx, chromedp.Location()); err != nil || strings.Contains(loc, "token") {
		t.Errorf("the address still holds the token: %q (%v)", loc, err)
	}
	if got := tb.eval(`sessionStorage.getItem('wuyou.token')`); got != tok {
		t.Errorf("sessionStorage token = %.20q…, want the handed-over one", got)
	}
	if got := tb.eval(`JSON.stringify(Object.keys(localStorage).filter(k => localStorage.getItem(k).includes('eyJ')))`); got != "[]" {
		t.Errorf("localStorage holds a token: %s", got)
	}
	if got := tb.text("used"); got != "18" {
		t.Errorf("minutes used this month = %q, want 18", got)
	}
	if got := tb.text("overage"); got != "3" {
		t.Errorf("overage minutes this month = %q, want 3", got)
	}

	rows := tb.eval(`[...document.querySelectorAll('#calls tr')].map(r => [r.querySelector('.place').textContent, r.cells[1].textContent, r.cells[2].textContent].join(' | ')).join('\n')`)
	for _, want := range []string{"Netherlands | 1 | Free", "Japan | 11 | Free", "Singapore | 3 | Free", "Brazil | 3 | Overage"} {
		if !strings.Contains(rows, want) {
			t.Errorf("calls lack %q:\n%s", want, rows)
		}
	}
	if first := strings.SplitN(rows, "\n", 2)[0]; !strings.HasPrefix(first, "Netherlands") {
		t.Errorf("calls are not newest first:\n%s", rows)
	}
	warnings := tb.text("warnings")
	if !strings.Contains(warnings, "45 min expire") {
		t.Errorf("no warning that 45 minutes expire soon: %q", warnings)
	}
	packs := tb.eval(`[...document.querySelectorAll('#packs li')].map(li => li.innerText.replace(/\s+/g, ' ')).join('\n')`)
	for _, want := range []string{"Pack of 60 min", "45 of 60 min left", "Pack of 300 min", "300 of 300 min left"} {
		if !strings.Contains(packs, want) {
			t.Errorf("packs lack %q:\n%s", want, packs)
		}
	}
	tb.screenshot("seafarer-en-phone")

	total, urls := tb.transferred()
	t.Logf("first view, signed in by link: %d bytes over the network: %q", total, urls)
	if total >= 50<<10 {
		t.Errorf("the first view transferred %d bytes, budget 50 KB", total)
	}

	tb.resize(desktop)
	tb.screenshot("seafarer-en-desktop")

	// Signing out forgets the token.
	tb.do(chromedp.Click(chromedp.ID("signout")))
	tb.waitFor("the sign-in form", `!document.getElementById('signin').hidden && document.getElementById('view').hidden`)
	if got := tb.eval(`String(sessionStorage.getItem('wuyou.token'))`); got != "null" {
		t.Errorf("after sign-out sessionStorage holds %.20q…", got)
	}
}

// TestBrowser_SeafarerPageSpeaksTheBrowsersLanguage: a zh-CN browser gets
// the page in Chinese, and the switch turns it to English and back.
func TestBrowser_SeafarerPageSpeaksTheBrowsersLanguage(t *testing.T) {
	s, tok := seafarerScene(t)
	tb := mustTab(t, "zh-CN", phone)
	tb.do(chromedp.Navigate(s.base + "/#token=" + tok))
	tb.waitFor("four calls", `document.querySelectorAll('#calls tr').length === 4`)
	if got := tb.text("left-title"); got != "剩余免费分钟" {
		t.Errorf("zh-CN heading = %q", got)
	}
	if got := tb.eval(`document.documentElement.lang`); got != "zh-CN" {
		t.Errorf("html lang = %q, want zh-CN", got)
	}
	rows := tb.text("calls")
	for _, want := range []string{"新加坡", "日本", "巴西", "免费", "超出"} {
		if !strings.Contains(rows, want) {
			t.Errorf("zh-CN calls lack %q: %s", want, rows)
		}
	}
	if w := tb.text("warnings"); !strings.Contains(w, "45 分钟将于") {
		t.Errorf("zh-CN expiry warning = %q", w)
	}
	tb.screenshot("seafarer-zh-phone")

	tb.do(chromedp.Click(chromedp.ID("lang")))
	tb.waitFor("English", `document.getElementById('left-title').textContent === 'Free minutes left'`)
	if rows := tb.text("calls"); !strings.Contains(rows, "Singapore") {
		t.Errorf("after the switch, calls are not in English: %s", rows)
	}
	if got := tb.text("remaining"); got != "345" {
		t.Errorf("minutes left after the switch = %q", got)
	}
	tb.screenshot("seafarer-en-switched-phone")

	tb.do(chromedp.Click(chromedp.ID("lang")))
	tb.waitFor("Chinese again", `document.getElementById('left-title').textContent === '剩余免费分钟'`)
	tb.resize(desktop)
	tb.screenshot("seafarer-zh-desktop")
}

const crewCSV = "seafarer_book_no,name,nationality,msisdn,vessel_imo,vessel_name,sign_on,union_member_no\r\n" +
	"C45678901,陈明,CN,+8613800000004,9074729,MV Demo Star,2026-09-01,U-0004\r\n" +
	"C56789012,\"Santos, Maria\",PH,+639170000005,9074729,MV Demo Star,2026-09-01,\r\n" +
	",No Book,CN,+8613800000006,,,,\r\n" +
	"C67890123,Bad Phone,CN,12345,,,,\r\n" +
	"C12345678,张伟,CN,+8613800000001,9074729,MV Demo Star,2026-09-01,U-0001\r\n" +
	"\r\n" +
	"C78901234,Dup Phone,CN,+8613800000004,,,,\r\n"

// TestBrowser_CompanyUploadsACrewListAndSeesItsBadRows: six rows, two
// enrolled, one updated, three failed (no book number, a phone number that
// is not E.164, a phone number already in row 1); the failed rows download
// as CSV with their reasons; a company sees no union-only sections, and its
// own statement of the month, on screen and as a CSV download.
func TestBrowser_CompanyUploadsACrewListAndSeesItsBadRows(t *testing.T) {
	now := time.Now().UTC()
	if now.Sub(time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)) < 15*time.Minute {
		t.Skip("the month has just begun: the scene's calls would fall in the last one; run again in a few minutes")
	}
	s := mustStack(t)
	s.seedDemo(now.Add(-5 * time.Minute))
	s.call(s.seafarers[0], "cdr-early", now.Add(-10*time.Minute), 90, "SG") // before the pack: overage
	s.call(s.seafarers[0], "cdr-covered", now.Add(-2*time.Minute), 300, "JP")
	tb := mustTab(t, "en-US", desktop)
	downloads := t.TempDir()
	_, err := chromedp.CallBrowser(tb.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads,
	})
	must(t, err)

	tb.do(chromedp.Navigate(s.base + "/console#token=" + s.token(token.RoleCompany, "crew-manager-1", s.company.ID)))
	tb.waitFor("the crew list", `document.querySelectorAll('#crew-rows tr').length === 3`)
	for _, id := range []string{"tab-programmes", "tab-issue"} {
		if tb.eval(`String(document.getElementById('`+id+`').hidden)`) != "true" {
			t.Errorf("a company sees the union-only tab %s", id)
		}
	}
	if crewText := tb.text("crew-rows"); !strings.Contains(crewText, "张伟") || !strings.Contains(crewText, "300") {
		t.Errorf("crew list lacks names or balances: %s", crewText)
	}
	tb.screenshot("console-company-crew-desktop")

	csvPath := filepath.Join(t.TempDir(), "crew.csv")
	must(t, os.WriteFile(csvPath, []byte(crewCSV), 0o644))
	tb.do(
		chromedp.Click(chromedp.ID("tab-upload")),
		chromedp.SetUploadFiles(chromedp.ID("upload-file"), []string{csvPath}),
		chromedp.Click(chromedp.ID("upload-button")),
	)
	tb.waitFor("the upload report", `!document.getElementById('upload-result').hidden`)
	for id, want := range map[string]string{"upload-total": "6", "upload-created": "2", "upload-updated": "1", "upload-failed-count": "3"} {
		if got := tb.eval(`document.querySelector('#` + id + ` b').textContent`); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
	failed := tb.eval(`[...document.querySelectorAll('#upload-rows tr.failed')].map(r => r.dataset.row + ': ' + r.innerText.replace(/\s+/g, ' ')).join('\n')`)
	for _, want := range []string{"3: ", "seafarer_book_no", "4: ", "C67890123", "msisdn", "6: ", "duplicate of row 1"} {
		if !strings.Contains(failed, want) {
			t.Errorf("failed rows lack %q:\n%s", want, failed)
		}
	}
	tb.screenshot("console-company-upload-desktop")

	tb.do(chromedp.Click(chromedp.ID("upload-failed")))
	body := waitFile(t, downloads, "failed-rows-crew.csv")
	lines := strings.Split(strings.TrimSpace(strings.TrimPrefix(body, "\uFEFF")), "\r\n")
	if len(lines) != 4 || !strings.HasSuffix(lines[0], ",errors") || !strings.HasPrefix(lines[2], "C67890123,Bad Phone,") || !strings.Contains(lines[3], "duplicate of row 1") {
		t.Errorf("failed rows CSV:\n%s", body)
	}

	tb.resize(phone)
	tb.screenshot("console-company-upload-phone")

	// The company's own statement of this month: its crew's two calls, one
	// covered by the pack, one before it (overage), and the CSV download.
	tb.resize(desktop)
	tb.do(
		chromedp.Click(chromedp.ID("tab-statements")),
		chromedp.Click(chromedp.CSS("#statement-form button[type=submit]")),
	)
	tb.waitFor("the statement", `document.getElementById('st-calls') !== null`)
	if got := tb.eval(`document.querySelector('#st-calls b').textContent`); got != "2" {
		t.Errorf("statement calls = %q, want 2\n%s", got, tb.text("statement-view"))
	}
	if got := tb.text("st-heading"); !strings.Contains(got, "company:"+s.company.ID) {
		t.Errorf("statement heading = %q", got)
	}
	if lines := tb.text("st-lines"); !strings.Contains(lines, s.seafarers[0].ID) {
		t.Errorf("statement lines lack the calling seafarer: %s", lines)
	}
	tb.screenshot("console-company-statement-desktop")
	tb.do(chromedp.Click(chromedp.ID("st-csv")))
	statementCSV := waitFile(t, downloads, "statement-"+time.Now().UTC().Format("2006-01")+"-company-"+s.company.ID+".csv")
	if !strings.HasPrefix(statementCSV, "seafarer_id,") || !strings.Contains(statementCSV, s.seafarers[0].ID) {
		t.Errorf("statement CSV:\n%s", statementCSV)
	}
}

// waitFile waits for a download to land in dir and returns its content.
func waitFile(t *testing.T, dir, name string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if body, err := os.ReadFile(filepath.Join(dir, name)); err == nil && len(body) > 0 {
			return string(body)
		}
	}
	entries, _ := os.ReadDir(dir)
	t.Fatalf("no download %s in %s (has %v)", name, dir, entries)
	return ""
}

// TestBrowser_UnionCreatesAProgrammeIssuesPacksAndWatchesProgressReachDone:
// a 250-seafarer fleet and a 200-pack budget: the issuance runs in the
// background, the bar reaches 100%, 200 are issued and 50 fail with the
// budget exhausted; the programme then shows its budget spent. The console
// renders in Chinese too.
func TestBrowser_UnionCreatesAProgrammeIssuesPacksAndWatchesProgressReachDone(t *testing.T) {
	s := mustStack(t)
	fleet := s.enrolFleet("Big Fleet 远洋", 250)
	tb := mustTab(t, "en-US", desktop)

	tb.do(chromedp.Navigate(s.base + "/console#token=" + s.token(token.RoleUnion, "union-staff-1", "")))
	tb.waitFor("the console", `!document.getElementById('view').hidden`)
	tb.do(
		chromedp.Click(chromedp.ID("tab-programmes")),
		chromedp.SetValue(chromedp.ID("prog-name"), "Winter pack 2026"),
		chromedp.SetValue(chromedp.ID("prog-minutes"), "60"),
		chromedp.SetValue(chromedp.ID("prog-budget"), "200"),
		chromedp.Click(chromedp.CSS("#programme-form button[type=submit]")),
	)
	tb.waitFor("the new programme", `document.querySelector('#programme-view h3') !== null`)
	programmeID := tb.eval(`document.getElementById('issue-programme').value`)
	if programmeID == "" {
		t.Fatal("the issue form did not get the new programme's id")
	}

	// Record every progress value the bar shows.
	tb.eval(`window.__progress = []; new MutationObserver(() => {
		const b = document.getElementById('issue-progressbar');
		if (b) window.__progress.push(b.getAttribute('aria-valuenow') + ' ' + document.getElementById('issue-status').textContent);
	}).observe(document.getElementById('issue-view'), {subtree: true, childList: true, attributes: true}); ''`)
	tb.do(
		chromedp.Click(chromedp.ID("tab-issue")),
		chromedp.SetValue(chromedp.ID("issue-target"), fleet.ID),
		chromedp.Click(chromedp.ID("issue-button")),
	)
	tb.waitFor("the issuance to finish", `document.getElementById('issue-status').textContent === 'Done'`)
	t.Logf("progress seen: %s", tb.eval(`window.__progress.join(', ')`))
	if got := tb.eval(`document.getElementById('issue-progressbar').getAttribute('aria-valuenow')`); got != "100" {
		t.Errorf("progress at the end = %s%%, want 100", got)
	}
	for id, want := range map[string]string{"issue-total": "250", "issue-issued": "200", "issue-failed": "50", "issue-skipped": "0"} {
		if got := tb.eval(`document.querySelector('#` + id + ` b').textContent`); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
	if f := tb.text("issue-failures"); !strings.Contains(f, "Budget exhausted: 50 seafarers") {
		t.Errorf("failures do not name the budget: %.200s", f)
	}
	tb.screenshot("console-union-issuance-desktop")

	tb.do(
		chromedp.Click(chromedp.ID("tab-programmes")),
		chromedp.SetValue(chromedp.ID("programme-id"), programmeID),
		chromedp.Click(chromedp.CSS("#programme-lookup button[type=submit]")),
	)
	tb.waitFor("the programme's usage", `document.querySelector('#prog-issued b') && document.querySelector('#prog-issued b').textContent === '200 / 200'`)
	tb.screenshot("console-union-programme-desktop")

	tb.do(chromedp.Click(chromedp.ID("lang")), chromedp.Click(chromedp.ID("tab-issue")))
	tb.waitFor("Chinese", `document.getElementById('issue-status').textContent === '已完成'`)
	if got := tb.text("tab-programmes"); got != "福利计划" {
		t.Errorf("zh-CN programmes tab = %q", got)
	}
	tb.screenshot("console-union-issuance-zh-desktop")
	tb.resize(phone)
	tb.screenshot("console-union-issuance-zh-phone")
}
