package api_test

import (
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/api/apitest"
)

// pollers is a configuration's ProvisionedPollerConfig as numbers; ok is
// false when it is missing or holds anything else.
func pollers(c map[string]any) (lo, hi float64, ok bool) {
	pc, _ := c["ProvisionedPollerConfig"].(map[string]any)
	lo, ok1 := pc["MinimumPollers"].(float64)
	hi, ok2 := pc["MaximumPollers"].(float64)
	return lo, hi, ok1 && ok2 && len(pc) == 2
}

// TestLambdaProvisionedPollerConfig: MinimumPollers and MaximumPollers
// are the pipe's minimumConcurrency and maximumConcurrency on create and
// update; get and list always show them, defaults included; values the
// model or Sluice refuses name the field.
func TestLambdaProvisionedPollerConfig(t *testing.T) {
	srv, svc := apitest.NewServer(t)
	const esms = "/2015-03-31/event-source-mappings/"

	// Without the config: the defaults, shown.
	status, _, c := lambdaCall(t, srv.URL, "POST", esms, esmCreate)
	if lo, hi, ok := pollers(c); status != 202 || !ok || lo != 1 || hi != 200 {
		t.Fatalf("create without ProvisionedPollerConfig: %d %v", status, c)
	}
	plain, _ := c["UUID"].(string)

	status, _, c = lambdaCall(t, srv.URL, "POST", esms, strings.Replace(esmCreate, `"BatchSize":50`, `"BatchSize":50,"ProvisionedPollerConfig":{"MinimumPollers":2,"MaximumPollers":20}`, 1))
	if lo, hi, ok := pollers(c); status != 202 || !ok || lo != 2 || hi != 20 {
		t.Fatalf("create with pollers 2–20: %d %v", status, c)
	}
	id, _ := c["UUID"].(string)
	byUUID := func(id string) (int, int) {
		t.Helper()
		ps, err := svc.ListPipes(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.UUID == id {
				return p.MinimumConcurrency, p.MaximumConcurrency
			}
		}
		t.Fatalf("no pipe %s", id)
		return 0, 0
	}
	if lo, hi := byUUID(id); lo != 2 || hi != 20 {
		t.Fatalf("stored concurrency %d–%d, want 2–20", lo, hi)
	}
	status, _, c = lambdaCall(t, srv.URL, "GET", esms+id, "")
	if lo, hi, ok := pollers(c); status != 200 || !ok || lo != 2 || hi != 20 {
		t.Fatalf("get: %d %v", status, c)
	}
	status, _, c = lambdaCall(t, srv.URL, "GET", esms, "")
	found := 0
	for _, m := range c["EventSourceMappings"].([]any) {
		m := m.(map[string]any)
		lo, hi, ok := pollers(m)
		switch m["UUID"] {
		case id:
			found++
			if !ok || lo != 2 || hi != 20 {
				t.Errorf("list shows %v for the 2–20 mapping", m["ProvisionedPollerConfig"])
			}
		case plain:
			found++
			if !ok || lo != 1 || hi != 200 {
				t.Errorf("list shows %v for the default mapping", m["ProvisionedPollerConfig"])
			}
		}
	}
	if status != 200 || found != 2 {
		t.Fatalf("list: %d, %d of 2 mappings found: %v", status, found, c)
	}

	// Update: the config is replaced as a whole; a member left out takes
	// its default; an update without it keeps the pipe's.
	status, _, c = lambdaCall(t, srv.URL, "PUT", esms+id, `{"ProvisionedPollerConfig":{"MinimumPollers":5,"MaximumPollers":1000}}`)
	if lo, hi, ok := pollers(c); status != 202 || !ok || lo != 5 || hi != 1000 {
		t.Fatalf("update to 5–1000: %d %v", status, c)
	}
	status, _, c = lambdaCall(t, srv.URL, "PUT", esms+id, `{"BatchSize":10}`)
	if lo, hi, ok := pollers(c); status != 202 || !ok || lo != 5 || hi != 1000 || c["BatchSize"] != 10.0 {
		t.Fatalf("update without the config: %d %v", status, c)
	}
	status, _, c = lambdaCall(t, srv.URL, "PUT", esms+id, `{"ProvisionedPollerConfig":{"MaximumPollers":30}}`)
	if lo, hi, ok := pollers(c); status != 202 || !ok || lo != 1 || hi != 30 {
		t.Fatalf("update with MaximumPollers only: %d %v", status, c)
	}
	status, _, c = lambdaCall(t, srv.URL, "PUT", esms+id, `{"ProvisionedPollerConfig":{}}`)
	if lo, hi, ok := pollers(c); status != 202 || !ok || lo != 1 || hi != 200 {
		t.Fatalf("update with an empty config: %d %v", status, c)
	}
	if lo, hi := byUUID(id); lo != 1 || hi != 200 {
		t.Fatalf("stored concurrency %d–%d, want 1–200", lo, hi)
	}

	for _, tc := range []struct {
		method, path, config, msg string
	}{
		{"POST", esms, `{"MinimumPollers":0}`, "ProvisionedPollerConfig.MinimumPollers 0: use 1–200."},
		{"POST", esms, `{"MinimumPollers":201}`, "ProvisionedPollerConfig.MinimumPollers 201: use 1–200."},
		{"POST", esms, `{"MaximumPollers":0}`, "ProvisionedPollerConfig.MaximumPollers 0: use 1–1000."},
		{"POST", esms, `{"MaximumPollers":1001}`, "ProvisionedPollerConfig.MaximumPollers 1001: Sluice runs at most 1000 batches of one mapping at once (Lambda allows 2000 pollers); use 1–1000."},
		{"POST", esms, `{"MaximumPollers":2000}`, "ProvisionedPollerConfig.MaximumPollers 2000: Sluice runs at most 1000"},
		{"POST", esms, `{"MaximumPollers":2001}`, "ProvisionedPollerConfig.MaximumPollers 2001: use 1–1000."},
		{"POST", esms, `{"MinimumPollers":50,"MaximumPollers":10}`, "ProvisionedPollerConfig.MinimumPollers: invalid value 50: use at most ProvisionedPollerConfig.MaximumPollers (10)"},
		{"POST", esms, `{"PollerGroupName":"shared"}`, `ProvisionedPollerConfig.PollerGroupName "shared": Sluice has no poller groups`},
		{"POST", esms, `{"MinimumPollers":1,"Pollers":3}`, `Unknown parameter "ProvisionedPollerConfig.Pollers"`},
		{"PUT", esms + id, `{"MaximumPollers":1500}`, "ProvisionedPollerConfig.MaximumPollers 1500: Sluice runs at most 1000"},
		{"PUT", esms + id, `{"MinimumPollers":300}`, "ProvisionedPollerConfig.MinimumPollers 300: use 1–200."},
		{"PUT", esms + id, `{"MinimumPollers":100,"MaximumPollers":99}`, "ProvisionedPollerConfig.MinimumPollers: invalid value 100: use at most ProvisionedPollerConfig.MaximumPollers (99)"},
	} {
		body := `{"ProvisionedPollerConfig":` + tc.config + `}`
		if tc.method == "POST" {
			body = strings.Replace(esmCreate, `"BatchSize":50`, `"BatchSize":50,"ProvisionedPollerConfig":`+tc.config, 1)
		}
		status, hdr, out := lambdaCall(t, srv.URL, tc.method, tc.path, body)
		msg, _ := out["message"].(string)
		if status != 400 || hdr.Get("x-amzn-errortype") != "InvalidParameterValueException" || !strings.Contains(msg, tc.msg) || out["Type"] != "User" {
			t.Errorf("%s %s: %d %s %v; want 400 InvalidParameterValueException containing %q", tc.method, tc.config, status, hdr.Get("x-amzn-errortype"), out, tc.msg)
		}
	}
	if lo, hi := byUUID(id); lo != 1 || hi != 200 {
		t.Errorf("refused updates changed the concurrency to %d–%d", lo, hi)
	}
}
