package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Seeding users (--seed-users FILE). An application that moves from Authy to Twofold already has
// users, each with the authy_id Authy gave them, in its own database; once Twofold has imported
// them under the same ids, nothing in that table changes. The sample keeps its users in memory, so
// it reads such a table from a CSV file at start:
//
//	email,password_hash,country_code,phone,authy_id
//	ada@example.com,"$argon2id$v=19$m=19456,t=2,p=1$…$…",1,201-555-0123,1234567
//
// The first line names the columns, in any order: email, country_code, phone, authy_id, and
// either password_hash (argon2id in PHC string format, as this sample stores passwords; in double
// quotes, for its commas) or password (in clear, hashed at start: for trying the sample only).
// Lines starting with # are comments. Any mistake refuses the whole file, with its line number:
// no user is half seeded.

var seedColumns = []string{"email", "password", "password_hash", "country_code", "phone", "authy_id"}

// readSeedUsers parses a seed file into users without ids, checked as sign-up checks its form.
// Its errors never quote a password or a hash.
func readSeedUsers(r io.Reader, now time.Time) ([]user, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("the file is empty: its first line names the columns (email,password_hash,country_code,phone,authy_id)")
	}
	if err != nil {
		return nil, csvProblem(err)
	}
	first, _ := cr.FieldPos(0) // comments may come before it
	col := map[string]int{}
	for i, name := range header {
		name = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(name, "\ufeff")))
		if !slices.Contains(seedColumns, name) {
			return nil, fmt.Errorf("line %d: unknown column %q (the columns are %s)", first, name, strings.Join(seedColumns, ", "))
		}
		if _, dup := col[name]; dup {
			return nil, fmt.Errorf("line %d: column %q twice", first, name)
		}
		col[name] = i
	}
	for _, name := range []string{"email", "country_code", "phone", "authy_id"} {
		if _, ok := col[name]; !ok {
			return nil, fmt.Errorf("line %d: no %s column", first, name)
		}
	}
	_, clear := col["password"]
	_, hashed := col["password_hash"]
	if clear == hashed {
		return nil, fmt.Errorf("line %d: give either a password_hash column or a password column", first)
	}

	var users []user
	emails, authyIDs := map[string]int{}, map[int64]int{} // → the line they are on
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if hashed && errors.Is(err, csv.ErrFieldCount) {
				return nil, fmt.Errorf("%w (put the password_hash in double quotes: it has commas)", csvProblem(err))
			}
			return nil, csvProblem(err)
		}
		line, _ := cr.FieldPos(0)
		field := func(name string) string { return strings.TrimSpace(rec[col[name]]) }
		fail := func(format string, args ...any) error {
			return fmt.Errorf("line %d: "+format, append([]any{line}, args...)...)
		}
		u := user{
			Email:       strings.ToLower(field("email")),
			Phone:       field("phone"),
			CountryCode: strings.TrimPrefix(field("country_code"), "+"),
			CreatedAt:   now,
		}
		switch {
		case !emailLike(u.Email):
			return nil, fail("email %q is not an email address", truncate(u.Email, 60))
		case !phoneLike(u.Phone):
			return nil, fail("phone %q is not a phone number", truncate(u.Phone, 30))
		case !countryCodeLike(u.CountryCode):
			return nil, fail("country_code %q is not a country calling code, like 1 or 44", truncate(u.CountryCode, 10))
		}
		u.AuthyID, err = strconv.ParseInt(field("authy_id"), 10, 64)
		if err != nil || u.AuthyID <= 0 {
			return nil, fail("authy_id %q is not a positive whole number", truncate(field("authy_id"), 20))
		}
		if first, dup := emails[u.Email]; dup {
			return nil, fail("%s is on line %d already", u.Email, first)
		}
		if first, dup := authyIDs[u.AuthyID]; dup {
			return nil, fail("authy_id %d is on line %d already: one Authy id is one person's", u.AuthyID, first)
		}
		emails[u.Email], authyIDs[u.AuthyID] = line, line
		if clear {
			password := rec[col["password"]]
			if n := utf8.RuneCountInString(password); n < minPassword || len(password) > maxPassword {
				return nil, fail("the password has %d characters: from %d to %d, as at sign-up", n, minPassword, maxPassword)
			}
			if u.PasswordHash, err = hashPassword(password); err != nil {
				return nil, fail("hashing the password: %v", err)
			}
		} else {
			u.PasswordHash = field("password_hash")
			if _, ok := parseHash(u.PasswordHash); !ok {
				return nil, fail("password_hash is not an argon2id hash ($argon2id$v=19$m=…,t=…,p=…$salt$key)")
			}
		}
		users = append(users, u)
	}
	return users, nil
}

// csvProblem says where the CSV is malformed, without quoting it.
func csvProblem(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("line %d: %v", pe.Line, pe.Err)
	}
	return err
}

// seedUsers adds the users of the seed file at path to the (empty) user table.
func (s *server) seedUsers(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	users, err := readSeedUsers(f, s.now())
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	for _, u := range users {
		if _, err := s.users.create(u); err != nil {
			return 0, fmt.Errorf("%s: %s: %w", path, u.Email, err)
		}
	}
	return len(users), nil
}

// truncate cuts s to at most n bytes, on a character boundary, marking the cut with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
