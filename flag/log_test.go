package flag

import (
	"bytes"
	"context"
	"encoding/csv"
	"image"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
)

var logFormats = []struct {
	format LogFormat
	file   string
}{{JSONL, "flags.jsonl"}, {CSV, "flags.csv"}}

func openTestLog(t *testing.T, path string, format LogFormat, opts *LogOptions) *Log[*image.Gray] {
	t.Helper()
	l, err := NewLog(path, format, GrayPNG(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func trickySample(i int) dadc.Sample[*image.Gray] {
	s := testSample(i)
	s.Session = "a,b \"quoted\"\nnew line"
	return s
}

func TestLogRoundTrip(t *testing.T) {
	for _, lf := range logFormats {
		t.Run(lf.format.String(), func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "sub", lf.file)
			l := openTestLog(t, path, lf.format, nil)
			var want []dadc.Sample[*image.Gray]
			for i := range 5 {
				s := trickySample(i)
				require.NoError(t, l.Flag(ctx, s))
				require.NoError(t, l.Flag(ctx, s), "idempotent")
				want = append(want, s)
			}
			assert.Equal(t, 5, l.Count())
			require.NoError(t, l.Close())
			require.ErrorIs(t, l.Flag(ctx, testSample(9)), ErrClosed)

			l2 := openTestLog(t, path, lf.format, nil)
			assert.Equal(t, 5, l2.Count())
			require.NoError(t, l2.Flag(ctx, want[2]), "IDs recovered on open")
			got, err := l2.Samples(ctx)
			require.NoError(t, err)
			require.Len(t, got, 5)
			for i := range want {
				assert.Equal(t, want[i].ID, got[i].ID)
				assert.Equal(t, want[i].Session, got[i].Session)
				assert.Equal(t, want[i].ModelProbabilities, got[i].ModelProbabilities)
				assert.True(t, want[i].CreatedAt.Equal(got[i].CreatedAt))
				assert.Equal(t, want[i].Input.Pix, got[i].Input.Pix)
			}

			data, err := os.ReadFile(path)
			require.NoError(t, err)
			if lf.format == CSV {
				recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
				require.NoError(t, err, "a standard CSV reader reads it")
				require.Len(t, recs, 6, "header once + 5 rows")
				assert.Equal(t, LogColumns(), recs[0])
				assert.Equal(t, "s00003", recs[4][0])
			} else {
				assert.Equal(t, 5, bytes.Count(data, []byte("\n")))
			}
		})
	}
}

func TestLogConcurrentFlags(t *testing.T) {
	for _, lf := range logFormats {
		t.Run(lf.format.String(), func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), lf.file)
			l := openTestLog(t, path, lf.format, nil)
			var wg sync.WaitGroup
			for g := range 10 {
				wg.Go(func() {
					for i := range 10 {
						assert.NoError(t, l.Flag(ctx, testSample(g*10+i)))
						assert.NoError(t, l.Flag(ctx, testSample((g*10+i+10)%100)))
					}
				})
			}
			wg.Wait()
			assert.Equal(t, 100, l.Count())
			got, err := l.Samples(ctx)
			require.NoError(t, err)
			assert.Len(t, got, 100)
		})
	}
}

func TestLogRecoversTornTail(t *testing.T) {
	for _, lf := range logFormats {
		t.Run(lf.format.String(), func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), lf.file)
			l := openTestLog(t, path, lf.format, nil)
			require.NoError(t, l.Flag(ctx, trickySample(1)))
			before, err := os.ReadFile(path)
			require.NoError(t, err)
			require.NoError(t, l.Flag(ctx, trickySample(2)))
			require.NoError(t, l.Close())
			full, err := os.ReadFile(path)
			require.NoError(t, err)
			row2 := full[len(before):]
			// Every strict prefix of the last row is a possible torn write.
			for _, cut := range []int{1, len(row2) / 3, len(row2) / 2, len(row2) - 1} {
				require.NoError(t, os.WriteFile(path, append(bytes.Clone(before), row2[:cut]...), 0o644))
				l2, err := NewLog(path, lf.format, GrayPNG(), nil)
				require.NoError(t, err, "cut at %d", cut)
				assert.Equal(t, 1, l2.Count(), "cut at %d", cut)
				after, err := os.ReadFile(path)
				require.NoError(t, err)
				assert.Equal(t, before, after, "cut at %d", cut)
				require.NoError(t, l2.Close())
			}
		})
	}
}

func TestLogRefusesDamageBeforeGoodRows(t *testing.T) {
	for _, lf := range logFormats {
		t.Run(lf.format.String(), func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), lf.file)
			l := openTestLog(t, path, lf.format, nil)
			require.NoError(t, l.Flag(ctx, testSample(1)))
			require.NoError(t, l.Flag(ctx, testSample(2)))
			require.NoError(t, l.Close())
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			lines := strings.SplitAfter(string(data), "\n")
			damaged := strings.Join(lines[:len(lines)-2], "") + "garbage,row\n" + lines[len(lines)-2]
			require.NoError(t, os.WriteFile(path, []byte(damaged), 0o644))
			_, err = NewLog(path, lf.format, GrayPNG(), nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "later")
			after, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, damaged, string(after), "nothing cut")
		})
	}
}

func TestLogCSVHeader(t *testing.T) {
	dir := t.TempDir()
	torn := filepath.Join(dir, "torn.csv")
	require.NoError(t, os.WriteFile(torn, []byte("id,lab"), 0o644))
	l := openTestLog(t, torn, CSV, nil)
	require.NoError(t, l.Close())
	data, err := os.ReadFile(torn)
	require.NoError(t, err)
	assert.Equal(t, strings.Join(LogColumns(), ",")+"\n", string(data), "a torn header is rewritten")

	foreign := filepath.Join(dir, "foreign.csv")
	require.NoError(t, os.WriteFile(foreign, []byte("name,age\nbob,3\n"), 0o644))
	_, err = NewLog(foreign, CSV, GrayPNG(), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "header")
}

func TestLogFaultInjection(t *testing.T) {
	for _, lf := range logFormats {
		for _, rule := range []faultRule{
			{op: "write", match: lf.file, partial: true, times: 1},
			{op: "sync", match: lf.file, times: 1},
		} {
			t.Run(lf.format.String()+"/"+rule.op, func(t *testing.T) {
				ctx := context.Background()
				ffs := &faultFS{}
				path := filepath.Join(t.TempDir(), lf.file)
				l := openTestLog(t, path, lf.format, &LogOptions{fs: ffs})
				require.NoError(t, l.Flag(ctx, testSample(1)))
				before, err := os.ReadFile(path)
				require.NoError(t, err)
				ffs.add(rule)
				require.ErrorIs(t, l.Flag(ctx, testSample(2)), errInjected)
				after, err := os.ReadFile(path)
				require.NoError(t, err)
				assert.Equal(t, before, after, "no half row visible")
				require.NoError(t, l.Flag(ctx, testSample(2)))
				assert.Equal(t, 2, l.Count())
			})
		}
	}
}

func TestLogBrokenAfterFailedRollback(t *testing.T) {
	for _, lf := range logFormats {
		t.Run(lf.format.String(), func(t *testing.T) {
			ctx := context.Background()
			ffs := &faultFS{}
			path := filepath.Join(t.TempDir(), lf.file)
			l := openTestLog(t, path, lf.format, &LogOptions{fs: ffs})
			require.NoError(t, l.Flag(ctx, testSample(1)))
			ffs.add(faultRule{op: "write", match: lf.file, partial: true})
			ffs.add(faultRule{op: "truncate", match: lf.file})
			err := l.Flag(ctx, testSample(2))
			require.ErrorIs(t, err, ErrBroken)
			require.ErrorIs(t, err, errInjected)
			ffs.clear()
			require.ErrorIs(t, l.Flag(ctx, testSample(3)), ErrBroken, "no write after an unrepaired failure")
			require.NoError(t, l.Close())

			l2 := openTestLog(t, path, lf.format, nil)
			assert.Equal(t, 1, l2.Count(), "reopening cuts the half row away")
			require.NoError(t, l2.Flag(ctx, testSample(2)))
			assert.Equal(t, 2, l2.Count())
		})
	}
}

func TestNewLogRejectsBadArguments(t *testing.T) {
	dir := t.TempDir()
	_, err := NewLog("", JSONL, GrayPNG(), nil)
	assert.ErrorContains(t, err, "path")
	_, err = NewLog(filepath.Join(dir, "x"), LogFormat(7), GrayPNG(), nil)
	assert.ErrorContains(t, err, "format")
	_, err = NewLog[*image.Gray](filepath.Join(dir, "x"), CSV, nil, nil)
	assert.ErrorContains(t, err, "codec")
	l := openTestLog(t, filepath.Join(dir, "y.jsonl"), JSONL, nil)
	_, err = NewLog(filepath.Join(dir, "y.jsonl"), JSONL, GrayPNG(), nil)
	assert.ErrorIs(t, err, ErrLocked)
	s := testSample(1)
	s.ID = "bad id"
	assert.ErrorIs(t, l.Flag(context.Background(), s), ErrInvalidSample)
	assert.Equal(t, 0, l.Count())
}
