package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/imageupdate"
	"github.com/sluice-dev/sluice/internal/egress"
	"github.com/sluice-dev/sluice/render"
)

// imageRow is one release's policy for one image, as `sluice images`
// prints it.
type imageRow struct {
	Release string `json:"release"`
	Image   string `json:"image"`
	Policy  string `json:"policy"`
	// Git is the tag the spec branch names; Deployed the one at the
	// release's stable revision; Latest what the policy takes from the
	// registry now ("" with Error when it could not be listed).
	Git      string `json:"git"`
	Deployed string `json:"deployed"`
	Latest   string `json:"latest"`
	Error    string `json:"error,omitempty"`
	Scanned  string `json:"scanned"`
}

func newImagesCommand() *cobra.Command {
	var f verbFlags
	var output string
	var configs []string
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List the releases' image update policies: the tag in Git, the deployed one, the newest the registry has",
		Long: `Images lists every spec.imageUpdates entry of the releases in the clone:
the tag the spec branch names, the tag at the release's stable revision
(from the status branch), and the tag the policy takes from the registry
now (this command lists the registry's tags itself, with the Docker config
files given, else $DOCKER_CONFIG/config.json or ~/.docker/config.json).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := f.clone()
			if err := c.inClone(); err != nil {
				return err
			}
			reg, err := imageRegistry(configs)
			if err != nil {
				return &exitError{code: 2, msg: err.Error()}
			}
			rows, err := c.imageRows(cmd.Context(), reg)
			if err != nil {
				return fail(err)
			}
			return printAs(cmd.OutOrStdout(), output, rows, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "RELEASE\tIMAGE\tPOLICY\tGIT\tDEPLOYED\tLATEST")
				for _, r := range rows {
					latest := r.Latest
					if r.Error != "" {
						latest = "? " + r.Error
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Release, r.Image, r.Policy, dash(r.Git), dash(r.Deployed), dash(latest))
				}
				tw.Flush()
			})
		},
	}
	f.bind(cmd, false)
	cmd.ValidArgsFunction = cobra.NoFileCompletions
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, yaml or json")
	cmd.Flags().StringArrayVar(&configs, "docker-config", nil, "Docker config file with registry credentials; repeatable")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// imageRegistry is a registry client with the config files' credentials,
// else the user's Docker config when there is one.
func imageRegistry(configs []string) (*imageupdate.Registry, error) {
	if len(configs) == 0 {
		dir := os.Getenv("DOCKER_CONFIG")
		if dir == "" {
			if home, err := os.UserHomeDir(); err == nil {
				dir = filepath.Join(home, ".docker")
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "config.json")); err == nil {
			configs = []string{filepath.Join(dir, "config.json")}
		}
	}
	reg := &imageupdate.Registry{Transport: egress.Transport()}
	if len(configs) > 0 {
		k := &imageupdate.Credentials{DockerConfigs: configs}
		if err := k.Check(); err != nil {
			return nil, fmt.Errorf("--docker-config: %w", err)
		}
		reg.Keychain = k
	}
	return reg, nil
}

// imageRows reads every release's imageUpdates from the clone and asks the
// registry once per image.
func (c *clone) imageRows(ctx context.Context, reg *imageupdate.Registry) ([]imageRow, error) {
	fsys, err := render.NewDiskFS(c.dir)
	if err != nil {
		return nil, err
	}
	files, err := v1alpha1.FindReleases(fsys, fsys.Root(), c.releasesPath)
	if err != nil && len(files) == 0 {
		return nil, err
	}
	tags := map[string][]string{}
	errs := map[string]error{}
	rows := []imageRow{}
	statusRef := c.statusRef() // fetched once for every row
	for _, file := range files {
		p, err := render.ReadRelease(fsys, fsys.Root(), file)
		if err != nil {
			continue // sluice validate says why
		}
		for _, u := range p.Release.Spec.ImageUpdates {
			if _, done := tags[u.Image]; !done && errs[u.Image] == nil {
				lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				tags[u.Image], errs[u.Image] = reg.Tags(lctx, u.Image)
				cancel()
			}
			row := imageRow{Release: p.Release.ID(), Image: u.Image, Policy: u.Policy.Name(), Scanned: time.Now().UTC().Format(time.RFC3339)}
			kf := render.KustomizationPath(fsys, path.Join(fsys.Root(), p.SourceDir()))
			if data, err := fsys.ReadFile(kf); err == nil {
				row.Git = imageupdate.Tag(data, u.Image)
			}
			if st, err := c.statusAt(statusRef, p.Release.ID()); err == nil && st.Stable != nil {
				if data, err := c.git("show", st.Stable.Revision+":"+strings.TrimPrefix(kf, fsys.Root()+"/")); err == nil {
					row.Deployed = imageupdate.Tag([]byte(data), u.Image)
				}
			}
			if errs[u.Image] != nil {
				row.Error = errs[u.Image].Error()
			} else {
				row.Latest, _ = imageupdate.Latest(u.Policy, tags[u.Image])
			}
			rows = append(rows, row)
		}
	}
	return rows, nil
}
