package carrier

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/quota"
)

// A programme's thresholds reach the notification: a call that crosses a
// percent and a remaining threshold at once publishes one wuyou.quota.low
// for each, each naming its threshold in data.threshold and with its own
// id (the default 20 percent keeps the id it had).
func TestLowNotificationsNameTheThresholdTheyCrossed(t *testing.T) {
	f := mustConsumerFixture(t, nil)
	const msisdn = "+8613800000001"
	f.holders.set(msisdn, "sf_1", time.Time{})
	ctx := context.Background()
	now := f.now()
	_, _, err := f.store.AddGrant(ctx, quota.GrantInput{ID: "gr_th", SeafarerID: "sf_1", ProgrammeID: "pr_1", Priority: 1,
		Seconds: 3000, EffectiveAt: now.Add(-24 * time.Hour), ExpiresAt: now.Add(30 * 24 * time.Hour),
		NotifyAt: []quota.Threshold{{Percent: 20}, {Remaining: 600}}})
	require.NoError(t, err)
	f.run(t)
	f.produce(t, voiceEvent("v-1", msisdn, now.Add(-time.Minute), 41*60)) // 3000 → 540

	got := map[string]map[string]any{}
	ids := map[string]string{}
	for _, m := range f.read(t, f.topics.Notifications, 2) {
		var ev struct {
			ID, Type string
			Data     map[string]any
		}
		require.NoError(t, json.Unmarshal(m.Value, &ev))
		require.Equal(t, NotifyQuotaLow, ev.Type)
		th, _ := json.Marshal(ev.Data["threshold"])
		got[string(th)] = ev.Data
		ids[string(th)] = ev.ID
	}
	require.Len(t, got, 2)
	require.Contains(t, got, `{"percent":20}`)
	require.Contains(t, got, `{"remaining":600}`)
	require.EqualValues(t, 540, got[`{"remaining":600}`]["remaining"])
	require.EqualValues(t, 3000, got[`{"percent":20}`]["granted"])
	require.Regexp(t, `^low-sf_1-[0-9a-f]{16}$`, ids[`{"percent":20}`])
	require.Regexp(t, `^low-sf_1-[0-9a-f]{16}-r600$`, ids[`{"remaining":600}`])
}
