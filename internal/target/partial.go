package target

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-dev/sluice/internal/batch"
)

// maxResponseBody bounds the body read for a partial batch response: one
// item per record of the largest batch is well under it.
const maxResponseBody = 4 << 20

// PartialResponse is the reference's partial batch response for Kafka:
// the records the function failed. Sluice adds Poison to an item: that
// record goes to the failure destination without further retries.
type PartialResponse struct {
	BatchItemFailures []BatchItemFailure `json:"batchItemFailures"`
}

// BatchItemFailure names one failed record.
type BatchItemFailure struct {
	ItemIdentifier ItemIdentifier `json:"itemIdentifier"`
	// Poison is Sluice's own: the target will never accept the record.
	Poison bool `json:"poison,omitempty"`
}

// ItemIdentifier is "<topic>-<partition>" and the record's offset, as the
// reference's event keys its records. The offset may be a JSON number or
// a string (Java handlers send longs as strings).
type ItemIdentifier struct {
	Partition string      `json:"partition"`
	Offset    json.Number `json:"offset"`
}

// partialResult reads a 2xx answer's body as a partial batch response.
// Empty, null, {} and an empty list mean every record was delivered. The
// records before the first failed one are delivered; the failed ones are
// Failed (poison ones with the PoisonRecord condition) and those after the
// first failure that the target did not name are Pending, so they are
// delivered again, as the reference retries from the first failed offset.
// A body that is not such a response, or that names a record not in the
// batch, fails the whole batch, as the reference does.
func partialResult(b *batch.Batch, body []byte) batch.Result {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || bytes.Equal(body, []byte("null")) {
		return batch.DeliveredAll(b)
	}
	var resp PartialResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return batch.FailedAll(b, &Error{StatusCode: 200, Problem: "target's answer is not a partial batch response " +
			`({"batchItemFailures":[{"itemIdentifier":{"partition":"topic-0","offset":0}}]}): ` + printable(body)})
	}
	if len(resp.BatchItemFailures) == 0 {
		return batch.DeliveredAll(b)
	}
	key := fmt.Sprintf("%s-%d", b.Topic, b.Partition)
	first := b.FirstOffset()
	failed := make(map[int]bool, len(resp.BatchItemFailures))
	poison := map[int]bool{}
	lowest := b.Len()
	for _, f := range resp.BatchItemFailures {
		id := f.ItemIdentifier
		off, err := strconv.ParseInt(strings.TrimSpace(id.Offset.String()), 10, 64)
		i := -1
		if err == nil && id.Partition == key {
			// Offsets in a batch ascend but may skip (compaction,
			// transaction markers): search rather than subtract.
			i = indexOf(b, off, first)
		}
		if i < 0 {
			return batch.FailedAll(b, &Error{StatusCode: 200, Problem: fmt.Sprintf(
				"target's batchItemFailures names partition %q offset %s, which is not in the batch (%s offsets %d–%d), so the whole batch failed",
				id.Partition, id.Offset, key, first, b.LastOffset())})
		}
		failed[i] = true
		if f.Poison {
			poison[i] = true
		}
		lowest = min(lowest, i)
	}
	res := batch.DeliveredAll(b)
	for i := lowest; i < b.Len(); i++ {
		r := b.Records[i]
		switch {
		case poison[i]:
			res.Set(i, batch.Outcome{Status: batch.Failed, Condition: batch.PoisonRecord,
				Err: &Error{StatusCode: 200, Problem: fmt.Sprintf("target marked record %s offset %d as poison", key, r.Offset)}})
		case failed[i]:
			res.Set(i, batch.Outcome{Status: batch.Failed,
				Err: &Error{StatusCode: 200, Problem: fmt.Sprintf("target reported record %s offset %d failed (batchItemFailures)", key, r.Offset)}})
		default:
			res.Set(i, batch.Outcome{Status: batch.Pending})
		}
	}
	return res
}

// indexOf finds the record with offset off, or -1.
func indexOf(b *batch.Batch, off, first int64) int {
	if off < first || off > b.LastOffset() {
		return -1
	}
	if i := int(off - first); i < b.Len() && b.Records[i].Offset == off {
		return i
	}
	for i, r := range b.Records {
		if r.Offset == off {
			return i
		}
	}
	return -1
}
