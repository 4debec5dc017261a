package wuyou

import "context"

// Actor is the person whose token made a write: who the audit trail and a
// grant's or void's ledger entry say did it. CompanyID is set for the
// company role only.
type Actor struct {
	Sub       string `json:"sub"`
	Role      string `json:"role"`
	CompanyID string `json:"company_id"`
}

type actorKey struct{}

// WithActor returns ctx carrying a: the API puts the person behind a write
// request there, so that what the write records on the way (an issuance,
// its grants' ledger entries) names them without every signature in
// between passing it along.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor WithActor put in ctx, or nil for work nobody
// asked for by hand (the consumer, a resumed issuance).
func ActorFrom(ctx context.Context) *Actor {
	a, ok := ctx.Value(actorKey{}).(Actor)
	if !ok || a.Sub == "" {
		return nil
	}
	return &a
}
