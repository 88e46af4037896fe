package imageupdate

import (
	"strings"
	"testing"
)

func TestSetTag(t *testing.T) {
	for _, tc := range []struct {
		name, in, image, tag, want, old string
	}{
		{"by newName, comments kept",
			"# the app\nresources: [deployment.yaml]\nimages:\n- name: app # renamed\n  newName: registry.example.com/org/app\n  newTag: 1.2.0\n",
			"registry.example.com/org/app", "1.4.0",
			"# the app\nresources: [deployment.yaml]\nimages:\n- name: app # renamed\n  newName: registry.example.com/org/app\n  newTag: 1.4.0\n", "1.2.0"},
		{"by name",
			"images:\n- name: registry.example.com/org/app\n  newTag: \"1.2\"\n",
			"registry.example.com/org/app", "1.3",
			"images:\n- name: registry.example.com/org/app\n  newTag: \"1.3\"\n", "1.2"},
		{"added when missing",
			"resources: [deployment.yaml]\n",
			"registry.example.com/org/app", "1.4.0@sha256:" + strings.Repeat("a", 64),
			"resources: [deployment.yaml]\nimages:\n- name: registry.example.com/org/app\n  newTag: 1.4.0@sha256:" + strings.Repeat("a", 64) + "\n", ""},
		{"no kustomization yet",
			"",
			"registry.example.com/org/app", "1.0.0",
			"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n- name: registry.example.com/org/app\n  newTag: 1.0.0\n", ""},
		{"another image's entry untouched",
			"images:\n- name: nginx\n  newTag: \"1.27\"\n",
			"registry.example.com/org/app", "2.0.0",
			"images:\n- name: nginx\n  newTag: \"1.27\"\n- name: registry.example.com/org/app\n  newTag: 2.0.0\n", ""},
	} {
		if got := Tag([]byte(tc.in), tc.image); got != tc.old {
			t.Errorf("%s: Tag = %q, want %q", tc.name, got, tc.old)
		}
		got, old, err := SetTag([]byte(tc.in), tc.image, tc.tag)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if string(got) != tc.want || old != tc.old {
			t.Errorf("%s: got (old %q)\n%s\nwant (old %q)\n%s", tc.name, old, got, tc.old, tc.want)
		}
	}
}
