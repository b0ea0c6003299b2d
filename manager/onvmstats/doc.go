// Package onvmstats formats the manager's statistics exactly as OpenNetVM v21.10's
// onvm_mgr prints them (ONVM-COMPAT.md §1.11, onvm_stats.c/.h), so scripts and the ONVM web
// console that read ONVM's output read ours unchanged:
//
//   - Console: the text of -v 1 and -v 2, with or without -c, for stdout, stderr or
//     onvm_stats.txt;
//   - RawHeader and Raw: the CSV of -v 3;
//   - WebStatsJSON and EventsJSON: onvm_json_stats.json and onvm_json_events.json, as
//     cJSON_Print writes them.
//
// The package is pure formatting: no goroutines, no clocks, no files. A Renderer turns each
// period's cumulative counters (a Tick) into bytes and remembers the counters for the next
// period's rates; the caller reads the counters, supplies the time and writes the bytes.
// A Renderer belongs to one goroutine; the functions without a receiver (RawHeader,
// EventsJSON, NFLabel and the Event constructors) are pure and safe from any goroutine.
//
// Where ONVM's C code prints garbage (unsigned wrap-around) or overruns an array, this
// package does something sane and says so in the doc comment concerned, marked [quirk].
// Quirks that the web console depends on, such as the 5-byte "NF <id>" label, are copied.
package onvmstats
