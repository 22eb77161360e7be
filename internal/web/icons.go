package web

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
)

// The app icon, as in authenticator/icon.svg: a check mark in a ring on an indigo gradient,
// drawn here with signed distance functions so the PNG sizes that browsers and phones want
// (Android's install prompt, iOS's home screen) need no image tools and no build step. All
// lengths are in the SVG's 512-unit space.
const (
	iconCorner = 112.0 // corner radius of the non-maskable icon
	ringR      = 148.0
	ringWidth  = 34.0
	checkWidth = 38.0
)

var (
	iconTop    = [3]float64{0x63, 0x66, 0xf1} // #6366f1
	iconBottom = [3]float64{0x43, 0x38, 0xca} // #4338ca
	checkPts   = [][2]float64{{190, 262}, {238, 310}, {326, 214}}
)

// icons returns the PNG files the manifest and index.html name.
func icons() map[string][]byte {
	return map[string][]byte{
		"icon-192.png":          drawIcon(192, false),
		"icon-512.png":          drawIcon(512, false),
		"icon-maskable-512.png": drawIcon(512, true),
		"apple-touch-icon.png":  drawIcon(180, true), // iOS rounds the corners itself
	}
}

func drawIcon(size int, fullBleed bool) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	scale := 512 / float64(size) // icon units per pixel
	for py := range size {
		for px := range size {
			x, y := (float64(px)+0.5)*scale, (float64(py)+0.5)*scale
			bg := 1.0
			if !fullBleed {
				bg = coverage(roundedSquare(x, y), scale)
			}
			if bg == 0 {
				continue
			}
			mark := math.Max(coverage(math.Abs(math.Hypot(x-256, y-256)-ringR)-ringWidth/2, scale), coverage(check(x, y), scale))
			t := (x + y) / 1024 // diagonal gradient, top left to bottom right
			var c [3]uint8
			for i := range c {
				base := iconTop[i] + (iconBottom[i]-iconTop[i])*t
				c[i] = uint8(math.Round(base + (255-base)*mark))
			}
			img.SetNRGBA(px, py, color.NRGBA{c[0], c[1], c[2], uint8(math.Round(bg * 255))})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic("web: encoding an icon: " + err.Error())
	}
	return buf.Bytes()
}

// coverage turns a signed distance (negative inside) into the pixel's antialiased coverage.
func coverage(d, scale float64) float64 {
	return math.Min(1, math.Max(0, 0.5-d/scale))
}

func roundedSquare(x, y float64) float64 {
	half := 256 - iconCorner
	qx, qy := math.Abs(x-256)-half, math.Abs(y-256)-half
	return math.Hypot(math.Max(qx, 0), math.Max(qy, 0)) + math.Min(math.Max(qx, qy), 0) - iconCorner
}

// check is the distance to the check mark's stroke (round caps and joins).
func check(x, y float64) float64 {
	d := math.Inf(1)
	for i := 1; i < len(checkPts); i++ {
		d = math.Min(d, segment(x, y, checkPts[i-1], checkPts[i]))
	}
	return d - checkWidth/2
}

func segment(x, y float64, a, b [2]float64) float64 {
	dx, dy := b[0]-a[0], b[1]-a[1]
	t := math.Max(0, math.Min(1, ((x-a[0])*dx+(y-a[1])*dy)/(dx*dx+dy*dy)))
	return math.Hypot(x-a[0]-t*dx, y-a[1]-t*dy)
}
