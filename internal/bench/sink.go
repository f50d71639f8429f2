package bench

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// countSink is the endpoint every phase that delivers posts to: the pipe
// and the bare pipeline meet the same one, so its cost is in both. It
// answers 200 after Delay, counts records by their opening field without
// decoding, and, when timing, decodes each record's value to read the
// produce time stamped in its first 8 bytes.
type countSink struct {
	delay  time.Duration
	timing bool

	records  atomic.Int64
	batches  atomic.Int64
	inFlight atomic.Int64
	maxIn    atomic.Int64

	mu        sync.Mutex
	since     time.Time // when expect was called
	first     time.Duration
	want      int64
	reached   chan struct{}
	latencies []time.Duration // bounded by the records expected
}

var (
	recordMarker = []byte(`{"topic":`)
	bodies       = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

func (s *countSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	received := time.Now()
	n := s.inFlight.Add(1)
	for {
		m := s.maxIn.Load()
		if n <= m || s.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
	defer s.inFlight.Add(-1)
	// A pooled buffer: the endpoint's cost is in the baseline too, so it
	// should not spend its time growing and zeroing fresh ones.
	buf := bodies.Get().(*bytes.Buffer)
	buf.Reset()
	_, _ = buf.ReadFrom(r.Body)
	defer bodies.Put(buf)
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-r.Context().Done():
			return
		}
	}
	var lat []time.Duration
	if s.timing {
		lat = produceLatencies(buf.Bytes(), received)
	}
	count := int64(bytes.Count(buf.Bytes(), recordMarker))
	w.WriteHeader(http.StatusOK)
	s.batches.Add(1)
	total := s.records.Add(count)
	s.mu.Lock()
	if s.first == 0 {
		s.first = time.Since(s.since)
	}
	if len(lat) > 0 && len(s.latencies) < int(s.want) {
		room := int(s.want) - len(s.latencies)
		s.latencies = append(s.latencies, lat[:min(room, len(lat))]...)
	}
	if s.reached != nil && total >= s.want {
		close(s.reached)
		s.reached = nil
	}
	s.mu.Unlock()
}

// expect resets the counters and returns a channel closed once want
// records have arrived.
func (s *countSink) expect(want int64) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records.Store(0)
	s.batches.Store(0)
	s.maxIn.Store(0)
	s.want = want
	s.since, s.first = time.Now(), 0
	s.latencies = s.latencies[:0]
	ch := make(chan struct{})
	s.reached = ch
	return ch
}

// firstCall is how long after expect the first call arrived.
func (s *countSink) firstCall() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first
}

func (s *countSink) takeLatencies() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.latencies...)
}

// produceLatencies reads the produce time out of every record value of an
// event body: the benchmark's producer writes it as 8 big-endian bytes of
// Unix nanoseconds at the start of each value.
func produceLatencies(body []byte, received time.Time) []time.Duration {
	var ev struct {
		Records map[string][]struct {
			Value string `json:"value"`
		} `json:"records"`
	}
	if json.Unmarshal(body, &ev) != nil {
		return nil
	}
	var out []time.Duration
	var stamp [12]byte
	for _, recs := range ev.Records {
		for _, r := range recs {
			if len(r.Value) < 12 {
				continue
			}
			// 12 base64 characters are the first 9 bytes.
			if _, err := base64.StdEncoding.Decode(stamp[:], []byte(r.Value[:12])); err != nil {
				continue
			}
			sent := int64(binary.BigEndian.Uint64(stamp[:8]))
			out = append(out, received.Sub(time.Unix(0, sent)))
		}
	}
	return out
}

// serve starts an HTTP server for h on a loopback port.
func serve(h http.Handler) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return "http://" + ln.Addr().String() + "/", func() {
		_ = srv.Close()
		<-done
	}, nil
}

// percentiles fills p's latency figures from lat, in milliseconds.
func percentiles(p *Phase, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(d time.Duration) *float64 { v := float64(d) / 1e6; return &v }
	at := func(q float64) time.Duration {
		i := int(q*float64(len(lat))+0.5) - 1
		return lat[max(0, min(i, len(lat)-1))]
	}
	p.LatencyMsP50 = ms(at(0.50))
	p.LatencyMsP99 = ms(at(0.99))
	p.LatencyMsMax = ms(lat[len(lat)-1])
	p.LatencySamples = len(lat)
}
