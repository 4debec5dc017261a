// Package crew owns the registry: shipping companies, their seafarers, and
// which seafarer an MSISDN belongs to. It enforces tenancy at the data level
// only through the company id; who may ask is decided in api/.
package crew

import (
	"context"
	"time"

	"github.com/wuyou/wuyou"
)

// Page sizes of seafarer lists (contract §4: default 50, max 500).
const (
	DefaultListLimit = 50
	MaxListLimit     = 500
)

// Seafarer statuses.
const (
	StatusActive    = "active"
	StatusSignedOff = "signed_off"
	StatusSuspended = "suspended"
)

// Company is a shipping company that enrols its crew.
type Company struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	RegistrationNo string    `json:"registration_no"`
	CreatedAt      time.Time `json:"created_at"`
}

// Seafarer is one enrolled seafarer. The seafarer's book number is unique
// across all companies; an MSISDN belongs to at most one seafarer at a time.
type Seafarer struct {
	ID            string    `json:"id"`
	CompanyID     string    `json:"company_id"`
	BookNo        string    `json:"seafarer_book_no"`
	Name          string    `json:"name"`
	Nationality   string    `json:"nationality"`
	MSISDN        string    `json:"msisdn"`
	VesselIMO     string    `json:"vessel_imo"`
	VesselName    string    `json:"vessel_name"`
	SignOn        string    `json:"sign_on"`  // YYYY-MM-DD
	SignOff       string    `json:"sign_off"` // YYYY-MM-DD
	UnionMemberNo string    `json:"union_member_no"`
	Lang          string    `json:"lang"` // of texts and notifications: zh-CN (default) or en
	Status        string    `json:"status"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// MSISDNPeriod is one MSISDN a seafarer held, from From until To (To is zero
// while it is the current number). Usage of the number within the period is
// the seafarer's.
type MSISDNPeriod struct {
	MSISDN string    `json:"msisdn"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to,omitzero"`
}

// Enrolment is the input to enrol (or re-enrol) one seafarer. Its JSON and
// CSV field names are the contract's.
type Enrolment struct {
	BookNo        string `json:"seafarer_book_no"`
	Name          string `json:"name"`
	Nationality   string `json:"nationality"`
	MSISDN        string `json:"msisdn"`
	VesselIMO     string `json:"vessel_imo"`
	VesselName    string `json:"vessel_name"`
	SignOn        string `json:"sign_on"`
	SignOff       string `json:"sign_off"`
	UnionMemberNo string `json:"union_member_no"`
	Lang          string `json:"lang"` // zh-CN or en; "" keeps the seafarer's (zh-CN when new)
}

// SeafarerUpdate changes some fields of a seafarer; nil fields stay as they
// are. An empty sign_on or sign_off clears it, and so does a JSON null
// (UnmarshalJSON). How status and the dates move together is the rule of
// signing.go.
type SeafarerUpdate struct {
	MSISDN     *string `json:"msisdn"`
	VesselIMO  *string `json:"vessel_imo"`
	VesselName *string `json:"vessel_name"`
	SignOn     *string `json:"sign_on"`
	SignOff    *string `json:"sign_off"`
	Status     *string `json:"status"`
	Lang       *string `json:"lang"`
}

// Directions of a vessel's crew change (VesselSigning.Direction).
const (
	SignOff = "sign-off"
	SignOn  = "sign-on"
)

// VesselSigning signs every seafarer of one company on one vessel off or
// on at once (PGStore.SignVessel states the rules).
type VesselSigning struct {
	CompanyID string
	VesselIMO string
	Direction string // SignOff or SignOn
	Date      string // YYYY-MM-DD; "" is today in UTC
}

// VesselSigned is what a VesselSigning did.
type VesselSigned struct {
	VesselIMO string `json:"vessel_imo"`
	Direction string `json:"direction"`
	Date      string `json:"date"`
	// Changed counts the seafarers whose record changed, SeafarerIDs names
	// them (in id order); Unchanged counts the rest of the company's crew on
	// the vessel (already signed off or on, or suspended).
	Changed     int      `json:"changed"`
	Unchanged   int      `json:"unchanged"`
	SeafarerIDs []string `json:"seafarer_ids"`
}

// MSISDNAt is one call to attribute: the MSISDN it was made from and when it
// started (the CloudEvents time, contract §5). See SeafarerIDsAt.
type MSISDNAt struct {
	MSISDN string
	At     time.Time
}

// SeafarerFilter selects seafarers of one company, optionally of one vessel
// or status, or matching Query, a page at a time.
type SeafarerFilter struct {
	CompanyID string
	VesselIMO string
	Status    string
	// Query finds seafarers by what staff know of them: a name containing
	// it (case-insensitive), or, when it reads as a number (digits with an
	// optional +, spaces or dashes), an MSISDN containing its digits.
	Query  string
	Cursor string
	Limit  int
}

// Service is the registry.
type Service interface {
	// CreateCompany validates and stores a new company. EINVALID.
	CreateCompany(ctx context.Context, name, registrationNo string) (*Company, error)
	// Company returns one company. ENOTFOUND.
	Company(ctx context.Context, id string) (*Company, error)
	// Companies lists a page of companies whose name contains f.Query
	// (case-insensitive), ordered by id, and the cursor of the next page
	// ("" at the end). EINVALID naming the field (cursor, q).
	Companies(ctx context.Context, f wuyou.NameFilter) ([]*Company, string, error)

	// Enrol creates a seafarer in the company, or updates the one with the
	// same book number there (created reports which). EINVALID; ENOTFOUND for
	// an unknown company; ECONFLICT when the book number is enrolled in
	// another company or the MSISDN belongs to another seafarer.
	Enrol(ctx context.Context, companyID string, e Enrolment) (s *Seafarer, created bool, err error)
	// Seafarer returns one seafarer. ENOTFOUND.
	Seafarer(ctx context.Context, id string) (*Seafarer, error)
	// UpdateSeafarer applies u. EINVALID, ENOTFOUND, ECONFLICT (MSISDN taken).
	UpdateSeafarer(ctx context.Context, id string, u SeafarerUpdate) (*Seafarer, error)
	// Seafarers lists a page of a company's seafarers ordered by id and the
	// cursor of the next page ("" at the end).
	Seafarers(ctx context.Context, f SeafarerFilter) ([]*Seafarer, string, error)
	// SeafarerByMSISDN resolves the seafarer an MSISDN belongs to now. ENOTFOUND.
	SeafarerByMSISDN(ctx context.Context, msisdn string) (*Seafarer, error)
	// SignVessel signs a company's whole crew on one vessel off or on, in
	// one transaction. EINVALID naming the field (vessel_imo, date,
	// direction); ENOTFOUND for an unknown company or a vessel the company
	// has no seafarer on.
	SignVessel(ctx context.Context, in VesselSigning) (*VesselSigned, error)
}

// applyEnrolment sets the fields an enrolment gives.
func applyEnrolment(sf *Seafarer, e Enrolment) {
	sf.Name = e.Name
	sf.Nationality = e.Nationality
	sf.MSISDN = e.MSISDN
	sf.VesselIMO = e.VesselIMO
	sf.VesselName = e.VesselName
	sf.SignOn = e.SignOn
	sf.SignOff = e.SignOff
	sf.UnionMemberNo = e.UnionMemberNo
	if e.Lang != "" {
		sf.Lang = e.Lang
	}
}

// each calls fn with every seafarer of the pages page reads, from f.Cursor
// on, and stops at fn's first error.
func each(ctx context.Context, f SeafarerFilter, page func(context.Context, SeafarerFilter) ([]*Seafarer, string, error), fn func(*Seafarer) error) error {
	for {
		items, next, err := page(ctx, f)
		if err != nil {
			return err
		}
		for _, sf := range items {
			if err := fn(sf); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		f.Cursor = next
	}
}
