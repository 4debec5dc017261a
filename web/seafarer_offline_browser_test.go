package web_test

import (
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// setNetwork makes every request of the page fail (blocked before it
// leaves the browser, as a dropped link fails it) or lets them through,
// without touching what the browser says about its connection.
func (tb *tab) setNetwork(reachable bool) {
	tb.t.Helper()
	params := network.SetBlockedURLsParams{URLPatterns: []*network.BlockPattern{}}
	if !reachable {
		params.URLPatterns = append(params.URLPatterns, &network.BlockPattern{URLPattern: "*://*:*/v1/*", Block: true})
	}
	_, err := chromedp.Call(tb.ctx, network.SetBlockedURLs, params)
	must(tb.t, err)
}

// setOnline sets what the browser says about its connection
// (navigator.onLine), which fires the page's online and offline events.
func (tb *tab) setOnline(online bool) {
	tb.t.Helper()
	_, err := chromedp.Call(tb.ctx, network.OverrideNetworkState, network.OverrideNetworkStateParams{
		Offline: !online, DownloadThroughput: -1, UploadThroughput: -1,
	})
	must(tb.t, err)
}

// forgetProblems drops the problems the page reported that contain what:
// the requests a test cut off on purpose.
func (tb *tab) forgetProblems(what string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	kept := tb.problems[:0]
	for _, p := range tb.problems {
		if !strings.Contains(p, what) {
			kept = append(kept, p)
		}
	}
	tb.problems = kept
}

// offlineInView says whether the offline message is shown and wholly on
// screen.
const offlineInView = `(() => { const el = document.getElementById('offline');
  if (el.hidden) return false;
  const r = el.getBoundingClientRect();
  return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight; })()`

// TestBrowser_SeafarerOfflineSeesItWhereTheyAreLookingAndItGoesWhenBackOnline:
// the phone losing its connection shows a message above the minutes, which
// stay on screen with their time; a refresh that cannot reach Wuyou while
// the seafarer is at the bottom of the page shows it on screen, not out of
// sight at the top; coming back online loads again and the message goes.
func TestBrowser_SeafarerOfflineSeesItWhereTheyAreLookingAndItGoesWhenBackOnline(t *testing.T) {
	s, tok := seafarerScene(t)
	tb := mustTab(t, "en-GB", viewport{375, 560, true})
	t.Cleanup(func() { tb.forgetProblems("ERR_BLOCKED_BY_CLIENT") })
	tb.do(chromedp.Navigate(s.base + "/#token=" + tok))
	tb.waitFor("four calls", `document.querySelectorAll('#calls tr').length === 4`)
	if got := tb.eval(`String(document.getElementById('offline').hidden)`); got != "true" {
		t.Fatalf("an offline message while online")
	}

	// The browser says the connection went: the message at once, just
	// above the balance card, the minutes kept with their time.
	tb.setOnline(false)
	tb.waitFor("the offline message", offlineInView)
	if got := tb.text("offline"); !strings.Contains(got, "No connection") || !strings.Contains(got, "as of") {
		t.Errorf("offline message = %q", got)
	}
	if got := tb.eval(`String(document.getElementById('offline').getBoundingClientRect().bottom <= document.querySelector('.hero').getBoundingClientRect().top && document.getElementById('offline').nextElementSibling.classList.contains('hero'))`); got != "true" {
		t.Errorf("the offline message is not right above the balance card")
	}
	if got := tb.text("remaining"); got != "345" {
		t.Errorf("minutes left while offline = %q, want 345 kept", got)
	}
	tb.screenshot("seafarer-offline-en-phone")

	// Back online: loaded again, the message gone.
	tb.do(chromedp.Evaluate[chromedp.Void](`document.getElementById('as-of').textContent = ''`))
	tb.setOnline(true)
	tb.waitFor("the message gone and the page loaded again", `document.getElementById('offline').hidden && document.getElementById('as-of').textContent !== ''`)

	// Requests fail while the browser still thinks it is online (a ship's
	// link that dropped): the seafarer, at the bottom of the page, taps
	// Refresh and sees the message there.
	tb.do(chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, document.documentElement.scrollHeight)`))
	if got := tb.eval(`String(window.scrollY > 0)`); got != "true" {
		t.Fatalf("the page does not scroll at this size: the test proves nothing")
	}
	tb.setNetwork(false)
	tb.do(chromedp.Click(chromedp.ID("refresh")))
	tb.waitFor("the offline message on screen at the bottom of the page", offlineInView)
	if got := tb.eval(`String(document.getElementById('status').hidden)`); got != "true" {
		t.Errorf("the failure is also on the status line, out of sight: %q", tb.text("status"))
	}
	tb.screenshot("seafarer-offline-scrolled-en-phone")

	tb.setNetwork(true)
	tb.setOnline(false)
	tb.setOnline(true)
	tb.waitFor("the message gone once back online", `document.getElementById('offline').hidden`)
	if got := tb.text("remaining"); got != "345" {
		t.Errorf("minutes left after coming back = %q, want 345", got)
	}
}
