package twofold

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"testing"
)

// Every audit action declared in audit.go is in AuditActions, so `twofold audit --action` and
// the console's filter accept it.
func TestAuditActionsListsEveryAction(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "audit.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	ast.Inspect(f, func(node ast.Node) bool {
		spec, ok := node.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range spec.Names {
			lit, isString := spec.Values[i].(*ast.BasicLit)
			if len(name.Name) < 6 || name.Name[:5] != "Audit" || !isString || lit.Kind != token.STRING {
				continue
			}
			n++
			action, _ := strconv.Unquote(lit.Value)
			if !slices.Contains(AuditActions, action) {
				t.Errorf("%s (%q) is not in AuditActions", name.Name, action)
			}
		}
		return true
	})
	if n < 10 {
		t.Fatalf("found %d actions in audit.go: the test reads the wrong file", n)
	}
}
