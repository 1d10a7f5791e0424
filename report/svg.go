package report

import (
	"cmp"
	"fmt"
	"html/template"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Chart geometry in SVG user units. The page scales a chart to its width, so
// these fix the proportions and the size of the text relative to the plot.
const (
	chartWidth  = 720
	chartHeight = 220
	plotLeft    = 64 // room for the value labels
	plotRight   = 12
	plotTop     = 22 // room for the unit
	plotBottom  = 38 // room for the time labels and the axis title
	plotWidth   = chartWidth - plotLeft - plotRight
	plotHeight  = chartHeight - plotTop - plotBottom
)

// maxMarkers is the most points a chart marks with a dot (and a tooltip);
// longer series are drawn as a line only.
const maxMarkers = 60

// chartTicks is about how many value ticks a chart shows.
const chartTicks = 5

// svgChart draws s as an inline SVG line chart: value and time axes with
// ticks in the series' unit, the warm-up shaded, and the Theil-Sen trend
// line dashed when the trend test found growth. id must be unique in the
// page; it prefixes the ids of the chart's title and clip path. Points with
// non-finite values break the line.
func svgChart(s Series, id string) template.HTML {
	pts := slices.Clone(s.Points)
	slices.SortStableFunc(pts, comparePointTimes)
	finite := make([]Point, 0, len(pts))
	for _, p := range pts {
		if isFinite(p.Value) {
			finite = append(finite, p)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-labelledby="%s-title" xmlns="http://www.w3.org/2000/svg">`, chartWidth, chartHeight, id)
	fmt.Fprintf(&b, `<title id="%s-title">%s</title>`, id, template.HTMLEscapeString(cleanText(chartSummary(s, finite))))
	if len(finite) == 0 {
		fmt.Fprintf(&b, `<text class="empty" x="%d" y="%d" text-anchor="middle">no samples</text></svg>`, chartWidth/2, chartHeight/2)
		return template.HTML(b.String())
	}

	t0, t1 := finite[0].Time, finite[len(finite)-1].Time
	span := t1.Sub(t0)
	if span <= 0 {
		span = time.Second // one instant: centre it
		t0 = t0.Add(-span / 2)
	}
	var fit *TrendTest
	if t := s.Trend; t != nil && t.Verdict == VerdictGrowing && !t.Window.From.IsZero() {
		fit = &t.Window
	}
	vmin, vmax := finite[0].Value, finite[0].Value
	for _, p := range finite {
		vmin, vmax = min(vmin, p.Value), max(vmax, p.Value)
	}
	// Keep the range, and so every coordinate, finite.
	vmin, vmax = max(vmin, -math.MaxFloat64/4), min(vmax, math.MaxFloat64/4)
	scale := newValueScale(vmin, vmax, s.Unit)
	x := func(t time.Time) float64 { return plotLeft + float64(t.Sub(t0))/float64(span)*plotWidth }
	y := func(v float64) float64 { return plotTop + (scale.hi-v)/(scale.hi-scale.lo)*plotHeight }

	// Grid and value ticks.
	b.WriteString(`<g class="axis">`)
	for _, v := range scale.ticks {
		fmt.Fprintf(&b, `<line class="grid" x1="%d" x2="%d" y1="%s" y2="%s"/>`, plotLeft, plotLeft+plotWidth, coord(y(v)), coord(y(v)))
		fmt.Fprintf(&b, `<text x="%d" y="%s" text-anchor="end" dy="0.35em">%s</text>`, plotLeft-6, coord(y(v)), scale.label(v))
	}
	if scale.unit != "" {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, plotLeft-6, plotTop-9, template.HTMLEscapeString(cleanText(scale.unit)))
	}
	// Time ticks, as time since the first point.
	origin := finite[0].Time
	step := timeStep(t1.Sub(origin))
	for i := range t1.Sub(origin)/step + 1 {
		d := i * step // counted, not summed: a sum could overflow
		tx := coord(x(origin.Add(d)))
		fmt.Fprintf(&b, `<line class="tick" x1="%s" x2="%s" y1="%d" y2="%d"/>`, tx, tx, plotTop+plotHeight, plotTop+plotHeight+4)
		fmt.Fprintf(&b, `<text x="%s" y="%d" text-anchor="middle">%s</text>`, tx, plotTop+plotHeight+16, formatElapsed(d))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">time since %s</text>`,
		plotLeft+plotWidth/2, chartHeight-4, finite[0].Time.UTC().Format("2006-01-02 15:04:05 MST"))
	fmt.Fprintf(&b, `<line class="frame" x1="%d" x2="%d" y1="%d" y2="%d"/>`, plotLeft, plotLeft+plotWidth, plotTop+plotHeight, plotTop+plotHeight)
	b.WriteString(`</g>`)

	// The warm-up: the points before WarmupEnd were not tested.
	if t := s.Trend; t != nil && t.WarmupEnd.After(finite[0].Time) {
		end := min(x(t.WarmupEnd), plotLeft+plotWidth)
		fmt.Fprintf(&b, `<rect class="warmup" x="%s" y="%d" width="%s" height="%d"><title>warm-up: not tested</title></rect>`,
			coord(x(finite[0].Time)), plotTop, coord(end-x(finite[0].Time)), plotHeight)
		if end-x(finite[0].Time) > 56 {
			fmt.Fprintf(&b, `<text class="warmup-label" x="%s" y="%d">warm-up</text>`, coord(x(finite[0].Time)+4), plotTop+12)
		}
	}

	// The samples, and the fitted trend, clipped to the plot and a margin
	// that keeps whole the dots on its edges.
	fmt.Fprintf(&b, `<clipPath id="%s-clip"><rect x="%d" y="%d" width="%d" height="%d"/></clipPath>`, id, plotLeft-4, plotTop-4, plotWidth+8, plotHeight+8)
	fmt.Fprintf(&b, `<g clip-path="url(#%s-clip)">`, id)
	b.WriteString(`<path class="line" d="`)
	writeLinePath(&b, pts, x, y)
	b.WriteString(`"/>`)
	if fit != nil {
		from := fit.From
		if from.Before(finite[0].Time) {
			from = finite[0].Time
		}
		at := func(t time.Time) float64 { return fit.Intercept + fit.SlopePerHour*t.Sub(fit.From).Hours() }
		fmt.Fprintf(&b, `<line class="fit" x1="%s" y1="%s" x2="%s" y2="%s"><title>trend %s</title></line>`,
			coord(x(from)), coord(y(at(from))), coord(x(t1)), coord(y(at(t1))), template.HTMLEscapeString(formatRate(fit.SlopePerHour, quantityUnit(s.Unit))))
	}
	if len(finite) <= maxMarkers {
		for _, p := range finite {
			fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="2.5"><title>%s: %s</title></circle>`, coord(x(p.Time)), coord(y(p.Value)),
				formatElapsed(p.Time.Sub(finite[0].Time)), template.HTMLEscapeString(cleanText(formatQuantity(p.Value, quantityUnit(s.Unit)))))
		}
	}
	b.WriteString(`</g></svg>`)
	return template.HTML(b.String())
}

// chartSummary describes a chart in one sentence, for its title.
func chartSummary(s Series, finite []Point) string {
	if len(finite) == 0 {
		return s.Name + ": no samples"
	}
	lo, hi := finite[0].Value, finite[0].Value
	for _, p := range finite {
		lo, hi = min(lo, p.Value), max(hi, p.Value)
	}
	unit := quantityUnit(s.Unit)
	text := fmt.Sprintf("%s: %s from %s to %s", s.Name, plural(len(finite), "sample"), formatQuantity(lo, unit), formatQuantity(hi, unit))
	if t := s.Trend; t != nil {
		text += ", " + string(t.Verdict)
		if t.Verdict == VerdictGrowing || t.Verdict == VerdictShrinking {
			text += " " + formatRate(t.Window.SlopePerHour, unit)
		}
	}
	return text
}

// writeLinePath writes the path data of the line through pts (in time order):
// a non-finite value lifts the pen. A series much longer than the plot is
// wide is thinned to the first, lowest, highest and last point of each
// pixel column, which draws the same picture.
func writeLinePath(b *strings.Builder, pts []Point, x func(time.Time) float64, y func(float64) float64) {
	pen := false
	var col []Point // the points of the current pixel column
	colX := math.Inf(-1)
	flush := func() {
		if len(col) == 0 {
			return
		}
		keep := col
		if len(col) > 4 {
			lo := slices.MinFunc(col, func(a, b Point) int { return cmp.Compare(a.Value, b.Value) })
			hi := slices.MaxFunc(col, func(a, b Point) int { return cmp.Compare(a.Value, b.Value) })
			four := [4]Point{col[0], lo, hi, col[len(col)-1]}
			keep = four[:]
			slices.SortStableFunc(keep, comparePointTimes)
		}
		for _, p := range keep {
			cmd := "L"
			if !pen {
				cmd, pen = "M", true
			}
			b.WriteString(cmd + coord(x(p.Time)) + " " + coord(y(p.Value)))
		}
		col = col[:0]
	}
	thin := len(pts) > 4*plotWidth
	for _, p := range pts {
		if !isFinite(p.Value) {
			flush()
			pen = false
			continue
		}
		if px := math.Floor(x(p.Time)); !thin || px != colX {
			flush()
			colX = px
		}
		col = append(col, p)
	}
	flush()
}

// quantityUnit returns the unit formatQuantity and formatRate scale for a
// series' unit: probes call bytes "B", the tracker "bytes".
func quantityUnit(unit string) string {
	if unit == "B" {
		return "bytes"
	}
	return unit
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// coord formats a coordinate with one decimal, dropping ".0". Coordinates
// far outside the chart (a steep trend line) are clamped: the clip path hides
// them either way.
func coord(v float64) string {
	s := strconv.FormatFloat(min(max(v, -1e6), 1e6), 'f', 1, 64)
	return strings.TrimSuffix(s, ".0")
}

// valueScale maps a series' values to ticks: round numbers in the series'
// unit, or for bytes in the binary multiple (KiB, MiB, ...) that suits them.
type valueScale struct {
	lo, hi  float64   // the axis range: the first and last tick
	ticks   []float64 // in the series' unit
	step    float64
	divisor float64 // ticks are labelled in units of divisor (1024^k for bytes)
	unit    string  // the label's unit: "MiB" for bytes in MiB
}

func newValueScale(vmin, vmax float64, unit string) valueScale {
	if vmin == vmax {
		pad := max(math.Abs(vmin)*0.05, 1)
		vmin, vmax = vmin-pad, vmax+pad
	}
	s := valueScale{divisor: 1, unit: unit}
	if quantityUnit(unit) == "bytes" {
		s.unit = "B"
		for _, u := range []string{"KiB", "MiB", "GiB", "TiB", "PiB"} {
			if max(math.Abs(vmin), math.Abs(vmax))/s.divisor < 1024 {
				break
			}
			s.divisor *= 1024
			s.unit = u
		}
	}
	s.step = niceStep((vmax-vmin)/s.divisor/chartTicks) * s.divisor
	s.lo = math.Floor(vmin/s.step) * s.step
	s.hi = math.Ceil(vmax/s.step) * s.step
	if s.hi == s.lo {
		s.hi = s.lo + s.step
	}
	// Count rather than accumulate, so rounding cannot add or drop a tick.
	n := int(math.Round((s.hi - s.lo) / s.step))
	for i := 0; i <= n && i <= 4*chartTicks; i++ {
		s.ticks = append(s.ticks, s.lo+float64(i)*s.step)
	}
	return s
}

// label formats tick value v with the decimals its step needs.
func (s valueScale) label(v float64) string {
	decimals := max(0, int(-math.Floor(math.Log10(s.step/s.divisor)+1e-9)))
	text := strconv.FormatFloat(v/s.divisor, 'f', decimals, 64)
	if text == "-0" || strings.Trim(text, "-0.") == "" {
		return "0"
	}
	return text
}

// niceStep returns the smallest of 1, 2 or 5 times a power of ten that is at
// least raw.
func niceStep(raw float64) float64 {
	if raw <= 0 || !isFinite(raw) {
		return 1
	}
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*pow >= raw*(1-1e-9) {
			return m * pow
		}
	}
	return 10 * pow
}

// timeStep returns the smallest round step that cuts span into at most 8
// intervals.
func timeStep(span time.Duration) time.Duration {
	steps := []time.Duration{
		time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
		10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
		100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
		time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
		24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 28 * 24 * time.Hour,
	}
	// Intervals are counted by division: 8*step overflows for spans of
	// centuries, which a corrupt report can hold.
	intervals := func(step time.Duration) time.Duration {
		n := span / step
		if span%step != 0 {
			n++
		}
		return n
	}
	for _, step := range steps {
		if intervals(step) <= 8 {
			return step
		}
	}
	step := steps[len(steps)-1]
	for intervals(step) > 8 {
		step *= 2
	}
	return step
}

// formatElapsed writes d compactly: "0", "250ms", "30s", "1m30s", "2h", "1d6h".
func formatElapsed(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	if d < time.Second && d > -time.Second {
		return d.String()
	}
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		d = -d
	}
	for _, u := range []struct {
		size time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.size; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.size
		}
	}
	if d > 0 { // a fraction of a second left over: rare on a ticked axis
		fmt.Fprintf(&b, "%dms", d.Milliseconds())
	}
	return b.String()
}
