package engine

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/pipe"
)

// resultLogInterval is the least time between two log lines about one
// pipe's result: a target failing one call in five flips the result
// between a PROBLEM and OK several times a second.
const resultLogInterval = 30 * time.Second

// resultLog decides which result changes are logged: the first change
// after a quiet interval at once (a new problem is seen when it starts),
// the changes that follow within the interval as one line with counts
// when it ends. Safe for concurrent use.
type resultLog struct {
	mu     sync.Mutex
	last   time.Time      // when a line was last due
	counts map[string]int // results entered since last, not logged
	n      int
}

// change records a change to result at now and reports whether to log it
// at once.
func (l *resultLog) change(now time.Time, result string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == 0 && (l.last.IsZero() || now.Sub(l.last) >= resultLogInterval) {
		l.last = now
		return true
	}
	if l.counts == nil {
		l.counts = map[string]int{}
	}
	l.counts[result]++
	l.n++
	return false
}

// due is when the held-back changes' summary is due; false when none are
// held.
func (l *resultLog) due() (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == 0 {
		return time.Time{}, false
	}
	return l.last.Add(resultLogInterval), true
}

// changeSummary is the changes held back over one interval.
type changeSummary struct {
	n, problems int
	span        time.Duration
	counts      map[string]int
}

// String lists each result entered with its count, most frequent first.
func (s changeSummary) String() string {
	keys := slices.SortedFunc(maps.Keys(s.counts), func(a, b string) int {
		if s.counts[a] != s.counts[b] {
			return s.counts[b] - s.counts[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d× %s", s.counts[k], k)
	}
	return strings.Join(parts, "; ")
}

// flush returns the held-back changes once their interval ended at now, or
// whatever is held when final.
func (l *resultLog) flush(now time.Time, final bool) (changeSummary, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == 0 || (!final && now.Sub(l.last) < resultLogInterval) {
		return changeSummary{}, false
	}
	s := changeSummary{n: l.n, span: now.Sub(l.last), counts: l.counts}
	for k, c := range l.counts {
		if strings.HasPrefix(k, pipe.ProblemPrefix) {
			s.problems += c
		}
	}
	l.counts, l.n, l.last = nil, 0, now
	return s, true
}
