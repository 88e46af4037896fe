package imageupdate

import (
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

func TestLatest(t *testing.T) {
	tags := []string{"1.2.0", "1.3.0", "v1.4.0", "1.4.1-rc.1", "2.0.0", "latest", "main-20261201", "main-20261130", "main-9", "sha-abc", "1.10.0"}
	for _, tc := range []struct {
		name   string
		policy v1alpha1.ImagePolicy
		want   string
	}{
		{"semver range", v1alpha1.ImagePolicy{Semver: ">=1.2.0 <2"}, "1.10.0"},
		{"semver excludes pre-releases", v1alpha1.ImagePolicy{Semver: "~1.4"}, "v1.4.0"},
		{"semver names a pre-release", v1alpha1.ImagePolicy{Semver: ">=1.4.1-rc.0 <1.5"}, "1.4.1-rc.1"},
		{"semver major", v1alpha1.ImagePolicy{Semver: "^2"}, "2.0.0"},
		{"semver none", v1alpha1.ImagePolicy{Semver: ">=3"}, ""},
		{"regex numeric", v1alpha1.ImagePolicy{Regex: `^main-(?P<ts>[0-9]+)$`, Order: "numeric"}, "main-20261201"},
		{"regex alphabetical", v1alpha1.ImagePolicy{Regex: `^main-(?P<ts>[0-9]+)$`}, "main-9"},
		{"regex without a group", v1alpha1.ImagePolicy{Regex: `^sha-`}, "sha-abc"},
		{"alphabetical asc", v1alpha1.ImagePolicy{Alphabetical: "asc"}, "v1.4.0"},
		{"alphabetical desc", v1alpha1.ImagePolicy{Alphabetical: "desc"}, "1.10.0"},
	} {
		got, ok := Latest(tc.policy, tags)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("%s: got %q %v, want %q", tc.name, got, ok, tc.want)
		}
	}
	// The listing order does not matter.
	reversed := make([]string, len(tags))
	for i, tg := range tags {
		reversed[len(tags)-1-i] = tg
	}
	for _, p := range []v1alpha1.ImagePolicy{{Semver: "*"}, {Alphabetical: "asc"}, {Regex: `^(?P<v>.*)$`}} {
		a, _ := Latest(p, tags)
		b, _ := Latest(p, reversed)
		if a != b {
			t.Errorf("%s: %q in one order, %q in the other", p.Name(), a, b)
		}
	}
}

// FuzzLatestSemver: the chosen tag is one of the tags, in the range, and
// no tag in the range is a higher version.
func FuzzLatestSemver(f *testing.F) {
	f.Add("1.2.0,1.3.0,v2.0.0,x", ">=1 <2")
	f.Add("0.0.1,0.0.2-rc.1", "*")
	f.Fuzz(func(t *testing.T, list, rng string) {
		c, err := semver.NewConstraint(rng)
		if err != nil {
			return
		}
		tags := strings.Split(list, ",")
		got, ok := Latest(v1alpha1.ImagePolicy{Semver: rng}, tags)
		if !ok {
			for _, tg := range tags {
				if v, err := semver.NewVersion(tg); err == nil && c.Check(v) {
					t.Fatalf("nothing chosen, but %q is in %q", tg, rng)
				}
			}
			return
		}
		gv, err := semver.NewVersion(got)
		if err != nil || !c.Check(gv) {
			t.Fatalf("chose %q, not in %q", got, rng)
		}
		in := false
		for _, tg := range tags {
			in = in || tg == got
			if v, err := semver.NewVersion(tg); err == nil && c.Check(v) && v.GreaterThan(gv) {
				t.Fatalf("chose %q, but %q is higher", got, tg)
			}
		}
		if !in {
			t.Fatalf("chose %q, not a listed tag", got)
		}
	})
}
