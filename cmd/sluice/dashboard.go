package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/dashboard"
)

func newDashboardCommand() *cobra.Command {
	var f verbFlags
	var listen string
	var all bool
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Serve read-only pages of the releases, their steps and weight timelines, from a clone",
		Long: `Dashboard serves, on --listen, an overview of every release (phase, step,
weight, versions, age) and a page per release (its steps, a timeline of the
canary weight with check results, approvals, aborts and rollbacks, its
checks and its history), all read from the clone: the status branch
(fetched from the remote on each page and every two seconds while a page is
open, which then refreshes itself) and the spec branch's release files.
The pages never write; the commands they show are for your terminal.

With several --cluster (or --all-clusters), each cluster's pages are under
/<cluster>/ and / shows every cluster's releases, one table each.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := f.clone()
			if err := c.inClone(); err != nil {
				return err
			}
			if all {
				var err error
				if f.clusters, err = clusterNames(f.dir); err != nil {
					return fail(err)
				}
			}
			var handler http.Handler
			if len(f.clusters) > 1 {
				// Several clusters: each under /<cluster>/, all of them at /.
				var servers []*dashboard.Server
				for _, cl := range f.clusters {
					cc := f.cloneOf(cl)
					if err := cc.inClone(); err != nil {
						return err
					}
					repo, err := cc.dashboardRepo()
					if err != nil {
						return fail(err)
					}
					servers = append(servers, &dashboard.Server{Repo: repo, Prefix: "/" + cl})
				}
				handler = dashboard.Clusters(f.clusters, servers)
			} else {
				if len(f.clusters) == 1 {
					c = f.cloneOf(f.clusters[0])
				}
				repo, err := c.dashboardRepo()
				if err != nil {
					return fail(err)
				}
				handler = (&dashboard.Server{Repo: repo}).Handler()
			}
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return &exitError{code: 2, msg: err.Error()}
			}
			srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(cmd.OutOrStdout(), "dashboard: http://%s/ (Ctrl-C stops it)\n", l.Addr())
			go func() {
				<-cmd.Context().Done()
				srv.Close()
			}()
			if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				return fail(err)
			}
			return nil
		},
	}
	f.bind(cmd, false)
	cmd.ValidArgsFunction = cobra.NoFileCompletions
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8090", "address to serve the pages on")
	cmd.Flags().BoolVar(&all, "all-clusters", false, "every cluster of the repository (clusters/*)")
	return cmd
}

// dashboardRepo reads the clone's status branch (fetched from the remote
// when it has one) and its spec files at HEAD or a revision.
func (c *clone) dashboardRepo() (*dashboard.Repo, error) {
	g, err := git.PlainOpenWithOptions(c.dir, &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.dir, err)
	}
	ref := plumbing.NewBranchReferenceName(c.statusBranch)
	var fetch func(context.Context) error
	if _, err := c.git("remote", "get-url", c.remote); err == nil {
		ref = plumbing.NewRemoteReferenceName(c.remote, c.statusBranch)
		fetch = func(context.Context) error {
			c.statusRef() // an unreachable remote leaves the last fetched status
			return nil
		}
	}
	return &dashboard.Repo{Status: g, StatusRef: ref, Fetch: fetch, SpecFile: dashboard.GitSpecFile(g, plumbing.HEAD), ReleasesPath: c.releasesPath}, nil
}

// historySVG writes the release's timeline, as the dashboard draws it.
func (c *clone) historySVG(ctx context.Context, w io.Writer, id string) error {
	repo, err := c.dashboardRepo()
	if err != nil {
		return fail(err)
	}
	head, err := repo.Head(ctx)
	if err != nil {
		return fail(err)
	}
	snap, err := repo.Load(ctx, head)
	if err != nil {
		return fail(err)
	}
	rel := snap.Find(id)
	if rel == nil || len(rel.Events) == 0 {
		return &exitError{code: 1, msg: "no history for " + id}
	}
	svg, err := dashboard.ChartOf(rel, time.Now()).SVG(true)
	if err != nil {
		return fail(err)
	}
	_, err = w.Write(svg)
	return err
}
