package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadSeedUsers(t *testing.T) {
	hash, err := hashPassword(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	file := "\ufeffEmail, authy_id,country_code,phone,password_hash\n" +
		"# moved from Authy on 1 March\n" +
		"Ada@Example.com,1234567,+1,201-555-0123,\"" + hash + "\"\n" +
		"\n" +
		`"bob@example.com",7654321,44,"7700 900123","` + hash + `"` + "\n"
	users, err := readSeedUsers(strings.NewReader(file), now)
	if err != nil {
		t.Fatal(err)
	}
	want := []user{
		{Email: "ada@example.com", PasswordHash: hash, Phone: "201-555-0123", CountryCode: "1", AuthyID: 1234567, CreatedAt: now},
		{Email: "bob@example.com", PasswordHash: hash, Phone: "7700 900123", CountryCode: "44", AuthyID: 7654321, CreatedAt: now},
	}
	if len(users) != len(want) {
		t.Fatalf("read %d users, want %d: %+v", len(users), len(want), users)
	}
	for i := range want {
		if users[i] != want[i] {
			t.Errorf("user %d: %+v, want %+v", i, users[i], want[i])
		}
	}

	// A password in clear is hashed, and checks.
	users, err = readSeedUsers(strings.NewReader("email,password,country_code,phone,authy_id\ncarol@example.com,"+testPassword+",1,2015550100,41\n"), now)
	if err != nil || len(users) != 1 {
		t.Fatalf("clear password: %+v %v", users, err)
	}
	if !strings.HasPrefix(users[0].PasswordHash, "$argon2id$") || !checkPassword(users[0].PasswordHash, testPassword) {
		t.Fatalf("clear password stored as %q", users[0].PasswordHash)
	}
}

func TestReadSeedUsersRefuses(t *testing.T) {
	const header = "email,password,country_code,phone,authy_id\n"
	const secret = "s3cret-Passw0rd-never-shown"
	ok := "ada@example.com," + testPassword + ",1,201-555-0123,1234567\n"
	tests := []struct {
		name, file, want string
	}{
		{"empty", "", "the file is empty"},
		{"unknown column", "email,pasword,country_code,phone,authy_id\n", `line 1: unknown column "pasword"`},
		{"column twice", "email,email,password,country_code,phone,authy_id\n", `line 1: column "email" twice`},
		{"no authy_id", "email,password,country_code,phone\n", "line 1: no authy_id column"},
		{"no authy_id, after a comment", "# users\nemail,password,country_code,phone\n", "line 2: no authy_id column"},
		{"no password", "email,country_code,phone,authy_id\n", "either a password_hash column or a password column"},
		{"both passwords", "email,password,password_hash,country_code,phone,authy_id\n", "either a password_hash column or a password column"},
		{"fields missing", header + ok + "bob@example.com,x\n", "line 3: wrong number of fields"},
		{"bad quote", header + `"bob@example.com,` + testPassword + ",1,201-555-0124,2\n", "line 2"},
		{"bad email", header + "bob-at-example.com," + testPassword + ",1,201-555-0124,2\n", `line 2: email "bob-at-example.com" is not an email address`},
		{"bad phone", header + "bob@example.com," + testPassword + ",1,call me,2\n", `line 2: phone "call me" is not a phone number`},
		{"bad country code", header + "bob@example.com," + testPassword + ",UK,201-555-0124,2\n", `line 2: country_code "UK"`},
		{"authy_id zero", header + "bob@example.com," + testPassword + ",1,201-555-0124,0\n", `line 2: authy_id "0" is not a positive whole number`},
		{"authy_id not a number", header + "bob@example.com," + testPassword + ",1,201-555-0124,12a\n", `line 2: authy_id "12a"`},
		{"authy_id too big", header + "bob@example.com," + testPassword + ",1,201-555-0124,99999999999999999999\n", "line 2: authy_id"},
		{"email twice", header + ok + "Ada@example.com," + testPassword + ",1,201-555-0124,2\n", "line 3: ada@example.com is on line 2 already"},
		{"authy_id twice", header + ok + "bob@example.com," + testPassword + ",1,201-555-0124,1234567\n", "line 3: authy_id 1234567 is on line 2 already"},
		{"short password", header + "bob@example.com,short,1,201-555-0124,2\n", "line 2: the password has 5 characters"},
		{"bad hash", "email,password_hash,country_code,phone,authy_id\nbob@example.com,$argon2id$" + secret + ",1,201-555-0124,2\n", "line 2: password_hash is not an argon2id hash"},
		{"hash not quoted", "email,password_hash,country_code,phone,authy_id\nbob@example.com,$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5,1,201-555-0124,2\n", "line 2: wrong number of fields (put the password_hash in double quotes: it has commas)"},
		{"bcrypt hash", "email,password_hash,country_code,phone,authy_id\nbob@example.com,$2a$10$" + secret + ",1,201-555-0124,2\n", "line 2: password_hash is not an argon2id hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			users, err := readSeedUsers(strings.NewReader(tt.file), time.Now())
			if err == nil {
				t.Fatalf("accepted: %+v", users)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), testPassword) {
				t.Fatalf("the error shows a password: %q", err)
			}
		})
	}
}

func TestSeedUsersFlag(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(good, []byte("email,password,country_code,phone,authy_id\nada@example.com,"+testPassword+",1,201-555-0123,1234567\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseConfig(nil, func(k string) string {
		return map[string]string{"TWOFOLD_API_KEY": "k", "SAMPLE_SEED_USERS": good}[k]
	}, io.Discard)
	if err != nil || cfg.SeedUsers != good {
		t.Fatalf("SAMPLE_SEED_USERS: %+v %v", cfg, err)
	}
	cfg, err = parseConfig([]string{"--seed-users", "other.csv"}, func(k string) string {
		return map[string]string{"TWOFOLD_API_KEY": "k", "SAMPLE_SEED_USERS": good}[k]
	}, io.Discard)
	if err != nil || cfg.SeedUsers != "other.csv" {
		t.Fatalf("--seed-users: %+v %v", cfg, err)
	}

	tf := newFakeTwofold(t)
	s := newSampleWith(t, tf, config{SeedUsers: good})
	u, ok := s.srv.users.byEmailAddr("ada@example.com")
	if !ok || u.AuthyID != 1234567 || u.ID == "" || !u.AskedToAddApp.IsZero() {
		t.Fatalf("seeded user: %+v %v", u, ok)
	}
	// The seeded user logs in with the password and their Authy id's code.
	if got := s.codeLogin("ada@example.com"); got != addAppPath {
		t.Fatalf("seeded user's log-in: %s", got)
	}

	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("email,password,country_code,phone,authy_id\nada@example.com,"+testPassword+",1,201-555-0123,x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		bad:                               "bad.csv: line 2: authy_id",
		filepath.Join(dir, "missing.csv"): "missing.csv",
	} {
		if _, err := newServer(config{TwofoldURL: tf.URL, APIKey: testKey, SeedUsers: file}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("seed file %s: %v, want %q", filepath.Base(file), err, want)
		}
	}
}
