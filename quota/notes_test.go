package quota

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// notesOf collects the notes of results by kind.
func notesOf(rs ...*DebitResult) map[string][]Note {
	out := map[string][]Note{}
	for _, r := range rs {
		for _, n := range r.Notes {
			out[n.Kind] = append(out[n.Kind], n)
		}
	}
	return out
}

// The low mark is announced by the one call that takes the active grants
// below 20% of their total, and the exhausted mark by the one that takes
// them to zero: never again by later calls while the seafarer stays low or
// empty, and a redelivery of the announcing call repeats exactly the same
// note (so its notification has the same id and content).
func TestLowAndExhaustedAreAnnouncedOncePerGrantSet(t *testing.T) {
	s, clock, _ := MustMeterStore(t, Options{})
	const sf = "sf-notes"
	MustAddGrant(t, s, activeGrant(sf, "gr_1", 600))

	var all []*DebitResult
	call := func(i int, seconds int64) *DebitResult {
		r := MustDebit(t, s, voiceCall(sf, fmt.Sprintf("cdr-notes-%d", i), meterNow.Add(-time.Hour+time.Duration(i)*time.Second), seconds))
		all = append(all, r)
		return r
	}
	require.Empty(t, call(1, 420).Notes, "600 → 180: still at 30%")
	require.Empty(t, call(10, 60).Notes, "180 → 120: at 20%, not below")
	low := call(2, 60) // 120 → 60: below 20% of 600
	require.Len(t, low.Notes, 1)
	require.Equal(t, Note{Kind: NoteLow, GrantSet: low.Notes[0].GrantSet, RemainingSeconds: 60, GrantedSeconds: 600, At: low.Notes[0].At,
		Threshold: &Threshold{Percent: 20}, ExpiresAt: activeGrant(sf, "gr_1", 600).ExpiresAt}, low.Notes[0])
	for i := 3; i <= 4; i++ {
		require.Empty(t, call(i, 20).Notes, "still low after call %d: nothing new", i)
	}
	empty := call(5, 20) // 20 → 0
	require.Len(t, empty.Notes, 1)
	require.Equal(t, NoteExhausted, empty.Notes[0].Kind)
	require.Empty(t, call(6, 60).Notes, "already empty: overage only, nothing announced")

	// Redelivered, the announcing calls repeat their notes exactly; the
	// others still announce nothing.
	clock.Advance(time.Minute)
	again := MustDebit(t, s, voiceCall(sf, "cdr-notes-2", meterNow.Add(-time.Hour+2*time.Second), 60))
	require.True(t, again.Duplicate)
	require.Equal(t, low.Notes, again.Notes)
	require.Empty(t, MustDebit(t, s, voiceCall(sf, "cdr-notes-3", meterNow.Add(-time.Hour+3*time.Second), 20)).Notes)
	require.Len(t, notesOf(all...)[NoteLow], 1)
	require.Len(t, notesOf(all...)[NoteExhausted], 1)

	// A new pack makes a new grant set, which is announced again when it
	// runs low.
	MustAddGrant(t, s, activeGrant(sf, "gr_2", 300))
	r := MustDebit(t, s, voiceCall(sf, "cdr-notes-7", meterNow.Add(-time.Minute), 300))
	require.Len(t, r.Notes, 2, "the new set crossed both marks at once")
	require.NotEqual(t, low.Notes[0].GrantSet, r.Notes[0].GrantSet)
}

// A call that draws from a grant no longer active now (a late call drawing
// an expired pack) cannot make the active set look as if it crossed a mark.
func TestACallDrawingAnExpiredGrantAnnouncesNothingForTheActiveSet(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	const sf = "sf-notes-expired"
	old := GrantInput{ID: "gr_old", SeafarerID: sf, ProgrammeID: "pr_test", Seconds: 6000,
		EffectiveAt: meterNow.Add(-10 * meterDay), ExpiresAt: meterNow.Add(-meterDay), Priority: 1}
	MustAddGrant(t, s, old)
	MustAddGrant(t, s, activeGrant(sf, "gr_now", 600))
	MustDebit(t, s, voiceCall(sf, "cdr-x-1", meterNow.Add(-time.Hour), 540)) // 600 → 60: low
	for i := 2; i < 6; i++ {
		// Calls from before gr_now, drawing the expired pack only.
		r := MustDebit(t, s, voiceCall(sf, fmt.Sprintf("cdr-x-%d", i), meterNow.Add(-5*meterDay), 60))
		require.Equal(t, int64(60), r.Entry.CoveredSeconds)
		require.Empty(t, r.Notes, "call %d drew only a grant outside the active set", i)
	}
}

// A low note names when what is left starts to lapse: the earliest expiry
// among the active grants that still hold something (not a grant the call
// emptied, whose expiry no longer matters); an exhausted note names when
// more comes, the start of the next pending grant, or nothing when none is
// pending. A redelivery names the same dates, whatever was added since.
func TestNotesNameWhenWhatIsLeftExpiresAndWhenMoreComes(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	const sf = "sf-notes-dates"
	soon, later := meterNow.Add(5*meterDay), meterNow.Add(20*meterDay)
	next := meterNow.Add(25 * meterDay)
	MustAddGrant(t, s, GrantInput{ID: "gr_soon", SeafarerID: sf, ProgrammeID: "pr_test", Seconds: 300,
		EffectiveAt: meterNow.Add(-meterDay), ExpiresAt: soon, Priority: 1})
	MustAddGrant(t, s, GrantInput{ID: "gr_later", SeafarerID: sf, ProgrammeID: "pr_test", Seconds: 300,
		EffectiveAt: meterNow.Add(-meterDay), ExpiresAt: later, Priority: 1})
	MustAddGrant(t, s, GrantInput{ID: "gr_next", SeafarerID: sf, ProgrammeID: "pr_test", Seconds: 600,
		EffectiveAt: next, ExpiresAt: next.Add(30 * meterDay), Priority: 1})
	MustAddGrant(t, s, GrantInput{ID: "gr_next_voided", SeafarerID: sf, ProgrammeID: "pr_test", Seconds: 600,
		EffectiveAt: meterNow.Add(2 * meterDay), ExpiresAt: next.Add(30 * meterDay), Priority: 1})
	_, err := s.VoidGrant(context.Background(), sf, "gr_next_voided")
	require.NoError(t, err)

	low := MustDebit(t, s, voiceCall(sf, "cdr-dates-1", meterNow.Add(-time.Hour), 540)) // gr_soon emptied, gr_later 60 left
	require.Len(t, low.Notes, 1)
	require.Equal(t, NoteLow, low.Notes[0].Kind)
	require.Equal(t, later, low.Notes[0].ExpiresAt, "gr_soon holds nothing: what is left lapses with gr_later")
	require.True(t, low.Notes[0].NextAt.IsZero())

	out := MustDebit(t, s, voiceCall(sf, "cdr-dates-2", meterNow.Add(-time.Minute), 120))
	require.Len(t, out.Notes, 1)
	require.Equal(t, NoteExhausted, out.Notes[0].Kind)
	require.Equal(t, next, out.Notes[0].NextAt, "the voided pending grant brings nothing")
	require.True(t, out.Notes[0].ExpiresAt.IsZero())

	// Redelivered after another pack came in, the notes are the same.
	MustAddGrant(t, s, GrantInput{ID: "gr_sooner", SeafarerID: sf, ProgrammeID: "pr_test", Seconds: 60,
		EffectiveAt: meterNow.Add(meterDay), ExpiresAt: meterNow.Add(3 * meterDay), Priority: 1})
	require.Equal(t, low.Notes, MustDebit(t, s, voiceCall(sf, "cdr-dates-1", meterNow.Add(-time.Hour), 540)).Notes)
	require.Equal(t, out.Notes, MustDebit(t, s, voiceCall(sf, "cdr-dates-2", meterNow.Add(-time.Minute), 120)).Notes)
}

// An exhausted note with nothing pending names no date.
func TestAnExhaustedNoteWithNothingPendingNamesNoDate(t *testing.T) {
	s, _, _ := MustMeterStore(t, Options{})
	const sf = "sf-notes-nodate"
	MustAddGrant(t, s, activeGrant(sf, "gr_1", 60))
	r := MustDebit(t, s, voiceCall(sf, "cdr-nodate-1", meterNow.Add(-time.Hour), 120))
	kinds := notesOf(r)
	require.Len(t, kinds[NoteExhausted], 1)
	require.True(t, kinds[NoteExhausted][0].NextAt.IsZero())
	require.Len(t, kinds[NoteLow], 1)
	require.True(t, kinds[NoteLow][0].ExpiresAt.IsZero(), "nothing is left, so nothing lapses")
}

func TestParseNoteReadsNotesOfEveryVersion(t *testing.T) {
	at := time.UnixMilli(1764324000000).UTC()
	may1 := time.Unix(1777564800, 0).UTC()
	for _, tc := range []struct {
		name, note string
		want       Note
	}{
		{"before thresholds and dates", "low abc 60 600 1764324000000",
			Note{Kind: NoteLow, GrantSet: "abc", RemainingSeconds: 60, GrantedSeconds: 600, At: at, Threshold: &Threshold{Percent: 20}}},
		{"before dates", "low abc 60 600 1764324000000 r600",
			Note{Kind: NoteLow, GrantSet: "abc", RemainingSeconds: 60, GrantedSeconds: 600, At: at, Threshold: &Threshold{Remaining: 600}}},
		{"a low note with its date", "low abc 60 600 1764324000000 1777564800 p20",
			Note{Kind: NoteLow, GrantSet: "abc", RemainingSeconds: 60, GrantedSeconds: 600, At: at, Threshold: &Threshold{Percent: 20}, ExpiresAt: may1}},
		{"an exhausted note before dates", "exhausted abc 0 600 1764324000000",
			Note{Kind: NoteExhausted, GrantSet: "abc", GrantedSeconds: 600, At: at}},
		{"an exhausted note with the next start", "exhausted abc 0 600 1764324000000 1777564800",
			Note{Kind: NoteExhausted, GrantSet: "abc", GrantedSeconds: 600, At: at, NextAt: may1}},
		{"a date of 0 is none", "exhausted abc 0 600 1764324000000 0",
			Note{Kind: NoteExhausted, GrantSet: "abc", GrantedSeconds: 600, At: at}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := parseNote(tc.note)
			require.NoError(t, err)
			require.Equal(t, tc.want, n)
		})
	}
	for _, bad := range []string{"low abc 60 600", "low abc 60 600 1764324000000 1777564800 p20 extra", "low abc 60 600 1764324000000 p20 r600"} {
		_, err := parseNote(bad)
		require.Error(t, err, bad)
	}
}
