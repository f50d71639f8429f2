package api_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/api"
	"github.com/sluice-dev/sluice/internal/api/apitest"
	"github.com/sluice-dev/sluice/internal/cluster"
	"github.com/sluice-dev/sluice/internal/secret"
)

// TestClustersAndSecrets drives /v1/clusters and /v1/secrets over HTTP and
// checks that no answer ever holds a secret's value.
func TestClustersAndSecrets(t *testing.T) {
	const planted = "pl4nted-api-s3cret-41b9"
	srv, _ := apitest.NewServer(t)
	c := api.NewClient(srv.URL, nil)
	ctx := t.Context()
	var raw strings.Builder // every response body, to grep
	call := func(method, path, body string) int {
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		raw.Write(b)
		return resp.StatusCode
	}

	if code := call("PUT", "/v1/secrets/creds", `{"type":"generic","data":{"password":"`+planted+`"}}`); code != 200 {
		t.Fatalf("put secret: %d %s", code, raw.String())
	}
	m, err := c.GetSecret(ctx, "creds")
	if err != nil || m.Type != secret.Generic || len(m.Keys) != 1 || m.Keys[0] != "password" {
		t.Fatalf("get secret: %+v %v", m, err)
	}
	for _, path := range []string{"/v1/secrets", "/v1/secrets/creds"} {
		if code := call("GET", path, ""); code != 200 {
			t.Fatalf("GET %s: %d", path, code)
		}
	}
	if code := call("PUT", "/v1/secrets/bad", `{"type":"tls-client","data":{"certificate":"`+planted+`"}}`); code != 400 {
		t.Fatalf("invalid secret: %d", code)
	}

	// A cluster naming a secret that does not exist is refused by field.
	_, err = c.PutCluster(ctx, cluster.Cluster{Name: "msk", BootstrapServers: []string{"b-1:9096"}, User: "alice", PasswordSecret: "nope/password"})
	if err == nil || !strings.Contains(err.Error(), "passwordSecret") || !strings.Contains(err.Error(), "sluice secrets create") {
		t.Fatalf("missing secret: %v", err)
	}
	_, err = c.PutCluster(ctx, cluster.Cluster{Name: "msk", BootstrapServers: []string{"b-1:9096"}, User: "alice", PasswordSecret: "creds/pass"})
	if err == nil || !strings.Contains(err.Error(), `no key "pass"`) {
		t.Fatalf("missing key: %v", err)
	}
	got, err := c.PutCluster(ctx, cluster.Cluster{Name: "msk", BootstrapServers: []string{"b-1:9096"}, User: "alice", PasswordSecret: "creds/password", MSK: true})
	if err != nil || got.EffectiveAuth() != cluster.AuthScramSHA512 {
		t.Fatalf("put cluster: %+v %v", got, err)
	}
	if code := call("GET", "/v1/clusters/msk", ""); code != 200 {
		t.Fatalf("get cluster: %d", code)
	}
	if err := c.DeleteSecret(ctx, "creds"); !errors.Is(err, secret.ErrInUse) || !strings.Contains(err.Error(), "msk") {
		t.Fatalf("delete secret in use: %v", err)
	}
	if err := c.DeleteCluster(ctx, "msk"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteSecret(ctx, "creds"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetCluster(ctx, "msk"); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("deleted cluster: %v", err)
	}
	if strings.Contains(raw.String(), planted) {
		t.Fatalf("an API answer holds the secret value: %s", raw.String())
	}
}
