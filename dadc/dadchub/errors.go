package dadchub

import "errors"

var (
	// ErrCommitBudget is returned by Store.Save when publishing would exceed
	// StoreOptions.MaxCommitsPerHour; nothing is published and the serving
	// model stays (the loop records a failed retrain and tries again later).
	ErrCommitBudget = errors.New("dadchub: hourly commit budget of the model repo used up; the model is not published now")
	// ErrIntegrity is returned when downloaded weights do not match the
	// SHA-256 the card announces.
	ErrIntegrity = errors.New("dadchub: downloaded weights do not match the card's sha256")
)
