package gen

import "testing"

func TestPacerDue(t *testing.T) {
	p := pacer{nsPer: 1000, start: 5000} // 1 Mpps
	for _, tc := range []struct {
		now  int64
		next uint64
		want uint64
	}{
		{4999, 0, 0}, // before the start
		{5000, 0, 1}, // frame 0 falls due at the start
		{5999, 1, 1},
		{6000, 1, 2},
		{1_005_000, 10, 1001}, // a millisecond: a thousand more
	} {
		if got := p.due(tc.now, tc.next); got != tc.want {
			t.Errorf("due(%d, %d) = %d, want %d", tc.now, tc.next, got, tc.want)
		}
	}
	if p.forfeited != 0 || p.start != 5000 {
		t.Errorf("no bucket, yet forfeited %d, start %d", p.forfeited, p.start)
	}
	if got := p.at(3); got != 8000 {
		t.Errorf("at(3) = %d", got)
	}
}

func TestPacerBucketForfeits(t *testing.T) {
	p := pacer{nsPer: 1000, start: 0, bucket: 8}
	// Descheduled for 100 µs after sending 10: 101 due, only 8 may wait.
	if got := p.due(100_000, 10); got != 18 {
		t.Fatalf("due = %d, want 18", got)
	}
	if p.forfeited != 83 || p.start != 83_000 {
		t.Fatalf("forfeited %d, start %d; want 83, 83000", p.forfeited, p.start)
	}
	// The clock resumes at the rate from there.
	if got := p.due(101_000, 18); got != 19 {
		t.Errorf("a microsecond later: due %d, want 19", got)
	}
	if p.forfeited != 83 {
		t.Errorf("forfeited %d after catching up", p.forfeited)
	}
}
