// Package backoff is the module's one exponential backoff: the wait before a
// retry doubles from a minimum up to a maximum, optionally shortened by a
// random jitter so that many clients failing together do not retry in step,
// and a server's requested wait (HTTP Retry-After) can be parsed and honoured.
//
// Everything here is a pure function of its arguments: the random number for
// the jitter and the current time for an HTTP-date Retry-After are passed
// in, so tests get exact waits. Sleep is the one blocking helper; it uses a
// real timer, which testing/synctest bubbles make virtual.
package backoff
