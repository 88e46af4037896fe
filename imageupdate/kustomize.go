package imageupdate

import (
	"bytes"
	"fmt"

	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

// SetTag sets image's newTag in a kustomization's images: list — the
// entry whose newName is image, else whose name is — adding an entry when
// there is none; comments and layout are kept. It returns the edited file
// and the tag that was there ("" when none).
func SetTag(kustomization []byte, image, tag string) ([]byte, string, error) {
	if len(bytes.TrimSpace(kustomization)) == 0 {
		// None yet (a Helm release's directory): one holding the entry,
		// which kustomize applies over the chart's objects.
		kustomization = []byte("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n")
	}
	k, err := kyaml.Parse(string(kustomization))
	if err != nil {
		return nil, "", err
	}
	list, err := k.Pipe(kyaml.LookupCreate(kyaml.SequenceNode, "images"))
	if err != nil {
		return nil, "", fmt.Errorf("images: %w", err)
	}
	entries, err := list.Elements()
	if err != nil {
		return nil, "", fmt.Errorf("images: %w", err)
	}
	entry := findEntry(entries, image)
	old := ""
	if entry == nil {
		entry = kyaml.NewMapRNode(&map[string]string{"name": image})
		if err := list.PipeE(kyaml.Append(entry.YNode())); err != nil {
			return nil, "", err
		}
	} else {
		old = field(entry, "newTag")
	}
	if err := entry.PipeE(kyaml.SetField("newTag", kyaml.NewStringRNode(tag))); err != nil {
		return nil, "", err
	}
	out, err := k.String()
	return []byte(out), old, err
}

// Tag is the newTag a kustomization gives image ("" when none, or when
// the file does not parse).
func Tag(kustomization []byte, image string) string {
	k, err := kyaml.Parse(string(kustomization))
	if err != nil {
		return ""
	}
	list, err := k.Pipe(kyaml.Lookup("images"))
	if err != nil || list == nil {
		return ""
	}
	entries, err := list.Elements()
	if err != nil {
		return ""
	}
	if e := findEntry(entries, image); e != nil {
		return field(e, "newTag")
	}
	return ""
}

// findEntry is the images: entry for image: the one whose newName is
// image, else the one whose name is (and that renames nothing).
func findEntry(entries []*kyaml.RNode, image string) *kyaml.RNode {
	for _, e := range entries {
		if field(e, "newName") == image {
			return e
		}
	}
	for _, e := range entries {
		if field(e, "name") == image && field(e, "newName") == "" {
			return e
		}
	}
	return nil
}

func field(n *kyaml.RNode, name string) string {
	v, err := n.Pipe(kyaml.Lookup(name))
	if err != nil || v == nil {
		return ""
	}
	return kyaml.GetValue(v)
}

// Entry is one images: entry of a kustomization.
type Entry struct {
	Name, NewName, NewTag string
}

// Image is the repository the entry deploys: its newName, else its name.
func (e Entry) Image() string {
	if e.NewName != "" {
		return e.NewName
	}
	return e.Name
}

// Entries are the kustomization's images: entries (none when the file
// does not parse or has none).
func Entries(kustomization []byte) []Entry {
	k, err := kyaml.Parse(string(kustomization))
	if err != nil {
		return nil
	}
	list, err := k.Pipe(kyaml.Lookup("images"))
	if err != nil || list == nil {
		return nil
	}
	elems, err := list.Elements()
	if err != nil {
		return nil
	}
	out := make([]Entry, 0, len(elems))
	for _, e := range elems {
		out = append(out, Entry{Name: field(e, "name"), NewName: field(e, "newName"), NewTag: field(e, "newTag")})
	}
	return out
}
