// Command report turns the JSON lines written by the benchmarks
// (internal/benchreport) into bench/results/<date>.json, a markdown table
// with min/median/max of subject and baseline and their ratio, and an SVG
// chart of the ratios (<date>.svg, copied to latest.svg for the README).
//
//	go run ./bench/report -in results.jsonl -out bench/results -cores 2
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hourglass-io/hourglass/internal/benchreport"
)

type summary struct {
	Date    string               `json:"date"`
	Cores   int                  `json:"cores"`
	Results []benchreport.Result `json:"results"`
}

func main() {
	in := flag.String("in", "", "JSON lines written by the benchmarks")
	out := flag.String("out", "bench/results", "directory for <date>.json, <date>.md, <date>.svg and latest.svg")
	cores := flag.Int("cores", 0, "core count of the machine")
	flag.Parse()
	if err := run(*in, *out, *cores); err != nil {
		fmt.Fprintln(os.Stderr, "bench report:", err)
		os.Exit(1)
	}
}

func run(in, outDir string, cores int) error {
	f, err := os.Open(in)
	if err != nil {
		return fmt.Errorf("open results: %w", err)
	}
	defer f.Close()
	s := summary{Date: time.Now().UTC().Format("2006-01-02"), Cores: cores}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r benchreport.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("decode result line: %w", err)
		}
		s.Results = append(s.Results, r)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read results: %w", err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(outDir, s.Date+".json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	md := table(s)
	if err := os.WriteFile(filepath.Join(outDir, s.Date+".md"), []byte(md), 0o644); err != nil {
		return err
	}
	svg := chart(s)
	for _, name := range []string{s.Date + ".svg", "latest.svg"} {
		if err := os.WriteFile(filepath.Join(outDir, name), []byte(svg), 0o644); err != nil {
			return err
		}
	}
	fmt.Print(md)
	fmt.Printf("\nchart: %s (and latest.svg)\n", filepath.Join(outDir, s.Date+".svg"))
	return nil
}

func table(s summary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Benchmarks of %s on %d cores (min / median / max of the repetitions; ratio = median subject / median baseline).\n\n", s.Date, s.Cores)
	b.WriteString("| benchmark | unit | subject | subject min / median / max | baseline | baseline min / median / max | ratio |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, r := range s.Results {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %.2f |\n",
			r.Name, r.Unit, r.Subject, mmm(r.Subj), r.Baseline, mmm(r.Base), r.Ratio())
	}
	return b.String()
}

func mmm(xs []float64) string {
	if len(xs) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f / %.0f / %.0f", slices.Min(xs), benchreport.Median(xs), slices.Max(xs))
}
