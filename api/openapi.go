package api

import _ "embed"

// openAPIDocument describes every route the server registers; a test keeps
// the two in step.
//
//go:embed openapi.json
var openAPIDocument []byte
