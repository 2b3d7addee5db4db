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

// MetadataRow is one line of a shard's metadata.jsonl: the name of the
// sample's input file relative to the shard folder, then the sample's
// metadata. Its JSON columns are file_name followed by those of
// dadc.SampleMeta, in that order (see MetadataColumns). Every row has every
// column, so that all metadata files of a dataset have the same features, as
// the Hugging Face ImageFolder loader requires.
type MetadataRow struct {
	FileName string `json:"file_name"`
	dadc.SampleMeta
}

// MetadataColumns returns the columns of a MetadataRow in the order they are
// written: file_name, then the JSON names of dadc.SampleMeta's fields. The
// caller may modify the slice.
func MetadataColumns() []string {
	return append([]string{"file_name"}, metaColumns()...)
}

// metaColumns returns the JSON names of dadc.SampleMeta's fields in order,
// read from the encoding itself so that the field list is declared once.
func metaColumns() []string {
	cols, _, _ := jsonColumns(dadc.SampleMeta{})
	return cols
}

// jsonColumns returns the keys of v's JSON object encoding in order, with the
// raw JSON value of each.
func jsonColumns(v any) (keys []string, raw []json.RawMessage, err error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // the opening brace
		return nil, nil, err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		var r json.RawMessage
		if err := dec.Decode(&r); err != nil {
			return nil, nil, err
		}
		keys = append(keys, tok.(string)) // object keys are strings
		raw = append(raw, r)
	}
	return keys, raw, nil
}

// metaUTC returns s's metadata with CreatedAt in UTC, the form stores write.
func metaUTC[In any](s dadc.Sample[In]) dadc.SampleMeta {
	m := s.SampleMeta
	m.CreatedAt = m.CreatedAt.UTC()
	return m
}

// withInput joins stored metadata and a decoded input into a sample.
func withInput[In any](m dadc.SampleMeta, in In) dadc.Sample[In] {
	m.CreatedAt = m.CreatedAt.UTC()
	return dadc.Sample[In]{SampleMeta: m, Input: in}
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
