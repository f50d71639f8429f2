package pipe

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// FuzzSpec feeds arbitrary JSON through decoding, validation and
// normalization: nothing may panic, a rejection must name its fields, and a
// spec that validates must still validate once its defaults are filled in.
func FuzzSpec(f *testing.F) {
	f.Add(`{"name":"orders","bootstrapServers":["127.0.0.1:9092"],"topics":["orders"],"target":{"http":{"url":"http://x/"}}}`)
	f.Add(`{"name":"a","bootstrapServers":["h:1"],"topics":["t"],"target":{"http":{"url":"https://x"}},"startingPosition":"AT_TIMESTAMP","startingPositionTimestamp":"2020-01-01T00:00:00Z","batchSize":10000,"maximumBatchingWindowInSeconds":300,"retry":{"maximumRetryAttempts":-1,"maximumRecordAgeInSeconds":60}}`)
	f.Add(`{"name":"","batchSize":-5,"target":{"http":{"url":"ftp://"}},"payloadLimitBytes":1}`)
	f.Add(`{"bootstrapServers":["[::1]:9092","host"],"consumerGroupId":"a b/c"}`)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body string) {
		var s Spec
		if json.Unmarshal([]byte(body), &s) != nil {
			return
		}
		err := s.Validate(now)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Fields) == 0 {
				t.Fatalf("rejection without fields: %v", err)
			}
			for _, fe := range ve.Fields {
				if fe.Field == "" || fe.Reason == "" {
					t.Fatalf("field error without a field or a reason: %+v", fe)
				}
			}
			return
		}
		s.UUID = "00000000-0000-0000-0000-000000000000"
		n := s.Normalize()
		if err := n.Validate(now); err != nil {
			t.Fatalf("valid spec invalid after Normalize: %v\n%s", err, body)
		}
		if n.BatchSize < MinBatchSize || n.BatchingWindow() < 0 || n.TargetTimeout() <= 0 || n.GroupID() == "" {
			t.Fatalf("normalized spec out of range: %+v", n)
		}
	})
}
