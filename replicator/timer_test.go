package replicator

import (
	"slices"
	"testing"
	"time"
)

// BenchmarkTickerJitter measures how late ticks arrive with a 100 µs period,
// for the timerfd Ticker and for time.Ticker (docs/replication.md, "Timer").
func BenchmarkTickerJitter(b *testing.B) {
	const period = 100 * time.Microsecond
	report := func(b *testing.B, gaps []time.Duration) {
		slices.Sort(gaps)
		b.ReportMetric(float64(gaps[len(gaps)/2].Microseconds()), "p50-gap-µs")
		b.ReportMetric(float64(gaps[len(gaps)*99/100].Microseconds()), "p99-gap-µs")
		b.ReportMetric(float64(gaps[len(gaps)-1].Microseconds()), "max-gap-µs")
	}
	b.Run("timerfd", func(b *testing.B) {
		t, err := NewTicker(period)
		if err != nil {
			b.Fatal(err)
		}
		defer t.Close()
		var gaps []time.Duration
		last := time.Now()
		for b.Loop() {
			if _, err := t.Wait(); err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			gaps = append(gaps, now.Sub(last))
			last = now
		}
		report(b, gaps)
	})
	b.Run("time.Ticker", func(b *testing.B) {
		t := time.NewTicker(period)
		defer t.Stop()
		var gaps []time.Duration
		last := time.Now()
		for b.Loop() {
			<-t.C
			now := time.Now()
			gaps = append(gaps, now.Sub(last))
			last = now
		}
		report(b, gaps)
	})
}

func TestTickerFiresAndCloses(t *testing.T) {
	tk, err := NewTicker(200 * time.Microsecond)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var n uint64
	for n < 50 {
		k, err := tk.Wait()
		if err != nil {
			t.Fatal(err)
		}
		n += k
	}
	if el := time.Since(start); el < 9*time.Millisecond || el > 500*time.Millisecond {
		t.Fatalf("50 ticks of 200 µs took %v", el)
	}
	done := make(chan error)
	go func() { _, err := tk.Wait(); done <- err }()
	tk.Close()
	if err := <-done; err == nil {
		// One more tick may have been pending; the next Wait must fail.
		if _, err := tk.Wait(); err == nil {
			t.Fatal("Wait after Close succeeded twice")
		}
	}
}
