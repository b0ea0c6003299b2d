package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Row is one line of a subcommand's table and of its JSON "rows": the
// figure, and for a target row the reference, the ratio and met/missed,
// as TARGETS.md asks of every benchmark report.
type Row struct {
	Benchmark string  `json:"benchmark"`
	Figure    float64 `json:"figure"`
	Unit      string  `json:"unit"`
	// Allocs is the benchmark's allocs/op; nil when it did not report
	// one (it was run without -benchmem, or the row is DPDK's).
	Allocs *float64 `json:"allocs_per_op,omitempty"`
	// Reference and Ratio are set only on target rows; Reference is in
	// Unit.
	Reference *float64 `json:"reference,omitempty"`
	Ratio     *float64 `json:"ratio,omitempty"`
	// Status holds "met" or "missed" for a target row and "ALLOCS" for a
	// row with allocs/op > 0 (T8: zero allocations per packet), space
	// separated when both apply.
	Status string `json:"status,omitempty"`
}

// statusAllocs flags a row whose benchmark allocates.
const statusAllocs = "ALLOCS"

// goBenchRows returns one row per benchmark and metric, in output order.
// B/op and allocs/op are not rows of their own: allocs/op is a column of
// every row of its benchmark, and B/op is in the JSON benchmarks section.
func goBenchRows(benches []GoBench) []Row {
	var rows []Row
	for _, b := range benches {
		var allocs *float64
		if v, ok := b.Metric("allocs/op"); ok {
			allocs = &v
		}
		for _, m := range b.Median {
			if m.Unit == "allocs/op" || m.Unit == "B/op" {
				continue
			}
			r := Row{Benchmark: displayName(b.Name), Figure: m.Value, Unit: m.Unit, Allocs: allocs}
			if allocs != nil && *allocs > 0 {
				r.Status = statusAllocs
			}
			rows = append(rows, r)
		}
	}
	return rows
}

// displayName drops the "Benchmark" prefix every name shares, which only
// widens the first column.
func displayName(name string) string {
	return strings.TrimPrefix(name, "Benchmark")
}

// writeTable prints rows as aligned columns; "-" marks a cell that does
// not apply to the row.
func writeTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "benchmark\tfigure\tunit\tallocs/op\treference\tratio\tstatus")
	for _, r := range rows {
		status := r.Status
		if status == "" {
			status = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.Benchmark, formatFigure(r.Figure), r.Unit,
			formatOptional(r.Allocs), formatOptional(r.Reference), formatOptional(r.Ratio), status)
	}
	return tw.Flush()
}

// formatFigure prints integers without decimals, figures ≥ 100 with one
// and smaller ones with three significant digits: benchmark noise here is
// several percent, so more digits would only be noise.
func formatFigure(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'f', -1, 64)
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

func formatOptional(v *float64) string {
	if v == nil {
		return "-"
	}
	return formatFigure(*v)
}

// writeJSON writes v, indented, to path; "-" means w (stdout, after the
// table), anything else a file that is created or truncated.
func writeJSON(path string, w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = w.Write(b)
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}
