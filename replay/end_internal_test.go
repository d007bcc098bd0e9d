package replay

import (
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A job that read everything ends failed when a record's produce was
// abandoned (the drain timed out, or another job's abandon took its batch
// down): the contract is that a job with any record not produced ends
// failed, and whether an abandoned one was written is unknown.
func TestJobWithAbandonedRecordsEndsFailed(t *testing.T) {
	t.Parallel()
	tr := &tracker{live: &liveJob{}, ck: Checkpoint{Floors: map[int32]int64{}}}
	p := tr.add("c1", 3)
	tr.ended(p, &kgo.Record{Partition: 0, Offset: 7}, nil)
	tr.ended(p, nil, nil) // sent by an earlier run
	tr.ended(p, &kgo.Record{Partition: 1}, context.Canceled)

	status, cause := endOf(0, tr.abandonedCount())
	if status != Failed || cause == nil || !strings.Contains(cause.Error(), "1 records abandoned") {
		t.Errorf("with an abandoned record: %s, %v; want failed, saying how many", status, cause)
	}
	if _, sent, _ := tr.fold(); sent != 0 {
		t.Errorf("a page with an abandoned record folded into the checkpoint (%d sent)", sent)
	}
	if status, cause := endOf(2, 0); status != Failed || cause != nil {
		t.Errorf("with failed records: %s, %v; want failed", status, cause)
	}
	if status, cause := endOf(0, 0); status != Done || cause != nil {
		t.Errorf("all sent: %s, %v; want done", status, cause)
	}
}
