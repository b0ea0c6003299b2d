package main

// The plot of throughput and latency around a failover, shared by
// failover-local and failover-remote: one panel per failover, stacked.

import (
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"slices"
	"time"
)

// Plot geometry: each panel is plotW × plotH pixels; throughput is binned
// into plotBins columns over the panel's span.
const (
	plotW    = 1000
	plotH    = 500
	plotBins = plotW / 10
)

var (
	plotBlue   = color.RGBA{30, 60, 200, 255}
	plotGrey   = color.RGBA{120, 120, 120, 255}
	plotLight  = color.RGBA{225, 225, 225, 255}
	plotRed    = color.RGBA{220, 0, 0, 255}
	plotDark   = color.RGBA{40, 40, 40, 255}
	plotBlack  = color.RGBA{0, 0, 0, 255}
	plotOrange = color.RGBA{240, 140, 0, 255}
	plotGreen  = color.RGBA{0, 170, 60, 255}
)

// plotMark is a vertical line at a moment of the failover (the kill, a
// promotion, the first output), CLOCK_MONOTONIC ns.
type plotMark struct {
	at int64
	c  color.RGBA
}

// failoverPanel is one failover: the kill, other moments to mark, and
// each delivered packet's delivery time and latency (ns, same clock).
type failoverPanel struct {
	kill       int64
	marks      []plotMark
	times, lat []int64
}

// writeFailoverPlot draws throughput per millisecond (top half) and each
// frame's latency (bottom half, log scale) from 50 ms before the kill to 50
// ms after; a red line marks the kill.
func writeFailoverPlot(path string, kill int64, times, lat []int64) error {
	return writeFailoverPlots(path, 50*time.Millisecond, 50*time.Millisecond,
		[]failoverPanel{{kill: kill, times: times, lat: lat}})
}

// writeFailoverPlots draws one panel per failover, stacked top to bottom,
// each from before ahead of its kill to after past it: throughput per bin
// (top half, blue bars; the bin is (before+after)/plotBins), each frame's
// latency (bottom half, log scale from 1 µs at the bottom to 100 ms at the
// middle line, a light line per decade), a red line at the kill, a light
// tick every 10 ms along the middle line, and the panel's marks. A black
// line separates the panels.
func writeFailoverPlots(path string, before, after time.Duration, panels []failoverPanel) error {
	if len(panels) == 0 {
		return errors.New("nothing to plot")
	}
	if before < 0 || after <= 0 {
		return errors.New("plot: bad span")
	}
	img := image.NewRGBA(image.Rect(0, 0, plotW, plotH*len(panels)))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	for i, p := range panels {
		drawFailoverPanel(img, i*plotH, int64(before), int64(before+after), p)
		if i > 0 {
			for px := 0; px < plotW; px++ {
				img.Set(px, i*plotH, plotBlack)
			}
		}
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(out, img); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func drawFailoverPanel(img *image.RGBA, y0 int, before, span int64, p failoverPanel) {
	const w, h = plotW, plotH
	from := p.kill - before
	x := func(t int64) int { return int((t - from) * (w - 1) / span) }
	bins := make([]int, plotBins)
	for _, t := range p.times {
		if t >= from && t < from+span {
			bins[int((t-from)*int64(len(bins))/span)]++
		}
	}
	peak := slices.Max(append(bins, 1))
	// Decades of latency, then the 10 ms ticks, under the data.
	for d := 0; d <= 5; d++ {
		y := y0 + h - 5 - (h/2-10)*d/5
		for px := 0; px < w; px += 2 {
			img.Set(px, y, plotLight)
		}
	}
	for t := from - from%int64(10*time.Millisecond); t < from+span; t += int64(10 * time.Millisecond) {
		if t < from {
			continue
		}
		for py := y0 + h/2 - 6; py < y0+h/2+6; py++ {
			img.Set(x(t), py, plotGrey)
		}
	}
	colW := w / len(bins)
	for i, n := range bins {
		top := h/2 - 10 - n*(h/2-20)/peak
		for px := i * colW; px < i*colW+colW-1; px++ {
			for py := top; py < h/2-10; py++ {
				img.Set(px, y0+py, plotBlue)
			}
		}
	}
	for px := 0; px < w; px++ {
		img.Set(px, y0+h/2, plotGrey)
	}
	for i, t := range p.times {
		if t < from || t >= from+span || i >= len(p.lat) || p.lat[i] <= 0 {
			continue
		}
		l := float64(p.lat[i]) / 1e3
		y := max(h-5-int(float64(h/2-10)*log10(max(l, 1))/5), h/2+2)
		for d := 0; d < 4; d++ {
			img.Set(x(t)+d%2, y0+y+d/2, plotDark)
		}
	}
	for _, m := range append(slices.Clone(p.marks), plotMark{at: p.kill, c: plotRed}) {
		if m.at < from || m.at >= from+span {
			continue
		}
		for py := 0; py < h; py++ {
			img.Set(x(m.at), y0+py, m.c)
		}
	}
}

func log10(v float64) float64 {
	n := 0.0
	for v >= 10 {
		v /= 10
		n++
	}
	return n + (v-1)/9 // piecewise linear within a decade: enough for a picture
}
