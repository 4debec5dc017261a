package crew

import "context"

// What the rest of Wuyou asks of the registry, answered directly by the
// store: issuances (quota.Roster), statements (billing.Registry) and
// notifications (carrier.MSISDNs) take these methods without adapters.

// SeafarerStatus returns a seafarer's status. ENOTFOUND.
func (s *RedisStore) SeafarerStatus(ctx context.Context, id string) (string, error) {
	sf, err := s.Seafarer(ctx, id)
	if err != nil {
		return "", err
	}
	return sf.Status, nil
}

// SeafarerExists returns nil for an enrolled seafarer. ENOTFOUND.
func (s *RedisStore) SeafarerExists(ctx context.Context, id string) error {
	_, err := s.Seafarer(ctx, id)
	return err
}

// MSISDNOf returns a seafarer's current MSISDN. ENOTFOUND.
func (s *RedisStore) MSISDNOf(ctx context.Context, id string) (string, error) {
	sf, err := s.Seafarer(ctx, id)
	if err != nil {
		return "", err
	}
	return sf.MSISDN, nil
}

// CompanyCrew calls fn with the id of every seafarer of a company, any
// status, in id order. ENOTFOUND for an unknown company.
func (s *RedisStore) CompanyCrew(ctx context.Context, companyID string, fn func(seafarerID string) error) error {
	if _, err := s.Company(ctx, companyID); err != nil {
		return err
	}
	return s.EachSeafarer(ctx, SeafarerFilter{CompanyID: companyID}, func(sf *Seafarer) error { return fn(sf.ID) })
}

// VesselCrew calls fn with the id of every seafarer on a vessel, across
// companies, any status, in id order. EINVALID for a malformed IMO number.
func (s *RedisStore) VesselCrew(ctx context.Context, imo string, fn func(seafarerID string) error) error {
	return s.VesselSeafarers(ctx, imo, "", func(sf *Seafarer) error { return fn(sf.ID) })
}
