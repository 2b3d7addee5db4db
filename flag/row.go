package flag

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/advspace/advspace/dadc"
)

// MetadataRow is one line of a shard's metadata.jsonl: the sample's metadata
// and, in FileName, the name of its input file relative to the shard folder.
// Every row has every column, so that all metadata files of a dataset have the
// same features, as the Hugging Face ImageFolder loader requires.
type MetadataRow struct {
	FileName           string    `json:"file_name"`
	ID                 string    `json:"id"`
	Label              int       `json:"label"`
	ModelLabel         int       `json:"model_label"`
	ModelProbabilities []float64 `json:"model_probabilities"`
	ModelVersion       string    `json:"model_version"`
	Round              int       `json:"round"`
	// CreatedAt is RFC 3339 in UTC, with sub-second digits when non-zero.
	CreatedAt string `json:"created_at"`
	Session   string `json:"session"`
}

// MetadataColumns lists the columns of a MetadataRow in the order they are written.
var MetadataColumns = []string{
	"file_name", "id", "label", "model_label", "model_probabilities",
	"model_version", "round", "created_at", "session",
}

// rowFromSample builds the metadata row of s, whose input file is fileName.
func rowFromSample[In any](s dadc.Sample[In], fileName string) MetadataRow {
	return MetadataRow{
		FileName:           fileName,
		ID:                 s.ID,
		Label:              s.Label,
		ModelLabel:         s.ModelLabel,
		ModelProbabilities: s.ModelProbabilities,
		ModelVersion:       s.ModelVersion,
		Round:              s.Round,
		CreatedAt:          s.CreatedAt.UTC().Format(time.RFC3339Nano),
		Session:            s.Session,
	}
}

// sample rebuilds the sample's metadata; the caller sets Input.
func (r MetadataRow) sample() (dadc.Sample[struct{}], error) {
	t, err := time.Parse(time.RFC3339Nano, r.CreatedAt)
	if err != nil {
		return dadc.Sample[struct{}]{}, fmt.Errorf("flag: row %q: created_at %q is not RFC 3339: %w", r.ID, r.CreatedAt, err)
	}
	return dadc.Sample[struct{}]{
		ID:                 r.ID,
		Label:              r.Label,
		ModelLabel:         r.ModelLabel,
		ModelProbabilities: r.ModelProbabilities,
		ModelVersion:       r.ModelVersion,
		Round:              r.Round,
		CreatedAt:          t.UTC(),
		Session:            r.Session,
	}, nil
}

func withInput[In any](s dadc.Sample[struct{}], in In) dadc.Sample[In] {
	return dadc.Sample[In]{
		ID: s.ID, Input: in, Label: s.Label, ModelLabel: s.ModelLabel,
		ModelProbabilities: s.ModelProbabilities, ModelVersion: s.ModelVersion,
		Round: s.Round, CreatedAt: s.CreatedAt, Session: s.Session,
	}
}

// parseRow decodes one metadata line: it must be one JSON object with a valid
// id and probabilities, so that a damaged line is never taken for a sample.
// Extra columns are allowed (a newer writer may add some).
func parseRow(line []byte) (MetadataRow, error) {
	var r MetadataRow
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&r); err != nil {
		return r, err
	}
	if dec.More() {
		return r, fmt.Errorf("trailing data after the JSON object")
	}
	if !validID(r.ID) {
		return r, fmt.Errorf("id %q is not a valid sample ID", r.ID)
	}
	if r.ModelProbabilities == nil {
		return r, fmt.Errorf("row %q has no model_probabilities", r.ID)
	}
	return r, nil
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// validID reports whether id is safe to use as a file name on every system.
func validID(id string) bool { return idPattern.MatchString(id) }

// ValidateSample checks that s can be stored by the handlers of this package:
// an ID of 1 to 64 characters from [A-Za-z0-9_-] (it becomes a file name),
// non-negative labels, and non-nil, finite probabilities. The error wraps
// ErrInvalidSample and says what to fix.
func ValidateSample[In any](s dadc.Sample[In]) error {
	switch {
	case !validID(s.ID):
		return fmt.Errorf("%w: ID %q must be 1 to 64 characters from A-Z, a-z, 0-9, '_' and '-'", ErrInvalidSample, s.ID)
	case s.Label < 0:
		return fmt.Errorf("%w: sample %s: label %d is negative", ErrInvalidSample, s.ID, s.Label)
	case s.ModelLabel < 0:
		return fmt.Errorf("%w: sample %s: model label %d is negative", ErrInvalidSample, s.ID, s.ModelLabel)
	case s.ModelProbabilities == nil:
		return fmt.Errorf("%w: sample %s: model probabilities are missing (nil)", ErrInvalidSample, s.ID)
	case s.Round < 0:
		return fmt.Errorf("%w: sample %s: round %d is negative", ErrInvalidSample, s.ID, s.Round)
	}
	for i, p := range s.ModelProbabilities {
		if math.IsNaN(p) || math.IsInf(p, 0) {
			return fmt.Errorf("%w: sample %s: probability %d is %v, not a finite number", ErrInvalidSample, s.ID, i, p)
		}
	}
	return nil
}

// admitSample is the common start of the stores' Flag methods: it validates
// *s, refuses a finished ctx, encodes the input with codec and sets a zero
// CreatedAt to now(). A cancellation error reads "flag: <store>: sample <ID>
// <notDone>: ...". Nothing is written; the encoded input is returned.
func admitSample[In any](ctx context.Context, s *dadc.Sample[In], codec Codec[In], now func() time.Time, store, notDone string) ([]byte, error) {
	if err := ValidateSample(*s); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("flag: %s: sample %s %s: %w", store, s.ID, notDone, err)
	}
	input, err := codec.Encode(s.Input)
	if err != nil {
		return nil, fmt.Errorf("%w: sample %s: input cannot be encoded: %w", ErrInvalidSample, s.ID, err)
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now()
	}
	return input, nil
}
