package pipe

import (
	"encoding/json"
	"fmt"
)

// DecodeStored reads a spec as a store wrote it. Specs stored before
// targets had kinds hold the HTTP target's fields directly under target
// ({"target":{"url":…}}); they read as target.http, so an upgrade keeps
// every pipe running without a migration step.
func DecodeStored(data []byte) (Spec, error) {
	var s Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return Spec{}, err
	}
	if s.Target.Kind() != "" {
		return s, nil
	}
	var legacy struct {
		Target *HTTPTarget `json:"target"`
	}
	if err := json.Unmarshal(data, &legacy); err != nil {
		return Spec{}, fmt.Errorf("stored target: %w", err)
	}
	if legacy.Target != nil && (legacy.Target.URL != "" || legacy.Target.Function != "") {
		s.Target.HTTP = legacy.Target
	}
	return s, nil
}
