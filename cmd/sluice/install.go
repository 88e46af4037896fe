package main

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/kustomize/api/krusty"
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
repository, branch and namespaces given, as flux install --export does. It
never talks to the cluster; the Git credentials Secret is yours to create.`,
		Example: `  sluice install --export --repo https://git.example.com/org/deploy.git | kubectl apply -f -
  kubectl -n sluice-system create secret generic sluice-git --from-file=password=./token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !export {
				return &exitError{code: 2, msg: "sluice install only exports (--export): apply its output with kubectl apply -f -"}
			}
			if repo == "" {
				return &exitError{code: 2, msg: "--repo is required"}
			}
			dir := map[string]string{"cluster-wide": ".", "tenancy": "tenancy"}[mode]
			if dir == "" {
				return &exitError{code: 2, msg: fmt.Sprintf("--mode %q: want cluster-wide or tenancy", mode)}
			}
			if err := gitsource.ValidateBranch(branch); err != nil {
				return &exitError{code: 2, msg: "--branch: " + err.Error()}
			}
			settings := map[string]string{"SLUICE_REPO": repo, "SLUICE_BRANCH": branch}
			if len(namespaces) > 0 {
				settings["SLUICE_NAMESPACES"] = strings.Join(namespaces, ",")
			}
			out, err := exportManifests(dir, settings, image)
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

// exportManifests builds dir of the embedded deploy/ with the settings
// added to the agent's config.
func exportManifests(dir string, settings map[string]string, image string) ([]byte, error) {
	mem := filesys.MakeFsInMemory()
	err := fs.WalkDir(deploy.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := deploy.FS.ReadFile(p)
		if err != nil {
			return err
		}
		if p == "base/config.env" {
			b = withSettings(b, settings)
		}
		return mem.WriteFile(path.Join("/deploy", p), b)
	})
	if err != nil {
		return nil, err
	}
	root := path.Join("/deploy", dir)
	if image != "" {
		k, err := mem.ReadFile(path.Join(root, "kustomization.yaml"))
		if err != nil {
			return nil, err
		}
		name, tag, _ := strings.Cut(image, ":")
		k = regexp.MustCompile(`(?m)^(\s+newName:).*$`).ReplaceAll(k, []byte("${1} "+name))
		k = regexp.MustCompile(`(?m)^(\s+newTag:).*$`).ReplaceAll(k, []byte(fmt.Sprintf("${1} %q", tag)))
		if err := mem.WriteFile(path.Join(root, "kustomization.yaml"), k); err != nil {
			return nil, err
		}
	}
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, root)
	if err != nil {
		return nil, err
	}
	return rm.AsYaml()
}

// withSettings sets KEY=value lines of an env file, replacing those there.
func withSettings(env []byte, settings map[string]string) []byte {
	var out []string
	for _, line := range strings.Split(strings.TrimRight(string(env), "\n"), "\n") {
		key, _, _ := strings.Cut(line, "=")
		if _, ok := settings[key]; ok {
			continue
		}
		out = append(out, line)
	}
	for _, k := range []string{"SLUICE_REPO", "SLUICE_BRANCH", "SLUICE_NAMESPACES"} {
		if v, ok := settings[k]; ok {
			out = append(out, k+"="+v)
		}
	}
	return []byte(strings.Join(out, "\n") + "\n")
}
