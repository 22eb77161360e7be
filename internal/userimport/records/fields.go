package records

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// splitCSV splits one CSV line (RFC 4180, but no field spans lines, as none of ours needs to)
// into fields, trimmed of surrounding spaces, appending them to fields[:0].
func splitCSV(line string, fields []string) ([]string, error) {
	fields = fields[:0]
	i := 0
	for {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i < len(line) && line[i] == '"' {
			var b strings.Builder
			i++
			for {
				j := strings.IndexByte(line[i:], '"')
				if j < 0 {
					return nil, errors.New("a quoted field is not closed on its line")
				}
				b.WriteString(line[i : i+j])
				i += j + 1
				if i < len(line) && line[i] == '"' { // "" is a quote inside quotes
					b.WriteByte('"')
					i++
					continue
				}
				break
			}
			for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
				i++
			}
			fields = append(fields, strings.TrimSpace(b.String()))
			if i == len(line) {
				return fields, nil
			}
			if line[i] != ',' {
				return nil, errors.New("text after a quoted field")
			}
			i++
			continue
		}
		j := strings.IndexByte(line[i:], ',')
		f := line[i:]
		if j >= 0 {
			f = line[i : i+j]
		}
		if strings.IndexByte(f, '"') >= 0 {
			return nil, errors.New("a quote inside a field that does not start with one")
		}
		fields = append(fields, strings.TrimSpace(f))
		if j < 0 {
			return fields, nil
		}
		i += j + 1
	}
}

// IsNumber reports whether s is digits, with an optional leading '+'.
func IsNumber(s string) bool {
	s = strings.TrimPrefix(s, "+")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// JSONText is the text of a JSON string or number ("" for null or absent). numberOK and
// stringOK say which of the two the value may be; problem, when the value is neither or is not
// valid, says so for a report line (and never quotes the value).
func JSONText(raw json.RawMessage, numberOK, stringOK bool) (text, problem string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", ""
	}
	switch c := raw[0]; {
	case c == '"' && stringOK:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", "not a valid JSON string"
		}
		return s, ""
	case (c == '-' || c >= '0' && c <= '9') && numberOK:
		return string(raw), ""
	case numberOK && stringOK:
		return "", "want a number or a string of digits"
	case numberOK:
		return "", "want a number"
	}
	return "", "want a string"
}

// PhoneDigits removes the separators people write in phone numbers; a number written with its
// +country code (matching countryCode) loses it too. ok is false for anything else than digits
// and separators, or no digits at all.
func PhoneDigits(p string, countryCode int) (digits string, ok bool) {
	if strings.HasPrefix(p, "+") {
		prefix := "+" + strconv.Itoa(countryCode)
		if countryCode <= 0 || !strings.HasPrefix(p, prefix) {
			return "", false
		}
		p = p[len(prefix):]
	}
	var b strings.Builder
	for _, c := range p {
		switch {
		case c >= '0' && c <= '9':
			b.WriteRune(c)
		case strings.ContainsRune(" -.()/", c):
		default:
			return "", false
		}
	}
	return b.String(), b.Len() > 0
}

// NormalSecret writes a base32 seed as userimport.Check wants it: without the spaces of its
// display groups, in capitals.
func NormalSecret(s string) string {
	return strings.ToUpper(strings.Join(strings.Fields(s), ""))
}
