package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/vault"
)

func deviceWatchCmd(o *deviceOpts) *cobra.Command {
	var account string
	var once bool
	cmd := &cobra.Command{
		Use:   "watch [--account ACCOUNT] [--once]",
		Short: "Wait for approval requests and answer them as they arrive",
		Long: `Listen to the event streams of the vault's devices (or of --account) and, for each
approval request, show its message, details and application, then ask "approve? [y/n]" (and,
for number matching, the number shown on the login page; on deny, an optional reason, or x for
a request you did not make, which the application sees as "not requested"). The
answer is signed with the device's key. Dropped connections are resumed where they stopped.

It stops on Ctrl-C, at the end of its input, or with --once after one request is answered.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := o.open()
			if err != nil {
				return err
			}
			devs, err := pickDevices(v, account)
			if err != nil {
				return err
			}
			client := newHTTPClient()
			defer client.CloseIdleConnections()
			return newWatcher(o.env, client, devs, once).run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&account, "account", "", "watch only this device (number or name from 'twofold device list')")
	cmd.Flags().BoolVar(&once, "once", false, "exit after answering one request")
	argument(cmd.Flags(), argTarget)
	return cmd
}

// pickDevices is the device called account, or every device of the vault.
func pickDevices(v *vault.Vault, account string) ([]vaultEntry, error) {
	if account != "" {
		e, err := selectVaultEntry(v, account, "device")
		if err != nil {
			return nil, err
		}
		return []vaultEntry{e}, nil
	}
	var out []vaultEntry
	for _, e := range vaultEntries(v) {
		if e.device != nil {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no device in the vault: register one with 'twofold device enrol LINK'")
	}
	return out, nil
}

// watchEvent is a request (or a change of one) that arrived on a device's stream.
type watchEvent struct {
	dev    vaultEntry
	req    approvalRequest
	update bool
}

// watcher answers requests one at a time from a queue fed by one stream per device. Only its
// run goroutine reads stdin and writes to stdout; streams log through the locked writer.
type watcher struct {
	mu       sync.Mutex // serialises writes to out and errOut
	out      io.Writer
	errOut   io.Writer
	client   *http.Client
	devices  []vaultEntry
	once     bool
	stream   *streamer
	in       *lineReader
	terminal bool // stdin is a terminal: lines typed while nothing is asked are dropped

	events  chan watchEvent
	queue   []watchEvent
	seen    map[string]bool
	pending []string // lines read ahead (from a pipe)
	eof     bool

	// The request being asked about: the question last asked, and its group as last shown.
	prompt string
	shown  *requestGroup
}

func newWatcher(env Env, client *http.Client, devs []vaultEntry, once bool) *watcher {
	w := &watcher{out: env.Stdout, errOut: env.Stderr, client: client, devices: devs, once: once,
		in: newLineReader(env.Stdin), events: make(chan watchEvent), seen: map[string]bool{}}
	if f, ok := env.Stdin.(*os.File); ok {
		w.terminal = term.IsTerminal(int(f.Fd()))
	}
	w.stream = newStreamer(w.logf)
	return w
}

func (w *watcher) printf(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fmt.Fprintf(w.out, format, args...)
}

func (w *watcher) logf(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fmt.Fprintf(w.errOut, format, args...)
}

// errGone: the request being asked about was answered elsewhere or expired.
var errGone = errors.New("no longer pending")

func (w *watcher) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	defer w.in.close()
	done := make(chan error, len(w.devices))
	for _, e := range w.devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := e.label()
			done <- w.stream.run(ctx, forDevice(w.client, *e.device), name,
				func() { w.logf("Waiting for approval requests to %s at %s.\n", name, e.device.Server) },
				func(ev streamEvent) error { return w.receive(ctx, e, ev) })
		}()
	}
	live := len(w.devices)
	var failed error
	for {
		if len(w.queue) > 0 {
			next := w.queue[0]
			w.queue = w.queue[1:]
			err := w.handle(ctx, next)
			switch {
			case ctx.Err() != nil:
				return nil
			case errors.Is(err, io.EOF):
				w.logf("\nEnd of input: stopped watching.\n")
				return nil
			case errors.Is(err, errGone):
				continue
			case err != nil && w.once:
				return err
			case err != nil:
				w.logf("%v\n", err)
			}
			if w.once {
				return nil
			}
			continue
		}
		if w.eof && len(w.pending) == 0 {
			w.logf("End of input: stopped watching.\n")
			return nil
		}
		var lines <-chan string
		if !w.eof {
			lines = w.in.C()
		}
		select {
		case <-ctx.Done():
			return nil
		case ev := <-w.events:
			w.take(ev, "")
		case line, ok := <-lines:
			switch {
			case !ok:
				w.eof = true
			case w.terminal:
				w.printf("No request is waiting for an answer.\n")
			default:
				w.pending = append(w.pending, line)
			}
		case err := <-done:
			if live--; live == 0 {
				return cmp.Or(err, failed)
			}
			if err != nil {
				failed = err
				w.logf("%v\n", err)
			}
		}
	}
}

// receive runs on a stream's goroutine: it hands requests and their changes to run.
func (w *watcher) receive(ctx context.Context, e vaultEntry, ev streamEvent) error {
	var we watchEvent
	switch ev.Event {
	case "approval_request":
	case "approval_request_update":
		we.update = true
	default:
		return nil
	}
	if err := json.Unmarshal([]byte(ev.Data), &we.req); err != nil || we.req.UUID == "" {
		w.logf("%s: ignoring an unreadable %s event\n", e.label(), ev.Event)
		return nil
	}
	we.dev = e
	select {
	case w.events <- we:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// take queues a new pending request, or applies a change; it returns the request when the
// change ends the request current (being asked about). A change of a pending request is its
// group's (another approver answered): said at once of the current one, and kept for a queued
// one, which is shown as it stands when its turn comes.
func (w *watcher) take(ev watchEvent, current string) *approvalRequest {
	r := ev.req
	if !ev.update {
		if r.Status == string(twofold.Pending) && !w.seen[r.UUID] {
			w.seen[r.UUID] = true
			w.queue = append(w.queue, ev)
		}
		return nil
	}
	if r.Status == string(twofold.Pending) {
		if r.UUID == current && groupChanged(w.shown, r.Group) {
			w.shown = r.Group
			w.printf("\n  Now %s\n%s", groupLine(r.Group), w.prompt)
		}
		for i := range w.queue {
			if w.queue[i].req.UUID == r.UUID {
				w.queue[i].req = r
			}
		}
		return nil
	}
	if r.UUID == current {
		return &r
	}
	w.queue = slices.DeleteFunc(w.queue, func(q watchEvent) bool { return q.req.UUID == r.UUID })
	return nil
}

// ended says why the request asked about was dropped.
func ended(r approvalRequest) string {
	switch {
	case r.Reason == "group decided" && r.Group != nil && r.Group.Status != string(twofold.Expired):
		return fmt.Sprintf("The group decided before it was answered here: %s (%s).", groupDecision(r.Group), groupLine(r.Group))
	case r.Reason == "closed":
		return "The request was closed before it was answered here."
	case r.Status == string(twofold.Expired):
		return "The request expired before it was answered here."
	}
	return fmt.Sprintf("The request was %s elsewhere before it was answered here.", termSafe(r.Status))
}

// ask asks question about the request current.
func (w *watcher) ask(ctx context.Context, current, question string) (string, error) {
	w.prompt = question
	w.printf("%s", question)
	return w.readLine(ctx, current)
}

// readLine waits for the next line of input while taking in events; it fails with errGone
// when the request current stops being pending meanwhile.
func (w *watcher) readLine(ctx context.Context, current string) (string, error) {
	for {
		if len(w.pending) > 0 {
			line := w.pending[0]
			w.pending = w.pending[1:]
			return line, nil
		}
		if w.eof {
			return "", io.EOF
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case line, ok := <-w.in.C():
			if !ok {
				w.eof = true
				continue
			}
			return line, nil
		case ev := <-w.events:
			if end := w.take(ev, current); end != nil {
				w.printf("\n%s\n", ended(*end))
				return "", errGone
			}
		}
	}
}

func (w *watcher) show(e vaultEntry, r approvalRequest) {
	var b strings.Builder
	app := r.AppName
	if app == "" {
		app = e.device.AppName
	}
	fmt.Fprintf(&b, "\nApproval request %s from %s (authy id %d):\n  %s\n", termSafe(r.UUID), termSafe(app), e.device.AuthyID, termSafe(r.Message))
	if r.Group != nil {
		fmt.Fprintf(&b, "  %s\n", groupLine(r.Group))
	}
	keys := make([]string, 0, len(r.Details))
	for k := range r.Details {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s: %s\n", termSafe(k), termSafe(r.Details[k]))
	}
	if r.ExpiresAt != nil {
		if t, err := time.Parse(time.RFC3339, *r.ExpiresAt); err == nil {
			fmt.Fprintf(&b, "  expires in %s\n", time.Until(t).Round(time.Second))
		}
	}
	if r.NumberRequired {
		b.WriteString("  Number matching: you will need the number shown on the login page.\n")
	}
	w.printf("%s", b.String())
}

func (w *watcher) handle(ctx context.Context, ev watchEvent) error {
	r := ev.req
	w.show(ev.dev, r)
	w.shown = r.Group
	var status string
	for status == "" {
		line, err := w.ask(ctx, r.UUID, "approve? [y/n] ")
		if err != nil {
			return err
		}
		switch strings.ToLower(strings.TrimSpace(line)) {
		case "y", "yes":
			status = string(twofold.Approved)
		case "n", "no":
			status = string(twofold.Denied)
		default:
			w.printf("Answer y to approve or n to deny.\n")
		}
	}
	var number, reason string
	for status == string(twofold.Approved) && r.NumberRequired && number == "" {
		line, err := w.ask(ctx, r.UUID, "number shown on the login page: ")
		if err != nil {
			return err
		}
		if number = strings.TrimSpace(line); !allDigits(number) {
			w.printf("Type the number (digits only) shown where you are logging in.\n")
			number = ""
		}
	}
	if status == string(twofold.Denied) {
		line, err := w.ask(ctx, r.UUID, "reason (optional, Enter for none; x if you did not make this request): ")
		if err != nil {
			return err
		}
		reason = truncateUTF8(strings.TrimSpace(line), 200)
		if strings.EqualFold(reason, "x") {
			reason = onetouch.NotRequestedReason
		}
	}
	res, err := forDevice(w.client, *ev.dev.device).answer(ctx, *ev.dev.device, r.UUID, status, number, reason)
	if err != nil {
		return fmt.Errorf("answering request %s: %w", r.UUID, err)
	}
	w.printf("%s\n", answerOutcome(res))
	return nil
}

// answerOutcome says what an answer did, and for a request of a group, where the group stands
// after it ("Approved. Approved by the group: approved by you and Bob.").
func answerOutcome(r approvalRequest) string {
	var out string
	switch {
	case r.Status == string(twofold.Approved):
		out = "Approved."
	case r.Status == string(twofold.Denied) && r.Reason != "":
		out = "Denied (" + termSafe(r.Reason) + ")."
	case r.Status == string(twofold.Denied):
		out = "Denied."
	default:
		out = "The request is " + termSafe(r.Status) + "."
	}
	if r.Group == nil {
		return out
	}
	if d := groupDecision(r.Group); d != "" {
		return out + " " + strings.ToUpper(d[:1]) + d[1:] + ": " + groupLine(r.Group) + "."
	}
	return out + " Now " + groupLine(r.Group) + "."
}

// printable replaces control and bidirectional-override characters, so text from a server
// cannot move the cursor, recolour or reorder what the user reads before approving.
func termSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return utf8.RuneError
		}
		return r
	}, s)
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// truncate cuts s to at most n bytes on a character boundary.
func truncateUTF8(s string, n int) string {
	for len(s) > n {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}
