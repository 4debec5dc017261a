package crew

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/wuyou/wuyou"
)

// Signing on and off: how a seafarer's status and its sign_on and sign_off
// dates move together. One home for the rules: a PATCH (UpdateSeafarer) and
// a whole vessel's crew change (SignVessel) both go through updated.
//
//   - sign_on and sign_off are dates (YYYY-MM-DD); sign_off is never before
//     sign_on. A request that would break that is refused naming the field
//     it gave (sign_off when it gave both), never left to the database.
//   - An empty sign_on or sign_off (or JSON null) clears the date.
//   - Signing off (status signed_off, from any other status) without a
//     sign_off date records today (UTC); a sign_off already recorded and
//     not later than today is kept (the seafarer left on that day). A
//     signed-off seafarer always has a sign_off date: clearing it while
//     the status stays signed_off is refused.
//   - Signing on again (status active, from signed_off) starts a new voyage:
//     sign_on becomes the date given, else today (UTC), and the old
//     sign_off is cleared unless the request gives a new one.
//   - A new sign_on later than the recorded sign_off, without a new
//     sign_off, clears the old sign_off (it belonged to an earlier voyage)
//     unless the seafarer stays signed off: then the request is refused
//     naming sign_on, as signing on again needs status active too.
//   - Suspending a seafarer, or lifting the suspension (suspended → active),
//     leaves the dates alone.

// UnmarshalJSON decodes an update as encoding/json does and, in addition,
// takes "sign_on": null and "sign_off": null to clear the date, as "" does.
func (u *SeafarerUpdate) UnmarshalJSON(b []byte) error {
	type fields SeafarerUpdate // without this method
	if err := json.Unmarshal(b, (*fields)(u)); err != nil {
		return err
	}
	var dates struct {
		SignOn  json.RawMessage `json:"sign_on"`
		SignOff json.RawMessage `json:"sign_off"`
	}
	if err := json.Unmarshal(b, &dates); err != nil {
		return err
	}
	for _, d := range [...]struct {
		raw json.RawMessage
		dst **string
	}{{dates.SignOn, &u.SignOn}, {dates.SignOff, &u.SignOff}} {
		if string(d.raw) == "null" {
			*d.dst = new(string)
		}
	}
	return nil
}

// updated returns cur with u applied by the rules above; today is the
// current date in UTC (YYYY-MM-DD). u has been normalized and validated.
// EINVALID naming the field when the result breaks a rule.
func updated(cur Seafarer, u SeafarerUpdate, today string) (Seafarer, error) {
	next := cur
	for _, f := range [...]struct {
		dst *string
		p   *string
	}{{&next.MSISDN, u.MSISDN}, {&next.VesselIMO, u.VesselIMO}, {&next.VesselName, u.VesselName},
		{&next.SignOn, u.SignOn}, {&next.SignOff, u.SignOff}, {&next.Status, u.Status}, {&next.Lang, u.Lang}} {
		if f.p != nil {
			*f.dst = *f.p
		}
	}
	signOnGiven, signOffGiven := u.SignOn != nil, u.SignOff != nil
	signsOff := u.Status != nil && *u.Status == StatusSignedOff && (cur.Status != StatusSignedOff || cur.SignOff == "")
	signsOnAgain := u.Status != nil && *u.Status == StatusActive && cur.Status == StatusSignedOff
	signOffToday := false
	switch {
	case signsOff && !signOffGiven:
		if cur.SignOff == "" || cur.SignOff > today {
			next.SignOff, signOffToday = today, true
		}
	case signsOnAgain:
		if !signOnGiven {
			next.SignOn = today
		}
		if !signOffGiven {
			next.SignOff = ""
		}
	case signOnGiven && !signOffGiven && next.Status != StatusSignedOff && next.SignOn != "" && next.SignOn > cur.SignOff:
		next.SignOff = ""
	}

	invalid := func(field, msg string) (Seafarer, error) {
		return cur, wuyou.Invalid([]wuyou.FieldError{{Field: field, Message: msg}})
	}
	if next.Status == StatusSignedOff && next.SignOff == "" {
		return invalid("sign_off", "is required while status is signed_off; to sign the seafarer on again set status active")
	}
	// YYYY-MM-DD strings order like the dates they name.
	if next.SignOn != "" && next.SignOff != "" && next.SignOff < next.SignOn {
		switch {
		case signOffToday:
			return invalid("sign_off", "is required: signing off today ("+today+") would be before sign_on ("+next.SignOn+")")
		case signOffGiven || !signOnGiven:
			return invalid("sign_off", "must not be before sign_on ("+next.SignOn+")")
		case next.Status == StatusSignedOff:
			return invalid("sign_on", "must not be after sign_off ("+next.SignOff+") while the seafarer is signed off; to sign on again set status active too")
		default:
			return invalid("sign_on", "must not be after sign_off ("+next.SignOff+")")
		}
	}
	return next, nil
}

// Normalize trims the signing's fields and strips an "IMO" prefix.
func (in *VesselSigning) Normalize() {
	in.VesselIMO = NormalizeIMO(in.VesselIMO)
	in.Date = strings.TrimSpace(in.Date)
}

// Validate returns nil or an EINVALID *wuyou.Error naming each bad field:
// vessel_imo (required, a valid IMO number), date (YYYY-MM-DD or empty),
// direction (sign-off or sign-on).
func (in VesselSigning) Validate() error {
	var errs []wuyou.FieldError
	add := func(field, msg string) {
		if msg != "" {
			errs = append(errs, wuyou.FieldError{Field: field, Message: msg})
		}
	}
	if in.VesselIMO == "" {
		add("vessel_imo", "is required")
	} else {
		add("vessel_imo", checkIMO(in.VesselIMO))
	}
	add("date", checkDate(in.Date))
	if in.Direction != SignOff && in.Direction != SignOn {
		add("direction", "must be "+SignOff+" or "+SignOn)
	}
	return wuyou.Invalid(errs)
}

// SignVessel signs every seafarer of in.CompanyID on vessel in.VesselIMO
// off or on, as of in.Date (today in UTC when empty), in one transaction:
//
//   - sign-off: each active seafarer is signed off with sign_off = date
//     (as a PATCH {"status":"signed_off","sign_off":date} would).
//   - sign-on: each signed-off seafarer is signed on again with sign_on =
//     date, which clears the old sign_off (as a PATCH
//     {"status":"active","sign_on":date} would).
//
// Everyone else is left alone and counted unchanged: those already signed
// off or on, and suspended seafarers (whether a suspension ends is not a
// crew change's decision). A repeat therefore changes nothing. Seafarers
// of other companies on the same vessel are never read or written.
//
// When the date would put a seafarer's sign_off before their sign_on,
// nothing is changed: EINVALID naming "date". EINVALID naming vessel_imo,
// date or direction for bad input; ENOTFOUND for an unknown company or
// when the company has no seafarer on the vessel.
//
// The company's rows on the vessel are locked (FOR UPDATE, in id order)
// before they are read, so a concurrent PATCH of one of them either
// commits first and is seen here, or waits and then reads what this
// committed: neither change is lost.
func (s *PGStore) SignVessel(ctx context.Context, in VesselSigning) (*VesselSigned, error) {
	in.Normalize()
	if err := in.Validate(); err != nil {
		return nil, err
	}
	if err := checkPGDates("date", in.Date); err != nil {
		return nil, err
	}
	if !pgID(in.CompanyID) {
		return nil, companyNotFound(in.CompanyID)
	}
	var out *VesselSigned
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.clock()
		today := now.Format(dateLayout)
		date := in.Date
		if date == "" {
			date = today
		}
		out = &VesselSigned{VesselIMO: in.VesselIMO, Direction: in.Direction, Date: date, SeafarerIDs: []string{}}
		if err := s.companyExists(ctx, tx, in.CompanyID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
SELECT id, coalesce(to_char(sign_on, 'YYYY-MM-DD'), ''), coalesce(to_char(sign_off, 'YYYY-MM-DD'), ''), status
FROM seafarers WHERE company_id = $1 AND vessel_imo = $2 ORDER BY id FOR UPDATE`, in.CompanyID, in.VesselIMO)
		if err != nil {
			return err
		}
		var crew []Seafarer
		var sf Seafarer
		if _, err := pgx.ForEachRow(rows, []any{&sf.ID, &sf.SignOn, &sf.SignOff, &sf.Status}, func() error {
			crew = append(crew, sf)
			return nil
		}); err != nil {
			return err
		}
		if len(crew) == 0 {
			return wuyou.Errorf(wuyou.ENOTFOUND, "company %s has no seafarer on vessel %s", in.CompanyID, in.VesselIMO)
		}
		var ids, statuses, signOns, signOffs []string
		for _, cur := range crew {
			var u SeafarerUpdate
			switch {
			case in.Direction == SignOff && cur.Status == StatusActive:
				u = SeafarerUpdate{Status: ptr(StatusSignedOff), SignOff: ptr(date)}
			case in.Direction == SignOn && cur.Status == StatusSignedOff:
				u = SeafarerUpdate{Status: ptr(StatusActive), SignOn: ptr(date)}
			default:
				out.Unchanged++
				continue
			}
			next, err := updated(cur, u, today)
			if err != nil {
				return wuyou.Invalid([]wuyou.FieldError{{Field: "date",
					Message: fmt.Sprintf("is before the sign_on (%s) of seafarer %s; nothing was changed", cur.SignOn, cur.ID)}})
			}
			ids, statuses = append(ids, next.ID), append(statuses, next.Status)
			signOns, signOffs = append(signOns, next.SignOn), append(signOffs, next.SignOff)
		}
		if len(ids) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `
UPDATE seafarers s SET status = c.status, sign_on = nullif(c.sign_on, '')::date, sign_off = nullif(c.sign_off, '')::date,
    updated_at = $5
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS c(id, status, sign_on, sign_off)
WHERE s.id = c.id`, ids, statuses, signOns, signOffs, now); err != nil {
			return err
		}
		out.Changed, out.SeafarerIDs = len(ids), ids
		return nil
	})
	if err != nil {
		return nil, s.refused("sign vessel "+in.VesselIMO, err, in.CompanyID, "")
	}
	return out, nil
}

func ptr(s string) *string { return &s }
