package carrier

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/crew"
	"github.com/wuyou/wuyou/quota"
	"github.com/wuyou/wuyou/sms"
)

// crew.PGStore, wuyoud's Resolver, reads langs.
var _ LangReader = (*crew.PGStore)(nil)

// langHolders is the fake resolver that also reads langs, counting its
// queries.
type langHolders struct {
	*holders
	langs   map[string]string
	queries atomic.Int32
}

func (h *langHolders) Langs(_ context.Context, ids []string) (map[string]string, error) {
	h.queries.Add(1)
	out := map[string]string{}
	for _, id := range ids {
		if l, ok := h.langs[id]; ok {
			out[id] = l
		}
	}
	return out, nil
}

// Notifications speak to the seafarer (CONTRACT §7.4): a low and an
// exhausted notification carry data.text, one SMS in the seafarer's lang,
// and data.lang; the langs of a batch are read in one query, and a batch
// without notifications asks none.
func TestNotificationsCarryTextInTheSeafarersLang(t *testing.T) {
	f := newUnitFixture(t)
	h := &holders{byNo: map[string]holding{}}
	h.set("+8613800000001", "sf_1", time.Time{})
	h.set("+8613800000002", "sf_2", time.Time{})
	lh := &langHolders{holders: h, langs: map[string]string{"sf_1": wuyou.LangZH, "sf_2": wuyou.LangEN}}
	f.c.cfg.Resolver = lh

	require.NoError(t, f.runStages(t, batch(voiceEvent("quiet", "+8613800000001", f.now.Add(-time.Hour), 60))))
	require.EqualValues(t, 0, lh.queries.Load(), "no notification, no query")

	low := []quota.Note{{Kind: quota.NoteLow, GrantSet: "0123456789abcdef0123", RemainingSeconds: 20 * 60, GrantedSeconds: 6000, At: f.now}}
	out := []quota.Note{{Kind: quota.NoteExhausted, GrantSet: "fedcba9876543210fedc", GrantedSeconds: 6000, At: f.now}}
	f.meter.notes["low-zh"], f.meter.notes["out-zh"] = low, out
	f.meter.notes["low-en"], f.meter.notes["out-en"] = low, out
	require.NoError(t, f.runStages(t, batch(
		voiceEvent("low-zh", "+8613800000001", f.now.Add(-time.Hour), 60),
		voiceEvent("out-zh", "+8613800000001", f.now.Add(-time.Hour), 60),
		voiceEvent("low-en", "+8613800000002", f.now.Add(-time.Hour), 60),
		voiceEvent("out-en", "+8613800000002", f.now.Add(-time.Hour), 60),
	)))
	require.EqualValues(t, 1, lh.queries.Load(), "one query for the batch")

	want := map[string]map[string]string{
		"sf_1": {NotifyQuotaLow: "出海无忧提醒：通话剩余 20 分钟", NotifyQuotaExhausted: "出海无忧提醒：通话已用完"},
		"sf_2": {NotifyQuotaLow: "Wuyou: 20 min of calls left", NotifyQuotaExhausted: "Wuyou: your call minutes are used up"},
	}
	n := f.producer.on(f.topics.Notifications)
	require.Len(t, n, 4)
	for _, m := range n {
		var got struct {
			Type string
			Data map[string]any
		}
		require.NoError(t, json.Unmarshal(m.Value, &got))
		sf := got.Data["seafarer_id"].(string)
		text, lang := got.Data["text"].(string), got.Data["lang"].(string)
		require.Equal(t, lh.langs[sf], lang)
		require.Equal(t, want[sf][got.Type], text)
		require.True(t, sms.Fits(lang, text), text)
	}
}

// A resolver that cannot tell langs leaves notifications in zh-CN.
func TestNotificationsWithoutLangsSpeakTheDefault(t *testing.T) {
	f := newUnitFixture(t)
	f.meter.notes["out"] = []quota.Note{{Kind: quota.NoteExhausted, GrantSet: "fedcba9876543210fedc", GrantedSeconds: 600, At: f.now}}
	require.NoError(t, f.runStages(t, batch(voiceEvent("out", "+8613800000001", f.now.Add(-time.Hour), 60))))
	n := f.producer.on(f.topics.Notifications)
	require.Len(t, n, 1)
	var got struct{ Data map[string]any }
	require.NoError(t, json.Unmarshal(n[0].Value, &got))
	require.Equal(t, wuyou.LangZH, got.Data["lang"])
	require.Equal(t, "出海无忧提醒：通话已用完", got.Data["text"])
}

// langMSISDNs finds MSISDNs and reads langs.
type langMSISDNs struct {
	fixedMSISDNs
	langs map[string]string
}

func (m langMSISDNs) Langs(_ context.Context, ids []string) (map[string]string, error) {
	return m.langs, nil
}

// A wuyou.grant.issued notification carries data.text and data.lang in the
// seafarer's lang, naming the amount and the last day.
func TestGrantIssuedNotificationsCarryTextInTheSeafarersLang(t *testing.T) {
	now := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	producer := &fakeProducer{}
	topics := NewTopics("")
	p := GrantPublisher{Publisher: NewPublisher(producer, topics, func() time.Time { return now }),
		MSISDNs: langMSISDNs{fixedMSISDNs{"sf_1": "+8613800000001", "sf_2": "+8613800000002"}, map[string]string{"sf_2": wuyou.LangEN}}}
	expires := time.Date(2026, 5, 1, 0, 0, 0, 0, sms.Zone)
	var grants []quota.IssuedGrant
	for _, sf := range []string{"sf_1", "sf_2"} {
		grants = append(grants, quota.IssuedGrant{
			Grant: quota.GrantInput{ID: "gr_" + sf, SeafarerID: sf, ProgrammeID: "pg_1", Seconds: 300 * 60, EffectiveAt: now, ExpiresAt: expires, IssuedAt: now},
			Entry: &quota.LedgerEntry{ID: "le_" + sf, Kind: "grant", At: now},
		})
	}
	require.NoError(t, p.PublishGrants(context.Background(), grants))
	want := map[string][2]string{
		"sf_1": {wuyou.LangZH, "出海无忧提醒：已发放通话 300 分钟，4月30日到期"},
		"sf_2": {wuyou.LangEN, "Wuyou: 300 min of calls granted, expires 30 Apr"},
	}
	n := producer.on(topics.Notifications)
	require.Len(t, n, 2)
	for _, m := range n {
		var got struct{ Data map[string]any }
		require.NoError(t, json.Unmarshal(m.Value, &got))
		w := want[got.Data["seafarer_id"].(string)]
		require.Equal(t, w[0], got.Data["lang"])
		require.Equal(t, w[1], got.Data["text"])
	}
}

// A real-time session's debit notifies in the seafarer's lang too.
func TestASessionsDebitNotifiesInTheSeafarersLang(t *testing.T) {
	producer := &fakeProducer{}
	topics := NewTopics("")
	now := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	r := LedgerRecorder{Publisher: NewPublisher(producer, topics, func() time.Time { return now }),
		Langs: langMSISDNs{langs: map[string]string{"sf_2": wuyou.LangEN}}}
	u := quota.Usage{SeafarerID: "sf_2", MSISDN: "+8613800000002", Source: "s", EventID: "e"}
	res := &quota.DebitResult{Notes: []quota.Note{{Kind: quota.NoteExhausted, GrantSet: "fedcba9876543210fedc", At: now}}}
	require.NoError(t, r.RecordDebit(context.Background(), u, res))
	n := producer.on(topics.Notifications)
	require.Len(t, n, 1)
	var got struct{ Data map[string]any }
	require.NoError(t, json.Unmarshal(n[0].Value, &got))
	require.Equal(t, wuyou.LangEN, got.Data["lang"])
	require.Equal(t, "Wuyou: your call minutes are used up", got.Data["text"])
}

// End to end over the real Redis store (CONTRACT §7.4, issue 17): a low
// notification's text names the day what is left expires (the earliest
// expiry among the active grants that still hold something, not that of a
// pack the call emptied), and an exhausted one the day the next pack
// starts, in each seafarer's lang, each one SMS.
func TestLowAndExhaustedTextsNameTheirDaysEndToEnd(t *testing.T) {
	f := mustConsumerFixture(t, nil)
	ctx := context.Background()
	now := f.now()
	soon, later, next := now.Add(5*24*time.Hour), now.Add(20*24*time.Hour), now.Add(25*24*time.Hour)
	langs := map[string]string{"sf_zh": wuyou.LangZH, "sf_en": wuyou.LangEN}
	msisdns := map[string]string{"sf_zh": "+8613800000001", "sf_en": "+8613800000002"}
	f.consumer.cfg.Resolver = &langHolders{holders: f.holders, langs: langs}
	for sf, msisdn := range msisdns {
		f.holders.set(msisdn, sf, time.Time{})
		for _, g := range []quota.GrantInput{
			{ID: sf + "_soon", Seconds: 300, EffectiveAt: now.Add(-24 * time.Hour), ExpiresAt: soon},
			{ID: sf + "_later", Seconds: 300, EffectiveAt: now.Add(-24 * time.Hour), ExpiresAt: later},
			{ID: sf + "_next", Seconds: 600, EffectiveAt: next, ExpiresAt: next.Add(30 * 24 * time.Hour)},
		} {
			g.SeafarerID, g.ProgrammeID, g.Priority = sf, "pr_1", 1
			_, _, err := f.store.AddGrant(ctx, g)
			require.NoError(t, err)
		}
	}
	f.run(t)
	for sf, msisdn := range msisdns {
		f.produce(t, voiceEvent(sf+"-1", msisdn, now.Add(-time.Hour), 540))   // 600 → 60: low
		f.produce(t, voiceEvent(sf+"-2", msisdn, now.Add(-time.Minute), 120)) // 60 → 0: exhausted
	}

	lastDay := later.Add(-time.Second).In(sms.Zone) // an expiry at midnight is the day before's
	startDay := next.In(sms.Zone)
	want := map[string]map[string]string{
		"sf_zh": {
			NotifyQuotaLow:       fmt.Sprintf("出海无忧提醒：通话剩余 1 分钟，%d月%d日到期", lastDay.Month(), lastDay.Day()),
			NotifyQuotaExhausted: fmt.Sprintf("出海无忧提醒：通话已用完，%d月%d日起有新额度", startDay.Month(), startDay.Day()),
		},
		"sf_en": {
			NotifyQuotaLow:       fmt.Sprintf("Wuyou: 1 min of calls left, expires %d %s", lastDay.Day(), lastDay.Month().String()[:3]),
			NotifyQuotaExhausted: fmt.Sprintf("Wuyou: your call minutes are used up; more from %d %s", startDay.Day(), startDay.Month().String()[:3]),
		},
	}
	got := map[string]map[string]string{"sf_zh": {}, "sf_en": {}}
	for _, m := range f.read(t, f.topics.Notifications, 4) {
		var ev struct {
			Type string
			Data map[string]any
		}
		require.NoError(t, json.Unmarshal(m.Value, &ev))
		sf := ev.Data["seafarer_id"].(string)
		require.Equal(t, langs[sf], ev.Data["lang"])
		text := ev.Data["text"].(string)
		require.True(t, sms.Fits(langs[sf], text), text)
		got[sf][ev.Type] = text
	}
	require.Equal(t, want, got)
}
