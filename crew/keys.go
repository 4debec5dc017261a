package crew

// SeafarerTag returns the key stem "<prefix>:{s:<id>}" under which every
// per-seafarer key of the hot metering state lives (quota's grants,
// identities, figures), so that the keys of one seafarer share a Redis
// Cluster slot (the part in braces is the hash tag) and one script may
// touch them together. The registry itself is in PostgreSQL; the stem is
// here because the seafarer's id is this package's.
func SeafarerTag(prefix, seafarerID string) string {
	return prefix + ":{s:" + seafarerID + "}"
}
