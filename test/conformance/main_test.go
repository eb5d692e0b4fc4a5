package main

import (
	"strings"
	"testing"
)

func TestParseKnown(t *testing.T) {
	got, err := parseKnown("# comment\n\nImageVolume should succeed\n  first line\n\tsecond line\nOther spec\n  why\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].spec != "ImageVolume should succeed" || got[0].why != "first line second line" || got[1].why != "why" {
		t.Errorf("parseKnown = %+v", got)
	}
	for text, want := range map[string]string{
		"  a cause first\n":           "line 1: a cause before any spec name",
		"Spec one\nSpec two\n  why\n": `line 1: spec "Spec one" has no cause`,
		"Spec at the end\n":           `spec "Spec at the end" has no cause`,
	} {
		if _, err := parseKnown(text); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseKnown(%q) = %v, want an error with %q", text, err, want)
		}
	}
}
