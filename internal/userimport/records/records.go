// Package records reads the input files of twofold import, line by line: a user file (CSV or
// JSON Lines) for from-file, a list of authy_ids (with optional emails) for from-authy. Every
// line is bounded, no field spans lines, and each record knows its line, so an error names it.
// It reads types and shapes only; userimport.Check judges the values. It also finds the
// authy_ids and phone numbers that more than one record of an input has (Duplicates), and
// gives the readers of single fields it uses (JSONText, PhoneDigits, NormalSecret, IsNumber,
// Printable) to the other readers of users, such as the Authy export client.
//
// Its messages are written for the people running twofold import, who see them in its report.
package records

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/twofold-auth/twofold/internal/userimport"
	"github.com/twofold-auth/twofold/internal/wiretext"
)

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

// Format is how a user file is written.
type Format string

// The formats of a user file.
const (
	CSV   Format = "csv"   // one record a line, with or without a header line
	JSONL Format = "jsonl" // JSON Lines: one object a line
)

// LineError is what is wrong with the record on one line; reading goes on after it.
type LineError struct {
	Line   int
	ID     int64  // the record's authy_id; 0 when it could not be read
	Reason string // for a report line
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

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

// Reader reads the records of an input file. allowed is how many of columns it knows
// (a prefix: 2 for a list of ids and emails, all for a user file); a CSV line without a header
// has at least minFields of them, in that order.
type Reader struct {
	lr        *inputLines
	format    Format
	allowed   int
	minFields int
	started   bool
	header    []int // CSV: the column of each field, from the header line; nil without one
	ragged    bool  // a line may leave out the header's last columns (a list's emails)
	fields    []string
	vals      [7]string
}

// NewUserReader reads a user file (from-file): authy_id, email, country_code, phone and,
// optionally, totp_secret, totp_digits and totp_period.
func NewUserReader(r io.Reader, format Format) *Reader {
	return &Reader{lr: newInputLines(r), format: format, allowed: len(columns), minFields: 4}
}

// NewIDReader reads a list of ids (from-authy): authy_id, optionally followed by email, always
// CSV (one id a line is CSV too).
func NewIDReader(r io.Reader) *Reader {
	return &Reader{lr: newInputLines(r), format: CSV, allowed: 2, minFields: 1, ragged: true}
}

// Next returns the next record, with its Line set. The error is a *LineError for a record that
// is wrong (reading goes on), io.EOF at the end, or any other error when reading cannot go on
// (the file cannot be read, a CSV header is wrong).
func (rr *Reader) Next() (userimport.Record, error) {
	for {
		text, tooLong, err := rr.lr.next()
		if err != nil {
			return userimport.Record{}, err
		}
		line := rr.lr.line
		if tooLong {
			return userimport.Record{Line: line}, &LineError{Line: line, Reason: fmt.Sprintf("the line is longer than %d bytes", maxLine)}
		}
		if len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		if !utf8.Valid(text) {
			return userimport.Record{Line: line}, &LineError{Line: line, Reason: "the line is not UTF-8 text"}
		}
		first := !rr.started
		rr.started = true
		var msg string
		switch rr.format {
		case JSONL:
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
			return userimport.Record{Line: line, ID: idOf(rr.vals[colID])}, &LineError{Line: line, ID: idOf(rr.vals[colID]), Reason: msg}
		}
		r, err := toRecord(rr.vals, line)
		if err != nil {
			return userimport.Record{Line: line, ID: r.ID}, &LineError{Line: line, ID: r.ID, Reason: err.Error()}
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
func (rr *Reader) fromCSV(text string, first bool) (isHeader bool, msg string, err error) {
	rr.vals = [7]string{}
	fields, ferr := splitCSV(text, rr.fields)
	if ferr != nil {
		return false, ferr.Error(), nil
	}
	rr.fields = fields
	if first && len(fields) > 0 && !IsNumber(fields[0]) {
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
func (rr *Reader) wantFields() string {
	names := strings.Join(columns[:rr.minFields], ",")
	if rr.allowed > rr.minFields {
		names += "[," + strings.Join(columns[rr.minFields:rr.allowed], ",") + "]"
	}
	return names
}

func (rr *Reader) readHeader(fields []string) error {
	known := columns[:rr.allowed]
	seen := map[int]bool{}
	for _, f := range fields {
		name := strings.ToLower(f)
		i := indexOf(known, name)
		switch {
		case i < 0:
			return fmt.Errorf("unknown column %q in the header (the columns are %s)", wiretext.ClipN(f, 40), strings.Join(known, ", "))
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
func (rr *Reader) fromJSON(text []byte) string {
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
			return fmt.Sprintf("unknown field %s (the fields are %s)", wiretext.ClipN(strings.TrimPrefix(err.Error(), "json: unknown field "), 40),
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
		v, msg := JSONText(f.raw, f.number, f.strings)
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
		return r, fmt.Errorf("authy_id: want a whole number, got %q", wiretext.ClipN(id, 24))
	}
	r.ID = n
	if cc := vals[colCountry]; cc != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(cc, "+"))
		if err != nil || !IsNumber(cc) {
			return r, fmt.Errorf("country_code: want a number, got %q", wiretext.ClipN(cc, 24))
		}
		r.CountryCode = n
	}
	if p := vals[colPhone]; p != "" {
		digits, ok := PhoneDigits(p, r.CountryCode)
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
	r.Secret = NormalSecret(vals[colSecret])
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
			return r, fmt.Errorf("%s: want a whole number, got %q", columns[f.col], wiretext.ClipN(v, 24))
		}
		*f.to = n
	}
	return r, nil
}

// FormatOf decides how a user file is written: flag (the --format given: csv, jsonl, ndjson or
// json; "" or auto to decide), else path's extension, else f's first character ('{' is JSON
// Lines).
func FormatOf(flag, path string, f io.ReaderAt) (Format, error) {
	switch strings.ToLower(flag) {
	case "csv":
		return CSV, nil
	case "jsonl", "ndjson", "json":
		return JSONL, nil
	case "", "auto":
	default:
		return "", fmt.Errorf("--format %q: want csv or jsonl", flag)
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return CSV, nil
	case ".jsonl", ".ndjson", ".json":
		return JSONL, nil
	}
	head := make([]byte, 512)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return "", err
	}
	head = bytes.TrimLeft(bytes.TrimPrefix(head[:n], []byte("\ufeff")), " \t\r\n")
	if len(head) > 0 && head[0] == '{' {
		return JSONL, nil
	}
	return CSV, nil
}
