package main

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

// yamlEdit changes a YAML file by lines, using yaml.v3 only to find where
// things are, so every comment, blank line and indentation people wrote
// stays as it was. Lines are 1-based, as yaml.v3 reports them.
type yamlEdit struct {
	lines []string
	root  *yaml.Node // the document's top mapping
}

func newYAMLEdit(data []byte) (*yamlEdit, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("not a YAML mapping")
	}
	return &yamlEdit{lines: strings.Split(strings.TrimRight(string(data), "\n"), "\n"), root: doc.Content[0]}, nil
}

func (e *yamlEdit) bytes() []byte { return []byte(strings.Join(e.lines, "\n") + "\n") }

// find returns the mapping holding key and the key's index in it, walking
// path from the root, with the end line of that mapping's region.
func (e *yamlEdit) find(path ...string) (m *yaml.Node, idx, end int) {
	m, end = e.root, len(e.lines)
	for depth, key := range path {
		idx = -1
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				idx = i
			}
		}
		if idx < 0 || depth == len(path)-1 {
			return m, idx, end
		}
		end = e.valueEnd(m, idx, end)
		m = m.Content[idx+1]
		if m.Kind != yaml.MappingNode {
			return nil, -1, end
		}
	}
	return m, idx, end
}

// valueEnd is the last line of the value of the key at idx in m (whose
// region ends at parentEnd), not counting trailing blank or comment lines,
// which belong to what follows.
func (e *yamlEdit) valueEnd(m *yaml.Node, idx, parentEnd int) int {
	end := parentEnd
	if idx+2 < len(m.Content) {
		end = m.Content[idx+2].Line - 1
	}
	for end > m.Content[idx].Line {
		t := strings.TrimSpace(e.lines[end-1])
		if t != "" && !strings.HasPrefix(t, "#") {
			break
		}
		end--
	}
	return end
}

// indentOf is the indentation of keys in mapping m.
func indentOf(m *yaml.Node, fallback int) string {
	if len(m.Content) > 0 {
		return strings.Repeat(" ", m.Content[0].Column-1)
	}
	return strings.Repeat(" ", fallback)
}

func (e *yamlEdit) replace(from, to int, with ...string) {
	out := append([]string{}, e.lines[:from-1]...)
	out = append(out, with...)
	e.lines = append(out, e.lines[to:]...)
}

// flowOnPath reports whether a node on path (the value at its end
// included) is written in flow style ({...} or [...]), which the line
// editor cannot change in place.
func (e *yamlEdit) flowOnPath(path ...string) bool {
	m := e.root
	for _, key := range path {
		if m.Style&yaml.FlowStyle != 0 {
			return true
		}
		var next *yaml.Node
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				next = m.Content[i+1]
			}
		}
		if next == nil {
			return false
		}
		if next.Kind != yaml.MappingNode {
			return next.Style&yaml.FlowStyle != 0
		}
		m = next
	}
	return m.Style&yaml.FlowStyle != 0
}

// viaRNode makes an edit with kyaml's RNode (comments kept, layout of
// flow-style nodes rewritten) where the line editor cannot, then reloads.
func (e *yamlEdit) viaRNode(edit func(rn *kyaml.RNode) error) error {
	rn, err := kyaml.Parse(string(e.bytes()))
	if err != nil {
		return err
	}
	if err := edit(rn); err != nil {
		return err
	}
	out, err := rn.String()
	if err != nil {
		return err
	}
	next, err := newYAMLEdit([]byte(out))
	if err != nil {
		return err
	}
	*e = *next
	return nil
}

// set writes "key: value" (value in flow style, one line) at path, replacing
// the key's whole value if it exists, else adding it to its mapping.
func (e *yamlEdit) set(value string, path ...string) error {
	if e.flowOnPath(path...) {
		return e.viaRNode(func(rn *kyaml.RNode) error {
			v, err := kyaml.Parse(value)
			if err != nil {
				return err
			}
			return rn.PipeE(kyaml.LookupCreate(kyaml.MappingNode, path[:len(path)-1]...), kyaml.SetField(path[len(path)-1], v))
		})
	}
	m, idx, end := e.find(path...)
	if m == nil {
		return fmt.Errorf("%s: a parent is not a mapping", strings.Join(path, "."))
	}
	key := path[len(path)-1]
	if idx >= 0 {
		k := m.Content[idx]
		e.replace(k.Line, e.valueEnd(m, idx, end), strings.Repeat(" ", k.Column-1)+key+": "+value)
		return nil
	}
	if len(m.Content) == 0 {
		return fmt.Errorf("%s: the parent mapping is empty", strings.Join(path, "."))
	}
	last := len(m.Content) - 2
	at := e.valueEnd(m, last, end)
	e.replace(at+1, at, indentOf(m, 2)+key+": "+value)
	return nil
}

// appendItem adds a flow-style item to the block sequence at path, creating
// the sequence (and its parents) when missing.
func (e *yamlEdit) appendItem(item string, path ...string) error {
	if e.flowOnPath(path...) {
		return e.viaRNode(func(rn *kyaml.RNode) error {
			v, err := kyaml.Parse(item)
			if err != nil {
				return err
			}
			return rn.PipeE(kyaml.LookupCreate(kyaml.SequenceNode, path...), kyaml.Append(v.YNode()))
		})
	}
	m, idx, end := e.find(path...)
	if m != nil && idx >= 0 {
		seq := m.Content[idx+1]
		if seq.Kind == yaml.SequenceNode && seq.Style&yaml.FlowStyle == 0 && len(seq.Content) > 0 {
			at := e.valueEnd(m, idx, end)
			e.replace(at+1, at, strings.Repeat(" ", seq.Content[0].Column-3)+"- "+item)
			return nil
		}
		var items []string
		for _, c := range seq.Content {
			b, _ := yaml.Marshal(c)
			items = append(items, strings.TrimSpace(string(b)))
		}
		return e.set("["+strings.Join(append(items, item), ", ")+"]", path...)
	}
	// Create the missing levels as one block.
	for n := len(path) - 1; n >= 1; n-- {
		pm, pidx, pend := e.find(path[:n]...)
		if pm == nil || pidx < 0 {
			continue
		}
		parent := pm.Content[pidx+1]
		if parent.Kind != yaml.MappingNode {
			return fmt.Errorf("%s is not a mapping", strings.Join(path[:n], "."))
		}
		indent := indentOf(parent, parent.Column-1)
		if len(parent.Content) == 0 {
			return e.set("{"+strings.Join(path[n:], ": {")+": ["+item+"]"+strings.Repeat("}", len(path)-n-1), path[:n]...)
		}
		var block []string
		for i, k := range path[n:] {
			block = append(block, indent+strings.Repeat("  ", i)+k+":")
		}
		block = append(block, indent+strings.Repeat("  ", len(path)-n-1)+"- "+item)
		at := e.valueEnd(parent, len(parent.Content)-2, e.valueEnd(pm, pidx, pend))
		e.replace(at+1, at, block...)
		return nil
	}
	return fmt.Errorf("%s not found", strings.Join(path, "."))
}
