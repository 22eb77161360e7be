package main

import (
	"strconv"
	"strings"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// requestGroup is what a device is shown of the approval group a request belongs to.
type requestGroup struct {
	Status        string          `json:"status"`
	Reason        string          `json:"reason,omitempty"`
	Quorum        int             `json:"quorum"`
	Size          int             `json:"size"`
	Approvals     int             `json:"approvals"`
	Denials       int             `json:"denials"`
	RequesterName string          `json:"requester_name"`
	Approvers     []groupApprover `json:"approvers"`
}

type groupApprover struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	You    bool   `json:"you"`
}

// groupLine is where the group stands, as the web authenticator says it:
// "2 of 3 needed; approved by Ana; denied by Cy; asked by Dan" (the count only while pending).
// The names come from the application: they are made safe for the terminal.
func groupLine(g *requestGroup) string {
	var parts []string
	if g.Status == string(twofold.Pending) {
		parts = append(parts, strconv.Itoa(g.Quorum)+" of "+strconv.Itoa(g.Size)+" needed")
	}
	for _, s := range []twofold.ApprovalStatus{twofold.Approved, twofold.Denied} {
		var names []string
		for _, a := range g.Approvers {
			if a.Status == string(s) {
				name := termSafe(a.Name)
				if a.You {
					name = "you"
				}
				names = append(names, name)
			}
		}
		if len(names) > 0 {
			parts = append(parts, string(s)+" by "+andList(names))
		}
	}
	if g.RequesterName != "" {
		parts = append(parts, "asked by "+termSafe(g.RequesterName))
	}
	return strings.Join(parts, "; ")
}

// andList is "Ana", "Ana and Bob", "Ana, Bob and Cy".
func andList(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// groupDecision is what a decided group decided: "approved by the group"; "" while pending.
func groupDecision(g *requestGroup) string {
	switch {
	case g == nil || g.Status == string(twofold.Pending):
		return ""
	case g.Reason == "closed":
		return "closed"
	case g.Status == string(twofold.Expired):
		return "expired"
	}
	return termSafe(g.Status) + " by the group"
}

// groupChanged reports whether the group of an update differs from the one shown.
func groupChanged(was, now *requestGroup) bool {
	if was == nil || now == nil {
		return false
	}
	return was.Status != now.Status || was.Approvals != now.Approvals || was.Denials != now.Denials
}
