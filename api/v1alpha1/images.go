package v1alpha1

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// ImageUpdate is one image kept at the newest tag its policy allows.
type ImageUpdate struct {
	// Image is the repository without a tag: registry.example.com/org/app
	// (Docker Hub images as docker.io/library/nginx or nginx).
	Image string `json:"image"`
	// Policy chooses among the repository's tags.
	Policy ImagePolicy `json:"policy"`
	// Pin is what is written: tag (the default) or digest (the tag and
	// its digest, newTag: 1.4.2@sha256:…, so a moved tag changes nothing).
	Pin string `json:"pin,omitempty"`
}

// ImagePolicy chooses a tag: exactly one of Semver, Regex, Alphabetical.
type ImagePolicy struct {
	// Semver is a range: the highest version in it wins (tags with or
	// without a leading v; pre-releases only if the range names one).
	Semver string `json:"semver,omitempty"`
	// Regex filters tags; with a named group, its value orders them,
	// else the whole tag does.
	Regex string `json:"regex,omitempty"`
	// Order is how Regex's values are ordered: alphabetical (the
	// default) or numeric; the highest wins.
	Order string `json:"order,omitempty"`
	// Alphabetical orders every tag: asc takes the last in ascending
	// order (e.g. timestamps), desc the first.
	Alphabetical string `json:"alphabetical,omitempty"`
}

// Name says the policy as it is written, for commit trailers and tables.
func (p ImagePolicy) Name() string {
	switch {
	case p.Semver != "":
		return "semver " + p.Semver
	case p.Regex != "":
		order := p.Order
		if order == "" {
			order = "alphabetical"
		}
		return fmt.Sprintf("regex %s (%s)", p.Regex, order)
	default:
		return "alphabetical " + p.Alphabetical
	}
}

func (v *validator) imageUpdates() {
	seen := map[string]bool{}
	for i, u := range v.p.Release.Spec.ImageUpdates {
		field := fmt.Sprintf("spec.imageUpdates[%d]", i)
		if v.required(field+".image", u.Image) {
			switch {
			case strings.ContainsAny(u.Image, "@ \t") || strings.HasSuffix(u.Image, "/"):
				v.errorf(field+".image", "%q: a repository, without tag or digest (registry.example.com/org/app)", u.Image)
			case strings.Contains(u.Image[strings.LastIndex(u.Image, "/")+1:], ":"):
				v.errorf(field+".image", "%q: a repository, without tag or digest (registry.example.com/org/app)", u.Image)
			case seen[u.Image]:
				v.errorf(field+".image", "%q is listed twice", u.Image)
			}
			seen[u.Image] = true
		}
		p := u.Policy
		set := 0
		for _, s := range []string{p.Semver, p.Regex, p.Alphabetical} {
			if s != "" {
				set++
			}
		}
		if set != 1 {
			v.errorf(field+".policy", "exactly one of semver, regex, alphabetical")
		}
		if p.Semver != "" {
			if _, err := semver.NewConstraint(p.Semver); err != nil {
				v.errorf(field+".policy.semver", "%q: %v", p.Semver, err)
			}
		}
		if p.Regex != "" {
			if re, err := regexp.Compile(p.Regex); err != nil {
				v.errorf(field+".policy.regex", "%q: %v", p.Regex, err)
			} else if countNamed(re) > 1 {
				v.errorf(field+".policy.regex", "%q: at most one named group (the value that orders tags)", p.Regex)
			}
		}
		switch p.Order {
		case "", "alphabetical", "numeric":
		default:
			v.errorf(field+".policy.order", "%q: want alphabetical or numeric", p.Order)
		}
		if p.Order != "" && p.Regex == "" {
			v.errorf(field+".policy.order", "orders the values of a regex policy only")
		}
		switch p.Alphabetical {
		case "", "asc", "desc":
		default:
			v.errorf(field+".policy.alphabetical", "%q: want asc or desc", p.Alphabetical)
		}
		switch u.Pin {
		case "", "tag", "digest":
		default:
			v.errorf(field+".pin", "%q: want tag or digest", u.Pin)
		}
	}
}

func countNamed(re *regexp.Regexp) int {
	n := 0
	for _, name := range re.SubexpNames() {
		if name != "" {
			n++
		}
	}
	return n
}
