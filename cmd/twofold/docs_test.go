package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docCommand is a twofold command line written in a page of the documentation.
type docCommand struct {
	file string
	line int
	args []string
}

// shellWords splits a command line as sh would for plain words and quotes; it stops at the
// end of the command (|, ;, &&, ||, ), a comment) and drops the brackets that mark an optional
// part ([--show-key]).
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	quote, started := byte(0), false
	flush := func() {
		if started {
			words = append(words, strings.Trim(cur.String(), "[]"))
		}
		cur.Reset()
		started = false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote, started = c, true
		case c == ' ' || c == '\t':
			flush()
		case strings.IndexByte("|;&)", c) >= 0 || c == '#' && !started:
			flush()
			return words
		default:
			cur.WriteByte(c)
			started = true
		}
	}
	flush()
	return words
}

// twofoldInvocation finds `twofold ...` or `go run ./cmd/twofold ...` in a line of shell: as
// the command, after environment assignments, sudo -u USER, docker exec CONTAINER, or inside
// $(...).
var twofoldInvocation = regexp.MustCompile(`(?:^\s*(?:[A-Z_]+=\S*\s+)*|\$\(|sudo -u \S+\s+|docker exec (?:-\S+\s+)*\S+\s+)` +
	`(?:go run \./cmd/twofold|\./twofold|twofold)\s+(.*)$`)

// docCommands collects the twofold commands of the sh code blocks of the Markdown files.
func docCommands(t *testing.T, files []string) []docCommand {
	t.Helper()
	var out []docCommand
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inBlock, shell, joined, start := false, false, "", 0
		for i, line := range strings.Split(string(raw), "\n") {
			if fence := strings.TrimSpace(line); strings.HasPrefix(fence, "```") {
				inBlock = !inBlock
				shell = inBlock && (fence == "```sh" || fence == "```bash")
				continue
			}
			if !shell {
				continue
			}
			if joined == "" {
				start = i + 1
			}
			if strings.HasSuffix(line, `\`) {
				joined += strings.TrimSuffix(line, `\`) + " "
				continue
			}
			line, joined = joined+line, ""
			trimmed := strings.TrimSpace(line)
			if strings.HasPrefix(trimmed, "#") {
				continue
			}
			m := twofoldInvocation.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			words := shellWords(m[1])
			if len(words) > 0 && words[0] == "twofold" { // sudo -u twofold twofold ...
				words = words[1:]
			}
			out = append(out, docCommand{f, start, words})
		}
	}
	return out
}

// Every twofold command the README and docs show exists, with the flags they give it: a
// renamed command or flag fails here, not in a reader's terminal.
func TestDocsCommands(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	files = append(files, filepath.Join("..", "..", "README.md"), filepath.Join("..", "..", "examples", "login", "README.md"),
		filepath.Join("..", "..", "examples", "oidc-login", "README.md"))
	cmds := docCommands(t, files)
	if len(cmds) < 50 {
		t.Fatalf("found only %d twofold commands in the docs: the scanner is broken", len(cmds))
	}
	root := newRoot(Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Getenv: func(string) string { return "" }})
	for _, dc := range cmds {
		where := dc.file + ":" + itoa64(int64(dc.line))
		c, rest, err := root.Find(dc.args)
		if err != nil {
			t.Errorf("%s: twofold %s: %v", where, strings.Join(dc.args, " "), err)
			continue
		}
		if c == root {
			t.Errorf("%s: twofold %s: no such command", where, strings.Join(dc.args, " "))
			continue
		}
		if err := c.ParseFlags(rest); err != nil {
			t.Errorf("%s: %s: %v", where, c.CommandPath(), err)
			continue
		}
		if c.HasSubCommands() && len(c.Flags().Args()) > 0 {
			t.Errorf("%s: %s has no command %q", where, c.CommandPath(), c.Flags().Args()[0])
		}
	}
}

func TestShellWords(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`app show 2 [--show-key]`, []string{"app", "show", "2", "--show-key"}},
		{`device enrol 'otpauth://totp/a?b=c&d=e' --server x   # comment`, []string{"device", "enrol", "otpauth://totp/a?b=c&d=e", "--server", "x"}},
		{`app key 1)`, []string{"app", "key", "1"}},
		{`outbox --json | jq .`, []string{"outbox", "--json"}},
		{`approve "$UUID" && echo ok`, []string{"approve", "$UUID"}},
	} {
		if got := shellWords(tc.in); strings.Join(got, "\x00") != strings.Join(tc.want, "\x00") {
			t.Errorf("shellWords(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
