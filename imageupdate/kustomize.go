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
	var entry *kyaml.RNode
	for _, byField := range []string{"newName", "name"} {
		for _, e := range entries {
			if field(e, byField) == image && (byField == "newName" || field(e, "newName") == "") {
				entry = e
				break
			}
		}
		if entry != nil {
			break
		}
	}
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

func field(n *kyaml.RNode, name string) string {
	v, err := n.Pipe(kyaml.Lookup(name))
	if err != nil || v == nil {
		return ""
	}
	return kyaml.GetValue(v)
}
