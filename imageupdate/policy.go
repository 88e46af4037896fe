// Package imageupdate keeps images at the newest tag a policy allows:
// it chooses tags (pure), lists them from registries, and edits the
// release's kustomization so the agent can commit the bump. The commit,
// not the agent, changes what runs: Git names every image deployed.
package imageupdate

import (
	"regexp"
	"strconv"

	"github.com/Masterminds/semver/v3"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// Latest is the tag the policy takes from tags, and false when none
// qualifies. Ties in the policy's order go to the greater tag string, so
// the choice does not depend on the registry's listing order.
func Latest(p v1alpha1.ImagePolicy, tags []string) (string, bool) {
	var best string
	found := false
	better := func(tag string, less func(a, b string) bool) {
		if !found || less(best, tag) || (!less(tag, best) && tag > best) {
			best, found = tag, true
		}
	}
	switch {
	case p.Semver != "":
		c, err := semver.NewConstraint(p.Semver)
		if err != nil {
			return "", false
		}
		versions := map[string]*semver.Version{}
		for _, t := range tags {
			if v, err := semver.NewVersion(t); err == nil && c.Check(v) {
				versions[t] = v
			}
		}
		for t := range versions {
			better(t, func(a, b string) bool { return versions[a].LessThan(versions[b]) })
		}
	case p.Regex != "":
		re, err := regexp.Compile(p.Regex)
		if err != nil {
			return "", false
		}
		group := 0
		for i, name := range re.SubexpNames() {
			if name != "" {
				group = i
				break
			}
		}
		values := map[string]string{}
		numbers := map[string]float64{}
		for _, t := range tags {
			m := re.FindStringSubmatch(t)
			if m == nil {
				continue
			}
			if p.Order == "numeric" {
				n, err := strconv.ParseFloat(m[group], 64)
				if err != nil {
					continue
				}
				numbers[t] = n
			}
			values[t] = m[group]
		}
		for t := range values {
			if p.Order == "numeric" {
				better(t, func(a, b string) bool { return numbers[a] < numbers[b] })
			} else {
				better(t, func(a, b string) bool { return values[a] < values[b] })
			}
		}
	case p.Alphabetical == "desc":
		for _, t := range tags {
			better(t, func(a, b string) bool { return a > b })
		}
	case p.Alphabetical != "":
		for _, t := range tags {
			better(t, func(a, b string) bool { return a < b })
		}
	}
	return best, found
}
