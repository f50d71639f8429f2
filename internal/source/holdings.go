package source

import "sync"

// holdings is the partitions the group assigned a consumer, reported on
// each change. It is changed inside the client's rebalance callbacks only.
type holdings struct {
	mu   sync.Mutex
	held map[topicPartition]bool
}

// change adds or removes partitions (all when tps is nil and !add) and
// tells report the result if that changed it.
func (h *holdings) change(tps map[string][]int32, add bool, report func(map[string][]int32)) {
	h.mu.Lock()
	if h.held == nil {
		h.held = map[topicPartition]bool{}
	}
	changed := false
	switch {
	case tps == nil && !add:
		changed = len(h.held) > 0
		clear(h.held)
	default:
		for t, ps := range tps {
			for _, p := range ps {
				tp := topicPartition{t, p}
				if h.held[tp] != add {
					changed = true
				}
				if add {
					h.held[tp] = true
				} else {
					delete(h.held, tp)
				}
			}
		}
	}
	var out map[string][]int32
	if changed && report != nil {
		out = make(map[string][]int32, len(h.held))
		for tp := range h.held {
			out[tp.topic] = append(out[tp.topic], tp.partition)
		}
	}
	h.mu.Unlock()
	if out != nil {
		report(out)
	}
}

// snapshot is the partitions held now.
func (h *holdings) snapshot() map[topicPartition]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := make(map[topicPartition]bool, len(h.held))
	for tp, ok := range h.held {
		if ok {
			m[tp] = true
		}
	}
	return m
}
