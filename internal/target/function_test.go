package target

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/pipe"
)

// handlerFunc is a hosted function as the function kind sees one (the
// real ones, package host's, run processes; their tests are there and in
// the engine's): it decodes the event as a handler would and answers.
type handlerFunc func(ctx context.Context, payload []byte) (Invocation, error)

func (h handlerFunc) Invoke(ctx context.Context, payload []byte) (Invocation, error) {
	return h(ctx, payload)
}
func (handlerFunc) Timeout() time.Duration { return 3 * time.Second }

// functionReceiver is a hosted function that hands what it decoded to the
// test, or fails as a handler does (a function error) when refusing.
func functionReceiver(t *testing.T, rcv *receiver) (pipe.Spec, Env) {
	fn := handlerFunc(func(ctx context.Context, payload []byte) (Invocation, error) {
		if err := ctx.Err(); err != nil {
			return Invocation{}, &InvokeError{Problem: "invocation canceled", Err: err}
		}
		if rcv.refuse.Load() {
			return Invocation{FunctionError: "Unhandled", Payload: []byte(`{"errorType":"Refused","errorMessage":"receiver refused the batch"}`)}, nil
		}
		var ev decodedEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return Invocation{}, err
		}
		for key, recs := range ev.Records {
			for _, r := range recs {
				v, _ := base64.StdEncoding.DecodeString(*r.Value)
				rcv.add(key, string(v))
			}
		}
		return Invocation{Payload: []byte(`{}`)}, nil
	})
	spec := pipe.Spec{Name: "conf", PayloadLimitBytes: pipe.DefaultPayloadLimitBytes,
		Target: pipe.Target{Function: &pipe.FunctionTarget{Name: "conf-fn"}}}
	return spec, Env{Pipe: "conf", Encoder: testEncoder, Hosted: func(name string) (Hosted, error) {
		if name != "conf-fn" {
			return nil, errors.New("no such function")
		}
		return fn, nil
	}}
}

func TestFunctionTargetAnswers(t *testing.T) {
	var calls int
	answer := Invocation{}
	fn := handlerFunc(func(ctx context.Context, payload []byte) (Invocation, error) {
		calls++
		if _, ok := ctx.Deadline(); !ok {
			t.Error("the section's timeout did not reach the invocation")
		}
		return answer, nil
	})
	env := Env{Encoder: testEncoder, Hosted: func(string) (Hosted, error) { return fn, nil }}
	spec := pipe.Spec{PayloadLimitBytes: pipe.DefaultPayloadLimitBytes,
		Target: pipe.Target{Function: &pipe.FunctionTarget{Name: "f", TimeoutSeconds: 1, ReportBatchItemFailures: true}}}
	tg, err := Open(context.Background(), spec, env)
	if err != nil {
		t.Fatal(err)
	}
	recs := []*kgo.Record{{Topic: "t", Partition: 0, Offset: 5, Value: []byte("a")}, {Topic: "t", Partition: 0, Offset: 6, Value: []byte("b")}}

	// A partial batch response: offset 6 failed.
	answer = Invocation{Payload: []byte(`{"batchItemFailures":[{"itemIdentifier":{"partition":"t-0","offset":6}}]}`)}
	res := tg.Deliver(context.Background(), batch.New(recs, nil))
	if res.At(0).Status != batch.Delivered || res.At(1).Status != batch.Failed {
		t.Fatalf("partial response: %v, %v", res.At(0).Status, res.At(1).Status)
	}

	// A function error fails the batch with the handler's type and
	// message.
	answer = Invocation{FunctionError: "Unhandled", Payload: []byte(`{"errorType":"ValidationError","errorMessage":"bad order"}`)}
	res = tg.Deliver(context.Background(), batch.New(recs, nil))
	if res.Final() != 0 || !strings.Contains(res.Err().Error(), "function f failed: ValidationError: bad order") {
		t.Fatalf("function error: final %d, %v", res.Final(), res.Err())
	}

	// A function gone since the pipe opened says how to register it.
	gone := env
	gone.Hosted = func(name string) (Hosted, error) { return nil, errors.New(`Function "f" is not registered`) }
	tg2, err := Open(context.Background(), spec, gone)
	if err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Fatalf("open without the function: %v, %v", tg2, err)
	}
	if calls != 2 {
		t.Fatalf("%d invocations, want 2", calls)
	}
}
