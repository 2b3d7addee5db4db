// Package randid makes the module's random identifiers: lower-case hex
// strings from crypto/rand, for sample ids, shard suffixes, file names and
// fake object ids. It is the one place such ids are made.
package randid
