package backoff

import "errors"

// ErrInvalidPolicy is returned by Policy.Validate for a Policy that cannot be
// used; the message says which field is wrong.
var ErrInvalidPolicy = errors.New("backoff: invalid policy")
