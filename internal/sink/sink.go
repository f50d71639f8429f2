// Package sink is an HTTP endpoint that receives reference Kafka events and
// keeps every record it accepted. Tests and the benchmark use it as the
// target, and `sluice sink` runs it for people trying Sluice out.
package sink

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Record is one record as a target sees it.
type Record struct {
	Topic         string
	Partition     int32
	Offset        int64
	Timestamp     int64
	TimestampType string
	Key           []byte // nil when the event had no key
	Value         []byte
	Headers       []Header
	// Received is when the batch carrying it arrived.
	Received time.Time
}

// Header is a record header with its bytes decoded from signed bytes.
type Header struct {
	Key   string
	Value []byte
}

// Event is the reference Kafka event, as a consumer decodes it.
type Event struct {
	EventSource      string                  `json:"eventSource"`
	EventSourceArn   string                  `json:"eventSourceArn,omitempty"`
	BootstrapServers string                  `json:"bootstrapServers"`
	Records          map[string][]wireRecord `json:"records"`
}

type wireRecord struct {
	Topic         string              `json:"topic"`
	Partition     int32               `json:"partition"`
	Offset        int64               `json:"offset"`
	Timestamp     int64               `json:"timestamp"`
	TimestampType string              `json:"timestampType"`
	Key           *string             `json:"key"`
	Value         *string             `json:"value"`
	Headers       []map[string][]int8 `json:"headers"`
}

// Decision is what the sink answers a delivery: a status code (0 means 200)
// and an optional Retry-After in seconds.
type Decision struct {
	Status     int
	RetryAfter int
	Delay      time.Duration
}

// Sink is an http.Handler that decodes events and records what it accepts.
type Sink struct {
	// Decide, when set, chooses the answer to each delivery before it is
	// recorded; a non-2xx answer means the records were not accepted.
	Decide func(ev *Event) Decision
	// OnBatch, when set, is called for every accepted batch.
	OnBatch func(recs []Record)
	// Keep controls whether accepted records are kept (default true via
	// New); the benchmark turns it off to count without holding memory.
	Keep bool

	mu        sync.Mutex
	records   []Record
	batches   int
	accepted  int64
	rejected  int
	malformed int
}

// New returns a sink that keeps every accepted record.
func New() *Sink { return &Sink{Keep: true} }

func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST a Kafka event", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	now := time.Now()
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		s.mu.Lock()
		s.malformed++
		s.mu.Unlock()
		http.Error(w, "not a Kafka event: "+err.Error(), http.StatusBadRequest)
		return
	}
	if s.Decide != nil {
		d := s.Decide(&ev)
		if d.Delay > 0 {
			select {
			case <-time.After(d.Delay):
			case <-r.Context().Done():
				return
			}
		}
		if d.Status != 0 && (d.Status < 200 || d.Status > 299) {
			s.mu.Lock()
			s.rejected++
			s.mu.Unlock()
			if d.RetryAfter > 0 {
				w.Header().Set("Retry-After", fmt.Sprint(d.RetryAfter))
			}
			http.Error(w, "rejected by test sink", d.Status)
			return
		}
	}
	recs, err := Decode(&ev, now)
	if err != nil {
		s.mu.Lock()
		s.malformed++
		s.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.batches++
	s.accepted += int64(len(recs))
	if s.Keep {
		s.records = append(s.records, recs...)
	}
	s.mu.Unlock()
	if s.OnBatch != nil {
		s.OnBatch(recs)
	}
	w.WriteHeader(http.StatusOK)
}

// Decode turns an event into records, checking the shape the reference
// promises: records keyed "<topic>-<partition>", base64 keys and values.
func Decode(ev *Event, received time.Time) ([]Record, error) {
	var out []Record
	keys := make([]string, 0, len(ev.Records))
	for k := range ev.Records {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, w := range ev.Records[k] {
			if want := fmt.Sprintf("%s-%d", w.Topic, w.Partition); want != k {
				return nil, fmt.Errorf("record of %s filed under %q", want, k)
			}
			r := Record{Topic: w.Topic, Partition: w.Partition, Offset: w.Offset, Timestamp: w.Timestamp,
				TimestampType: w.TimestampType, Received: received}
			var err error
			if w.Key != nil {
				if r.Key, err = base64.StdEncoding.DecodeString(*w.Key); err != nil {
					return nil, fmt.Errorf("key of %s offset %d: %w", k, w.Offset, err)
				}
			}
			if w.Value != nil {
				if r.Value, err = base64.StdEncoding.DecodeString(*w.Value); err != nil {
					return nil, fmt.Errorf("value of %s offset %d: %w", k, w.Offset, err)
				}
			}
			for _, h := range w.Headers {
				for hk, hv := range h {
					b := make([]byte, len(hv))
					for i, c := range hv {
						b[i] = byte(c)
					}
					r.Headers = append(r.Headers, Header{Key: hk, Value: b})
				}
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// Records returns a copy of the accepted records, in arrival order.
func (s *Sink) Records() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Record(nil), s.records...)
}

// Stats are the sink's counters.
type Stats struct {
	Batches   int
	Accepted  int64
	Rejected  int
	Malformed int
}

// Stats returns the counters.
func (s *Sink) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Batches: s.batches, Accepted: s.accepted, Rejected: s.rejected, Malformed: s.malformed}
}

// Check verifies the delivery contract over what the sink accepted, given
// how many records each partition of topic holds (offsets 0..n-1): every
// offset arrived at least once, and first deliveries of each partition came
// in offset order. It returns the number of duplicate deliveries.
func Check(recs []Record, topic string, counts map[int32]int64) (dups int, err error) {
	seen := map[int32]map[int64]bool{}
	next := map[int32]int64{} // the next offset expected as a first delivery
	var problems []string
	for _, r := range recs {
		if r.Topic != topic {
			continue
		}
		m := seen[r.Partition]
		if m == nil {
			m = map[int64]bool{}
			seen[r.Partition] = m
		}
		if m[r.Offset] {
			dups++
			continue
		}
		m[r.Offset] = true
		if r.Offset != next[r.Partition] && len(problems) < 10 {
			problems = append(problems, fmt.Sprintf("partition %d: first delivery of offset %d when %d was next", r.Partition, r.Offset, next[r.Partition]))
		}
		next[r.Partition] = r.Offset + 1
	}
	for p, n := range counts {
		var missing []int64
		for o := int64(0); o < n; o++ {
			if !seen[p][o] {
				missing = append(missing, o)
			}
		}
		if len(missing) > 0 {
			problems = append(problems, fmt.Sprintf("partition %d: %d of %d records never delivered (first missing offset %d)", p, len(missing), n, missing[0]))
		}
	}
	if len(problems) > 0 {
		return dups, fmt.Errorf("delivery contract broken:\n  %s", strings.Join(problems, "\n  "))
	}
	return dups, nil
}

// Add records recs as accepted, for a handler that fronts this sink.
func (s *Sink) Add(recs []Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches++
	s.accepted += int64(len(recs))
	if s.Keep {
		s.records = append(s.records, recs...)
	}
}
