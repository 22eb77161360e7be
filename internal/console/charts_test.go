package console

import (
	"regexp"
	"strings"
	"testing"
)

func TestNiceCeil(t *testing.T) {
	for _, tc := range []struct{ in, want int64 }{
		{0, 1}, {1, 1}, {2, 2}, {3, 5}, {5, 5}, {6, 10}, {10, 10}, {11, 20}, {21, 50}, {51, 100}, {999, 1000}, {1001, 2000},
	} {
		if got := niceCeil(tc.in); got != tc.want {
			t.Errorf("niceCeil(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestStackedChart(t *testing.T) {
	ch := stacked("Checks <&>", "caption", []string{"00:00", "01:00", "02:00", "03:00"}, 2, []series{
		{Class: "ok", Label: "succeeded", Values: []int64{0, 3, 1, 0}},
		{Class: "bad", Label: "failed", Values: []int64{0, 1, 0, 0}},
	})
	svg := string(ch.SVG)
	if ch.Total != 5 || len(ch.Legend) != 2 || ch.Legend[0].Total != 4 || ch.Legend[1].Total != 1 {
		t.Fatalf("totals: %+v", ch)
	}
	if strings.Contains(svg, "<&>") || !strings.Contains(svg, "Checks &lt;&amp;&gt;") || strings.Contains(svg, "style=") {
		t.Fatalf("escaping or inline style:\n%s", svg)
	}
	// Three bars with values (zeros are not drawn), the tallest (4 of a scale of 5) stacked.
	bars := regexp.MustCompile(`<rect class="bar (\w+)" x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)"><title>([^<]*)</title>`).FindAllStringSubmatch(svg, -1)
	if len(bars) != 3 {
		t.Fatalf("%d bars:\n%s", len(bars), svg)
	}
	if bars[0][1] != "ok" || bars[0][4] != "01:00: 3 succeeded" || bars[1][1] != "bad" || bars[1][4] != "01:00: 1 failed" {
		t.Fatalf("bars: %v", bars)
	}
	// Axis labels every second bar; the scale's top is 5.
	if !strings.Contains(svg, ">00:00<") || strings.Contains(svg, ">01:00<") || !strings.Contains(svg, ">02:00<") || !strings.Contains(svg, `text-anchor="end">5<`) {
		t.Fatalf("axis:\n%s", svg)
	}
	empty := stacked("Nothing", "", []string{"a"}, 1, []series{{Class: "ok", Label: "x", Values: []int64{0}}})
	if empty.Total != 0 || strings.Contains(string(empty.SVG), "<rect") {
		t.Fatalf("empty chart: %s", empty.SVG)
	}
}
