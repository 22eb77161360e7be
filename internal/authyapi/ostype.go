package authyapi

import "strings"

// What a registered device runs on is its os_type, listed in users/{id}/status `devices` and
// `detailed_devices`. Customers' code, following the Authy tutorials, looks for Authy's values
// there ("iphone", "android"): Authy's device types were unknown, android, android_tablet,
// iphone, ipad, ipod, iwatch, ios, chrome, blackberry (its reporting API), and the app's
// devices were listed by them. A device names its own os_type when it registers; the web
// authenticator says "web" and the server, which sees the browser's User-Agent, says what that
// browser runs on in Authy's terms where one of them is true. A desktop browser is none of them
// ("chrome" was Authy's Chrome app, not any browser), so it stays "web"; the CLI says "cli".

// osWeb is the os_type the web authenticator registers with.
const osWeb = "web"

// webOSType is the os_type of the web authenticator in a browser with this User-Agent whose
// navigator.maxTouchPoints is touchPoints: "iphone", "ipad", "ipod", "android",
// "android_tablet" or "blackberry" where that is what the browser runs on, else "web".
//
// iPadOS's Safari (13 and later) presents itself as a Mac; Macs have no touch screen, so a "Mac"
// with several touch points is an iPad. Android phones' browsers say "Mobile" and tablets' do
// not (Firefox says "Tablet"), Chrome's reduced User-Agent included.
func webOSType(userAgent string, touchPoints int64) string {
	ua := userAgent
	switch {
	// Windows Phone's Edge claims Android and iPhone too, to be served mobile pages.
	case strings.Contains(ua, "Windows Phone"):
		return osWeb
	// "iPod touch; CPU iPhone OS": the iPod first.
	case strings.Contains(ua, "iPod"):
		return "ipod"
	case strings.Contains(ua, "iPhone"):
		return "iphone"
	case strings.Contains(ua, "iPad"):
		return "ipad"
	case strings.Contains(ua, "Macintosh") && touchPoints > 1:
		return "ipad"
	case strings.Contains(ua, "Android"):
		if strings.Contains(ua, "Mobile") {
			return "android"
		}
		return "android_tablet"
	case strings.Contains(ua, "BlackBerry"), strings.Contains(ua, "BB10"):
		return "blackberry"
	}
	return osWeb
}
