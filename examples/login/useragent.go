package main

import (
	"strings"
)

// browserSummary turns a User-Agent header into what the approval request shows the user as
// "Browser", such as "Firefox 133 on macOS": enough to recognise their own browser, or to notice
// one that is not theirs. Only the common browsers and systems are named; anything else is
// "Unknown browser" (with the system when known). The result is made only of the names below and
// at most four digits, so nothing the client sent is passed on as it is.
func browserSummary(ua string) string {
	name, version := browserOf(ua)
	summary := "Unknown browser"
	if name != "" {
		summary = name
		if version != "" {
			summary += " " + version
		}
	}
	if os := systemOf(ua); os != "" {
		summary += " on " + os
	}
	return summary
}

// browsers are checked in order: many browsers also say "Chrome" and "Safari" (Edge, Opera,
// Samsung Internet, Chrome itself says "Safari"), so the more particular tokens come first.
var browsers = []struct{ token, name string }{
	{"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"EdgiOS/", "Edge"},
	{"OPR/", "Opera"}, {"OPX/", "Opera"},
	{"SamsungBrowser/", "Samsung Internet"},
	{"Vivaldi/", "Vivaldi"},
	{"YaBrowser/", "Yandex Browser"},
	{"FxiOS/", "Firefox"}, {"Firefox/", "Firefox"},
	{"CriOS/", "Chrome"}, {"HeadlessChrome/", "Headless Chrome"}, {"Chrome/", "Chrome"},
}

// browserOf returns the browser's name and major version, or "" when it is none it knows.
func browserOf(ua string) (name, version string) {
	for _, b := range browsers {
		if i := strings.Index(ua, b.token); i >= 0 {
			return b.name, majorVersion(ua[i+len(b.token):])
		}
	}
	// Safari says "Version/18.1 … Safari/605.1.15": its version is the Version token's.
	if strings.Contains(ua, "Safari/") && (strings.Contains(ua, "Macintosh") || strings.Contains(ua, "iPhone") || strings.Contains(ua, "iPad")) {
		if i := strings.Index(ua, "Version/"); i >= 0 {
			return "Safari", majorVersion(ua[i+len("Version/"):])
		}
		return "Safari", ""
	}
	return "", ""
}

// majorVersion reads the leading digits of s ("133.0" → "133"), at most four; "" if none.
func majorVersion(s string) string {
	n := 0
	for n < len(s) && n < 4 && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	if n < len(s) && s[n] >= '0' && s[n] <= '9' {
		return "" // more than four digits: not a version
	}
	return s[:n]
}

// systems are checked in order: Android says "Linux", iPhones and iPads say "like Mac OS X",
// ChromeOS says "X11".
var systems = []struct{ token, name string }{
	{"Windows Phone", "Windows Phone"},
	{"Windows", "Windows"},
	{"iPhone", "iOS"}, {"iPod", "iOS"},
	{"iPad", "iPadOS"},
	{"Android", "Android"},
	{"CrOS", "ChromeOS"},
	{"Macintosh", "macOS"}, {"Mac OS X", "macOS"},
	{"Linux", "Linux"}, {"X11", "Linux"},
	{"FreeBSD", "FreeBSD"}, {"OpenBSD", "OpenBSD"},
}

// systemOf returns the operating system's name, or "" when it is none it knows.
func systemOf(ua string) string {
	for _, s := range systems {
		if strings.Contains(ua, s.token) {
			return s.name
		}
	}
	return ""
}
