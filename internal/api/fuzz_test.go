package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/api"
	"github.com/sluice-dev/sluice/internal/api/apitest"
)

// FuzzCreateBody posts arbitrary bodies to POST /v1/pipes: the answer is a
// created pipe or a 4xx JSON error with a code and a message, never a 5xx.
func FuzzCreateBody(f *testing.F) {
	f.Add(`{"name":"orders","bootstrapServers":["127.0.0.1:9092"],"topics":["orders"],"target":{"http":{"url":"http://x/"}}}`)
	f.Add(`{"name":"a","batchSize":"10"}`)
	f.Add(`{"name":"a","unknown":1}`)
	f.Add(`[1,2,3]`)
	f.Add(`{"name":"a"}{"name":"b"}`)
	f.Add(`{"retry":{"maximumRetryAttempts":1e40}}`)
	h := api.NewHandler(apitest.NewService(f), nil)
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/v1/pipes", strings.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case rec.Code == http.StatusCreated:
		case rec.Code >= 400 && rec.Code < 500:
			var e struct{ Code, Message string }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code == "" || e.Message == "" {
				t.Fatalf("%d with body %q for %q", rec.Code, rec.Body.String(), body)
			}
		default:
			t.Fatalf("status %d (%s) for body %q", rec.Code, rec.Body.String(), body)
		}
	})
}
