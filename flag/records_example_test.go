package flag_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/flag"
)

// Verdicts made durable before they count, and rebuilt at the next start.
func ExampleRecordLog() {
	root, err := os.MkdirTemp("", "records-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(root)
	ctx := context.Background()
	sample := dadc.SampleMeta{ID: "s1", Label: 9, ModelLabel: 4, Session: "writer"}

	log, err := flag.OpenRecordLog(root, "shard-1", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	vals, _ := dadc.NewValidations(2, 10)
	vals.AddSample(sample)
	for _, who := range []string{"ann", "bob"} {
		rec := dadc.ValidationRecord{Kind: dadc.RecordVerdict, SampleID: "s1", Session: who, Verdict: dadc.VerdictCorrect, CreatedAt: time.Now().UTC()}
		st, err := vals.Record(ctx, rec, log.Append)
		fmt.Println(who, st.Status, err)
	}
	_ = log.Close()

	// The next start: the same state from the records.
	recs, _ := flag.ReadRecords(root)
	again, _ := dadc.NewValidations(2, 10)
	again.AddSample(sample)
	fmt.Println("skipped:", again.Replay(recs), "trainable:", again.Trainable("s1"))
	// Output:
	// ann pending <nil>
	// bob verified <nil>
	// skipped: 0 trainable: true
}
