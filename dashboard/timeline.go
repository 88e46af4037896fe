package dashboard

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"html/template"
	"strings"
	"time"
)

// Chart geometry: the SVG's viewBox and the plot inside it.
const (
	chartW, chartH      = 720, 240
	plotLeft, plotRight = 56, 664
	plotTop, plotBottom = 24, 200
)

// terminal reports whether a release in phase has settled: no version
// in flight.
func terminal(phase string) bool {
	switch phase {
	case "Succeeded", "Aborted", "RolledBack", "Failed", "Removed", "Idle":
		return true
	}
	return false
}

// LastRollout is the events of the release's last rollout: from the last
// settled event before a new version began (its baseline at weight 0) to
// the end. A release that never rolled out has just its install.
func LastRollout(events []Event) []Event {
	start := 0
	for i := 1; i < len(events); i++ {
		if terminal(events[i-1].Phase) && !terminal(events[i].Phase) {
			start = i - 1
		}
	}
	return events[start:]
}

// Mark is a labelled point on the chart: a check result, a transition, an
// approval.
type Mark struct {
	X, Y float64
	// Kind is pass, fail, inconclusive, abort, promote, approve or
	// rollback; Label what the mark says on hover and in the legend.
	Kind, Label string
	// Anchor places the mark's caption so it stays inside the chart.
	Anchor string
	Time   time.Time
}

// Chart is a timeline ready to draw.
type Chart struct {
	Title string
	// Path is the weight's step line (SVG path data).
	Path string
	// Points are the line's corners at each event: x, y, the weight.
	Points []ChartPoint
	Marks  []Mark
	Ticks  []Tick
	// From and To are the time axis' ends.
	From, To time.Time
	// Summary says in words what the chart shows (its <desc>).
	Summary string
}

// ChartPoint is the weight at an event.
type ChartPoint struct {
	X, Y   float64
	Weight int
	Time   time.Time
}

// Tick is a time-axis label.
type Tick struct {
	X     float64
	Label string
}

// NewChart lays out events (oldest first) on the time axis from the first
// event to end (the last event when end is earlier).
func NewChart(title string, events []Event, end time.Time) *Chart {
	c := &Chart{Title: title}
	if len(events) == 0 {
		c.Summary = "no transitions recorded"
		return c
	}
	c.From, c.To = events[0].Time, events[len(events)-1].Time
	if end.After(c.To) {
		c.To = end
	}
	span := c.To.Sub(c.From)
	if span <= 0 {
		span = time.Second
		c.To = c.From.Add(span)
	}
	x := func(t time.Time) float64 {
		return round1(plotLeft + float64(t.Sub(c.From))/float64(span)*(plotRight-plotLeft))
	}
	y := func(w int) float64 { return round1(plotBottom - float64(w)/100*(plotBottom-plotTop)) }
	var d strings.Builder
	passed, failed, maxW := 0, 0, 0
	for i, e := range events {
		px, py := x(e.Time), y(e.Weight)
		if i == 0 {
			fmt.Fprintf(&d, "M%g %g", px, py)
		} else {
			fmt.Fprintf(&d, " H%g V%g", px, py)
		}
		c.Points = append(c.Points, ChartPoint{X: px, Y: py, Weight: e.Weight, Time: e.Time})
		maxW = max(maxW, e.Weight)
		for _, ch := range e.Checks {
			kind := ch.Verdict
			switch kind {
			case "pass":
				passed++
			case "fail":
				failed++
			default:
				kind = "inconclusive"
			}
			c.Marks = append(c.Marks, Mark{X: px, Y: py, Kind: kind, Label: fmt.Sprintf("check %s = %s (%s)", ch.Name, ch.Value, ch.Verdict), Time: e.Time})
		}
		if m, ok := transitionMark(e, i > 0 && events[i-1].Phase == e.Phase); ok {
			m.X, m.Y, m.Time, m.Anchor = px, py, e.Time, "middle"
			if px < plotLeft+40 {
				m.Anchor = "start"
			} else if px > plotRight-40 {
				m.Anchor = "end"
			}
			c.Marks = append(c.Marks, m)
		}
	}
	fmt.Fprintf(&d, " H%g", x(c.To))
	c.Path = d.String()
	for i := 0; i <= 4; i++ {
		t := c.From.Add(span * time.Duration(i) / 4)
		c.Ticks = append(c.Ticks, Tick{X: x(t), Label: t.UTC().Format("15:04:05")})
	}
	c.Summary = fmt.Sprintf("canary weight from %s to %s UTC: %d transitions, highest weight %d%%, %d check results passed, %d failed; ends %s",
		c.From.UTC().Format(time.RFC3339), c.To.UTC().Format(time.RFC3339), len(events), maxW, passed, failed, events[len(events)-1].Phase)
	return c
}

// transitionMark is the mark an event earns: an abort, a rollback, a
// promotion, a gate's approval.
func transitionMark(e Event, samePhase bool) (Mark, bool) {
	switch {
	case e.RollbackTo != "":
		return Mark{Kind: "rollback", Label: fmt.Sprintf("rolled back from %s to %s", short(e.RollbackFrom), short(e.RollbackTo))}, true
	case e.Phase == "Aborted" && !samePhase:
		return Mark{Kind: "abort", Label: "aborted: " + firstLine(e.Message)}, true
	case e.Phase == "RolledBack" && !samePhase:
		return Mark{Kind: "rollback", Label: "rolled back: " + firstLine(e.Message)}, true
	case e.Phase == "Succeeded" && strings.HasPrefix(e.Message, "promoted"):
		return Mark{Kind: "promote", Label: firstLine(e.Message)}, true
	case strings.HasPrefix(e.Message, "gate ") && strings.Contains(e.Message, " approved"):
		return Mark{Kind: "approve", Label: fmt.Sprintf("%s (spec commit %s)", firstLine(e.Message), short(e.Revision))}, true
	}
	return Mark{}, false
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func short(s string) string {
	if len(s) > 7 {
		return s[:7]
	}
	return s
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

// SVG draws the chart as a standalone SVG document (for files, PR
// comments and docs) or, inline, as an element of a page.
func (c *Chart) SVG(standalone bool) ([]byte, error) {
	var b bytes.Buffer
	if standalone {
		b.WriteString(xml.Header)
	}
	err := chartTemplate.Execute(&b, struct {
		*Chart
		Standalone       bool
		W, H             int
		Left, Right      int
		Top, Bottom, Mid float64
	}{c, standalone, chartW, chartH, plotLeft, plotRight, plotTop, plotBottom, (plotTop + plotBottom) / 2})
	return b.Bytes(), err
}

var chartTemplate = template.Must(template.New("chart").Parse(`<svg {{if .Standalone}}xmlns="http://www.w3.org/2000/svg" {{end}}class="timeline" viewBox="0 0 {{.W}} {{.H}}" role="img" aria-labelledby="tl-title tl-desc" font-family="sans-serif" font-size="11">
<title id="tl-title">{{.Title}}</title>
<desc id="tl-desc">{{.Summary}}</desc>
<rect x="0" y="0" width="{{.W}}" height="{{.H}}" fill="#fff"/>
<g stroke="#ccc" stroke-width="1">
<line x1="{{.Left}}" y1="{{.Top}}" x2="{{.Right}}" y2="{{.Top}}"/>
<line x1="{{.Left}}" y1="{{.Mid}}" x2="{{.Right}}" y2="{{.Mid}}" stroke-dasharray="3 3"/>
<line x1="{{.Left}}" y1="{{.Bottom}}" x2="{{.Right}}" y2="{{.Bottom}}"/>
</g>
<g fill="#333" text-anchor="end">
<text x="{{.Left}}" dx="-6" y="{{.Top}}" dy="4">100%</text>
<text x="{{.Left}}" dx="-6" y="{{.Mid}}" dy="4">50%</text>
<text x="{{.Left}}" dx="-6" y="{{.Bottom}}" dy="4">0%</text>
</g>
<g fill="#333" text-anchor="middle">{{range .Ticks}}
<text x="{{.X}}" y="{{$.Bottom}}" dy="16">{{.Label}}</text>{{end}}
<text x="{{.Right}}" y="{{$.Bottom}}" dy="30">UTC</text>
</g>
{{if .Path}}<path class="weight" d="{{.Path}}" fill="none" stroke="#1f5fbf" stroke-width="2"/>{{end}}
<g class="points" fill="#1f5fbf">{{range .Points}}
<circle cx="{{.X}}" cy="{{.Y}}" r="2.5"><title>{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}: weight {{.Weight}}%</title></circle>{{end}}
</g>
<g class="marks">{{range .Marks}}
<g class="mark {{.Kind}}" transform="translate({{.X}} {{.Y}})"><title>{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}: {{.Label}}</title>{{if eq .Kind "pass"}}<circle r="5" fill="#1a7f37"/><path d="M-2.5 0 L-0.5 2.5 L3 -2.5" stroke="#fff" stroke-width="1.5" fill="none"/>{{else if eq .Kind "fail"}}<rect x="-5" y="-5" width="10" height="10" fill="#cf222e"/><path d="M-3 -3 L3 3 M3 -3 L-3 3" stroke="#fff" stroke-width="1.5"/>{{else if eq .Kind "inconclusive"}}<circle r="5" fill="#9a6700"/><text y="3.5" text-anchor="middle" fill="#fff" font-size="9">?</text>{{else if eq .Kind "abort"}}<path d="M0 -7 L7 6 L-7 6 Z" fill="#cf222e"/><text y="-10" text-anchor="{{.Anchor}}" fill="#cf222e">aborted</text>{{else if eq .Kind "rollback"}}<path d="M0 -7 L7 6 L-7 6 Z" fill="#8250df"/><text y="-10" text-anchor="{{.Anchor}}" fill="#8250df">rolled back</text>{{else if eq .Kind "promote"}}<path d="M0 -7 L7 0 L0 7 L-7 0 Z" fill="#1a7f37"/><text y="-10" text-anchor="{{.Anchor}}" fill="#1a7f37">promoted</text>{{else if eq .Kind "approve"}}<path d="M-6 -6 H6 V6 H-6 Z" fill="#0969da"/><text y="-10" text-anchor="{{.Anchor}}" fill="#0969da">approved</text>{{end}}</g>{{end}}
</g>
</svg>
`))
