package metrics_test

import (
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sluice-dev/sluice/internal/metrics"
	"github.com/sluice-dev/sluice/internal/pipe"
)

func scrape(t *testing.T, m *metrics.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// series returns the label sets of name's series, as "k=v,k=v" strings.
func series(fams map[string]*dto.MetricFamily, name string) []string {
	var out []string
	for _, m := range fams[name].GetMetric() {
		var ls []string
		for _, l := range m.GetLabel() {
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
		out = append(out, strings.Join(ls, ","))
	}
	slices.Sort(out)
	return out
}

func TestEverySeriesInThePackageDoc(t *testing.T) {
	m := metrics.New()
	m.Pipe("a")
	m.SetLag("a", []metrics.PartitionLag{{Topic: "t", Partition: 0, Lag: 1}})
	m.SetState("a", pipe.StateEnabled)
	m.SetUp("a", true)
	fams := scrape(t, m)
	// The package doc must list every series it exports (DESIGN.md).
	doc := docOf(t)
	n := 0
	for name := range fams {
		if !strings.HasPrefix(name, "sluice_") {
			continue
		}
		n++
		if !regexp.MustCompile(`(?m)^//\s+` + name + `\{`).MatchString(doc) {
			t.Errorf("%s is exported but not listed in the package doc", name)
		}
	}
	if n != 25 {
		t.Errorf("%d sluice_ families, want 25", n)
	}
}

func TestLagPartitionsAndDeletePipe(t *testing.T) {
	m := metrics.New()
	a := m.Pipe("a")
	a.Polled.Add(5)
	m.Pipe("b").Polled.Add(1)
	m.SetLag("a", []metrics.PartitionLag{{"t", 0, 3}, {"t", 1, 7}})
	m.SetState("a", pipe.StateDisabled)
	fams := scrape(t, m)
	if got := series(fams, "sluice_offset_lag"); !slices.Equal(got, []string{"partition=0,pipe=a,topic=t", "partition=1,pipe=a,topic=t"}) {
		t.Fatalf("lag series %v", got)
	}
	if v := fams["sluice_offset_lag_max"].GetMetric()[0].GetGauge().GetValue(); v != 7 {
		t.Fatalf("max %v, want 7", v)
	}
	if v := fams["sluice_offset_lag_sum"].GetMetric()[0].GetGauge().GetValue(); v != 10 {
		t.Fatalf("sum %v, want 10", v)
	}
	for _, mm := range fams["sluice_pipe_state"].GetMetric() {
		want := 0.0
		for _, l := range mm.GetLabel() {
			if l.GetName() == "state" && l.GetValue() == "Disabled" {
				want = 1
			}
		}
		if mm.GetGauge().GetValue() != want {
			t.Fatalf("state series %v = %v", mm.GetLabel(), mm.GetGauge().GetValue())
		}
	}

	// A partition that went away loses its series.
	m.SetLag("a", []metrics.PartitionLag{{"t", 1, 2}})
	if got := series(scrape(t, m), "sluice_offset_lag"); !slices.Equal(got, []string{"partition=1,pipe=a,topic=t"}) {
		t.Fatalf("lag series after a partition went away %v", got)
	}

	m.DeletePipe("a")
	a.Polled.Inc() // a late update from a stopping runner must not bring it back
	for name, f := range scrape(t, m) {
		for _, mm := range f.GetMetric() {
			for _, l := range mm.GetLabel() {
				if l.GetName() == "pipe" && l.GetValue() == "a" {
					t.Errorf("%s still has a series of deleted pipe a", name)
				}
			}
		}
	}
	if got := series(scrape(t, m), "sluice_polled_events_total"); !slices.Equal(got, []string{"pipe=b"}) {
		t.Fatalf("polled series %v, want only b's", got)
	}
}

func docOf(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("metrics.go")
	if err != nil {
		t.Fatal(err)
	}
	doc, _, _ := strings.Cut(string(b), "package metrics")
	return doc
}
