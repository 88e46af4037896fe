package agent

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/sluice-dev/sluice/dashboard"
)

// ui serves the dashboard's pages under /ui/ (--ui): read-only, from the
// agent's full copy of the status branch and its spec clone.
type ui struct {
	a    *Agent
	mu   sync.Mutex
	page http.Handler
}

func (u *ui) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, err := u.handler(r.Context())
	if err != nil {
		http.Error(w, "reading the status branch: "+err.Error(), http.StatusBadGateway)
		return
	}
	h.ServeHTTP(w, r)
}

// handler builds the pages' server at the first request that can read the
// status branch.
func (u *ui) handler(ctx context.Context) (http.Handler, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.page != nil {
		return u.page, nil
	}
	a := u.a
	repo, ref, err := a.src.StatusHistory(ctx)
	if err != nil {
		return nil, err
	}
	u.page = (&dashboard.Server{Prefix: "/ui", Repo: &dashboard.Repo{
		Status:    repo,
		StatusRef: ref,
		Fetch: func(ctx context.Context) error {
			_, _, err := a.src.StatusHistory(ctx)
			return err
		},
		SpecFile:     a.specFile,
		ReleasesPath: a.opts.Path,
	}}).Handler()
	return u.page, nil
}

// specFile reads a file of the spec branch at a revision the clone holds,
// or at the spec commit the last pass applied.
func (a *Agent) specFile(revision, file string) ([]byte, error) {
	var h plumbing.Hash
	if revision != "" {
		h = plumbing.NewHash(revision)
		if !a.src.Has(h) {
			return nil, fmt.Errorf("revision %s is not in the agent's clone", revision)
		}
	} else if p := a.uiSpec.Load(); p != nil {
		h = *p
	} else {
		return nil, fmt.Errorf("no pass has read the spec branch yet")
	}
	tree, err := a.src.Tree(h)
	if err != nil {
		return nil, err
	}
	return tree.ReadFile("/" + strings.TrimPrefix(file, "/"))
}
