package main

import (
	"os"

	"github.com/spf13/pflag"

	"github.com/sluice-dev/sluice/agent"
	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/render"
)

// renderFlags are the agent's flags that change what a render accepts,
// taken by validate, render and diff so that a pull request is checked as
// the agent will check it.
type renderFlags struct {
	tenancy v1alpha1.Tenancy
	ageKeys []string
	// caps is what Helm charts see of the cluster (the agent asks the
	// live one), as helm template's flags of the same names say it.
	caps render.Capabilities
}

func (f *renderFlags) bind(fs *pflag.FlagSet) {
	agent.BindTenancyFlags(fs, &f.tenancy)
	fs.StringArrayVar(&f.ageKeys, "sops-age-key-file", ageKeyEnv(), "age identities that decrypt SOPS-encrypted files (default $SOPS_AGE_KEY_FILE); repeatable")
	fs.StringVar(&f.caps.KubeVersion, "kube-version", "", "Kubernetes version Helm charts see as .Capabilities.KubeVersion (default: Helm's)")
	fs.StringSliceVar(&f.caps.APIVersions, "api-versions", nil, "API versions (group/version or group/version/Kind) Helm charts see in .Capabilities.APIVersions, beyond Helm's own list")
}

// ageKeyEnv is sops' own SOPS_AGE_KEY_FILE, when set.
func ageKeyEnv() []string {
	if f := os.Getenv("SOPS_AGE_KEY_FILE"); f != "" {
		return []string{f}
	}
	return nil
}

// renderer is a Renderer with the flags' tenancy and age keys.
func (f *renderFlags) renderer() (*render.Renderer, error) {
	caps := f.caps
	r := &render.Renderer{Tenancy: f.tenancy, Capabilities: func() render.Capabilities { return caps }}
	if len(f.ageKeys) > 0 {
		d, err := render.LoadAgeKeys(f.ageKeys...)
		if err != nil {
			return r, err
		}
		r.Decryptor = d
	}
	return r, nil
}
