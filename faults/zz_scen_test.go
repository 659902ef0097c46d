package faults

import (
	"path/filepath"
	"testing"
)

func TestZZScenarios(t *testing.T) {
	files, _ := filepath.Glob("../scenarios/*.yaml")
	for _, f := range files {
		s, err := Load(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		t.Logf("%s: %d faults, last end %v", f, len(s.Faults), s.LastFaultEnd())
	}
}
