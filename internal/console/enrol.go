package console

import (
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/verify"
)

// An operator's enrolment (`twofold admin create` or `enrol`) prints a link to this page: the
// QR code of their new TOTP seed, for an authenticator app to scan. The link is the capability,
// as the API's QR images are: unguessable, short-lived, dead once the operator enrols again.
// Only the console's own seeds are shown here.

type enrolData struct {
	Account string
	QR      template.URL // a data: URL of the PNG
	Secret  string       // base32, in groups, for typing by hand
	URI     template.URL // otpauth://, which opens an authenticator app on a phone
}

func (c *console) enrolment(w http.ResponseWriter, r *http.Request) {
	// The address holds the capability: no Referer carries it anywhere.
	w.Header().Set("Referrer-Policy", "no-referrer")
	gone := func() {
		c.render(w, r, http.StatusNotFound, "message", &view{Title: "Link expired", Data: message{
			Heading: "This link has expired",
			Text:    "An enrolment link works for a short while, and only until the next enrolment. Ask for a new one on the server:",
			Code:    "twofold admin enrol EMAIL", Link: "/console/signin", LinkText: "Sign in"}})
	}
	if c.d.EnrolmentQR == nil {
		gone()
		return
	}
	uri, _, err := c.d.EnrolmentQR.QR(r.Context(), r.PathValue("token"))
	if errors.Is(err, verify.ErrQRGone) {
		gone()
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	key, err := otp.ParseURI(uri)
	if err != nil || key.Issuer != apps.ConsoleName { // a customer's user's seed is not the console's to show
		gone()
		return
	}
	png, err := verify.QRPNG(uri, 264)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "enrol", &view{Title: "Set up your second factor", Data: enrolData{
		Account: key.Account, Secret: groups(otp.EncodeSecret(key.TOTP.Secret), 4),
		URI: template.URL(uri), // made by the server (verify.Enroll), and parsed as otpauth:// above
		// A data: URL the template must not filter: the console's own PNG, base64.
		QR: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png)),
	}})
}

// groups writes s in groups of n characters, for reading aloud or typing.
func groups(s string, n int) string {
	var out []byte
	for i := 0; i < len(s); i++ {
		if i > 0 && i%n == 0 {
			out = append(out, ' ')
		}
		out = append(out, s[i])
	}
	return string(out)
}
