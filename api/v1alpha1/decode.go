package v1alpha1

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// MaxReleaseFileSize bounds release.yaml; larger files are refused unread.
const MaxReleaseFileSize = 1 << 20

// Positions maps a field path ("spec.strategy.canary.steps[2].setWeight") to
// the line it was written on.
type Positions map[string]int

// Line returns the line of path, or of its nearest written parent.
func (p Positions) Line(path string) int {
	for path != "" {
		if l, ok := p[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return p[""]
}

// decoder fills Go values from YAML nodes strictly, following json tags,
// and collects every error with its field path and line.
type decoder struct {
	file string
	pos  Positions
	errs ErrorList
	// budget bounds the nodes visited, so aliases cannot expand a small
	// file exponentially ("billion laughs").
	budget int
}

// maxNodes bounds the YAML nodes one release file may expand to.
const maxNodes = 100000

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, &FieldError{File: d.file, Line: line, Field: path, Message: fmt.Sprintf(format, args...)})
}

// decodeStrict parses one YAML document of data into out, a pointer to a
// struct. Unknown fields, wrong types and bad durations are errors.
func decodeStrict(file string, data []byte, out any) (Positions, ErrorList) {
	d := &decoder{file: file, pos: Positions{}, budget: maxNodes}
	if len(data) > MaxReleaseFileSize {
		d.fail(nil, "", "file is larger than %d bytes", MaxReleaseFileSize)
		return d.pos, d.errs
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			d.fail(nil, "", "file is empty")
		} else {
			d.errs = append(d.errs, yamlSyntaxError(file, err))
		}
		return d.pos, d.errs
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.fail(&extra, "", "file holds more than one YAML document; a release file holds one")
	}
	d.pos[""] = 1
	d.decode(&doc, "", reflect.ValueOf(out).Elem())
	return d.pos, d.errs
}

// yamlSyntaxError turns "yaml: line 3: ..." into a located error.
func yamlSyntaxError(file string, err error) *FieldError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.Index(rest, ":"); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				line, msg = n, strings.TrimSpace(rest[i+1:])
			}
		}
	}
	return &FieldError{File: file, Line: line, Message: "invalid YAML: " + msg}
}

var (
	durationType     = reflect.TypeFor[Duration]()
	intOrPercentType = reflect.TypeFor[IntOrPercent]()
	timeType         = reflect.TypeFor[time.Time]()
)

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!str":
		return fmt.Sprintf("the string %q", n.Value)
	case "!!null":
		return "null"
	case "!!bool":
		return "the boolean " + n.Value
	}
	return n.Value
}

func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	if d.budget--; d.budget < 0 {
		if d.budget == -1 {
			d.fail(n, path, "file expands to more than %d YAML nodes", maxNodes)
		}
		return
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			d.fail(n, path, "file is empty")
			return
		}
		d.decode(n.Content[0], path, v)
		return
	case yaml.AliasNode:
		d.decode(n.Alias, path, v)
		return
	}
	if _, ok := d.pos[path]; !ok {
		d.pos[path] = n.Line
	}
	t := v.Type()
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			d.fail(n, path, "expected a duration such as 30s or 2m, got %s", kindName(n))
			return
		}
		dur, err := parseDuration(n.Value)
		if err != nil {
			d.fail(n, path, "%v", err)
			return
		}
		if dur < 0 || dur == 0 && !zeroDurations[path] {
			d.fail(n, path, "must be positive, got %s", n.Value)
			return
		}
		v.Set(reflect.ValueOf(Duration{dur}))
		return
	case t == intOrPercentType:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a number or a percent such as \"25%%\", got %s", kindName(n))
			return
		}
		p, err := parseIntOrPercent(n.Value)
		if err != nil {
			d.fail(n, path, "%v", err)
			return
		}
		v.Set(reflect.ValueOf(p))
		return
	case t == timeType:
		var tm time.Time
		if err := n.Decode(&tm); err != nil {
			d.fail(n, path, "expected a time such as 2026-11-26T10:00:00Z, got %s", kindName(n))
			return
		}
		v.Set(reflect.ValueOf(tm))
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if n.ShortTag() == "!!null" {
			return
		}
		p := reflect.New(t.Elem())
		d.decode(n, path, p.Elem())
		v.Set(p)
	case reflect.Struct:
		if sh, ok := v.Addr().Interface().(shorthand); ok && n.Kind != yaml.MappingNode && n.ShortTag() != "!!null" {
			// The short form: the node stands for one field.
			d.decode(n, path, v.FieldByName(sh.shorthandField()))
			return
		}
		d.decodeStruct(n, path, v)
	case reflect.Slice:
		if n.ShortTag() == "!!null" {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "expected a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, fmt.Sprintf("%s[%d]", path, i), s.Index(i))
		}
		v.Set(s)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
			d.fail(n, path, "expected a string, got %s", kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int32, reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			d.fail(n, path, "expected a whole number, got %s", kindName(n))
			return
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, t.Bits())
		if err != nil {
			d.fail(n, path, "number %s out of range", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
			d.fail(n, path, "expected a number, got %s", kindName(n))
			return
		}
		f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.fail(n, path, "expected a finite number, got %s", n.Value)
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.fail(n, path, "expected true or false, got %s", kindName(n))
			return
		}
		v.SetBool(n.Value == "true" || n.Value == "True" || n.Value == "TRUE")
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "expected a mapping, got %s", kindName(n))
			return
		}
		m := reflect.MakeMapWithSize(t, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			e := reflect.New(t.Elem()).Elem()
			d.decode(val, join(path, k.Value), e)
			m.SetMapIndex(reflect.ValueOf(k.Value), e)
		}
		v.Set(m)
	default:
		d.fail(n, path, "cannot decode into %s", t)
	}
}

// shorthand is a struct a YAML scalar or list may stand for: the node
// fills the field named (postPromotion: [checks] for {checks: [...]},
// template: name for {name: ...}).
type shorthand interface{ shorthandField() string }

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func (d *decoder) decodeStruct(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		if n.ShortTag() == "!!null" {
			return
		}
		d.fail(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	fields := structFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		p := join(path, k.Value)
		idx, ok := fields[k.Value]
		if !ok {
			d.fail(k, p, "unknown field%s", suggest(k.Value, fields))
			continue
		}
		if seen[k.Value] {
			d.fail(k, p, "field given twice")
			continue
		}
		seen[k.Value] = true
		d.pos[p] = k.Line
		d.decode(val, p, v.Field(idx))
	}
}

// structFields maps json names to field indexes.
func structFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		m[name] = i
	}
	return m
}

// suggest names a known field that differs from name only in case, the
// most common typo in hand-written YAML.
func suggest(name string, fields map[string]int) string {
	for f := range fields {
		if strings.EqualFold(f, name) {
			return fmt.Sprintf(" (did you mean %q?)", f)
		}
	}
	return ""
}

// zeroDurations are the duration fields where 0s means something (off).
var zeroDurations = map[string]bool{"spec.strategy.scaleDownDelay": true}
