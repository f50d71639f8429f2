package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/api"
	"github.com/sluice-dev/sluice/internal/api/apitest"
)

// TestBodiesDecodedStrictly sends to every JSON route of the REST API what
// encoding/json alone would have taken leniently: a field name in another
// case, a key twice, data after the body, a number that does not fit. Each
// is refused with the field named in the API's words, and nothing is
// created.
func TestBodiesDecodedStrictly(t *testing.T) {
	svc := apitest.NewService(t)
	h := api.NewHandler(svc, nil, svc.API()...)
	json := map[string]string{"Content-Type": "application/json"}
	for _, c := range []struct {
		name, method, path, body, says string
	}{
		{"pipe: case-folded name", "POST", "/v1/pipes", `{"Name":"p","bootstrapServers":["h:9092"],"topics":["t"],"target":{"http":{"url":"http://x/"}}}`,
			`field Name: unknown field; names are case-sensitive: did you mean "name"?`},
		{"pipe: nested case-folded name", "POST", "/v1/pipes", `{"name":"p","bootstrapServers":["h:9092"],"topics":["t"],"target":{"http":{"URL":"http://x/"}}}`,
			`field target.http.URL: unknown field; names are case-sensitive: did you mean "url"?`},
		{"pipe: duplicate target", "POST", "/v1/pipes", `{"name":"p","bootstrapServers":["h:9092"],"topics":["t"],"target":{"http":{"url":"http://x/"}},"target":{"http":{"url":"http://attacker/"}}}`,
			"field target: appears twice in one object"},
		{"pipe: batch size out of range", "POST", "/v1/pipes", `{"name":"p","bootstrapServers":["h:9092"],"topics":["t"],"target":{"http":{"url":"http://x/"}},"batchSize":1e300}`,
			"field batchSize: number 1e300 does not fit: want an integer"},
		{"cluster: trailing data", "PUT", "/v1/clusters/c", `{"bootstrapServers":["h:9092"]} {"bootstrapServers":["evil:9092"]}`,
			"the body has data after its JSON value"},
		{"cluster: duplicate brokers", "PUT", "/v1/clusters/c", `{"bootstrapServers":["h:9092"],"bootstrapServers":["evil:9092"]}`,
			"field bootstrapServers: appears twice"},
		{"secret: trailing data", "PUT", "/v1/secrets/s", `{"type":"generic","data":{"password":"x"}}]`,
			"data after its JSON value"},
		{"secret: case-folded name", "PUT", "/v1/secrets/s", `{"Type":"generic","data":{"password":"x"}}`,
			`did you mean "type"?`},
		{"secret: a key twice", "PUT", "/v1/secrets/s", `{"type":"generic","data":{"password":"x","password":"y"}}`,
			"field data.password: appears twice"},
		{"function: trailing data", "PUT", "/v1/functions/f", `{"url":"http://x/"}x`,
			"data after its JSON value"},
		{"function: wrong type", "PUT", "/v1/functions/f", `{"url":5}`,
			"field url: got a JSON number, want a string"},
	} {
		status, msg := sendAs(t, h, c.method, "127.0.0.1:8080", c.path, c.body, json)
		if status != http.StatusBadRequest || !strings.Contains(msg, c.says) {
			t.Errorf("%s: %d %q, want 400 saying %q", c.name, status, msg, c.says)
		}
		for _, goWord := range []string{"Go struct", "int32", "int64", "float64", "[]string", "json: "} {
			if strings.Contains(msg, goWord) {
				t.Errorf("%s: %q speaks Go (%s)", c.name, msg, goWord)
			}
		}
	}
	if ps, _ := svc.ListPipes(t.Context()); len(ps) != 0 {
		t.Errorf("pipes created: %v", ps)
	}
	// Oversized is 413 on every route.
	big := `{"url":"` + strings.Repeat("x", api.MaxBodyBytes) + `"}`
	if status, msg := sendAs(t, h, "PUT", "127.0.0.1:8080", "/v1/functions/f", big, json); status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized function body: %d %s", status, msg)
	}
}
