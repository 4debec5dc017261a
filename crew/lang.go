package crew

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Langs returns the lang of each seafarer of ids that exists, in one query:
// the consumer asks it once per batch that has notifications to send, so
// each speaks the seafarer's language (CONTRACT §7.4). Ids that are not
// seafarers' are absent from the map.
func (s *PGStore) Langs(ctx context.Context, ids []string) (map[string]string, error) {
	valid := make([]string, 0, len(ids))
	for _, id := range ids {
		if pgID(id) {
			valid = append(valid, id)
		}
	}
	out := make(map[string]string, len(valid))
	if len(valid) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id, lang FROM seafarers WHERE id = ANY($1::text[])`, valid)
	if err != nil {
		return nil, fmt.Errorf("crew: langs: %w", err)
	}
	var id, lang string
	if _, err := pgx.ForEachRow(rows, []any{&id, &lang}, func() error {
		out[id] = lang
		return nil
	}); err != nil {
		return nil, fmt.Errorf("crew: langs: %w", err)
	}
	return out, nil
}
