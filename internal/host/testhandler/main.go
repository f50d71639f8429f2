// Command testhandler is a Lambda handler for Sluice's tests, written as
// any user of the reference's Go runtime writes one: lambda.Start with
// events.KafkaEvent, nothing of Sluice's. What a record's value says is
// what it does:
//
//	fail            named in batchItemFailures (a partial batch response)
//	error           the handler returns an error for the batch
//	panic           the handler panics (aws-lambda-go reports it and exits)
//	exit            the process exits mid-invocation
//	sleep:DURATION  the handler sleeps that long
//	once:WORD       as WORD the first time this record (topic, partition,
//	                offset) is seen, then as any other value: the state
//	                is a file per record in TESTHANDLER_STATE
//	for:D:WORD      as WORD until D after the record was first seen
//
// Every record it sees is appended to TESTHANDLER_OUT (if set) as a JSON
// line with the invocation's request id, and logged on stdout.
// TESTHANDLER_INIT_ERROR=1 makes it fail its init as a custom runtime
// does: it posts /runtime/init/error and exits.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/sluice-dev/sluice/internal/host/hosttest"
)

type itemIdentifier struct {
	Partition string `json:"partition"`
	Offset    int64  `json:"offset"`
}

type batchItemFailure struct {
	ItemIdentifier itemIdentifier `json:"itemIdentifier"`
}

type response struct {
	BatchItemFailures []batchItemFailure `json:"batchItemFailures"`
}

var outMu sync.Mutex

func handle(ctx context.Context, ev events.KafkaEvent) (response, error) {
	lc, _ := lambdacontext.FromContext(ctx)
	_, hasDeadline := ctx.Deadline()
	var out response
	var lines []hosttest.Seen
	for key, recs := range ev.Records {
		for _, r := range recs {
			k, _ := base64.StdEncoding.DecodeString(r.Key)
			v, _ := base64.StdEncoding.DecodeString(r.Value)
			s := hosttest.Seen{Function: lambdacontext.FunctionName, Deadline: hasDeadline, Topic: r.Topic, Partition: r.Partition,
				Offset: r.Offset, Key: string(k), Value: string(v), Headers: map[string]string{}}
			if lc != nil {
				s.RequestID = lc.AwsRequestID
			}
			for _, h := range r.Headers {
				for name, b := range h {
					s.Headers[name] = string(b)
				}
			}
			lines = append(lines, s)
			fmt.Printf("record %s offset %d value %q\n", key, r.Offset, v)
			val := string(v)
			if w, ok := strings.CutPrefix(val, "once:"); ok {
				val = ""
				if first(key, r.Offset) {
					val = w
				}
			}
			if rest, ok := strings.CutPrefix(val, "for:"); ok {
				d, w, _ := strings.Cut(rest, ":")
				dur, _ := time.ParseDuration(d)
				val = ""
				if time.Since(firstSeen(key, r.Offset)) < dur {
					val = w
				}
			}
			switch {
			case val == "fail":
				out.BatchItemFailures = append(out.BatchItemFailures, batchItemFailure{itemIdentifier{key, r.Offset}})
			case val == "error":
				record(lines)
				return response{}, errors.New("asked to fail")
			case val == "panic":
				record(lines)
				panic("asked to panic")
			case val == "exit":
				record(lines)
				os.Exit(3)
			case strings.HasPrefix(val, "sleep:"):
				d, _ := time.ParseDuration(strings.TrimPrefix(val, "sleep:"))
				time.Sleep(d)
			}
		}
	}
	record(lines)
	return out, nil
}

// first reports whether this is the first time the record is seen (a
// file per record in TESTHANDLER_STATE, shared by every process).
func first(key string, offset int64) bool {
	dir := os.Getenv("TESTHANDLER_STATE")
	if dir == "" {
		return true
	}
	f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("%s-%d", key, offset)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// firstSeen is when the record was first seen (now, if it was not).
func firstSeen(key string, offset int64) time.Time {
	first(key, offset)
	st, err := os.Stat(filepath.Join(os.Getenv("TESTHANDLER_STATE"), fmt.Sprintf("%s-%d", key, offset)))
	if err != nil {
		return time.Now()
	}
	return st.ModTime()
}

// record appends what the handler saw to TESTHANDLER_OUT.
func record(lines []hosttest.Seen) {
	path := os.Getenv("TESTHANDLER_OUT")
	if path == "" {
		return
	}
	outMu.Lock()
	defer outMu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testhandler:", err)
		return
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	for _, l := range lines {
		_ = enc.Encode(l)
	}
}

func main() {
	if os.Getenv("TESTHANDLER_INIT_ERROR") == "1" {
		url := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/init/error"
		body := `{"errorType":"ConfigError","errorMessage":"TESTHANDLER_INIT_ERROR is set"}`
		if resp, err := http.Post(url, "application/json", strings.NewReader(body)); err == nil {
			resp.Body.Close()
		}
		os.Exit(1)
	}
	lambda.Start(handle)
}
