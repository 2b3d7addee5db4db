package main

import (
	"context"
	"image"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadchub"
)

// Roles (-role).
const (
	roleStandalone = "standalone"
	roleReplica    = "replica"
	roleTrainer    = "trainer"
)

// defaultPushEvery is the default -hub-push-every: a writer commits its
// pending flags at most every 5 minutes, 12 commits an hour (plus one at
// shutdown), so that 9 writers stay within the Hub's ~128 commits per repo
// and hour.
const defaultPushEvery = 5 * time.Minute

// pushMaxBatch is the Hub pusher's MaxBatch for every role: as large as one
// commit may carry, so that the interval, not the traffic, sets the commit
// rate (and with it the replica count the Hub's budget allows).
const pushMaxBatch = 1000

// commitsPerHour is the hourly commit cap of a writer that pushes every
// interval: one commit per interval, plus one for a final push at shutdown,
// at most 100 (flag.Hub's default, below the Hub's ~128).
func commitsPerHour(interval time.Duration) int {
	n := int(time.Hour/interval) + 1
	return min(max(n, 1), 100)
}

// readShards is the trainer's reading loop: every interval (jittered by
// ±20%) it reads what is new in the dataset (every writer's shard and
// validation records), registers the samples with the validations, replays
// the records, hands the samples to the loop (which stores them in its local
// Dir and may retrain), and only then marks them read. It returns when ctx
// is done.
func readShards(ctx context.Context, r *dadchub.Reader[*image.Gray], loop *dadc.Loop[*image.Gray], vals *dadc.Validations, interval time.Duration, log *slog.Logger) {
	for {
		start := time.Now()
		b, err := r.Read(ctx)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				log.Warn("mnist-space: reading the Hub dataset failed; trying again at the next interval", "error", err)
			}
		default:
			for _, s := range b.Samples {
				vals.AddSample(s.SampleMeta)
			}
			skipped := vals.Replay(b.Records)
			added, err := loop.Ingest(ctx, b.Samples)
			if err != nil {
				log.Warn("mnist-space: storing samples read from the Hub failed; they are read again at the next interval", "error", err, "added", added)
				break
			}
			if err := r.Commit(b); err != nil {
				log.Warn("mnist-space: saving what was read from the Hub failed", "error", err)
			}
			if len(b.Samples) > 0 || len(b.Records) > 0 {
				log.Info("mnist-space: read the Hub dataset", "commit", b.Commit, "samples", len(b.Samples), "new_samples", added,
					"records", len(b.Records), "records_skipped", skipped, "files", b.Files, "took", time.Since(start).Round(time.Millisecond))
			}
		}
		t := time.NewTimer(time.Duration(float64(interval) * (0.8 + 0.4*rand.Float64())))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// trainerRoutes serves what a trainer offers: /healthz, /metrics,
// /api/stats (and /api/model, the model it serves); people draw and flag
// on the replicas.
func trainerRoutes(app http.Handler) http.Handler {
	mux := http.NewServeMux()
	for _, p := range []string{"GET /healthz", "GET /metrics", "GET /api/stats", "GET /api/model"} {
		mux.Handle(p, app)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"this is a trainer: it serves /healthz, /metrics and /api/stats; draw and flag on a replica"}` + "\n"))
	})
	return mux
}
