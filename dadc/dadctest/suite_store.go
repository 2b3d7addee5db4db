package dadctest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/advspace/advspace/dadc"
)

// StoreSuite checks a dadc.ModelStore implementation (and its HistoryStore
// capability, if it has one) against the contract. Run it with Run.
type StoreSuite struct {
	// New returns a store keeping its data under dir (an empty folder the
	// suite owns; in-memory stores ignore it), keeping at most Keep
	// versions. Calling New again with the same dir must open the same
	// store when Persistent is set. Required.
	New func(dir string) (dadc.ModelStore, error)
	// Keep is how many versions the store keeps (0: unbounded, the check is skipped).
	Keep int
	// Persistent says the store keeps its data across instances.
	Persistent bool
}

// TestModelStore runs the suite for a persistent store keeping keep versions.
func TestModelStore(t *testing.T, keep int, newStore func(dir string) (dadc.ModelStore, error)) {
	t.Helper()
	(&StoreSuite{New: newStore, Keep: keep, Persistent: true}).Run(t)
}

// storeCard returns a test card for version v.
func storeCard(v string, round int) dadc.ModelCard {
	acc := 0.5 + float64(round)/100
	return dadc.ModelCard{Version: v, Round: round, Parent: fmt.Sprint("parent-of-", v), TrainSamples: 10 * round,
		HeldOutSamples: round, CleanAccuracy: &acc, Reasons: []string{"ok test " + v},
		CreatedAt: time.Date(2026, 1, 1, 0, 0, round, 0, time.UTC)}
}

func storeBytes(v string) []byte { return bytes.Repeat([]byte("weights of "+v+"\n"), 1000) }

func saveBytes(ctx context.Context, s dadc.ModelStore, c dadc.ModelCard) error {
	return s.Save(ctx, c, func(w io.Writer) error { _, err := w.Write(storeBytes(c.Version)); return err })
}

// Run runs every check as a subtest.
func (ss *StoreSuite) Run(t *testing.T) {
	t.Helper()
	if ss.New == nil {
		t.Fatal("dadctest: StoreSuite.New is nil; set it to build the store under test")
	}
	open := func(t *testing.T, dir string) dadc.ModelStore {
		t.Helper()
		s, err := ss.New(dir)
		if err != nil {
			t.Fatalf("New(%q): %v", dir, err)
		}
		return s
	}
	readAll := func(t *testing.T, s dadc.ModelStore, v string) ([]byte, dadc.ModelCard) {
		t.Helper()
		r, c, err := s.Open(t.Context(), v)
		if err != nil {
			t.Fatalf("Open(%q): %v", v, err)
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("reading %q: %v", v, err)
		}
		return b, c
	}
	t.Run("empty", func(t *testing.T) {
		s := open(t, t.TempDir())
		if _, err := s.Latest(t.Context()); !errors.Is(err, dadc.ErrNoModel) {
			t.Errorf("Latest on an empty store: got %v, want ErrNoModel", err)
		}
		if _, _, err := s.Open(t.Context(), "nope"); !errors.Is(err, dadc.ErrModelNotFound) {
			t.Errorf("Open of a missing version: got %v, want ErrModelNotFound", err)
		}
		if l, err := s.List(t.Context()); err != nil || len(l) != 0 {
			t.Errorf("List on an empty store: %v, %v; want nothing", l, err)
		}
	})
	t.Run("round trip and order", func(t *testing.T) {
		s := open(t, t.TempDir())
		for i, v := range []string{"a", "b"} {
			if err := saveBytes(t.Context(), s, storeCard(v, i)); err != nil {
				t.Fatalf("Save(%s): %v", v, err)
			}
		}
		latest, err := s.Latest(t.Context())
		if err != nil || !reflect.DeepEqual(latest, storeCard("b", 1)) {
			t.Errorf("Latest = %+v, %v; want the card of b", latest, err)
		}
		b, c := readAll(t, s, "a")
		if !bytes.Equal(b, storeBytes("a")) || !reflect.DeepEqual(c, storeCard("a", 0)) {
			t.Errorf("Open(a) returned other weights or card: %+v", c)
		}
		l, err := s.List(t.Context())
		if err != nil || len(l) != 2 || l[0].Version != "a" || l[1].Version != "b" {
			t.Errorf("List = %+v, %v; want a then b", l, err)
		}
	})
	t.Run("failed saves store nothing", func(t *testing.T) {
		s := open(t, t.TempDir())
		if err := saveBytes(t.Context(), s, storeCard("a", 0)); err != nil {
			t.Fatal(err)
		}
		err := s.Save(t.Context(), storeCard("b", 1), func(w io.Writer) error {
			_, _ = w.Write([]byte("half"))
			return errInjected
		})
		if !errors.Is(err, errInjected) {
			t.Errorf("Save with a failing write: got %v, want the write's error wrapped", err)
		}
		if err := saveBytes(t.Context(), s, storeCard("a", 2)); err == nil {
			t.Error("saving a version twice succeeded; versions must be unique")
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := saveBytes(ctx, s, storeCard("c", 3)); err == nil {
			t.Error("Save with a cancelled context succeeded")
		}
		if l, _ := s.List(t.Context()); len(l) != 1 || l[0].Version != "a" {
			t.Errorf("after failed saves List = %+v; want only a", l)
		}
		if _, _, err := s.Open(t.Context(), "b"); !errors.Is(err, dadc.ErrModelNotFound) {
			t.Errorf("Open of a failed save: got %v, want ErrModelNotFound", err)
		}
	})
	t.Run("readers never see a partial model", func(t *testing.T) {
		s := open(t, t.TempDir())
		if err := saveBytes(t.Context(), s, storeCard("v0", 0)); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		stop := make(chan struct{})
		errs := make(chan error, 100)
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					c, err := s.Latest(t.Context())
					if err != nil {
						errs <- err
						return
					}
					r, oc, err := s.Open(t.Context(), c.Version)
					if errors.Is(err, dadc.ErrModelNotFound) {
						continue // pruned meanwhile
					}
					if err != nil {
						errs <- err
						return
					}
					b, err := io.ReadAll(r)
					r.Close()
					if err == nil && (!bytes.Equal(b, storeBytes(oc.Version)) || oc.Version != c.Version) {
						err = fmt.Errorf("version %s: read %d bytes that are not its weights", c.Version, len(b))
					}
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		for i := 1; i <= 8; i++ {
			if err := saveBytes(t.Context(), s, storeCard(fmt.Sprint("v", i), i)); err != nil {
				t.Fatal(err)
			}
		}
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
	if ss.Keep > 0 {
		t.Run("keeps the newest versions", func(t *testing.T) {
			s := open(t, t.TempDir())
			n := ss.Keep + 2
			for i := range n {
				if err := saveBytes(t.Context(), s, storeCard(fmt.Sprint("v", i), i)); err != nil {
					t.Fatal(err)
				}
			}
			l, err := s.List(t.Context())
			if err != nil || len(l) != ss.Keep || l[len(l)-1].Version != fmt.Sprint("v", n-1) || l[0].Version != fmt.Sprint("v", n-ss.Keep) {
				t.Errorf("List after %d saves = %+v, %v; want the newest %d", n, l, err, ss.Keep)
			}
			if _, _, err := s.Open(t.Context(), "v0"); !errors.Is(err, dadc.ErrModelNotFound) {
				t.Errorf("Open of a pruned version: got %v, want ErrModelNotFound", err)
			}
		})
	}
	if ss.Persistent {
		t.Run("persistent", func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir)
			if err := saveBytes(t.Context(), s, storeCard("a", 0)); err != nil {
				t.Fatal(err)
			}
			s2 := open(t, dir)
			c, err := s2.Latest(t.Context())
			if err != nil || c.Version != "a" {
				t.Fatalf("a reopened store's Latest = %+v, %v; want a", c, err)
			}
			b, _ := readAll(t, s2, "a")
			if !bytes.Equal(b, storeBytes("a")) {
				t.Error("a reopened store returns other weights")
			}
		})
	}
	t.Run("history", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		hs, ok := s.(dadc.HistoryStore)
		if !ok {
			t.Skip("the store does not implement dadc.HistoryStore")
		}
		h, err := hs.LoadHistory(t.Context())
		if err != nil || h != nil {
			t.Fatalf("LoadHistory on an empty store = %+v, %v; want nil, nil", h, err)
		}
		ref := 0.99
		end := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
		want := &dadc.History{ReferenceCleanAccuracy: &ref, SavedAt: end,
			Rounds: []dadc.RoundStats{{Round: 0, ModelVersion: "a", Flags: 3, Attempts: 4, StartedAt: end.Add(-time.Hour), EndedAt: &end,
				Retrains: []dadc.RetrainStats{{Candidate: "b", Decision: dadc.DecisionPromoted, Reasons: []string{"ok"}, StartedAt: end}}},
				{Round: 1, ModelVersion: "b", StartedAt: end}},
			HeldOutSets: []dadc.HeldOutSet{{Round: 0, IDs: []string{"x", "y"}, Correct: 2}}}
		for range 2 { // a second save replaces the first
			if err := hs.SaveHistory(t.Context(), want); err != nil {
				t.Fatal(err)
			}
		}
		check := func(hs dadc.HistoryStore) {
			got, err := hs.LoadHistory(t.Context())
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("LoadHistory = %+v, %v; want %+v", got, err, want)
			}
		}
		check(hs)
		if ss.Persistent {
			check(open(t, dir).(dadc.HistoryStore))
		}
	})
}
