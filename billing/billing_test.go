package billing

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEveryStartedIncrementIsPricedInFull(t *testing.T) {
	cny := func(minor int64) Money { return Money{Minor: minor, Currency: "CNY"} }
	for _, tc := range []struct {
		name               string
		seconds, increment int64
		price, want        Money
	}{
		{"no seconds cost nothing, in the price's currency", 0, 60, cny(150), cny(0)},
		{"negative seconds cost nothing", -5, 60, cny(150), cny(0)},
		{"one second starts an increment", 1, 60, cny(150), cny(150)},
		{"a whole increment", 60, 60, cny(150), cny(150)},
		{"one second into the next increment", 61, 60, cny(150), cny(300)},
		{"six-second increments", 245, 6, cny(15), cny(41 * 15)},
		{"one-second increments", 11, 1, cny(2), cny(22)},
		{"a free increment", 3600, 60, cny(0), cny(0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, PricePerStartedIncrement(tc.seconds, tc.increment, tc.price))
			r := Rating{Increment: tc.increment, OveragePrice: tc.price, WholesalePrice: tc.price}
			require.Equal(t, tc.want, r.OverageAmount(tc.seconds))
			require.Equal(t, tc.want, r.WelfareCost(tc.seconds))
		})
	}
}
