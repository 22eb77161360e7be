package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/twofold-auth/twofold/internal/userimport"
)

// The input files of twofold import, read line by line: a user file (CSV or JSON Lines) for
// from-file, a list of authy_ids (with optional emails) for from-authy. Every line is bounded,
// no field spans lines, and each record knows its line, so an error names it.

// columns are the fields of a user file, in the order of a CSV file without a header.
var columns = []string{"authy_id", "email", "country_code", "phone", "totp_secret", "totp_digits", "totp_period"}

const (
	colID = iota
	colEmail
	colCountry
	colPhone
	colSecret
	colDigits
	colPeriod
)

// maxLine bounds a line of input; no record needs a tenth of it.
const maxLine = 64 << 10

type fileFormat string

const (
	formatCSV   fileFormat = "csv"
	formatJSONL fileFormat = "jsonl"
)

// lineError is what is wrong with the record on one line; reading goes on after it.
type lineError struct {
	line int
	id   int64 // 0 when it could not be read
	msg  string
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// inputLines reads an input line by line, numbering them, with a bound on a line's length.
type inputLines struct {
	r    *bufio.Reader
	line int // of the line last returned
}

func newInputLines(r io.Reader) *inputLines {
	return &inputLines{r: bufio.NewReaderSize(r, maxLine)}
}

// next returns the next line without its line end; the text is valid until the next call.
// tooLong reports a line longer than maxLine (its text is nil; the rest of it is skipped).
// At the end it returns io.EOF.
func (lr *inputLines) next() (text []byte, tooLong bool, err error) {
	b, err := lr.r.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		lr.line++
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = lr.r.ReadSlice('\n')
		}
		if err != nil && err != io.EOF {
			return nil, false, err
		}
		return nil, true, nil
	case err == io.EOF && len(b) == 0:
		return nil, false, io.EOF
	case err != nil && err != io.EOF:
		return nil, false, err
	}
	lr.line++
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if lr.line == 1 {
		b = bytes.TrimPrefix(b, []byte("\ufeff")) // spreadsheets start their CSV files with a BOM
	}
	return b, false, nil
}

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

// recordReader reads the records of an input file. allowed is how many of columns it knows
// (a prefix: 2 for a list of ids and emails, all for a user file); a CSV line without a header
// has at least minFields of them, in that order.
type recordReader struct {
	lr        *inputLines
	format    fileFormat
	allowed   int
	minFields int
	started   bool
	header    []int // CSV: the column of each field, from the header line; nil without one
	ragged    bool  // a line may leave out the header's last columns (a list's emails)
	fields    []string
	vals      [7]string
}

// newUserReader reads a user file (from-file); newIDReader a list of ids (from-authy).
func newUserReader(r io.Reader, format fileFormat) *recordReader {
	return &recordReader{lr: newInputLines(r), format: format, allowed: len(columns), minFields: 4}
}

func newIDReader(r io.Reader) *recordReader {
	return &recordReader{lr: newInputLines(r), format: formatCSV, allowed: 2, minFields: 1, ragged: true}
}

// next returns the next record, with its Line set. The error is a *lineError for a record that
// is wrong (reading goes on), io.EOF at the end, or any other error when reading cannot go on
// (the file cannot be read, a CSV header is wrong).
func (rr *recordReader) next() (userimport.Record, error) {
	for {
		text, tooLong, err := rr.lr.next()
		if err != nil {
			return userimport.Record{}, err
		}
		line := rr.lr.line
		if tooLong {
			return userimport.Record{Line: line}, &lineError{line: line, msg: fmt.Sprintf("the line is longer than %d bytes", maxLine)}
		}
		if len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		if !utf8.Valid(text) {
			return userimport.Record{Line: line}, &lineError{line: line, msg: "the line is not UTF-8 text"}
		}
		first := !rr.started
		rr.started = true
		var msg string
		switch rr.format {
		case formatJSONL:
			msg = rr.fromJSON(text)
		default:
			var isHeader bool
			isHeader, msg, err = rr.fromCSV(string(text), first)
			if err != nil {
				return userimport.Record{}, fmt.Errorf("line %d: %w", line, err)
			}
			if isHeader {
				continue
			}
		}
		if msg != "" {
			return userimport.Record{Line: line, ID: idOf(rr.vals[colID])}, &lineError{line: line, id: idOf(rr.vals[colID]), msg: msg}
		}
		r, err := toRecord(rr.vals, line)
		if err != nil {
			return userimport.Record{Line: line, ID: r.ID}, &lineError{line: line, id: r.ID, msg: err.Error()}
		}
		return r, nil
	}
}

// idOf is the id a field holds, or 0, for naming the record in an error.
func idOf(s string) int64 {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 0 {
		return 0
	}
	return id
}

// fromCSV reads the fields of a CSV line into vals. The first line is a header when its first
// field is not a number: its names say which column each field is. A wrong header stops the
// reading (err), since no line after it can be read rightly.
func (rr *recordReader) fromCSV(text string, first bool) (isHeader bool, msg string, err error) {
	rr.vals = [7]string{}
	fields, ferr := splitCSV(text, rr.fields)
	if ferr != nil {
		return false, ferr.Error(), nil
	}
	rr.fields = fields
	if first && len(fields) > 0 && !isNumber(fields[0]) {
		return true, "", rr.readHeader(fields)
	}
	if rr.header != nil {
		if len(fields) != len(rr.header) && !(rr.ragged && len(fields) < len(rr.header)) {
			return false, fmt.Sprintf("%d fields, but the header has %d", len(fields), len(rr.header)), nil
		}
		for i, f := range fields {
			rr.vals[rr.header[i]] = f
		}
		return false, "", nil
	}
	if len(fields) < rr.minFields || len(fields) > rr.allowed {
		return false, fmt.Sprintf("%d fields, want %s", len(fields), rr.wantFields()), nil
	}
	copy(rr.vals[:], fields)
	return false, "", nil
}

// wantFields describes a line without a header.
func (rr *recordReader) wantFields() string {
	names := strings.Join(columns[:rr.minFields], ",")
	if rr.allowed > rr.minFields {
		names += "[," + strings.Join(columns[rr.minFields:rr.allowed], ",") + "]"
	}
	return names
}

func (rr *recordReader) readHeader(fields []string) error {
	known := columns[:rr.allowed]
	seen := map[int]bool{}
	for _, f := range fields {
		name := strings.ToLower(f)
		i := indexOf(known, name)
		switch {
		case i < 0:
			return fmt.Errorf("unknown column %q in the header (the columns are %s)", printable(f, 40), strings.Join(known, ", "))
		case seen[i]:
			return fmt.Errorf("column %s twice in the header", name)
		}
		seen[i] = true
		rr.header = append(rr.header, i)
	}
	if !seen[colID] {
		return errors.New("the header has no authy_id column")
	}
	return nil
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

func isNumber(s string) bool {
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

// jsonUser is one line of a JSON Lines user file; each value is checked for its type below.
type jsonUser struct {
	AuthyID     json.RawMessage `json:"authy_id"`
	Email       json.RawMessage `json:"email"`
	CountryCode json.RawMessage `json:"country_code"`
	Phone       json.RawMessage `json:"phone"`
	Secret      json.RawMessage `json:"totp_secret"`
	Digits      json.RawMessage `json:"totp_digits"`
	Period      json.RawMessage `json:"totp_period"`
}

// fromJSON reads one JSON object into vals; it returns what is wrong with it, or "".
func (rr *recordReader) fromJSON(text []byte) string {
	rr.vals = [7]string{}
	var u jsonUser
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&u); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field == "":
			return "want a JSON object"
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return fmt.Sprintf("unknown field %s (the fields are %s)", printable(strings.TrimPrefix(err.Error(), "json: unknown field "), 40),
				strings.Join(columns, ", "))
		}
		return "not valid JSON"
	}
	if _, err := dec.Token(); err != io.EOF {
		return "more than one JSON value on the line"
	}
	for _, f := range []struct {
		col             int
		raw             json.RawMessage
		number, strings bool
	}{
		{colID, u.AuthyID, true, true}, {colEmail, u.Email, false, true}, {colCountry, u.CountryCode, true, true},
		{colPhone, u.Phone, false, true}, {colSecret, u.Secret, false, true}, {colDigits, u.Digits, true, true},
		{colPeriod, u.Period, true, true},
	} {
		v, msg := jsonText(f.raw, f.number, f.strings)
		if msg != "" {
			if f.col == colPhone && msg == "want a string" {
				msg += " (a JSON number loses leading zeros)"
			}
			return columns[f.col] + ": " + msg
		}
		rr.vals[f.col] = strings.TrimSpace(v)
	}
	return ""
}

// jsonText is the text of a JSON string or number ("" for null or absent).
func jsonText(raw json.RawMessage, numberOK, stringOK bool) (string, string) {
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

// toRecord reads the text of the fields into a Record: types and shapes only; userimport.Check
// judges the values.
func toRecord(vals [7]string, line int) (userimport.Record, error) {
	r := userimport.Record{Line: line, Email: vals[colEmail]}
	id := vals[colID]
	if id == "" {
		return r, errors.New("authy_id is missing")
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return r, fmt.Errorf("authy_id: want a whole number, got %q", printable(id, 24))
	}
	r.ID = n
	if cc := vals[colCountry]; cc != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(cc, "+"))
		if err != nil || !isNumber(cc) {
			return r, fmt.Errorf("country_code: want a number, got %q", printable(cc, 24))
		}
		r.CountryCode = n
	}
	if p := vals[colPhone]; p != "" {
		digits, ok := phoneDigits(p, r.CountryCode)
		if !ok {
			return r, errors.New("phone: want the national number, digits with optional spaces, dashes, dots or parentheses")
		}
		r.Phone = digits
	}
	switch {
	case r.Phone != "" && vals[colCountry] == "":
		return r, errors.New("phone without country_code")
	case r.Phone == "" && vals[colCountry] != "":
		return r, errors.New("country_code without phone")
	}
	r.Secret = normalSecret(vals[colSecret])
	for _, f := range []struct {
		col int
		to  *int
	}{{colDigits, &r.Digits}, {colPeriod, &r.Period}} {
		v := vals[f.col]
		if v == "" {
			continue
		}
		if r.Secret == "" {
			return r, fmt.Errorf("%s without totp_secret", columns[f.col])
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return r, fmt.Errorf("%s: want a whole number, got %q", columns[f.col], printable(v, 24))
		}
		*f.to = n
	}
	return r, nil
}

// phoneDigits removes the separators people write in phone numbers; a number written with its
// +country code (matching countryCode) loses it too.
func phoneDigits(p string, countryCode int) (string, bool) {
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

// normalSecret writes a base32 seed as Check wants it: without the spaces of its display
// groups, in capitals.
func normalSecret(s string) string {
	return strings.ToUpper(strings.Join(strings.Fields(s), ""))
}

// printable makes text from a file or a remote answer safe to print on a terminal: control
// characters become '?', and it is cut to max runes.
func printable(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			b.WriteString("…")
			break
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError {
			r = '?'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// formatOf decides how a user file is written: --format, else its extension, else its first
// character ('{' is JSON Lines).
func formatOf(flag, path string, f *os.File) (fileFormat, error) {
	switch strings.ToLower(flag) {
	case "csv":
		return formatCSV, nil
	case "jsonl", "ndjson", "json":
		return formatJSONL, nil
	case "", "auto":
	default:
		return "", fmt.Errorf("--format %q: want csv or jsonl", flag)
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return formatCSV, nil
	case ".jsonl", ".ndjson", ".json":
		return formatJSONL, nil
	}
	head := make([]byte, 512)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return "", err
	}
	head = bytes.TrimLeft(bytes.TrimPrefix(head[:n], []byte("\ufeff")), " \t\r\n")
	if len(head) > 0 && head[0] == '{' {
		return formatJSONL, nil
	}
	return formatCSV, nil
}

// openInput opens the input file; "-" is standard input, copied to a temporary file first so
// it can be read twice (checked, then imported). done closes (and removes) it.
func openInput(path string, stdin io.Reader) (f *os.File, done func(), err error) {
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, err
		}
		if info, err := f.Stat(); err != nil || !info.Mode().IsRegular() {
			f.Close()
			return nil, nil, fmt.Errorf("%s is not a regular file (give - and pipe it to standard input)", path)
		}
		return f, func() { f.Close() }, nil
	}
	if stdin == nil {
		return nil, nil, errors.New("no standard input")
	}
	f, err = os.CreateTemp("", "twofold-import-*")
	if err != nil {
		return nil, nil, err
	}
	done = func() { f.Close(); os.Remove(f.Name()) }
	if _, err := io.Copy(f, stdin); err != nil {
		done()
		return nil, nil, fmt.Errorf("reading standard input: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		done()
		return nil, nil, err
	}
	return f, done, nil
}
