package main

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/imageupdate"
	"github.com/sluice-dev/sluice/promotion"
	"github.com/sluice-dev/sluice/render"
)

// stageRow is one cluster's copy of a release, as `sluice pipeline`
// prints it.
type stageRow struct {
	Cluster string `json:"cluster"`
	From    string `json:"from,omitempty"`
	Phase   string `json:"phase"`
	// Version is the stable revision; Images the tags the spec names.
	Version string `json:"version"`
	Images  string `json:"images"`
	// Next is what the next promotion into this stage waits for.
	Next string `json:"next"`
}

func newPipelineCommand() *cobra.Command {
	var f verbFlags
	var output string
	cmd := &cobra.Command{
		Use:   "pipeline <namespace/name>",
		Short: "Show a release's stages across clusters: each one's version, state, and what its next promotion waits for",
		Long: `Pipeline finds the release in every cluster of the repository
(clusters/<cluster>/releases/<namespace>/<name>), orders the clusters by
their spec.promotion (upstream first), and prints each stage's phase and
stable version (from its cluster's status branch, sluice/status/<cluster>),
the images its files name, and what the next promotion into it waits for
(the upstream's phase, soak, gate) — the same conditions the agent checks.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := f.clone()
			if err := c.inClone(); err != nil {
				return err
			}
			if err := checkReleaseName(args[0]); err != nil {
				return err
			}
			rows, err := f.pipeline(args[0], time.Now())
			if err != nil {
				return fail(err)
			}
			if len(rows) == 0 {
				return &exitError{code: 1, msg: fmt.Sprintf("no cluster under %s has %s", filepath.Join(c.dir, "clusters"), args[0])}
			}
			return printAs(cmd.OutOrStdout(), output, rows, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "STAGE\tFROM\tPHASE\tVERSION\tIMAGES\tNEXT")
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Cluster, dash(r.From), dash(r.Phase), dash(short(r.Version)), dash(r.Images), r.Next)
				}
				tw.Flush()
			})
		},
	}
	f.bind(cmd, false)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, yaml or json")
	return cmd
}

// clusterNames are the clusters of a repository of several: the
// directories under clusters/.
func clusterNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(dir, "clusters"))
	if err != nil {
		return nil, fmt.Errorf("no clusters/ directory: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && v1alpha1.ValidateClusterName(e.Name()) == nil {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// stage is one cluster's copy of the release.
type stage struct {
	row    stageRow
	rel    *v1alpha1.Parsed
	status *v1alpha1.ReleaseStatus
	clone  *clone
	// kustomization is the stage's kustomization in the clone.
	kustomization []byte
}

// upToDate says whether the stage's files name the images the upstream's
// files name at version.
func (s *stage) upToDate(pr *v1alpha1.Promotion, upCluster, upID, version string) bool {
	up, err := s.clone.git("show", version+":"+path.Join(v1alpha1.ClusterReleasesPath(upCluster), upID, "kustomization.yaml"))
	return err == nil && len(promotion.Changes(pr, []byte(up), s.kustomization)) == 0
}

// pipeline reads the release in every cluster of the clone.
func (f *verbFlags) pipeline(id string, now time.Time) ([]stageRow, error) {
	names0, err := clusterNames(f.dir)
	if err != nil {
		return nil, err
	}
	disk, err := render.NewDiskFS(f.dir)
	if err != nil {
		return nil, err
	}
	stages := map[string]*stage{}
	var names []string
	for _, name := range names0 {
		c := f.cloneOf(name)
		file := path.Join(c.releasesPath, id, v1alpha1.ReleaseFile)
		data, err := os.ReadFile(filepath.Join(c.dir, file))
		if err != nil {
			continue
		}
		p, err := v1alpha1.ParseRelease(file, data)
		if err != nil {
			return nil, err
		}
		s := &stage{row: stageRow{Cluster: name}, rel: p, clone: c}
		if st, err := c.statusAt(c.statusRef(), id); err == nil {
			s.status = st
			s.row.Phase = string(st.Phase)
			if st.Stable != nil {
				s.row.Version = st.Stable.Revision
			}
		}
		if pr := p.Release.Spec.Promotion; pr != nil {
			s.row.From = pr.From
		}
		kf := render.KustomizationPath(disk, path.Join(disk.Root(), path.Dir(file)))
		if kd, err := disk.ReadFile(kf); err == nil {
			s.kustomization = kd
			var tags []string
			for _, e := range imageupdate.Entries(kd) {
				tags = append(tags, e.Image()+":"+e.NewTag)
			}
			s.row.Images = strings.Join(tags, ", ")
		}
		stages[name] = s
		names = append(names, name)
	}
	// Upstream first: a stage's depth is its chain of promotions.
	depth := func(name string) int {
		d := 0
		for seen := map[string]bool{}; stages[name] != nil && stages[name].rel.Release.Spec.Promotion != nil && !seen[name]; d++ {
			seen[name] = true
			name, _ = stages[name].rel.Release.Spec.Promotion.Upstream()
		}
		return d
	}
	sort.SliceStable(names, func(i, j int) bool {
		if di, dj := depth(names[i]), depth(names[j]); di != dj {
			return di < dj
		}
		return names[i] < names[j]
	})
	rows := make([]stageRow, 0, len(names))
	for _, name := range names {
		s := stages[name]
		pr := s.rel.Release.Spec.Promotion
		switch {
		case pr == nil:
			s.row.Next = "the first stage: versions come by commits"
		default:
			upCluster, upID := pr.Upstream()
			var up *v1alpha1.ReleaseStatus
			if u := stages[upCluster]; u != nil && upID == id {
				up = u.status
			} else {
				uc := f.cloneOf(upCluster)
				up, _ = uc.statusAt(uc.statusRef(), upID)
			}
			d := promotion.Decide(pr, s.rel.Release.Spec.Gates, up, now)
			switch {
			case !d.Ready:
				s.row.Next = d.Pending
			case s.upToDate(pr, upCluster, upID, d.Version):
				s.row.Next = fmt.Sprintf("up to date with %s at %s", pr.From, short(d.Version))
			default:
				s.row.Next = fmt.Sprintf("%s of %s is due: the agent commits it at its next check", short(d.Version), pr.From)
			}
		}
		rows = append(rows, s.row)
	}
	return rows, nil
}
