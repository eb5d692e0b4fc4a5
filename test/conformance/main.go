// Command conformance turns the JUnit report of a Kubernetes conformance run
// (e2e.test --report-dir) into docs/conformance.md: how many specs passed,
// failed and were skipped, and each failure with the first lines of its
// message and, where known.txt names it, why it fails.
//
//	go run ./test/conformance -junit report/junit_01.xml -known test/conformance/known.txt -out docs/conformance.md -about "..."
package main

import (
	"encoding/xml"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

type junit struct {
	Suites []suite `xml:"testsuite"`
}

type suite struct {
	Cases []testCase `xml:"testcase"`
}

type testCase struct {
	Name    string   `xml:"name,attr"`
	Time    float64  `xml:"time,attr"`
	Status  string   `xml:"status,attr"`
	Failure *message `xml:"failure"`
	Error   *message `xml:"error"`
	Skipped *message `xml:"skipped"`
}

type message struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

func main() {
	in := flag.String("junit", "", "JUnit report of the run")
	out := flag.String("out", "docs/conformance.md", "Markdown file to write")
	about := flag.String("about", "", "what ran where: commit, cluster, nodes (printed at the top)")
	knownFile := flag.String("known", "", "failures whose cause is known: a line naming the spec (part of its name), then the cause on indented lines")
	flag.Parse()
	if *in == "" {
		fmt.Fprintln(os.Stderr, "conformance: -junit is required")
		os.Exit(2)
	}
	var known []knownCause
	if *knownFile != "" {
		b, err := os.ReadFile(*knownFile)
		if err == nil {
			known, err = parseKnown(string(b))
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "conformance: -known %s: %v\n", *knownFile, err)
			os.Exit(2)
		}
	}
	b, err := os.ReadFile(*in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(1)
	}
	var r junit
	if err := xml.Unmarshal(b, &r); err != nil {
		// A single suite at the top level.
		var s suite
		if err2 := xml.Unmarshal(b, &s); err2 != nil {
			fmt.Fprintln(os.Stderr, "conformance: reading", *in, ":", err)
			os.Exit(1)
		}
		r.Suites = []suite{s}
	}
	var passed, skipped []string
	var failed []testCase
	var took float64
	for _, s := range r.Suites {
		for _, c := range s.Cases {
			// Ginkgo's report also lists its BeforeSuite and AfterSuite nodes.
			if !strings.Contains(c.Name, "[Conformance]") {
				continue
			}
			took += c.Time
			switch {
			case c.Failure != nil || c.Error != nil:
				failed = append(failed, c)
			case c.Skipped != nil || c.Status == "skipped" || c.Status == "pending":
				skipped = append(skipped, c.Name)
			default:
				passed = append(passed, c.Name)
			}
		}
	}
	sort.Slice(failed, func(i, j int) bool { return failed[i].Name < failed[j].Name })
	var md strings.Builder
	fmt.Fprintf(&md, "# Kubernetes conformance\n\n`make conformance` runs the `[Conformance]` specs of Kubernetes' own end-to-end suite (`e2e.test`, built from k8s.io/kubernetes at the release's version) against a hosted cluster with real nodes, images from hcp's registry.\n\n")
	if *about != "" {
		fmt.Fprintf(&md, "%s\n\n", *about)
	}
	total := len(passed) + len(failed) + len(skipped)
	fmt.Fprintf(&md, "| specs | passed | failed | skipped | time in specs (sum) |\n|---|---|---|---|---|\n| %d | %d | %d | %d | %s |\n\n",
		total, len(passed), len(failed), len(skipped), (time.Duration(took) * time.Second).String())
	if len(failed) > 0 {
		fmt.Fprintf(&md, "## Failed\n\n")
		for _, c := range failed {
			m := c.Failure
			if m == nil {
				m = c.Error
			}
			cause := strings.TrimSpace(m.Message)
			if cause == "" {
				cause = strings.TrimSpace(m.Text)
			}
			lines := strings.Split(cause, "\n")
			if len(lines) > 6 {
				lines = append(lines[:6], "...")
			}
			fmt.Fprintf(&md, "- %s\n\n  ```\n  %s\n  ```\n\n", c.Name, strings.Join(lines, "\n  "))
			for _, k := range known {
				if strings.Contains(c.Name, k.spec) {
					fmt.Fprintf(&md, "  Why: %s\n\n", k.why)
				}
			}
		}
	}
	if len(skipped) > 0 {
		fmt.Fprintf(&md, "## Skipped\n\n")
		sort.Strings(skipped)
		for _, s := range skipped {
			fmt.Fprintf(&md, "- %s\n", s)
		}
		md.WriteString("\n")
	}
	if err := os.WriteFile(*out, []byte(md.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(1)
	}
	fmt.Printf("%d conformance specs: %d passed, %d failed, %d skipped; written to %s\n", total, len(passed), len(failed), len(skipped), *out)
}

// knownCause is why a spec fails, where that is known.
type knownCause struct {
	spec string // part of the spec's name
	why  string
}

// parseKnown reads known causes: a line naming a spec (part of its name),
// then its cause on the indented lines after it; # starts a comment.
func parseKnown(text string) ([]knownCause, error) {
	var out []knownCause
	for i, line := range strings.Split(text, "\n") {
		switch {
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#"):
		case line[0] == ' ' || line[0] == '\t':
			if len(out) == 0 {
				return nil, fmt.Errorf("line %d: a cause before any spec name (spec names start at the beginning of a line)", i+1)
			}
			k := &out[len(out)-1]
			k.why = strings.TrimSpace(k.why + " " + strings.TrimSpace(line))
		default:
			if len(out) > 0 && out[len(out)-1].why == "" {
				return nil, fmt.Errorf("line %d: spec %q has no cause (indent the lines saying why it fails)", i, out[len(out)-1].spec)
			}
			out = append(out, knownCause{spec: strings.TrimSpace(line)})
		}
	}
	if len(out) > 0 && out[len(out)-1].why == "" {
		return nil, fmt.Errorf("spec %q has no cause (indent the lines saying why it fails)", out[len(out)-1].spec)
	}
	return out, nil
}
