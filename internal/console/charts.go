package console

import (
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Charts are drawn on the server as inline SVG: stacked bars, coloured by CSS classes (no
// script, no inline style), each bar with a <title> that browsers show on hover.

type chart struct {
	Title   string
	Caption string
	SVG     template.HTML
	Legend  []legend
	Total   int64
}

type legend struct {
	Class, Label string
	Total        int64
}

// series is one stacked layer: a value per bar.
type series struct {
	Class, Label string
	Values       []int64
}

// charts are the figures of one application (or all, appID 0): verifications and messages per
// hour over the last 24 hours, and how fast users answered approval requests over 7 days.
func (c *console) charts(r *http.Request, appID int64) ([]chart, error) {
	ctx := r.Context()
	now := c.cfg.Now().UTC()
	first := now.Truncate(time.Hour).Add(-23 * time.Hour)
	hours := make([]time.Time, 24)
	labels := make([]string, 24)
	for i := range hours {
		hours[i] = first.Add(time.Duration(i) * time.Hour)
		labels[i] = hours[i].Format("15:04")
	}
	perHour := func(rows []twofold.HourCount, keys map[string]int, n int) [][]int64 {
		out := make([][]int64, n)
		for i := range out {
			out[i] = make([]int64, 24)
		}
		for _, row := range rows {
			i := int(row.Hour.Sub(first) / time.Hour)
			if k, ok := keys[row.Key]; ok && i >= 0 && i < 24 {
				out[k][i] += row.Count
			}
		}
		return out
	}

	verifications, err := c.d.Queries.VerificationsPerHour(ctx, appID, first)
	if err != nil {
		return nil, err
	}
	v := perHour(verifications, map[string]int{twofold.AuditVerificationOK: 0, twofold.AuditVerificationFailed: 1}, 2)
	caption := "Per hour, last 24 hours (UTC)."
	if c.d.Audit == nil {
		caption += " Counted from the audit trail, which is off."
	}
	out := []chart{stacked("Verifications", caption, labels, 3, []series{
		{Class: "ok", Label: "succeeded", Values: v[0]}, {Class: "bad", Label: "failed", Values: v[1]}})}

	messages, err := c.d.Queries.MessagesPerHour(ctx, appID, first)
	if err != nil {
		return nil, err
	}
	m := perHour(messages, map[string]int{twofold.MessageSent: 0, twofold.MessageRecorded: 1, twofold.MessageSandbox: 1,
		twofold.MessageSending: 1, twofold.MessageFailed: 2}, 3)
	out = append(out, stacked("Codes sent", "Per hour, last 24 hours (UTC): SMS, calls and emails.", labels, 3, []series{
		{Class: "ok", Label: "sent", Values: m[0]}, {Class: "neutral", Label: "kept in the outbox", Values: m[1]},
		{Class: "bad", Label: "failed", Values: m[2]}}))

	times, err := c.d.Queries.AnswerTimes(ctx, appID, now.AddDate(0, 0, -7), 5000)
	if err != nil {
		return nil, err
	}
	bounds := []struct {
		upTo  time.Duration
		label string
	}{{5 * time.Second, "< 5 s"}, {15 * time.Second, "5–15 s"}, {30 * time.Second, "15–30 s"},
		{time.Minute, "30–60 s"}, {5 * time.Minute, "1–5 min"}, {1<<63 - 1, "> 5 min"}}
	approved, denied := make([]int64, len(bounds)), make([]int64, len(bounds))
	blabels := make([]string, len(bounds))
	for i, b := range bounds {
		blabels[i] = b.label
	}
	for _, t := range times {
		i := 0
		for t.Took >= bounds[i].upTo {
			i++
		}
		if t.Status == twofold.Denied {
			denied[i]++
		} else {
			approved[i]++
		}
	}
	out = append(out, stacked("Approval answer times", "How long users took to answer approval requests, last 7 days.", blabels, 1, []series{
		{Class: "ok", Label: "approved", Values: approved}, {Class: "bad", Label: "denied", Values: denied}}))
	return out, nil
}

// stacked draws a stacked bar chart: one bar per label, every labelEvery-th label shown.
func stacked(title, caption string, labels []string, labelEvery int, layers []series) chart {
	const width, height, left, right, top, bottom = 720.0, 200.0, 40.0, 8.0, 10.0, 26.0
	n := len(labels)
	totals := make([]int64, n)
	ch := chart{Title: title, Caption: caption}
	for _, s := range layers {
		var sum int64
		for i, v := range s.Values {
			totals[i] += v
			sum += v
		}
		ch.Legend = append(ch.Legend, legend{Class: s.Class, Label: s.Label, Total: sum})
		ch.Total += sum
	}
	var peak int64
	for _, t := range totals {
		peak = max(peak, t)
	}
	scale := niceCeil(peak)
	plotW, plotH := width-left-right, height-top-bottom
	band := plotW / float64(n)
	y := func(v int64) float64 { return top + plotH - float64(v)/float64(scale)*plotH }

	var b strings.Builder
	esc := template.HTMLEscapeString
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %g %g" role="img" aria-label="%s">`, width, height, esc(title))
	var desc []string
	for _, l := range ch.Legend {
		desc = append(desc, fmt.Sprintf("%d %s", l.Total, l.Label))
	}
	fmt.Fprintf(&b, `<desc>%s: %s</desc>`, esc(title), esc(strings.Join(desc, ", ")))
	ticks := []int64{0, scale}
	if scale >= 2 {
		ticks = []int64{0, scale / 2, scale}
	}
	for _, v := range ticks {
		fmt.Fprintf(&b, `<line class="grid" x1="%g" x2="%g" y1="%.1f" y2="%.1f"/>`, left, width-right, y(v), y(v))
		fmt.Fprintf(&b, `<text class="axis" x="%g" y="%.1f" text-anchor="end">%d</text>`, left-6, y(v)+4, v)
	}
	for i, label := range labels {
		x := left + float64(i)*band + band*0.15
		base := int64(0)
		for _, s := range layers {
			v := s.Values[i]
			if v == 0 {
				continue
			}
			fmt.Fprintf(&b, `<rect class="bar %s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %d %s</title></rect>`,
				esc(s.Class), x, y(base+v), band*0.7, y(base)-y(base+v), esc(label), v, esc(s.Label))
			base += v
		}
		if i%labelEvery == 0 {
			fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%g" text-anchor="middle">%s</text>`, x+band*0.35, height-8, esc(label))
		}
	}
	b.WriteString(`</svg>`)
	ch.SVG = template.HTML(b.String()) // built above from numbers and escaped text only
	return ch
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (at least 1), for the y axis.
func niceCeil(v int64) int64 {
	if v <= 1 {
		return 1
	}
	for p := int64(1); ; p *= 10 {
		for _, m := range []int64{1, 2, 5} {
			if m*p >= v {
				return m * p
			}
		}
	}
}
