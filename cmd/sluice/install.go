package main

import (
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/sluice-dev/sluice/deploy"
	"github.com/sluice-dev/sluice/gitsource"
)

func newInstallCommand() *cobra.Command {
	var export bool
	var mode, repo, branch, image string
	var namespaces []string
	cmd := &cobra.Command{
		Use:   "install --export",
		Short: "Print the install manifests for a repository (pipe them to kubectl apply -f -)",
		Long: `Install --export prints the manifests of deploy/ (or deploy/tenancy/ with
--mode tenancy), built with kustomize, with the agent's config set for the
repository, branch and namespaces given, as flux install --export does. An
https:// repository is read with a token (deploy/https-token/), any other
with an SSH key (deploy/ssh/). It never talks to the cluster; the Git
credentials Secret is yours to create.`,
		Example: `  sluice install --export --repo https://git.example.com/org/deploy.git | kubectl apply -f -
  kubectl -n sluice-system create secret generic sluice-git --from-file=password=./token

  sluice install --export --repo ssh://git@git.example.com/org/deploy.git | kubectl apply -f -
  kubectl -n sluice-system create secret generic sluice-git \
    --from-file=identity=./id_ed25519 --from-file=known_hosts=./known_hosts`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !export {
				return &exitError{code: 2, msg: "sluice install only exports (--export): apply its output with kubectl apply -f -"}
			}
			if repo == "" {
				return &exitError{code: 2, msg: "--repo is required"}
			}
			if mode != "cluster-wide" && mode != "tenancy" {
				return &exitError{code: 2, msg: fmt.Sprintf("--mode %q: want cluster-wide or tenancy", mode)}
			}
			if err := gitsource.ValidateBranch(branch); err != nil {
				return &exitError{code: 2, msg: "--branch: " + err.Error()}
			}
			settings := map[string]string{"SLUICE_REPO": repo, "SLUICE_BRANCH": branch}
			if len(namespaces) > 0 {
				settings["SLUICE_NAMESPACES"] = strings.Join(namespaces, ",")
			}
			out, err := exportManifests(mode, repo, settings, image)
			if err != nil {
				return fail(err)
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cmd.Flags().BoolVar(&export, "export", false, "print the manifests instead of applying them")
	cmd.Flags().StringVar(&mode, "mode", "cluster-wide", "cluster-wide (deploy/) or tenancy (deploy/tenancy/)")
	cmd.Flags().StringVar(&repo, "repo", "", "the repository of release files (required)")
	cmd.Flags().StringVar(&branch, "branch", "main", "the spec branch")
	cmd.Flags().StringSliceVar(&namespaces, "namespaces", nil, "namespaces releases may deploy to (default: all)")
	cmd.Flags().StringVar(&image, "image", "", "the agent's image (default: the one deploy/ names)")
	return cmd
}

// exportManifests builds the mode's directory of the embedded deploy/
// under an overlay of its own: the credentials' component for the
// repository's scheme, the settings merged into the agent's ConfigMap and
// the image. The checked-in files are built as they are, not edited.
func exportManifests(mode, repo string, settings map[string]string, image string) ([]byte, error) {
	mem := filesys.MakeFsInMemory()
	err := fs.WalkDir(deploy.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := deploy.FS.ReadFile(p)
		if err != nil {
			return err
		}
		return mem.WriteFile(path.Join("/deploy", p), b)
	})
	if err != nil {
		return nil, err
	}
	// The mode's directory; the locked-down mode over SSH swaps the
	// credentials' component in a layer of its own, since a component runs
	// after the generators of the kustomization that names it.
	ssh := !strings.HasPrefix(repo, "https://") && !strings.HasPrefix(repo, "http://")
	base := "../https-token"
	switch {
	case mode == "tenancy" && ssh:
		base = "auth"
		err = writeKustomization(mem, "/deploy/export/auth", types.Kustomization{
			Resources: []string{"../../tenancy"}, Components: []string{"../../components/git-ssh"},
		})
	case mode == "tenancy":
		base = "../tenancy"
	case ssh:
		base = "../ssh"
	}
	if err != nil {
		return nil, err
	}
	var literals []string
	for _, key := range slices.Sorted(maps.Keys(settings)) {
		literals = append(literals, key+"="+settings[key])
	}
	k := types.Kustomization{
		Resources: []string{base},
		ConfigMapGenerator: []types.ConfigMapArgs{{GeneratorArgs: types.GeneratorArgs{
			Name: "sluice", Behavior: "merge", KvPairSources: types.KvPairSources{LiteralSources: literals},
		}}},
	}
	if image != "" {
		name, tag, _ := strings.Cut(image, ":")
		k.Images = []types.Image{{Name: deployImage, NewName: name, NewTag: tag}}
	}
	if err := writeKustomization(mem, "/deploy/export", k); err != nil {
		return nil, err
	}
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, "/deploy/export")
	if err != nil {
		return nil, err
	}
	return rm.AsYaml()
}

// writeKustomization writes k as dir/kustomization.yaml.
func writeKustomization(fsys filesys.FileSystem, dir string, k types.Kustomization) error {
	k.TypeMeta = types.TypeMeta{APIVersion: types.KustomizationVersion, Kind: types.KustomizationKind}
	b, err := yaml.Marshal(k)
	if err != nil {
		return err
	}
	return fsys.WriteFile(path.Join(dir, "kustomization.yaml"), b)
}

// deployImage is the image deploy/base/ names.
const deployImage = "ghcr.io/sluice-dev/sluice"
