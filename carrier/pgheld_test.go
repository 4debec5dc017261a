package carrier

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou"
	"github.com/wuyou/wuyou/internal/pgtest"
)

// heldAt is a message as read from partition 0 at offset, with value.
func heldAt(offset int64, value []byte) kafka.Message {
	return kafka.Message{Topic: "carrier.usage.v1", Partition: 0, Offset: offset, Key: []byte("k"), Value: value}
}

// mustHold holds the events, failing the test on error.
func mustHold(t *testing.T, h HeldEvents, msisdn string, at time.Time, identities ...string) {
	t.Helper()
	for i, id := range identities {
		require.NoError(t, h.Hold(context.Background(), msisdn, id, at, heldAt(int64(i), []byte("event "+id))))
	}
}

func mustHeldIdentities(t *testing.T, h HeldEvents, msisdn string) []string {
	t.Helper()
	got, err := h.Held(context.Background(), msisdn)
	require.NoError(t, err)
	return slices.Sorted(maps.Keys(got))
}

// The semantics every HeldEvents keeps (PGHeld; the unit tests' fake keeps
// the part they need).
func TestHeldEventsStores(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		run  func(t *testing.T, h HeldEvents)
	}{
		{"HoldingAnEventAgainKeepsOneCopy", func(t *testing.T, h HeldEvents) {
			mustHold(t, h, "+8613900000001", t0, "src\x00a")
			mustHold(t, h, "+8613900000001", t0, "src\x00a")
			require.Equal(t, []string{"src\x00a"}, mustHeldIdentities(t, h, "+8613900000001"))
		}},
		{"HeldReturnsOnlyThatMSISDNsEventsByIdentity", func(t *testing.T, h HeldEvents) {
			mustHold(t, h, "+8613900000001", t0, "src\x00a", "src\x00b")
			mustHold(t, h, "+8613900000002", t0, "src\x00c")
			require.Equal(t, []string{"src\x00a", "src\x00b"}, mustHeldIdentities(t, h, "+8613900000001"))
			require.Equal(t, []string{"src\x00c"}, mustHeldIdentities(t, h, "+8613900000002"))
			require.Empty(t, mustHeldIdentities(t, h, "+8613900000003"), "a number with nothing held")
		}},
		{"IdentitiesDifferingOnlyAfterTheirNULAreDifferentEvents", func(t *testing.T, h HeldEvents) {
			mustHold(t, h, "+8613900000001", t0, "src\x00a", "src\x00a\x00", "src\x00\xff", "srcx\x00a")
			require.Equal(t, []string{"src\x00a", "src\x00a\x00", "src\x00\xff", "srcx\x00a"}, mustHeldIdentities(t, h, "+8613900000001"))
		}},
		{"ReleaseForgetsOnlyTheNamedIdentitiesOfThatMSISDN", func(t *testing.T, h HeldEvents) {
			ctx := context.Background()
			mustHold(t, h, "+8613900000001", t0, "src\x00a", "src\x00b", "src\x00c")
			mustHold(t, h, "+8613900000002", t0, "src\x00a")
			require.NoError(t, h.Release(ctx, "+8613900000001"), "releasing nothing")
			require.NoError(t, h.Release(ctx, "+8613900000001", "src\x00a", "src\x00c", "src\x00never-held"))
			require.Equal(t, []string{"src\x00b"}, mustHeldIdentities(t, h, "+8613900000001"))
			require.Equal(t, []string{"src\x00a"}, mustHeldIdentities(t, h, "+8613900000002"), "another number's event of the same identity stays")
		}},
		{"AnEventReleasedCanBeHeldAgain", func(t *testing.T, h HeldEvents) {
			mustHold(t, h, "+8613900000001", t0, "src\x00a")
			require.NoError(t, h.Release(context.Background(), "+8613900000001", "src\x00a"))
			mustHold(t, h, "+8613900000001", t0, "src\x00a")
			require.Equal(t, []string{"src\x00a"}, mustHeldIdentities(t, h, "+8613900000001"))
		}},
		{"TheValueAndItsPlaceOnTheUsageTopicComeBackByteForByte", func(t *testing.T, h HeldEvents) {
			ctx := context.Background()
			values := map[string][]byte{
				"src\x00binary": {0x00, 0xff, 0xfe, '\n', 0x00, '\r', 0x80},
				"src\x00prefix": []byte("\x00held:7:9\nnot a place"),
				"src\x00large":  bytes.Repeat([]byte("\x00\xffwuyou\n"), (1<<20)/8),
				"src\x00json":   voiceEvent("a", "+8613900000001", t0, 60),
			}
			offset := int64(41)
			for id, v := range values {
				offset++
				m := kafka.Message{Topic: "carrier.usage.v1", Partition: 3, Offset: offset, Key: []byte("+8613900000001"), Value: v}
				require.NoError(t, h.Hold(ctx, "+8613900000001", id, t0, m))
			}
			got, err := h.Held(ctx, "+8613900000001")
			require.NoError(t, err)
			require.Len(t, got, len(values))
			for id, v := range values {
				require.True(t, bytes.Equal(v, got[id].Value), "%q: value changed", id)
				require.Equal(t, 3, got[id].Partition, id)
				require.Positive(t, got[id].Offset, id)
			}
		}},
		{"DueListsMSISDNsHoldingACallBeforeTheCutoffEarliestFirstUpToN", func(t *testing.T, h HeldEvents) {
			ctx := context.Background()
			mustHold(t, h, "+8613900000003", t0.Add(3*time.Hour), "src\x00c")
			mustHold(t, h, "+8613900000001", t0.Add(time.Hour), "src\x00a")
			mustHold(t, h, "+8613900000002", t0.Add(2*time.Hour), "src\x00b")
			mustHold(t, h, "+8613900000004", t0.Add(4*time.Hour), "src\x00d") // at the cutoff: not before it
			// The earliest call decides: an MSISDN holding later calls too is
			// listed once, by its earliest.
			mustHold(t, h, "+8613900000002", t0.Add(150*time.Minute), "src\x00b2")
			mustHold(t, h, "+8613900000001", t0.Add(5*time.Hour), "src\x00a2")

			cutoff := t0.Add(4 * time.Hour)
			due, err := h.Due(ctx, cutoff, 10)
			require.NoError(t, err)
			require.Equal(t, []string{"+8613900000001", "+8613900000002", "+8613900000003"}, due)
			due, err = h.Due(ctx, cutoff, 2)
			require.NoError(t, err)
			require.Equal(t, []string{"+8613900000001", "+8613900000002"}, due)
			due, err = h.Due(ctx, t0.Add(time.Hour), 10)
			require.NoError(t, err)
			require.Empty(t, due, "a call at the cutoff is not before it")
		}},
		{"DueIsNotCrowdedOutByOneMSISDNWithManyEarlyCalls", func(t *testing.T, h HeldEvents) {
			for i := range 50 {
				mustHold(t, h, "+8613900000001", t0.Add(time.Duration(i)*time.Minute), fmt.Sprintf("src\x00many-%02d", i))
			}
			mustHold(t, h, "+8613900000002", t0.Add(10*time.Minute+30*time.Second), "src\x00one")
			mustHold(t, h, "+8613900000003", t0.Add(20*time.Minute+30*time.Second), "src\x00one")
			due, err := h.Due(context.Background(), t0.Add(time.Hour), 2)
			require.NoError(t, err)
			require.Equal(t, []string{"+8613900000001", "+8613900000002"}, due)
			due, err = h.Due(context.Background(), t0.Add(time.Hour), 100)
			require.NoError(t, err)
			require.Equal(t, []string{"+8613900000001", "+8613900000002", "+8613900000003"}, due)
		}},
		{"AnMSISDNWhoseEarlyCallsAreReleasedIsDueByWhatItStillHolds", func(t *testing.T, h HeldEvents) {
			ctx := context.Background()
			mustHold(t, h, "+8613900000001", t0, "src\x00early")
			mustHold(t, h, "+8613900000001", t0.Add(2*time.Hour), "src\x00later")
			require.NoError(t, h.Release(ctx, "+8613900000001", "src\x00early"))
			due, err := h.Due(ctx, t0.Add(time.Hour), 10)
			require.NoError(t, err)
			require.Empty(t, due)
			due, err = h.Due(ctx, t0.Add(3*time.Hour), 10)
			require.NoError(t, err)
			require.Equal(t, []string{"+8613900000001"}, due)
			require.NoError(t, h.Release(ctx, "+8613900000001", "src\x00later"))
			due, err = h.Due(ctx, t0.Add(3*time.Hour), 10)
			require.NoError(t, err)
			require.Empty(t, due, "nothing held, nothing due")
		}},
		{"ConcurrentHoldsAndReleasesOfOneMSISDNLoseNothingAndKeepOneCopy", func(t *testing.T, h HeldEvents) {
			const workers, each = 8, 20
			ctx := context.Background()
			var wg sync.WaitGroup
			errs := make(chan error, workers*each*3) // at most three calls per step
			for w := range workers {
				wg.Go(func() {
					for i := range each {
						id := fmt.Sprintf("src\x00w%d-%02d", w, i)
						errs <- h.Hold(ctx, "+8613900000001", id, t0, heldAt(int64(i), []byte(id)))
						// Every worker holds the same one too: one copy stays.
						errs <- h.Hold(ctx, "+8613900000001", "src\x00shared", t0, heldAt(0, []byte("shared")))
						if i%2 == 0 {
							errs <- h.Release(ctx, "+8613900000001", id)
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			want := []string{"src\x00shared"}
			for w := range workers {
				for i := 1; i < each; i += 2 {
					want = append(want, fmt.Sprintf("src\x00w%d-%02d", w, i))
				}
			}
			slices.Sort(want)
			got, err := h.Held(ctx, "+8613900000001")
			require.NoError(t, err)
			require.Equal(t, want, slices.Sorted(maps.Keys(got)))
			for id, m := range got {
				if id == "src\x00shared" {
					require.Equal(t, "shared", string(m.Value))
				} else {
					require.Equal(t, id, string(m.Value), "each identity keeps its own event")
				}
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, NewPGHeld(pgtest.MustPool(t))) })
	}
}

// PostgreSQL keeps the whole message as read: key (nil apart from empty),
// headers in order with any bytes (a null value apart from an empty one),
// the timestamp and the topic, as well as the value and its place.
func TestPGHeldKeepsTheWholeMessageByteForByte(t *testing.T) {
	ctx := context.Background()
	h := NewPGHeld(pgtest.MustPool(t))
	at := time.Date(2026, 11, 28, 10, 15, 0, 123_000_000, time.UTC)
	messages := map[string]kafka.Message{
		"src\x00full": {Topic: "carrier.usage.v1", Partition: 7, Offset: 1 << 40, Time: at,
			Key: []byte("+86\x00\xff139"), Value: []byte("v\x00\xff"),
			Headers: []kafka.Header{
				{Key: "ce_id", Value: []byte("a")},
				{Key: "nul\x00key\xff", Value: []byte{0, 0xff}},
				{Key: "null", Value: nil},
				{Key: "empty", Value: []byte{}},
				{Key: "ce_id", Value: []byte("b")}, // a repeated key keeps its place
			}},
		"src\x00bare":      {Partition: -1, Offset: -1, Value: []byte("{}")},
		"src\x00empty-key": {Key: []byte{}, Value: []byte("x")},
	}
	for id, m := range messages {
		require.NoError(t, h.Hold(ctx, "+8613900000001", id, at, m))
	}
	got, err := h.Held(ctx, "+8613900000001")
	require.NoError(t, err)
	require.Len(t, got, len(messages))
	for id, want := range messages {
		g := got[id]
		require.Equal(t, want.Topic, g.Topic, id)
		require.Equal(t, want.Partition, g.Partition, id)
		require.Equal(t, want.Offset, g.Offset, id)
		require.True(t, want.Time.Equal(g.Time), "%q: time %v, want %v", id, g.Time, want.Time)
		require.Equal(t, want.Key == nil, g.Key == nil, "%q: a nil key stays nil, an empty one empty", id)
		require.True(t, bytes.Equal(want.Key, g.Key), id)
		require.True(t, bytes.Equal(want.Value, g.Value), id)
		require.Len(t, g.Headers, len(want.Headers), id)
		for i, wh := range want.Headers {
			require.Equal(t, wh.Key, g.Headers[i].Key, "%q header %d", id, i)
			require.Equal(t, wh.Value == nil, g.Headers[i].Value == nil, "%q header %d: null stays null, empty stays empty", id, i)
			require.True(t, bytes.Equal(wh.Value, g.Headers[i].Value), "%q header %d", id, i)
		}
	}
}

// Holding an identity again, even with other bytes, keeps the copy held
// first: a redelivery cannot replace what was held.
func TestPGHeldHoldingAnIdentityAgainKeepsTheFirstCopy(t *testing.T) {
	ctx := context.Background()
	h := NewPGHeld(pgtest.MustPool(t))
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	require.NoError(t, h.Hold(ctx, "+8613900000001", "src\x00a", t0, heldAt(1, []byte("first"))))
	require.NoError(t, h.Hold(ctx, "+8613900000001", "src\x00a", t0.Add(-time.Hour), heldAt(2, []byte("second"))))
	got, err := h.Held(ctx, "+8613900000001")
	require.NoError(t, err)
	require.Equal(t, "first", string(got["src\x00a"].Value))
	require.Equal(t, int64(1), got["src\x00a"].Offset)
	due, err := h.Due(ctx, t0, 10)
	require.NoError(t, err)
	require.Empty(t, due, "the second copy's earlier call time was not kept either")
}

// What text cannot hold is refused as invalid before anything is stored;
// reading or releasing under such a number finds nothing.
func TestPGHeldRefusesAnMSISDNOrTopicItCannotKeepAsText(t *testing.T) {
	ctx := context.Background()
	h := NewPGHeld(pgtest.MustPool(t))
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for name, hold := range map[string]func() error{
		"NUL in MSISDN":  func() error { return h.Hold(ctx, "+86139\x00", "src\x00a", t0, heldAt(0, []byte("x"))) },
		"bad UTF-8":      func() error { return h.Hold(ctx, "+86139\xff", "src\x00a", t0, heldAt(0, []byte("x"))) },
		"empty MSISDN":   func() error { return h.Hold(ctx, "", "src\x00a", t0, heldAt(0, []byte("x"))) },
		"empty identity": func() error { return h.Hold(ctx, "+8613900000001", "", t0, heldAt(0, []byte("x"))) },
		"NUL in topic": func() error {
			return h.Hold(ctx, "+8613900000001", "src\x00a", t0, kafka.Message{Topic: "t\x00", Value: []byte("x")})
		},
		"one bad event of a batch": func() error {
			return h.HoldAll(ctx, []HeldEvent{
				{MSISDN: "+8613900000001", Identity: "src\x00ok", CallTime: t0, Message: heldAt(0, []byte("x"))},
				{MSISDN: "+86139\x00", Identity: "src\x00a", CallTime: t0, Message: heldAt(1, []byte("x"))},
			})
		},
	} {
		err := hold()
		require.Equal(t, wuyou.EINVALID, wuyou.ErrorCode(err), "%s: %v", name, err)
	}
	held, err := h.Held(ctx, "+86139\x00")
	require.NoError(t, err)
	require.Empty(t, held)
	require.NoError(t, h.Release(ctx, "+86139\x00", "src\x00a"))
	require.Empty(t, mustHeldIdentities(t, h, "+8613900000001"), "nothing of the refused batch was stored")
	due, err := h.Due(ctx, t0.Add(time.Hour), 10)
	require.NoError(t, err)
	require.Empty(t, due)
}

// Due compares call times to the microsecond PostgreSQL keeps, never
// listing a number whose call is not before the cutoff: ExpireHeld would
// otherwise be given the same number again and again.
func TestPGHeldDueNeverListsACallThatIsNotBeforeTheCutoff(t *testing.T) {
	ctx := context.Background()
	h := NewPGHeld(pgtest.MustPool(t))
	cutoff := time.Date(2026, 11, 28, 10, 0, 0, 700, time.UTC) // 700 ns past a microsecond
	mustHold(t, h, "+8613900000001", cutoff.Add(200*time.Nanosecond), "src\x00after")
	mustHold(t, h, "+8613900000002", cutoff, "src\x00at")
	mustHold(t, h, "+8613900000003", cutoff.Add(-time.Microsecond), "src\x00before")
	due, err := h.Due(ctx, cutoff, 10)
	require.NoError(t, err)
	require.Equal(t, []string{"+8613900000003"}, due)
	due, err = h.Due(ctx, cutoff, 0)
	require.NoError(t, err)
	require.Empty(t, due, "n = 0 lists none")
}

// Batches holding some of the same events, concurrently and in opposite
// orders, all succeed (no deadlock between them) and keep one copy each.
func TestPGHeldConcurrentOverlappingBatchesHoldEachEventOnce(t *testing.T) {
	ctx := context.Background()
	h := NewPGHeld(pgtest.MustPool(t))
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	var events []HeldEvent
	for i := range 40 {
		msisdn := fmt.Sprintf("+86139000000%02d", i%4)
		events = append(events, HeldEvent{MSISDN: msisdn, Identity: fmt.Sprintf("src\x00e%02d", i), CallTime: t0, Message: heldAt(int64(i), []byte("x"))})
	}
	reversed := slices.Clone(events)
	slices.Reverse(reversed)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for w := range errs {
		wg.Go(func() {
			batch := events
			if w%2 == 1 {
				batch = reversed
			}
			errs[w] = h.HoldAll(ctx, batch)
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	total := 0
	for i := range 4 {
		ids := mustHeldIdentities(t, h, fmt.Sprintf("+86139000000%02d", i))
		require.Len(t, ids, 10)
		total += len(ids)
	}
	require.Equal(t, 40, total)
	due, err := h.Due(ctx, t0.Add(time.Second), 100)
	require.NoError(t, err)
	require.Len(t, due, 4)
	require.True(t, slices.IsSorted(due), "equal call times: by MSISDN")
}
