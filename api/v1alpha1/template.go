package v1alpha1

import (
	"fmt"
	"path"
	"reflect"
	"regexp"
	"sort"
	"strings"
)

// KindCheckTemplate is the kind of a check template file.
const KindCheckTemplate = "CheckTemplate"

// TemplatesDir is the directory a release's check templates are looked up
// in: the nearest one among the release's directory and its ancestors.
const TemplatesDir = "checks"

// CheckTemplate is a check defined once in the repository, in
// checks/<name>.yaml, and used by releases by name with arguments (Argo
// Rollouts' AnalysisTemplate). Every string of its check may hold
// $(args.<name>) references, replaced by the release's args or the
// argument's default; they are plain text, so they never collide with the
// Go templates of queries ({{.Canary.Service}}), which run at measurement.
type CheckTemplate struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   TemplateMeta      `json:"metadata"`
	Spec       CheckTemplateSpec `json:"spec"`
}

// TemplateMeta names a template.
type TemplateMeta struct {
	Name string `json:"name"`
}

// CheckTemplateSpec is the arguments and the check.
type CheckTemplateSpec struct {
	Args  []TemplateArg `json:"args,omitempty"`
	Check Check         `json:"check"`
}

// TemplateArg is an argument; without a default a release must set it.
type TemplateArg struct {
	Name    string  `json:"name"`
	Default *string `json:"default,omitempty"`
}

// ParsedTemplate is a decoded template with the positions of its fields.
type ParsedTemplate struct {
	Template *CheckTemplate
	File     string
	Pos      Positions
	// data is the file, decoded afresh for each instance so filling one
	// release's args never edits the template another release uses.
	data []byte
}

var argRef = regexp.MustCompile(`\$\(args\.([^)]*)\)`)
var argName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// ParseCheckTemplate decodes a template file strictly and checks its shape:
// the kind, a name equal to the file's, unique arguments, and every
// $(args.x) reference naming a declared argument. Its check is validated
// when a release instantiates it, with the release's values.
func ParseCheckTemplate(file string, data []byte) (*ParsedTemplate, error) {
	var t CheckTemplate
	pos, errs := decodeStrict(file, data, &t)
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	pt := &ParsedTemplate{Template: &t, File: file, Pos: pos, data: data}
	at := func(field, format string, args ...any) *FieldError {
		return &FieldError{File: file, Line: pos.Line(field), Field: field, Message: fmt.Sprintf(format, args...)}
	}
	if t.APIVersion != APIVersion {
		errs = append(errs, at("apiVersion", "must be %s, got %q", APIVersion, t.APIVersion))
	}
	if t.Kind != KindCheckTemplate {
		errs = append(errs, at("kind", "must be %s, got %q", KindCheckTemplate, t.Kind))
	}
	if want := strings.TrimSuffix(path.Base(file), ".yaml"); t.Metadata.Name != want {
		errs = append(errs, at("metadata.name", "must be %q, the file's name, got %q", want, t.Metadata.Name))
	}
	if t.Spec.Check.Template.Name != "" || len(t.Spec.Check.Args) > 0 || t.Spec.Check.Name != "" {
		errs = append(errs, at("spec.check", "a template's check has no name, template or args of its own (the release gives the name)"))
	}
	declared := map[string]int{}
	for i, a := range t.Spec.Args {
		f := fmt.Sprintf("spec.args[%d].name", i)
		switch prev, dup := declared[a.Name]; {
		case !argName.MatchString(a.Name):
			errs = append(errs, at(f, "%q: an argument's name is letters, digits, - and _", a.Name))
		case dup:
			errs = append(errs, at(f, "%q is already spec.args[%d]", a.Name, prev))
		}
		declared[a.Name] = i
	}
	strs(reflect.ValueOf(&t.Spec.Check).Elem(), "spec.check", func(field string, s string) string {
		for _, m := range argRef.FindAllStringSubmatch(s, -1) {
			if _, ok := declared[m[1]]; !ok {
				errs = append(errs, at(field, "$(args.%s) names no argument in spec.args", m[1]))
			}
		}
		return s
	})
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return pt, nil
}

// Instantiate makes the check named name from the template with args
// (from release p's check at field). Errors about the args are located in
// the release; errors in the resulting check, in the template, saying
// which release's args made it.
func (pt *ParsedTemplate) Instantiate(p *Parsed, field, name string, args map[string]string) (Check, ErrorList) {
	var errs ErrorList
	values := map[string]string{}
	for _, a := range pt.Template.Spec.Args {
		v, set := args[a.Name]
		switch {
		case set:
			values[a.Name] = v
		case a.Default != nil:
			values[a.Name] = *a.Default
		default:
			errs = append(errs, p.Errorf(field+".args", "template %s needs argument %q (%s)", pt.Template.Metadata.Name, a.Name, pt.File))
		}
	}
	var unknown []string
	for k, v := range args {
		if _, declared := values[k]; !declared { // every declared arg the release sets is in values
			unknown = append(unknown, k)
		}
		if strings.ContainsAny(v, "\n\r\x00") {
			errs = append(errs, p.Errorf(field+".args."+k, "an argument is one line"))
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		errs = append(errs, p.Errorf(field+".args."+k, "template %s has no argument %q (%s)", pt.Template.Metadata.Name, k, pt.File))
	}
	if len(errs) > 0 {
		return Check{}, errs
	}
	var fresh CheckTemplate
	decodeStrict(pt.File, pt.data, &fresh) // decoded without error once already
	c := fresh.Spec.Check
	strs(reflect.ValueOf(&c).Elem(), "spec.check", func(_ string, s string) string {
		return argRef.ReplaceAllStringFunc(s, func(ref string) string { return values[argRef.FindStringSubmatch(ref)[1]] })
	})
	c.Name = name
	// The check as made, validated where it was written.
	tp := &Parsed{Release: &Release{}, File: pt.File, Pos: pt.Pos}
	v := &validator{p: tp}
	v.check("spec.check", &c)
	for _, e := range v.errs {
		e.Message += fmt.Sprintf(" (with the args of %s:%d)", p.File, p.Pos.Line(field+".args"))
	}
	return c, v.errs
}

// strs calls f on every string reachable from v (struct fields by their
// JSON names, list items, map values) with its field path, and stores
// what f returns.
func strs(v reflect.Value, field string, f func(field, s string) string) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			strs(v.Elem(), field, f)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			if name == "" || !v.Field(i).CanSet() {
				continue
			}
			strs(v.Field(i), field+"."+name, f)
		}
	case reflect.Slice:
		for i := range v.Len() {
			strs(v.Index(i), fmt.Sprintf("%s[%d]", field, i), f)
		}
	case reflect.Map:
		if v.Type().Elem().Kind() != reflect.String {
			return
		}
		for _, k := range v.MapKeys() {
			v.SetMapIndex(k, reflect.ValueOf(f(field+"."+k.String(), v.MapIndex(k).String())).Convert(v.Type().Elem()))
		}
	case reflect.String:
		v.SetString(f(field, v.String()))
	}
}
