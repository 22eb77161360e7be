package console_test

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/twofold-auth/twofold/internal/console"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// groupTeam is users of one application, each with a device that signs its answers.
type groupTeam struct {
	app    twofold.App
	users  map[string]twofold.User
	phones map[string]*phone
}

func (f *fixture) groupTeam(app twofold.App, names ...string) groupTeam {
	f.t.Helper()
	tm := groupTeam{app: app, users: map[string]twofold.User{}, phones: map[string]*phone{}}
	for i, name := range names {
		u := twofold.User{AppID: app.ID, Email: strings.ToLower(name) + "@example.com", CountryCode: 1,
			Phone: fmt.Sprintf("20155501%02d", i), CreatedAt: f.clock.Now()}
		if _, err := f.st.CreateUser(f.t.Context(), &u); err != nil {
			f.t.Fatal(err)
		}
		token, _, err := f.devices.RegistrationToken(f.t.Context(), app.ID, u.ID)
		if err != nil {
			f.t.Fatal(err)
		}
		tm.users[name], tm.phones[name] = u, f.registerDevice(token)
	}
	return tm
}

// group asks the named approvers, with quorum.
func (f *fixture) group(tm groupTeam, message string, quorum int, names ...string) onetouch.GroupDecision {
	f.t.Helper()
	p := onetouch.GroupParams{Message: message, Quorum: quorum, Details: map[string]string{"Amount": "10,000 EUR"},
		HiddenDetails: map[string]string{"ref": "T-1"}, Requester: onetouch.Approver{Name: "Dan from finance"}}
	for _, n := range names {
		p.Approvers = append(p.Approvers, onetouch.Approver{UserID: tm.users[n].ID, Name: n})
	}
	d, err := f.ot.CreateGroup(f.t.Context(), tm.app, p)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

// answerGroup answers name's request of group d on their device, with a reason.
func (f *fixture) answerGroup(tm groupTeam, d onetouch.GroupDecision, name string, status twofold.ApprovalStatus, reason string) {
	f.t.Helper()
	var uuid string
	for _, m := range d.Members {
		if m.UserID == tm.users[name].ID {
			uuid = m.UUID
		}
	}
	p := tm.phones[name]
	ts := f.clock.Now().Unix()
	digest := sha256.Sum256(onetouch.AnswerMessage(uuid, status, ts, "", reason))
	sig, _ := ecdsa.SignASN1(rand.Reader, p.key, digest[:])
	if _, err := f.ot.Answer(f.t.Context(), p.dev, uuid, onetouch.Answer{Status: status, Timestamp: ts,
		Signature: base64.StdEncoding.EncodeToString(sig), Reason: reason}); err != nil {
		f.t.Fatalf("%s's answer: %v", name, err)
	}
}

// approverAnswers reads each approver's answer off a page: data-approver="ID" data-answer="...".
var approverAnswer = regexp.MustCompile(`data-approver="(\d+)" data-answer="([^"]+)"`)

func approverAnswers(body string) map[string]string {
	out := map[string]string{}
	for _, m := range approverAnswer.FindAllStringSubmatch(body, -1) {
		out[m[1]] = m[2]
	}
	return out
}

func TestApprovalGroupPages(t *testing.T) {
	f := newFixture(t, console.Config{})
	f.ot.SetAuditor(f.audit)
	b := f.signedIn()
	ctx := t.Context()
	shop, _, _ := f.apps.Create(ctx, appsCreate("Shop"))
	other, _, _ := f.apps.Create(ctx, appsCreate("Other"))
	tm := f.groupTeam(shop, "Ana", "Bob", "Cy")
	strangers := f.groupTeam(other, "Zed")
	id := func(name string) string { return itoa(tm.users[name].ID) }

	approved := f.group(tm, "Pay 10,000 EUR to ACME", 2, "Ana", "Bob", "Cy")
	f.answerGroup(tm, approved, "Ana", twofold.Approved, "")
	f.answerGroup(tm, approved, "Bob", twofold.Approved, "")
	denied := f.group(tm, "Delete the production database", 0, "Ana", "Bob")
	f.answerGroup(tm, denied, "Bob", twofold.Denied, "not on a Friday")
	pending := f.group(tm, "Raise the card limit", 1, "Ana", "Cy")
	elsewhere := f.group(strangers, "Another application's", 1, "Zed")

	groups := "/console/apps/" + itoa(shop.ID) + "/groups"
	b.get(groups)
	b.expect(http.StatusOK, "")
	b.contains(`data-group="`+approved.Group.UUID+`" data-state="approved"`, `data-group="`+denied.Group.UUID+`" data-state="denied"`,
		`data-group="`+pending.Group.UUID+`" data-state="pending"`, "<strong>2 of 2</strong> approvals", "(3 asked)",
		"<strong>0 of 2</strong> approvals", "(2 asked, 1 denied)", "Dan from finance", "— “not on a Friday”", `title="ana@example.com">#`+id("Ana")+`</a>`)
	b.lacks(elsewhere.Group.UUID, "Another application")
	if i, j := strings.Index(b.body, pending.Group.UUID), strings.Index(b.body, approved.Group.UUID); i > j {
		t.Error("the list is not newest first")
	}

	// Each approver's answer, on the group's own page.
	for _, tc := range []struct {
		d    onetouch.GroupDecision
		want map[string]string
	}{
		{approved, map[string]string{id("Ana"): "approved", id("Bob"): "approved", id("Cy"): "not answered"}},
		{denied, map[string]string{id("Ana"): "not answered", id("Bob"): "denied"}},
		{pending, map[string]string{id("Ana"): "not answered", id("Cy"): "not answered"}},
	} {
		b.get(groups + "/" + tc.d.Group.UUID)
		b.expect(http.StatusOK, "")
		if got := approverAnswers(b.body); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: answers %v, want %v", tc.d.Group.Message, got, tc.want)
		}
		b.contains(tc.d.Group.UUID, "Amount", "10,000 EUR", "action=approval_group.decided", "ana@example.com", "Dan from finance")
	}
	b.get(groups + "/" + denied.Group.UUID)
	b.contains("“not on a Friday”", "group decided")
	b.lacks(`id="group-close"`) // decided: nothing to close

	// Another application's group is not found through this one, nor closed.
	b.get(groups + "/" + elsewhere.Group.UUID)
	b.expect(http.StatusNotFound, "")
	b.get(groups + "/" + pending.Group.UUID)
	b.post(groups+"/"+elsewhere.Group.UUID+"/close", nil, true)
	b.expect(http.StatusNotFound, "")
	if d, _ := f.ot.Group(ctx, other, elsewhere.Group.UUID); d.Group.Status != twofold.Pending {
		t.Fatalf("another application's group closed through this one: %+v", d.Group)
	}

	// Closing: the console's CSRF protection first, then the operator closes it.
	page := groups + "/" + pending.Group.UUID
	b.get(page)
	b.contains(`id="group-close"`)
	b.post(page+"/close", nil, false)
	b.expect(http.StatusForbidden, "")
	b.get(page)
	b.post(page+"/close", nil, true)
	b.expect(http.StatusSeeOther, page)
	b.get(page)
	b.contains("Group closed", `data-state="closed"`)
	b.lacks(`id="group-close"`)
	if got := approverAnswers(b.body); got[id("Ana")] != "closed" || got[id("Cy")] != "closed" {
		t.Errorf("a closed group's approvers: %v", got)
	}
	// Closing a group already decided changes nothing.
	b.post(groups+"/"+approved.Group.UUID+"/close", nil, true)
	b.expect(http.StatusSeeOther, groups+"/"+approved.Group.UUID)
	b.get(groups + "/" + approved.Group.UUID)
	b.contains("The group was not closed: it was already approved.")

	// The audit trail has the decision, by the operator.
	entries, err := f.audit.List(ctx, twofold.AuditFilter{AppID: shop.ID, Action: twofold.AuditApprovalGroupDecided})
	if err != nil {
		t.Fatal(err)
	}
	var closedBy []string
	for _, e := range entries {
		if e.Details["uuid"] == pending.Group.UUID {
			closedBy = append(closedBy, e.Actor+" "+e.Details["status"]+" "+e.Details["reason"])
		}
	}
	if want := "operator:" + f.operatorEmail(b) + " expired closed"; len(closedBy) != 1 || closedBy[0] != want {
		t.Errorf("the close in the audit trail: %q, want [%q]", closedBy, want)
	}

	// The approvals page links each member's request to its group, and the application's groups.
	b.get("/console/approvals?since=all&app=" + itoa(shop.ID))
	b.contains(`href="`+groups+`/`+approved.Group.UUID+`" class="group-link"`, `href="`+groups+`" id="app-groups"`)
	b.get("/console/apps/" + itoa(shop.ID))
	b.contains(`href="` + groups + `" id="app-groups"`)
}

// operatorEmail is the email of b's operator, as the pages show it.
func (f *fixture) operatorEmail(b *browser) string {
	f.t.Helper()
	b.get("/console/apps")
	m := regexp.MustCompile(`<span class="muted" title="([^"]+)">`).FindStringSubmatch(b.body)
	if m == nil {
		f.t.Fatal("no operator on the page")
	}
	return m[1]
}

// The list pages through the groups, newest first: each group on one page only.
func TestApprovalGroupPaging(t *testing.T) {
	f := newFixture(t, console.Config{})
	b := f.signedIn()
	ctx := t.Context()
	shop, _, _ := f.apps.Create(ctx, appsCreate("Shop"))
	tm := f.groupTeam(shop, "Ana")
	const n = 53
	var made []string
	for i := range n {
		d := f.group(tm, fmt.Sprintf("Payment %02d", i), 1, "Ana")
		made = append(made, d.Group.UUID)
		if _, err := f.ot.CloseGroup(ctx, shop, d.Group.UUID); err != nil { // an approver has at most 5 pending
			t.Fatal(err)
		}
	}
	groups := "/console/apps/" + itoa(shop.ID) + "/groups"
	older := regexp.MustCompile(`href="` + regexp.QuoteMeta(groups) + `\?before=(\d+)" id="groups-older"`)
	seen := map[string]int{}
	path, pages := groups, 0
	for path != "" {
		pages++
		b.get(path)
		b.expect(http.StatusOK, "")
		for _, uuid := range made {
			if strings.Contains(b.body, `data-group="`+uuid+`"`) {
				seen[uuid]++
			}
		}
		path = ""
		if m := older.FindStringSubmatch(b.body); m != nil {
			path = groups + "?before=" + m[1]
		}
		if pages > 1 {
			b.contains(`id="groups-newest"`)
		}
	}
	if pages != 2 || len(seen) != n {
		t.Fatalf("%d pages showed %d of %d groups", pages, len(seen), n)
	}
	for uuid, times := range seen {
		if times != 1 {
			t.Errorf("group %s shown %d times", uuid, times)
		}
	}
	b.get(groups + "?before=1")
	b.contains("No older approval group.")
	b.get(groups + "?before=not-a-number")
	b.expect(http.StatusOK, "")
}
