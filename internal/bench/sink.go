package bench

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// countSink is the endpoint every phase that delivers posts to: the pipe
// and the bare pipeline meet the same one, so its cost is in both. It
// answers 200 after Delay, counts records by their opening field without
// decoding, and, when timing, decodes each record's value to read the
// produce time stamped in its first 8 bytes.
//
// When order is set it reads each record's partition, offset and key
// instead (see eachRecord) to count distinct records, so a redelivery
// does not pass for a record not yet delivered, and to check that the
// first deliveries of each key of a partition come in offset order. When
// refuseTo is set it answers 429 with Retry-After: 1, at once, to every
// call that arrives from refuseFrom to refuseTo after the first call: a
// target throttling for a while.
type countSink struct {
	delay  time.Duration
	timing bool
	order  bool

	refuseFrom, refuseTo time.Duration

	records  atomic.Int64
	batches  atomic.Int64
	inFlight atomic.Int64
	maxIn    atomic.Int64
	busy     atomic.Int64 // nanoseconds of the calls answered 200, summed
	refused  atomic.Int64 // calls answered 429

	mu        sync.Mutex
	since     time.Time // when expect was called
	first     time.Duration
	firstAt   time.Time // when the first call arrived
	want      int64
	reached   chan struct{}
	latencies []time.Duration // bounded by the records expected
	check     orderCheck
}

// orderCheck is what an order-checking sink learnt since expect.
type orderCheck struct {
	seen map[int32][]uint64 // per partition, a bit per offset accepted
	keys map[int32]map[string]*keyState
	call uint64 // number of the call being checked
	// distinct is the records accepted at least once; redelivered the
	// acceptances of a record accepted before; violations the records
	// first accepted after a later record of their key and partition was.
	distinct, redelivered, violations int64
	// callKeys is the distinct keys of each call, summed over the calls.
	callKeys int64
}

type keyState struct {
	last int64  // highest offset of the key first accepted so far
	call uint64 // the last call that had the key, to count keys per call
}

// accept checks one record of the call being checked.
func (c *orderCheck) accept(partition int32, offset int64, key []byte) {
	if c.seen == nil {
		c.seen, c.keys = map[int32][]uint64{}, map[int32]map[string]*keyState{}
	}
	bits := c.seen[partition]
	if w := int(offset / 64); w >= len(bits) {
		bits = append(bits, make([]uint64, w+1-len(bits)+len(bits)/2)...)
		c.seen[partition] = bits
	}
	ks := c.keys[partition][string(key)]
	if ks == nil {
		if c.keys[partition] == nil {
			c.keys[partition] = map[string]*keyState{}
		}
		ks = &keyState{last: -1}
		c.keys[partition][string(key)] = ks
	}
	if ks.call != c.call {
		ks.call = c.call
		c.callKeys++
	}
	w, bit := offset/64, uint64(1)<<(offset%64)
	if bits[w]&bit != 0 {
		c.redelivered++
		return
	}
	bits[w] |= bit
	c.distinct++
	if offset < ks.last {
		c.violations++
		return
	}
	ks.last = offset
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
	if s.refusing(received) {
		// At once, as a rate limiter answers: the batch's retry waits out
		// the Retry-After, not the endpoint.
		s.refused.Add(1)
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
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
	s.batches.Add(1)
	s.busy.Add(int64(time.Since(received)))
	s.mu.Lock()
	var count int64
	if s.order {
		// Checked before the answer: the pipe may send the key's next
		// records only once it has it.
		s.check.call++
		count = int64(eachRecord(buf.Bytes(), s.check.accept))
	} else {
		count = int64(bytes.Count(buf.Bytes(), recordMarker))
	}
	total := s.records.Add(count)
	if s.order {
		total = s.check.distinct
	}
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
	w.WriteHeader(http.StatusOK)
}

// refusing says whether a call that arrived at t falls in the window of
// 429s, and notes the first call's arrival, which the window is from.
func (s *countSink) refusing(t time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.firstAt.IsZero() {
		s.firstAt = t
	}
	d := t.Sub(s.firstAt)
	return s.refuseTo > 0 && d >= s.refuseFrom && d < s.refuseTo
}

// expect resets the counters and returns a channel closed once want
// records have arrived (distinct records, when checking order).
func (s *countSink) expect(want int64) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records.Store(0)
	s.batches.Store(0)
	s.maxIn.Store(0)
	s.busy.Store(0)
	s.refused.Store(0)
	s.since, s.first, s.firstAt = time.Now(), 0, time.Time{}
	s.latencies = s.latencies[:0]
	s.check = orderCheck{}
	return s.until(want)
}

// until changes the records expected without resetting the counters, for
// a phase that learns its count while it runs; it returns a channel
// closed once they have arrived (at once, if they have). s.mu is held.
func (s *countSink) until(want int64) <-chan struct{} {
	s.want = want
	ch := make(chan struct{})
	s.reached = ch
	total := s.records.Load()
	if s.order {
		total = s.check.distinct
	}
	if total >= want {
		close(ch)
		s.reached = nil
	}
	return ch
}

// expectNow is until for callers without s.mu.
func (s *countSink) expectNow(want int64) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.until(want)
}

// accepted is the records accepted since expect: distinct ones, when
// checking order.
func (s *countSink) accepted() int64 {
	if !s.order {
		return s.records.Load()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.check.distinct
}

// firstCall is how long after expect the first call arrived.
func (s *countSink) firstCall() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first
}

// firstArrival is when the first call since expect arrived; zero before.
func (s *countSink) firstArrival() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.firstAt
}

// orderFigures is what the order check found since expect.
func (s *countSink) orderFigures() orderCheck {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.check
	c.seen, c.keys = nil, nil
	return c
}

// fill fills in p's figures of what the endpoint saw since expect.
func (s *countSink) fill(p *Phase) {
	p.Batches, p.MaxConcurrentCalls = s.batches.Load(), s.maxIn.Load()
	p.FirstCallSeconds = s.firstCall().Seconds()
	if p.Seconds > 0 {
		p.MeanConcurrentCalls = time.Duration(s.busy.Load()).Seconds() / p.Seconds
	}
	if c := s.orderFigures(); s.order && p.Batches > 0 {
		p.KeysPerCall = float64(c.callKeys) / float64(p.Batches)
	}
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

var (
	partitionField = []byte(`,"partition":`)
	offsetField    = []byte(`,"offset":`)
	keyField       = []byte(`,"key":"`)
	valueField     = []byte(`,"value":`)
)

// eachRecord calls f with the partition, offset and key of every record
// of an event body and returns how many it found. It reads the fields by
// the encoder's order (topic, partition, offset, timestamp, key, value)
// instead of decoding the JSON, which at a few hundred thousand records a
// second would take much of the CPU the pipe shares the machine with. That
// holds because before its value a record has only numbers and strings
// without quotes (the bench's topic names, base64 keys), and base64
// values hold no quote or comma. The key stays base64, as only its
// identity matters; nil when the record has none. key is only valid
// during f.
func eachRecord(body []byte, f func(partition int32, offset int64, key []byte)) int {
	n := 0
	for {
		i := bytes.Index(body, recordMarker)
		if i < 0 {
			return n
		}
		body = body[i+len(recordMarker):]
		p, rest, ok := intAfter(body, partitionField)
		if !ok {
			return n
		}
		off, rest, ok := intAfter(rest, offsetField)
		if !ok {
			return n
		}
		v := bytes.Index(rest, valueField)
		if v < 0 {
			return n
		}
		var key []byte
		if k := bytes.Index(rest[:v], keyField); k >= 0 {
			key = rest[k+len(keyField) : v]
			if e := bytes.IndexByte(key, '"'); e >= 0 {
				key = key[:e]
			}
		}
		f(int32(p), off, key)
		n++
		body = rest[v+len(valueField):]
	}
}

// intAfter reads the integer right after the first field in b, and what
// follows it.
func intAfter(b, field []byte) (int64, []byte, bool) {
	i := bytes.Index(b, field)
	if i < 0 {
		return 0, nil, false
	}
	b = b[i+len(field):]
	j := 0
	for j < len(b) && (b[j] == '-' || b[j] >= '0' && b[j] <= '9') {
		j++
	}
	v, err := strconv.ParseInt(string(b[:j]), 10, 64)
	return v, b[j:], err == nil
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
