package main

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/advspace/advspace/dadc/dadchub"
	"github.com/advspace/advspace/hfhub/hubtest"
	"github.com/advspace/advspace/mnist"
)

// The multi-process test's settings: intervals short enough that the whole
// run takes about a minute, and a tiny fine-tune.
const (
	mpPushEvery  = time.Second
	mpCheckEvery = 2 * time.Second
	mpReplicas   = 3
	// Distinct misclassified images, flagged in turn (3 and the held-out
	// period 5 are coprime, so every image has held-out and trained copies).
	mpImages     = 3
	mpPerReplica = 10 // flags per replica
	mpDataset    = "alice/digits"
	mpModel      = "alice/mnist-dadc"
	mpToken      = "hf_multiprocess"
)

// proc is one mnist-space process.
type proc struct {
	name string
	args []string
	cmd  *exec.Cmd
	url  string
	logs *lockedBuffer
	done chan struct{}
	born time.Time
	died time.Time
}

var readRE = regexp.MustCompile(`msg="mnist-space: read the Hub dataset" commit=[0-9a-f]+ samples=([0-9]+)`)

var urlRE = regexp.MustCompile(`msg="mnist-space: serving".* url=(http://127\.0\.0\.1:[0-9]+/)`)

// startProc starts the binary and waits until it listens.
func startProc(t *testing.T, bin, name string, env []string, args []string) *proc {
	t.Helper()
	p := &proc{name: name, args: args, logs: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	p.cmd.Env = env
	stderr, err := p.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	p.born = time.Now()
	ready := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.logs, line)
			if m := urlRE.FindStringSubmatch(line); m != nil {
				select {
				case ready <- m[1]:
				default:
				}
			}
		}
		_ = p.cmd.Wait()
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- %s logs ---\n%s", p.name, p.logs.String())
		}
	})
	select {
	case p.url = <-ready:
	case <-p.done:
		t.Fatalf("%s exited before listening:\n%s", name, p.logs.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s not listening after 2 minutes:\n%s", name, p.logs.String())
	}
	return p
}

// kill sends SIGKILL and waits for the process to end.
func (p *proc) kill(t *testing.T) {
	require.NoError(t, p.cmd.Process.Kill())
	<-p.done
	p.died = time.Now()
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("%s did not stop after SIGTERM", p.name)
	}
	p.died = time.Now()
	assert.Equal(t, 0, p.cmd.ProcessState.ExitCode(), "%s exit code; logs:\n%s", p.name, p.logs.String())
}

type mpStats struct {
	ModelVersion string `json:"model_version"`
	FlaggedTotal int    `json:"flagged_total"`
	Rounds       []struct {
		Round        int    `json:"round"`
		ModelVersion string `json:"model_version"`
	} `json:"rounds"`
}

func mpGetStats(t *testing.T, c *http.Client, base string) mpStats {
	t.Helper()
	resp, err := c.Get(base + "api/stats")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var st mpStats
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	return st
}

// waitFor polls cond every 100 ms until it holds or the bound passes; it
// returns when it first held. The bound only stops a broken run.
func waitFor(t *testing.T, what string, bound time.Duration, cond func() bool) time.Time {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	for {
		if cond() {
			return time.Now()
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// pngDataURL encodes image i; variant k > 0 dims its brightest pixel by k
// levels: the same drawing to the model, another request body (the server
// answers a repeated body with the first answer).
func pngDataURL(t *testing.T, ds *mnist.Dataset, i, variant int) string {
	img := ds.Gray(i)
	if variant > 0 {
		at := 0
		for j, v := range img.Pix {
			if v > img.Pix[at] {
				at = j
			}
		}
		img.Pix[at] -= uint8(variant)
	}
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes())
}

func mpPostJSON(t *testing.T, c *http.Client, url string, body any, key string) (int, map[string]any) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// TestReplicasAndTrainer runs 3 replicas and 1 trainer as separate processes
// against a fake Hub served on loopback by the test: people flag on all
// three replicas, a replica and the trainer are SIGKILLed and restarted
// mid-run, the trainer promotes a model and publishes it in one commit,
// every replica serves it, every flag is on the Hub exactly once, and the
// commits stay within the budget.
func TestReplicasAndTrainer(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test: builds the binary and runs 4 processes for about a minute")
	}
	goBin, err := exec.LookPath("go")
	require.NoError(t, err, "the multi-process test builds the program with the go command")
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "mnist-space")
	build := exec.Command(goBin, "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	// The fake Hub, on loopback, with the Hub's commit limit.
	hub := hubtest.New(&hubtest.Options{Tokens: map[string]hubtest.TokenInfo{mpToken: {User: "alice", Role: "write"}}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: hub.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + tmp, "HF_HOME=" + filepath.Join(tmp, "hf"),
		"HF_ENDPOINT=http://" + ln.Addr().String(), "HF_TOKEN=" + mpToken, "GOMAXPROCS=1",
	}
	common := []string{"-mnist-dir", subsetDir(t), "-hub-dataset", mpDataset, "-hub-model", mpModel,
		"-hub-push-every", mpPushEvery.String(), "-model-check-every", mpCheckEvery.String(), "-validations", "0",
		"-retrain-every", fmt.Sprint(mpReplicas * mpPerReplica), "-fine-tune-steps", "300"}
	replicaArgs := func(i int) []string {
		return append([]string{"-role", "replica", "-data", filepath.Join(tmp, fmt.Sprintf("replica%d", i))}, common...)
	}
	trainerArgs := append([]string{"-role", "trainer", "-data", filepath.Join(tmp, "trainer")}, common...)

	// Misclassified training images (true label kept): real adversarial
	// examples for the embedded model, which a retrain can learn.
	train, _, err := mnist.LoadDataDir(subsetDir(t))
	require.NoError(t, err)
	w, err := mnist.Pretrained()
	require.NoError(t, err)
	base, err := mnist.NewModel(w, nil)
	require.NoError(t, err)

	trainer := startProc(t, bin, "trainer", env, trainerArgs)
	var (
		procs   []*proc
		clients []*http.Client
		all     []*proc // every process started, for the commit budget
	)
	all = append(all, trainer)
	for i := range mpReplicas {
		p := startProc(t, bin, fmt.Sprintf("replica%d", i), env, replicaArgs(i))
		procs = append(procs, p)
		all = append(all, p)
		jar, err := cookiejar.New(nil)
		require.NoError(t, err)
		clients = append(clients, &http.Client{Jar: jar, Timeout: time.Minute})
	}
	// Sessions: a page load sets the cookie.
	for i, p := range procs {
		resp, err := clients[i].Get(p.url)
		require.NoError(t, err)
		resp.Body.Close()
	}

	// Pick images that fool the served model through the web pipeline too.
	type pick struct {
		index int
		label int
	}
	// The model's least confident mistakes: learning them moves the network
	// least, which keeps the gate's clean budget on a 1,000-image test set
	// (however good the embedded model is: the better it is, the fewer and
	// the surer its mistakes).
	type mistake struct {
		index      int
		confidence float64
	}
	var mistakes []mistake
	for i := range train.Len() {
		p, err := base.Predict(t.Context(), train.Gray(i))
		require.NoError(t, err)
		if p.Label != int(train.Labels[i]) {
			mistakes = append(mistakes, mistake{i, p.Probabilities[p.Label]})
		}
	}
	slices.SortFunc(mistakes, func(a, b mistake) int { return cmp.Compare(a.confidence, b.confidence) })
	var picks []pick
	for _, m := range mistakes {
		if len(picks) == mpImages {
			break
		}
		i := m.index
		u := pngDataURL(t, train, i, 0)
		code, res := mpPostJSON(t, clients[0], procs[0].url+"api/predict", map[string]any{"image": u}, "")
		require.Equal(t, http.StatusOK, code, res)
		if int(res["label"].(float64)) != int(train.Labels[i]) {
			picks = append(picks, pick{i, int(train.Labels[i])})
		}
	}
	require.Len(t, picks, mpImages, "not enough misclassified images in the MNIST subset")

	var (
		idsMu   sync.Mutex
		flagged = map[string]string{} // sample id -> replica
		nFlag   int
		firstAt time.Time
	)
	flagOn := func(r, n int) {
		for range n {
			pk := picks[nFlag%mpImages]
			u := pngDataURL(t, train, pk.index, 1+nFlag/mpImages)
			nFlag++
			key := fmt.Sprintf("flag-%d", nFlag)
			code, res := mpPostJSON(t, clients[r], procs[r].url+"api/flag", map[string]any{"image": u, "label": pk.label, "confirm": true}, key)
			require.Equal(t, http.StatusCreated, code, "flag on replica %d: %v", r, res)
			idsMu.Lock()
			flagged[res["id"].(string)] = procs[r].name
			if firstAt.IsZero() {
				firstAt = time.Now()
			}
			idsMu.Unlock()
		}
	}

	// Half the flags on every replica.
	for r := range procs {
		flagOn(r, mpPerReplica/2)
	}
	// The writer of one sample retracts it: the record travels to the Hub
	// with replica 0's next push, and the trainer never trains on it.
	var retracted string
	for id, r := range flagged {
		if r == procs[0].name {
			retracted = id
			break
		}
	}
	code, res := mpPostJSON(t, clients[0], procs[0].url+"api/retract", map[string]any{"id": retracted}, "")
	require.Equal(t, http.StatusOK, code, "retract: %v", res)

	// Mid-run: SIGKILL replica 1 right after its flags were acknowledged
	// (durable on its disk, most likely not pushed yet) and restart it.
	procs[1].kill(t)
	procs[1] = startProc(t, bin, "replica1-restarted", env, replicaArgs(1))
	all = append(all, procs[1])
	resp, err := clients[1].Get(procs[1].url)
	require.NoError(t, err)
	resp.Body.Close()
	// Once the trainer has read the first half, SIGKILL it and restart it:
	// it resumes from its local copy and its record of what it read.
	half := mpReplicas * mpPerReplica / 2
	waitFor(t, "the trainer reading the first half", 2*time.Minute, func() bool {
		return mpGetStats(t, http.DefaultClient, trainer.url).FlaggedTotal == half
	})
	trainer.kill(t)
	trainer = startProc(t, bin, "trainer-restarted", env, trainerArgs)
	all = append(all, trainer)
	assert.Equal(t, half, mpGetStats(t, http.DefaultClient, trainer.url).FlaggedTotal, "the restarted trainer recovered what it had read")
	// The other half.
	for r := range procs {
		flagOn(r, mpPerReplica/2)
	}
	lastAt := time.Now()
	total := mpReplicas * mpPerReplica
	require.Len(t, flagged, total, "every flag got its own sample id")

	// Every flagged sample reaches the Hub, exactly once.
	var rowsOnHub map[string]int
	onHub := waitFor(t, "every flag on the Hub", 2*time.Minute, func() bool {
		rowsOnHub = hubRows(t, hub)
		return len(rowsOnHub) >= total
	})
	// The trainer promotes and publishes; every replica follows.
	var card dadchub.Card
	published := waitFor(t, "a promoted model on the model repo", 3*time.Minute, func() bool {
		b, ok := hub.File("model", mpModel, "main", dadchub.CardFile)
		if !ok {
			return false
		}
		require.NoError(t, json.Unmarshal(b, &card))
		return card.Round >= 1
	})
	swapped := make([]time.Time, len(procs))
	for i, p := range procs {
		swapped[i] = waitFor(t, p.name+" serving the published model", 2*time.Minute, func() bool {
			return mpGetStats(t, clients[i], p.url).ModelVersion == card.Version
		})
		st := mpGetStats(t, clients[i], p.url)
		require.GreaterOrEqual(t, len(st.Rounds), 2, "%s shows the rounds the model repo says", p.name)
		assert.Equal(t, card.Version, st.Rounds[len(st.Rounds)-1].ModelVersion)
		assert.Equal(t, card.Round, st.Rounds[len(st.Rounds)-1].Round)
	}
	assert.Equal(t, total-1, card.TrainSamples+card.HeldOutSamples, "the retracted sample neither trained nor scored")
	tst := mpGetStats(t, http.DefaultClient, trainer.url)
	assert.Equal(t, card.Version, tst.ModelVersion, "the trainer serves what it published")
	assert.Equal(t, total, tst.FlaggedTotal, "the trainer counted every sample once, across its restart")
	read := 0
	for _, m := range readRE.FindAllStringSubmatch(trainer.logs.String(), -1) {
		n, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		read += n
	}
	assert.Equal(t, total-half, read, "the restarted trainer downloaded only the samples it had not read")

	// Stop everything cleanly: pending pushes go out.
	for _, p := range procs {
		p.stop(t)
	}
	trainer.stop(t)

	rowsOnHub = hubRows(t, hub)
	require.Len(t, rowsOnHub, total, "samples on the Hub")
	for id, replica := range flagged {
		assert.Equal(t, 1, rowsOnHub[id], "sample %s flagged on %s is on the Hub exactly once", id, replica)
	}

	var recs []string
	for p, b := range hub.Files("dataset", mpDataset, "main") {
		if strings.HasPrefix(p, dadchub.ValidationsDir+"/") {
			recs = append(recs, strings.TrimSpace(string(b)))
		}
	}
	require.Len(t, recs, 1, "replica 0's validation records are on the Hub")
	assert.Contains(t, recs[0], retracted)

	// The model repo: one commit per published model, each with weights,
	// card, history and README together.
	var modelCommits []hubtest.Commit
	for _, c := range hub.Commits("model", mpModel) {
		if len(c.Changed) == 1 && c.Changed[0] == ".gitattributes" {
			continue // the repo's creation
		}
		modelCommits = append(modelCommits, c)
		assert.Subset(t, c.Changed, []string{dadchub.CardFile, dadchub.HistoryFile, dadchub.WeightsFile}, "commit %s: %s", c.OID, c.Summary)
	}
	assert.GreaterOrEqual(t, len(modelCommits), 2, "the embedded model and the promotion")
	assert.LessOrEqual(t, len(modelCommits), 3, "the embedded model, the promotion, at most one more")
	// The dataset repo: within each writer's budget (one commit per push
	// interval of its life, plus its final push).
	budget := 0
	for _, p := range all {
		if p.name == "trainer" || p.name == "trainer-restarted" {
			continue
		}
		budget += int(p.died.Sub(p.born)/mpPushEvery) + 1
	}
	dsCommits := hub.Commits("dataset", mpDataset)
	assert.LessOrEqual(t, len(dsCommits), budget, "dataset commits within the writers' budget")
	assert.LessOrEqual(t, len(dsCommits), total+len(all), "no commit without new samples (plus one card commit per writer)")

	t.Logf("timeline: first flag at 0s; last flag at %.1fs; all %d samples on the Hub at %.1fs; model %s (round %d) published at %.1fs; replicas serving it at %s (check interval %s)",
		lastAt.Sub(firstAt).Seconds(), total, onHub.Sub(firstAt).Seconds(), card.Version, card.Round, published.Sub(firstAt).Seconds(),
		fmtSwaps(swapped, published), mpCheckEvery)
	t.Logf("commits: dataset %d (budget by lifetime %d), model %d", len(dsCommits), budget, len(modelCommits))
	for _, p := range all {
		t.Logf("%s (started %s, stopped %s):\n%s", p.name, p.born.UTC().Format("15:04:05.000"), p.died.UTC().Format("15:04:05.000"),
			grepLines(p.logs.String(), "flag: hub: pushed", "read the Hub dataset", "retrain started", "candidate promoted", "published model", "adopted a published model"))
	}
}

// hubRows counts each sample id over every metadata.jsonl on the fake Hub's
// dataset, checking that each row's input file is there.
func hubRows(t *testing.T, hub *hubtest.Server) map[string]int {
	files := hub.Files("dataset", mpDataset, "main")
	rows := map[string]int{}
	for p, b := range files {
		if path.Base(p) != dadchub.MetadataFile {
			continue
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if line == "" {
				continue
			}
			var r struct {
				FileName string `json:"file_name"`
				ID       string `json:"id"`
			}
			require.NoError(t, json.Unmarshal([]byte(line), &r))
			if _, ok := files[path.Join(path.Dir(p), r.FileName)]; ok {
				rows[r.ID]++
			}
		}
	}
	return rows
}

func fmtSwaps(ts []time.Time, from time.Time) string {
	var parts []string
	for _, s := range ts {
		parts = append(parts, fmt.Sprintf("+%.1fs", s.Sub(from).Seconds()))
	}
	return strings.Join(parts, ", ")
}

func grepLines(logs string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		for _, s := range subs {
			if strings.Contains(l, s) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
