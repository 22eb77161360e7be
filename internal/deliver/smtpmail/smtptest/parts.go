package smtptest

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
)

// Parts parses data, a message as the server received it, and returns its headers and the
// content of its text/plain and text/html parts ("" for a part it does not have), decoded from
// quoted-printable or base64. It finds the parts in a single-part message or in (nested)
// multipart bodies; the first part of each type wins. The line break that ends a part is not
// part of its content and is trimmed. Header values are as sent: decode an encoded Subject
// with mime.WordDecoder. Parts fails tb on a malformed message.
func Parts(tb testing.TB, data []byte) (header mail.Header, text, html string) {
	tb.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		tb.Fatalf("smtptest: parse message: %v\n%s", err, data)
	}
	found := map[string]string{}
	walkPart(tb, msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body, found)
	return msg.Header, found["text/plain"], found["text/html"]
}

// walkPart records the decoded content of a text/plain or text/html part in found, or walks
// the parts of a multipart body.
func walkPart(tb testing.TB, contentType, encoding string, body io.Reader, found map[string]string) {
	tb.Helper()
	mediaType, params := "text/plain", map[string]string{} // RFC 2045's default
	if contentType != "" {
		var err error
		if mediaType, params, err = mime.ParseMediaType(contentType); err != nil {
			tb.Fatalf("smtptest: Content-Type %q: %v", contentType, err)
		}
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart() // NextPart would decode quoted-printable, but not base64
			if err == io.EOF {
				return
			}
			if err != nil {
				tb.Fatalf("smtptest: multipart: %v", err)
			}
			walkPart(tb, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p, found)
		}
	}
	if mediaType != "text/plain" && mediaType != "text/html" {
		return
	}
	if _, ok := found[mediaType]; ok {
		return
	}
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body) // skips line breaks
	}
	b, err := io.ReadAll(body)
	if err != nil {
		tb.Fatalf("smtptest: decode %s %s part: %v", encoding, mediaType, err)
	}
	found[mediaType] = strings.TrimRight(string(b), "\r\n")
}
