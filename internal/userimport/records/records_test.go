package records

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/twofold-auth/twofold/internal/userimport"
)

func TestSplitCSV(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
		err  string
	}{
		{"1,a@example.com,1,2015550123", []string{"1", "a@example.com", "1", "2015550123"}, ""},
		{" 1 , a@example.com ,1,", []string{"1", "a@example.com", "1", ""}, ""},
		{`1,"Ann, ""the"" admin",1,"(201) 555-0123"`, []string{"1", `Ann, "the" admin`, "1", "(201) 555-0123"}, ""},
		{`1, "quoted" ,x`, []string{"1", "quoted", "x"}, ""},
		{"", []string{""}, ""},
		{`1,"open`, nil, "not closed"},
		{`1,"a"b`, nil, "after a quoted field"},
		{`1,a"b`, nil, "a quote inside"},
	} {
		got, err := splitCSV(tc.line, nil)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one saying %q", tc.line, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.line, err)
		case tc.err == "" && !reflect.DeepEqual(got, tc.want):
			t.Errorf("%q: %q, want %q", tc.line, got, tc.want)
		}
	}
}

// readAll reads every record and error of an input, as "line: message" for the errors.
func readAll(t *testing.T, rr *Reader) (recs []userimport.Record, errs []string, fatal error) {
	t.Helper()
	for {
		r, err := rr.Next()
		var lerr *LineError
		switch {
		case err == io.EOF:
			return recs, errs, nil
		case errors.As(err, &lerr):
			if lerr.Line != r.Line || lerr.ID != r.ID {
				t.Errorf("record %+v does not carry the error's line %d and id %d", r, lerr.Line, lerr.ID)
			}
			errs = append(errs, lerr.Error())
		case err != nil:
			return recs, errs, err
		default:
			recs = append(recs, r)
		}
	}
}

func TestUserFileCSV(t *testing.T) {
	const file = "\ufeffauthy_id,phone,country_code,email,totp_secret,totp_period\r\n" +
		"17,(201) 555-0123,1,ann@example.com,jbsw y3dp ehpk 3pxp,60\r\n" +
		"\r\n" +
		"18,,,bob@example.com,,\n" +
		"19,+44 7911 123456,44,,,\n" +
		"x1,,,,,\n" +
		"20,2015550123,,,,\n" +
		"21,,1,,,\n" +
		"22,2015550124,1,,,\n" + // a sixth field only
		"23,201555012a,1,,,\n" +
		"24,,,,,30\n" +
		"25,,,,\n" +
		"26,+1 201 555 0125,44,,,\n" +
		"99999999999999999999,,,,,\n" +
		"27,2015550126,+1,,,\n"
	recs, errs, fatal := readAll(t, NewUserReader(strings.NewReader(file), CSV))
	if fatal != nil {
		t.Fatal(fatal)
	}
	wantRecs := []userimport.Record{
		{ID: 17, Email: "ann@example.com", CountryCode: 1, Phone: "2015550123", Secret: "JBSWY3DPEHPK3PXP", Period: 60, Line: 2},
		{ID: 18, Email: "bob@example.com", Line: 4},
		{ID: 19, CountryCode: 44, Phone: "7911123456", Line: 5},
		{ID: 22, CountryCode: 1, Phone: "2015550124", Line: 9},
		{ID: 27, CountryCode: 1, Phone: "2015550126", Line: 15},
	}
	if !reflect.DeepEqual(recs, wantRecs) {
		t.Errorf("records:\n%+v\nwant\n%+v", recs, wantRecs)
	}
	wantErrs := []string{
		`line 6: authy_id: want a whole number, got "x1"`,
		"line 7: phone without country_code",
		"line 8: country_code without phone",
		"line 10: phone: want the national number, digits with optional spaces, dashes, dots or parentheses",
		"line 11: totp_period without totp_secret",
		"line 12: 5 fields, but the header has 6",
		"line 13: phone: want the national number, digits with optional spaces, dashes, dots or parentheses",
		`line 14: authy_id: want a whole number, got "99999999999999999999"`,
	}
	if !reflect.DeepEqual(errs, wantErrs) {
		t.Errorf("errors:\n%s\nwant\n%s", strings.Join(errs, "\n"), strings.Join(wantErrs, "\n"))
	}
}

func TestUserFileCSVWithoutHeader(t *testing.T) {
	const file = "1,a@example.com,1,2015550123\n" +
		"2,b@example.com,1,2015550124,JBSWY3DPEHPK3PXP,8,30\n" +
		"3,c@example.com,1\n" +
		"4,d@example.com,1,2015550125,S,6,30,extra\n" +
		`5,"e@example.com",1,"201-555-0126"` + "\n"
	recs, errs, fatal := readAll(t, NewUserReader(strings.NewReader(file), CSV))
	if fatal != nil {
		t.Fatal(fatal)
	}
	if len(recs) != 3 || recs[1].Digits != 8 || recs[1].Period != 30 || recs[2].Phone != "2015550126" || recs[2].Line != 5 {
		t.Errorf("records: %+v", recs)
	}
	want := []string{
		"line 3: 3 fields, want authy_id,email,country_code,phone[,totp_secret,totp_digits,totp_period]",
		"line 4: 8 fields, want authy_id,email,country_code,phone[,totp_secret,totp_digits,totp_period]",
	}
	if !reflect.DeepEqual(errs, want) {
		t.Errorf("errors: %q", errs)
	}
}

// A wrong header stops the reading: no line after it can be read rightly.
func TestUserFileCSVBadHeader(t *testing.T) {
	for _, tc := range []struct{ header, want string }{
		{"authy_id,email,mobile", `line 1: unknown column "mobile"`},
		{"email,phone", "line 1: the header has no authy_id column"},
		{"authy_id,email,EMAIL", "line 1: column email twice"},
		{"id,email,country_code,phone", `line 1: unknown column "id"`},
	} {
		_, _, fatal := readAll(t, NewUserReader(strings.NewReader(tc.header+"\n1,a@example.com,1,2015550123\n"), CSV))
		if fatal == nil || !strings.Contains(fatal.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.header, fatal, tc.want)
		}
	}
}

func TestUserFileJSONLines(t *testing.T) {
	const file = `{"authy_id": 10, "email": "j@example.com", "country_code": 1, "phone": "2015550130", "totp_secret": "jbsw y3dp ehpk 3pxp", "totp_digits": 8, "totp_period": "30"}
{"authy_id": "11", "email": "k@example.com", "country_code": "+44", "phone": "+44 7911 123457"}

{"authy_id": 12, "email": null, "phone": null}
{"authy_id": 13, "phone": 2015550131, "country_code": 1}
{"authy_id": 14, "nick": "x"}
[1,2]
{"authy_id": 15} {"authy_id": 16}
{"authy_id": 1.5}
{"authy_id": 17, "totp_digits": 8}
{"authy_id": 18, "email": 5}
{"authy_id": 19, "country_code": true, "phone": "1"}
{"authy_id": 20,
{"email": "a@example.com"}
`
	recs, errs, fatal := readAll(t, NewUserReader(strings.NewReader(file), JSONL))
	if fatal != nil {
		t.Fatal(fatal)
	}
	want := []userimport.Record{
		{ID: 10, Email: "j@example.com", CountryCode: 1, Phone: "2015550130", Secret: "JBSWY3DPEHPK3PXP", Digits: 8, Period: 30, Line: 1},
		{ID: 11, Email: "k@example.com", CountryCode: 44, Phone: "7911123457", Line: 2},
		{ID: 12, Line: 4},
	}
	if !reflect.DeepEqual(recs, want) {
		t.Errorf("records:\n%+v\nwant\n%+v", recs, want)
	}
	wantErrs := []string{
		"line 5: phone: want a string (a JSON number loses leading zeros)",
		`line 6: unknown field "nick" (the fields are authy_id, email, country_code, phone, totp_secret, totp_digits, totp_period)`,
		"line 7: want a JSON object",
		"line 8: more than one JSON value on the line",
		`line 9: authy_id: want a whole number, got "1.5"`,
		"line 10: totp_digits without totp_secret",
		"line 11: email: want a string",
		"line 12: country_code: want a number or a string of digits",
		"line 13: not valid JSON",
		"line 14: authy_id is missing",
	}
	if !reflect.DeepEqual(errs, wantErrs) {
		t.Errorf("errors:\n%s\nwant\n%s", strings.Join(errs, "\n"), strings.Join(wantErrs, "\n"))
	}
}

// A line too long to be a record is one error, and the lines after it are read as usual.
func TestLongLineAndBinary(t *testing.T) {
	file := "1,a@example.com,1,2015550123\n" + strings.Repeat("9", maxLine+10) + "\n" + "2,\xff\xfe,1,2015550124\n" + "3,c@example.com,1,2015550125"
	recs, errs, fatal := readAll(t, NewUserReader(strings.NewReader(file), CSV))
	if fatal != nil {
		t.Fatal(fatal)
	}
	if len(recs) != 2 || recs[1].ID != 3 || recs[1].Line != 4 {
		t.Errorf("records: %+v", recs)
	}
	if len(errs) != 2 || !strings.HasPrefix(errs[0], "line 2: the line is longer than") || errs[1] != "line 3: the line is not UTF-8 text" {
		t.Errorf("errors: %q", errs)
	}
}

func TestIDList(t *testing.T) {
	const file = "authy_id,email\n17\n18,bob@example.com\n\n19 , \"c@example.com\"\n20,a,b\nabc\n"
	recs, errs, fatal := readAll(t, NewIDReader(strings.NewReader(file)))
	if fatal != nil {
		t.Fatal(fatal)
	}
	want := []userimport.Record{{ID: 17, Line: 2}, {ID: 18, Email: "bob@example.com", Line: 3}, {ID: 19, Email: "c@example.com", Line: 5}}
	if !reflect.DeepEqual(recs, want) {
		t.Errorf("records: %+v", recs)
	}
	wantErrs := []string{"line 6: 3 fields, but the header has 2", `line 7: authy_id: want a whole number, got "abc"`}
	if !reflect.DeepEqual(errs, wantErrs) {
		t.Errorf("errors: %q", errs)
	}
	// Without a header, and a header with a column a list does not have.
	recs, errs, fatal = readAll(t, NewIDReader(strings.NewReader("5\n6,f@example.com\n7,g@example.com,x\n")))
	if fatal != nil || len(recs) != 2 || recs[1].Email != "f@example.com" || len(errs) != 1 || errs[0] != "line 3: 3 fields, want authy_id[,email]" {
		t.Errorf("a list without a header: %v %+v %q", fatal, recs, errs)
	}
	if _, _, fatal := readAll(t, NewIDReader(strings.NewReader("authy_id,phone\n5,1\n"))); fatal == nil || !strings.Contains(fatal.Error(), `unknown column "phone"`) {
		t.Errorf("a list with a phone column: %v", fatal)
	}
}

func TestFormatOf(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) *os.File {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	for _, tc := range []struct {
		flag, name, content string
		want                Format
	}{
		{"auto", "u.csv", `{"authy_id":1}`, CSV},
		{"auto", "u.JSONL", "1,a", JSONL},
		{"auto", "u.ndjson", "", JSONL},
		{"auto", "users", "\ufeff\n  {\"authy_id\":1}", JSONL},
		{"auto", "users", "authy_id,email", CSV},
		{"jsonl", "u.csv", "", JSONL},
		{"csv", "u.jsonl", "", CSV},
	} {
		got, err := FormatOf(tc.flag, tc.name, write(tc.name, tc.content))
		if err != nil || got != tc.want {
			t.Errorf("%s %s %q: %s %v, want %s", tc.flag, tc.name, tc.content, got, err, tc.want)
		}
	}
	if _, err := FormatOf("xml", "u.csv", write("x.csv", "")); err == nil {
		t.Error("--format xml was accepted")
	}
}

func FuzzSplitCSV(f *testing.F) {
	for _, s := range []string{`1,"a ""b""",c`, `"`, `a,"b`, ` , ,`, `"a"  ,b`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		fields, err := splitCSV(line, nil)
		if err != nil {
			return
		}
		// Writing the fields back as quoted CSV reads the same fields again.
		var quoted []string
		for _, fl := range fields {
			quoted = append(quoted, `"`+strings.ReplaceAll(fl, `"`, `""`)+`"`)
		}
		again, err := splitCSV(strings.Join(quoted, ","), nil)
		if err != nil || !reflect.DeepEqual(again, fields) {
			t.Fatalf("%q: %q, then %q %v", line, fields, again, err)
		}
	})
}

func FuzzUserFile(f *testing.F) {
	f.Add("authy_id,email\n1,a@example.com\n", false)
	f.Add(`{"authy_id": 1, "phone": "2015550123", "country_code": 1}`+"\n", true)
	f.Add("1,a,1,2,S,6,30\n\"x\n", false)
	f.Fuzz(func(t *testing.T, file string, jsonl bool) {
		format := CSV
		if jsonl {
			format = JSONL
		}
		rr := NewUserReader(strings.NewReader(file), format)
		last := 0
		for {
			r, err := rr.Next()
			var lerr *LineError
			switch {
			case err == io.EOF:
				return
			case errors.As(err, &lerr), err == nil:
				if r.Line <= last || r.Line > strings.Count(file, "\n")+1 {
					t.Fatalf("line %d after %d in %q", r.Line, last, file)
				}
				last = r.Line
				// Only shapes are promised here (values are Check's): digits for a phone, a
				// seed without spaces in capitals.
				if err == nil && (strings.Trim(r.Phone, "0123456789") != "" || r.Secret != strings.ToUpper(r.Secret) ||
					strings.ContainsAny(r.Secret, " \t")) {
					t.Fatalf("record %+v from %q", r, file)
				}
			default:
				return // a wrong header ends the reading
			}
		}
	})
}
