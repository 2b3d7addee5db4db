package flag

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
)

// TestRecordLogFaults injects disk failures under a RecordLog: a failed
// append is not acknowledged and leaves no partial line, so the next one
// lands whole; an append whose undo fails too breaks the log (every later
// append refuses) and reopening repairs the file; a failure while opening
// is reported and opens nothing.
func TestRecordLogFaults(t *testing.T) {
	ctx := context.Background()
	rec := func(id string, sec int64) dadc.ValidationRecord {
		return dadc.ValidationRecord{Kind: dadc.RecordVerdict, SampleID: id, Session: "v", Verdict: dadc.VerdictCorrect, CreatedAt: time.Unix(sec, 0).UTC()}
	}
	tests := []struct {
		name      string
		rules     []faultRule
		wantErrIs error
		broken    bool
	}{
		{"write fails", []faultRule{{op: "write", match: ".jsonl", times: 1}}, errInjected, false},
		{"half a line written", []faultRule{{op: "write", match: ".jsonl", partial: true, times: 1}}, errInjected, false},
		{"sync fails", []faultRule{{op: "sync", match: ".jsonl", times: 1}}, errInjected, false},
		{"the undo fails too", []faultRule{{op: "write", match: ".jsonl", partial: true, times: 1}, {op: "truncate", match: ".jsonl", times: 1}}, ErrBroken, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			ffs := &faultFS{}
			l, err := OpenRecordLog(root, "s", &RecordLogOptions{fs: ffs})
			require.NoError(t, err)
			require.NoError(t, l.Append(ctx, rec("a", 1)))
			for _, r := range tt.rules {
				ffs.add(r)
			}
			require.ErrorIs(t, l.Append(ctx, rec("b", 2)), tt.wantErrIs)
			ffs.clear()
			err = l.Append(ctx, rec("c", 3))
			if tt.broken {
				require.ErrorIs(t, err, ErrBroken, "a log whose content is unknown refuses appends")
			} else {
				require.NoError(t, err)
			}
			require.NoError(t, l.Close())

			// Reopening cuts any torn tail off; what was acknowledged is there.
			l, err = OpenRecordLog(root, "s", nil)
			require.NoError(t, err)
			require.NoError(t, l.Append(ctx, rec("d", 4)))
			require.NoError(t, l.Close())
			recs, err := ReadRecords(root)
			require.NoError(t, err)
			var ids []string
			for _, r := range recs {
				ids = append(ids, r.SampleID)
			}
			want := []string{"a", "c", "d"}
			if tt.broken {
				want = []string{"a", "d"}
			}
			assert.Equal(t, want, ids, "acknowledged records only, each whole")
		})
	}

	t.Run("opening fails", func(t *testing.T) {
		root := t.TempDir()
		ffs := &faultFS{}
		ffs.add(faultRule{op: "syncdir", match: ValidationsDir, times: 1})
		_, err := OpenRecordLog(root, "s", &RecordLogOptions{fs: ffs})
		require.ErrorIs(t, err, errInjected)
		ffs.add(faultRule{op: "open", match: ".jsonl", times: 1})
		_, err = OpenRecordLog(root, "t", &RecordLogOptions{fs: ffs})
		require.ErrorIs(t, err, errInjected)
		_, statErr := os.Stat(filepath.Join(root, ValidationsDir, "t.jsonl"))
		assert.ErrorIs(t, statErr, os.ErrNotExist, "a failed open creates nothing")
	})
}
