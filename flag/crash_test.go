package flag

import (
	"bufio"
	"context"
	"fmt"
	"image"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/internal/randid"
)

// The crash tests re-execute the test binary as a child process that flags
// samples in a loop and prints each ID once Flag returned nil; the parent
// kills it with SIGKILL after a seeded number of acknowledgements, many
// times, and then checks that
// every acknowledged ID is stored exactly once and the folder is clean.

const (
	crashModeEnv   = "FLAG_CRASH_HELPER"
	crashRootEnv   = "FLAG_CRASH_ROOT"
	crashReflagEnv = "FLAG_CRASH_REFLAG"
	crashSeedEnv   = "FLAG_CRASH_SEED"
)

// TestHelperProcess is the child side; it does nothing in a normal test run.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(crashModeEnv)
	if mode == "" {
		t.Skip("helper process for the crash tests")
	}
	if err := crashChild(mode, os.Getenv(crashRootEnv)); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	os.Exit(0)
}

func crashChild(mode, root string) error {
	ctx := context.Background()
	var flagger dadc.Flagger[*image.Gray]
	switch mode {
	case "dir":
		d, err := NewDir(root, GrayPNG(), nil)
		if err != nil {
			return err
		}
		flagger = d
	case "outbox":
		d, err := NewDir(filepath.Join(root, "delivered"), GrayPNG(), nil)
		if err != nil {
			return err
		}
		var seed uint64
		fmt.Sscan(os.Getenv(crashSeedEnv), &seed)
		var mu sync.Mutex
		rng := rand.New(rand.NewPCG(seed, 7))
		flaky := Func[*image.Gray](func(ctx context.Context, s dadc.Sample[*image.Gray]) error {
			mu.Lock()
			fail := rng.IntN(4) == 0
			mu.Unlock()
			if fail {
				return errUnavailable
			}
			return d.Flag(ctx, s)
		})
		o, err := NewOutbox(filepath.Join(root, "outbox"), flaky, GrayPNG(),
			&OutboxOptions{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Workers: 2})
		if err != nil {
			return err
		}
		flagger = o
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	var outMu sync.Mutex
	ack := func(id string) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(os.Stdout, "ack %s\n", id) // one write: a kill never tears a line
	}
	// IDs acknowledged by earlier children: storing them again must be a no-op.
	for _, id := range strings.Fields(os.Getenv(crashReflagEnv)) {
		s := testSample(1)
		s.ID = id
		if err := flagger.Flag(ctx, s); err != nil {
			return err
		}
		ack(id)
	}
	fmt.Fprintln(os.Stdout, "ready")
	tag := randid.Hex(4)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				s := testSample(g*1000 + i)
				s.ID = fmt.Sprintf("%s-%d-%d", tag, g, i)
				if err := flagger.Flag(ctx, s); err != nil {
					errs <- err
					return
				}
				ack(s.ID)
			}
		})
	}
	wg.Wait()
	return <-errs
}

// lockedBuffer collects a child's stderr; the test may read it while the
// child still writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runCrashRounds starts the child rounds times, kills each once it has
// acknowledged a seeded number (0 to 64) of new flags, and returns the IDs
// the children acknowledged. It never reads the clock.
func runCrashRounds(t *testing.T, mode, root string, rounds int) map[string]bool {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(len(mode)), 1))
	acked := make(map[string]bool)
	var ackedList []string
	for round := range rounds {
		var reflag []string
		for range min(3, len(ackedList)) {
			reflag = append(reflag, ackedList[rng.IntN(len(ackedList))])
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(),
			crashModeEnv+"="+mode, crashRootEnv+"="+root,
			crashReflagEnv+"="+strings.Join(reflag, " "),
			fmt.Sprintf("%s=%d", crashSeedEnv, round))
		stderr := &lockedBuffer{}
		cmd.Stderr = stderr
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())

		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Read up to "ready" (the re-flags' acknowledgements come first),
		// then kill once the child has acknowledged killAfter new flags:
		// its four goroutines are then mid-work. killAfter is drawn from a
		// fixed seed, so the kill points are the same on every run and on
		// any machine; zero kills during the first flags.
		killAfter := rng.IntN(65)
		var early []string // lines read before the kill
		ready, fresh := false, 0
		for !ready || fresh < killAfter {
			l, ok := <-lines
			require.True(t, ok, "child stopped before the kill (ready=%v, %d of %d acks): %s", ready, fresh, killAfter, stderr.String())
			early = append(early, l)
			switch {
			case l == "ready":
				ready = true
			case ready:
				fresh++
			}
		}
		require.NoError(t, cmd.Process.Kill()) // SIGKILL: no deferred code, no flushing
		n := 0
		record := func(l string) {
			if id, ok := strings.CutPrefix(l, "ack "); ok {
				if !acked[id] {
					acked[id] = true
					ackedList = append(ackedList, id)
				}
				n++
			}
		}
		for _, l := range early {
			record(l)
		}
		for l := range lines {
			record(l)
		}
		err = cmd.Wait()
		require.Error(t, err, "the child must have been killed, not have stopped: %s", stderr.String())
		assert.NotContains(t, stderr.String(), "child:", "the child failed before the kill")
		t.Logf("round %d: %d acks", round, n)
	}
	require.NotEmpty(t, acked, "children acknowledged nothing; the test proves nothing")
	return acked
}

// checkCrashedDir opens a Dir over root and checks the crash-safety promises.
func checkCrashedDir(t *testing.T, root string, acked map[string]bool) {
	t.Helper()
	d := openTestDir(t, root, nil)
	rows := 0
	seen := make(map[string]int)
	err := filepath.WalkDir(filepath.Join(root, DataDir), func(path string, e fs.DirEntry, err error) error {
		require.NoError(t, err)
		assert.False(t, strings.HasPrefix(e.Name(), tempPrefix), "temporary file left: %s", path)
		if e.Name() == MetadataFile {
			for _, r := range readRows(t, filepath.Dir(path)) { // fails on a torn row
				seen[r.ID]++
				rows++
			}
		}
		return nil
	})
	require.NoError(t, err)
	for id := range acked {
		assert.Equal(t, 1, seen[id], "acknowledged sample %s must be stored exactly once", id)
	}
	for id, n := range seen {
		assert.Equal(t, 1, n, "sample %s stored %d times", id, n)
	}
	assert.Equal(t, len(seen), d.Count())
	_, err = CheckImageFolder(os.DirFS(root))
	require.NoError(t, err)
	samples, err := d.Samples(context.Background())
	require.NoError(t, err)
	assert.Len(t, samples, rows, "every row's image decodes")
	t.Logf("%d acknowledged, %d stored (the rest were stored but killed before the ack)", len(acked), rows)
}

func crashRounds() int {
	if testing.Short() {
		return 8
	}
	return 30
}

func TestCrashSafetyDir(t *testing.T) {
	root := t.TempDir()
	acked := runCrashRounds(t, "dir", root, crashRounds())
	checkCrashedDir(t, root, acked)
}

func TestCrashSafetyOutbox(t *testing.T) {
	root := t.TempDir()
	acked := runCrashRounds(t, "outbox", root, crashRounds())
	// Restart: a new Outbox over the same queue delivers whatever is left.
	d := openTestDir(t, filepath.Join(root, "delivered"), nil)
	o, err := NewOutbox(filepath.Join(root, "outbox"), dadc.Flagger[*image.Gray](d), GrayPNG(),
		&OutboxOptions{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	require.NoError(t, err)
	t.Logf("backlog after the last crash: %d", o.Backlog())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, o.Flush(ctx))
	assert.Equal(t, 0, o.Backlog())
	require.NoError(t, o.Close())
	entries, err := os.ReadDir(filepath.Join(root, "outbox", pendingDirName))
	require.NoError(t, err)
	assert.Empty(t, entries, "no pending or temporary files left")
	assert.NoDirExists(t, filepath.Join(root, "outbox", failedDirName), "nothing dead-lettered")
	require.NoError(t, d.Close())
	checkCrashedDir(t, filepath.Join(root, "delivered"), acked)
}
