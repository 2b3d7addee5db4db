package hubtest

import "errors"

// errNoRepo: a seeding or inspection helper named a repository that does not exist.
var errNoRepo = errors.New("hubtest: repository not found")
