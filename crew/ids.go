package crew

import "github.com/oklog/ulid/v2"

// Id prefixes. An id is its prefix and a ULID: short, URL-safe, and sorting
// as text in the order the ids were made, so lists ordered by id come out
// oldest first and a cursor is just the last id seen.
const (
	seafarerIDPrefix = "sf_"
	companyIDPrefix  = "co_"
)

func newSeafarerID() string { return seafarerIDPrefix + ulid.Make().String() }

func newCompanyID() string { return companyIDPrefix + ulid.Make().String() }
