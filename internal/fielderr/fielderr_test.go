package fielderr

import (
	"errors"
	"fmt"
	"testing"
)

func TestList(t *testing.T) {
	l := New("pipe")
	if l.Err() != nil {
		t.Fatal("an empty list is no error")
	}
	l.Add("batchSize", "0", "use 1–10000")
	l.Add("target", "", "required")
	err := fmt.Errorf("create: %w", l.Err())
	var got *List
	if !errors.As(err, &got) || len(got.Fields) != 2 {
		t.Fatalf("errors.As(%v) = %v", err, got)
	}
	if want := "invalid pipe: batchSize: invalid value 0: use 1–10000; target: required"; got.Error() != want {
		t.Fatalf("Error() = %q, want %q", got.Error(), want)
	}
}
