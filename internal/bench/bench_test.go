package bench

import (
	"context"
	"testing"
)

// TestRunMeasuresBothPaths runs a small benchmark end to end: every record
// must reach the endpoint, and both rates must be measured.
func TestRunMeasuresBothPaths(t *testing.T) {
	r, err := Run(context.Background(), Options{Records: 3000, Size: 256, Partitions: 3, BatchSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	if r.DeliveredRecordsTotal < 3000 || r.BareConsumerPerSec <= 0 || r.PipePerSec <= 0 || r.PipeToBareConsumer <= 0 || r.Batches < 3000/50 {
		t.Fatalf("result %+v", r)
	}
}

func TestRunRejectsEmptyOptions(t *testing.T) {
	if _, err := Run(context.Background(), Options{}); err == nil {
		t.Fatal("want an error for zero records")
	}
}
