package check

import "math/bits"

// Hist is a log-linear histogram of nanosecond values: 16 buckets per
// power of two, so a percentile is within 1/16 (6.25 %) of the true value.
// The zero value is empty; Add does not allocate.
type Hist struct {
	n        uint64
	min, max uint64
	b        [64 * subBuckets]uint64
}

const subBits = 4
const subBuckets = 1 << subBits

func bucket(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	e := bits.Len64(v) - 1 - subBits // v >> e is in [16, 32)
	return (e+1)*subBuckets + int(v>>e) - subBuckets
}

// low is the smallest value of bucket i.
func low(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	e := i/subBuckets - 1
	return uint64(i%subBuckets+subBuckets) << e
}

// Add records v.
func (h *Hist) Add(v uint64) {
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.b[bucket(v)]++
}

// Count is the number of values.
func (h *Hist) Count() uint64 { return h.n }

// Quantile returns a value at or below which a fraction q of the values
// lie (the bucket's lower bound, clamped to the exact min and max).
func (h *Hist) Quantile(q float64) uint64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	if rank >= h.n {
		rank = h.n - 1
	}
	var acc uint64
	for i, c := range h.b {
		acc += c
		if acc > rank {
			return min(max(low(i), h.min), h.max)
		}
	}
	return h.max
}

// Percentiles is a latency summary in nanoseconds.
type Percentiles struct {
	Count uint64 `json:"count"`
	Min   uint64 `json:"min"`
	P50   uint64 `json:"p50"`
	P90   uint64 `json:"p90"`
	P99   uint64 `json:"p99"`
	P999  uint64 `json:"p999"`
	Max   uint64 `json:"max"`
}

// Percentiles summarises h.
func (h *Hist) Percentiles() Percentiles {
	return Percentiles{Count: h.n, Min: h.min, P50: h.Quantile(0.5), P90: h.Quantile(0.9),
		P99: h.Quantile(0.99), P999: h.Quantile(0.999), Max: h.max}
}
