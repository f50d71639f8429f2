package secret

import (
	"slices"
	"testing"
)

func TestBound(t *testing.T) {
	brokers := []string{"b-1.msk.example.com:9096", "LOCAL", "*.kafka.us-east-1.amazonaws.com:9096", "[::1]:9092"}
	for server, want := range map[string]bool{
		"b-1.msk.example.com:9096":                                 true,
		"B-1.MSK.example.com:9096":                                 true,
		"b-1.msk.example.com:9092":                                 false,
		"b-2.msk.example.com:9096":                                 false,
		"local:1234":                                               true,
		"b-3.c.x.c2.kafka.us-east-1.amazonaws.com:9096":            true,
		"kafka.us-east-1.amazonaws.com:9096":                       false,
		"evil-kafka.us-east-1.amazonaws.com.attacker.example:9096": false,
		"[::1]:9092":                                               true,
		"evil:9092":                                                false,
	} {
		if got := Bound(brokers, server); got != want {
			t.Errorf("Bound(%q) = %v, want %v", server, got, want)
		}
	}
	if got := Unbound(brokers, []string{"local:1", "evil:2"}); !slices.Equal(got, []string{"evil:2"}) {
		t.Errorf("Unbound = %v", got)
	}
	if Bound(nil, "a:1") {
		t.Error("no brokers bound a server")
	}
}

func TestValidateBrokers(t *testing.T) {
	if err := ValidateBrokers([]string{"a:9092", "b", "*.c.example:1", "[::1]:9092"}); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"kafka://a:9092", "a:0", "a:99999", "*", "a b:1", "u@h:1"} {
		if err := ValidateBrokers([]string{bad}); err == nil {
			t.Errorf("ValidateBrokers(%q) = nil", bad)
		}
	}
}
