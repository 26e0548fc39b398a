// hclcheck: checks a Terraform module without Terraform or its providers
// (nothing can be downloaded here), with HashiCorp's own HCL parser from
// Debian's golang-github-hashicorp-hcl-v2-dev. Built and run by
// tests/terraform/hcl_syntax_test.sh.
//
//	hclcheck -dir MODULE [-recorded OUTPUT.json]
//
// It fails (exit 1, every problem on stderr as file:line:col) when
//   - a .tf file or a template (*.tftpl) does not parse;
//   - a top-level block is not one Terraform knows, or a top-level attribute;
//   - an expression names var.X, local.X or a resource TYPE.NAME the module
//     does not declare;
//   - a templatefile() call does not pass a variable its template uses;
//   - with -recorded: the recorded `terraform output -json` does not have
//     exactly the module's outputs, or the objects of its meshdeploy_hosts
//     value do not have exactly the keys the module's output builds.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

var problems []string

func problem(r hcl.Range, format string, args ...interface{}) {
	problems = append(problems, fmt.Sprintf("%s:%d:%d: %s", r.Filename, r.Start.Line,
		r.Start.Column, fmt.Sprintf(format, args...)))
}

func diags(d hcl.Diagnostics) {
	for _, x := range d {
		if x.Severity == hcl.DiagError {
			problems = append(problems, x.Error())
		}
	}
}

var knownBlocks = map[string]bool{"terraform": true, "provider": true, "variable": true,
	"output": true, "resource": true, "data": true, "locals": true, "module": true,
	"moved": true, "import": true, "check": true, "removed": true}

// Roots of references Terraform provides itself.
var builtinRoots = map[string]bool{"count": true, "each": true, "path": true, "self": true,
	"terraform": true, "data": true, "module": true}

type module struct {
	variables map[string]bool
	locals    map[string]bool
	resources map[string]bool // "TYPE.NAME"
	outputs   map[string]*hclsyntax.Attribute
	bodies    []*hclsyntax.Body
}

func load(dir string) *module {
	m := &module{variables: map[string]bool{}, locals: map[string]bool{},
		resources: map[string]bool{}, outputs: map[string]*hclsyntax.Attribute{}}
	files, _ := filepath.Glob(filepath.Join(dir, "*.tf"))
	if len(files) == 0 {
		problems = append(problems, dir+": no .tf file")
	}
	p := hclparse.NewParser()
	for _, name := range files {
		f, d := p.ParseHCLFile(name)
		diags(d)
		if f == nil || d.HasErrors() {
			continue
		}
		body := f.Body.(*hclsyntax.Body)
		m.bodies = append(m.bodies, body)
		for _, a := range body.Attributes {
			problem(a.SrcRange, "attribute %q outside any block", a.Name)
		}
		for _, b := range body.Blocks {
			if !knownBlocks[b.Type] {
				problem(b.TypeRange, "unknown block type %q", b.Type)
				continue
			}
			switch b.Type {
			case "variable":
				m.variables[b.Labels[0]] = true
			case "locals":
				for n := range b.Body.Attributes {
					m.locals[n] = true
				}
			case "resource":
				if len(b.Labels) == 2 {
					m.resources[b.Labels[0]+"."+b.Labels[1]] = true
				}
			case "output":
				if v, ok := b.Body.Attributes["value"]; ok {
					m.outputs[b.Labels[0]] = v
				} else {
					problem(b.TypeRange, "output %q has no value", b.Labels[0])
				}
			}
		}
	}
	return m
}

func checkReferences(m *module, dir string) {
	for _, body := range m.bodies {
		checkBody(m, dir, body, "")
	}
}

// Walks a body; `variable { type = string }` and `lifecycle { ignore_changes
// = [user_data] }` hold type names and attribute names, not references.
func checkBody(m *module, dir string, body *hclsyntax.Body, blockType string) {
	for name, a := range body.Attributes {
		if (blockType == "variable" && name == "type") || blockType == "lifecycle" {
			continue
		}
		for _, t := range hclsyntax.Variables(a.Expr) {
			checkTraversal(m, t)
		}
		hclsyntax.VisitAll(a.Expr, func(n hclsyntax.Node) hcl.Diagnostics {
			if call, ok := n.(*hclsyntax.FunctionCallExpr); ok && call.Name == "templatefile" {
				checkTemplateCall(dir, call)
			}
			return nil
		})
	}
	for _, b := range body.Blocks {
		checkBody(m, dir, b.Body, b.Type)
	}
}

func checkTraversal(m *module, t hcl.Traversal) {
	root := t.RootName()
	attr := func() string {
		if len(t) > 1 {
			if a, ok := t[1].(hcl.TraverseAttr); ok {
				return a.Name
			}
		}
		return ""
	}
	switch {
	case root == "var":
		if !m.variables[attr()] {
			problem(t.SourceRange(), "var.%s is not declared", attr())
		}
	case root == "local":
		if !m.locals[attr()] {
			problem(t.SourceRange(), "local.%s is not declared", attr())
		}
	case builtinRoots[root]:
	case strings.Contains(root, "_"): // a resource type: TYPE.NAME
		if !m.resources[root+"."+attr()] {
			problem(t.SourceRange(), "resource %s.%s is not declared", root, attr())
		}
	default:
		problem(t.SourceRange(), "unknown reference %q", root)
	}
}

// templatefile("${path.module}/NAME", {k = v, ...}): every variable the
// template uses must be one of the keys.
func checkTemplateCall(dir string, call *hclsyntax.FunctionCallExpr) {
	if len(call.Args) != 2 {
		problem(call.Range(), "templatefile takes 2 arguments")
		return
	}
	tmpl, ok := call.Args[0].(*hclsyntax.TemplateExpr)
	obj, ok2 := call.Args[1].(*hclsyntax.ObjectConsExpr)
	if !ok || !ok2 || len(tmpl.Parts) == 0 {
		problem(call.Range(), "templatefile: expected a \"${path.module}/FILE\" path and an object")
		return
	}
	last, ok := tmpl.Parts[len(tmpl.Parts)-1].(*hclsyntax.LiteralValueExpr)
	if !ok {
		problem(call.Range(), "templatefile: the path must end in a literal file name")
		return
	}
	name := filepath.Join(dir, strings.TrimPrefix(last.Val.AsString(), "/"))
	keys := map[string]bool{}
	for _, item := range obj.Items {
		keys[hcl.ExprAsKeyword(item.KeyExpr)] = true
	}
	src, err := os.ReadFile(name)
	if err != nil {
		problem(call.Range(), "templatefile: %v", err)
		return
	}
	expr, d := hclsyntax.ParseTemplate(src, name, hcl.InitialPos)
	diags(d)
	if d.HasErrors() {
		return
	}
	for _, t := range hclsyntax.Variables(expr) {
		if !keys[t.RootName()] {
			problem(t.SourceRange(), "template variable %q is not passed by %s", t.RootName(),
				call.Range())
		}
	}
}

// The keys of the objects an output's value builds: `[for ... : {k = v}]`.
func objectKeys(a *hclsyntax.Attribute) []string {
	var obj *hclsyntax.ObjectConsExpr
	switch e := a.Expr.(type) {
	case *hclsyntax.ForExpr:
		obj, _ = e.ValExpr.(*hclsyntax.ObjectConsExpr)
	case *hclsyntax.TupleConsExpr:
		if len(e.Exprs) == 1 {
			if f, ok := e.Exprs[0].(*hclsyntax.ForExpr); ok {
				obj, _ = f.ValExpr.(*hclsyntax.ObjectConsExpr)
			}
		}
	}
	if obj == nil {
		return nil
	}
	var keys []string
	for _, item := range obj.Items {
		keys = append(keys, hcl.ExprAsKeyword(item.KeyExpr))
	}
	sort.Strings(keys)
	return keys
}

func checkRecorded(m *module, recorded string) {
	src, err := os.ReadFile(recorded)
	if err != nil {
		problems = append(problems, err.Error())
		return
	}
	var out map[string]struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(src, &out); err != nil {
		problems = append(problems, recorded+": "+err.Error())
		return
	}
	var want, got []string
	for n := range m.outputs {
		want = append(want, n)
	}
	for n := range out {
		got = append(got, n)
	}
	sort.Strings(want)
	sort.Strings(got)
	if strings.Join(want, ",") != strings.Join(got, ",") {
		problems = append(problems, fmt.Sprintf("%s: outputs %v, the module declares %v",
			recorded, got, want))
	}
	hosts, ok := m.outputs["meshdeploy_hosts"]
	if !ok {
		problems = append(problems, "the module has no output meshdeploy_hosts")
		return
	}
	keys := objectKeys(hosts)
	if keys == nil {
		problem(hosts.SrcRange, "meshdeploy_hosts: expected [for ... : {name = ..., address = ...}]")
		return
	}
	var items []map[string]interface{}
	if err := json.Unmarshal(out["meshdeploy_hosts"].Value, &items); err != nil {
		problems = append(problems, recorded+": meshdeploy_hosts.value: "+err.Error())
		return
	}
	for i, item := range items {
		var k []string
		for n := range item {
			k = append(k, n)
		}
		sort.Strings(k)
		if strings.Join(k, ",") != strings.Join(keys, ",") {
			problems = append(problems, fmt.Sprintf(
				"%s: meshdeploy_hosts.value[%d] has keys %v, the module's output builds %v",
				recorded, i, k, keys))
		}
	}
	fmt.Printf("meshdeploy_hosts builds %v; %s has %d such hosts\n", keys, recorded, len(items))
}

func main() {
	dir := flag.String("dir", ".", "the module's directory")
	recorded := flag.String("recorded", "", "a `terraform output -json` file to compare")
	flag.Parse()
	m := load(*dir)
	checkReferences(m, *dir)
	if *recorded != "" {
		checkRecorded(m, *recorded)
	}
	for _, p := range problems {
		fmt.Fprintln(os.Stderr, p)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
	fmt.Printf("%s: %d variables, %d resources, %d outputs: ok\n", *dir, len(m.variables),
		len(m.resources), len(m.outputs))
}
