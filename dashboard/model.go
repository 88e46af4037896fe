// Package dashboard serves read-only pages of the releases, their steps and
// their weight over time, all of it read from Git: status.yaml on the
// status branch, the Sluice-* trailers of its commits, and the release
// files on the spec branch. It never writes; changes go through Git.
package dashboard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/gitsource"
)

// Repo is where the pages come from: a repository holding the status
// branch (all of its history) and a way to read the spec branch's files.
type Repo struct {
	// Status holds the status branch at StatusRef.
	Status    *git.Repository
	StatusRef plumbing.ReferenceName
	// Fetch, when set, brings StatusRef up to date before a read.
	Fetch func(ctx context.Context) error
	// SpecFile reads a file of the spec branch at a revision ("" for the
	// branch's head); an error when the revision or file is not there.
	SpecFile func(revision, file string) ([]byte, error)
	// ReleasesPath is the directory releases live under ("releases").
	ReleasesPath string
	fetchMu      sync.Mutex
	lastFetch    time.Time
	// MaxCommits bounds the status commits read for the timelines
	// (default 20000): the newest ones.
	MaxCommits int
}

// Snapshot is every page's data at one status commit.
type Snapshot struct {
	// Commit is the status branch's head the pages show.
	Commit string
	// Time is when it was committed.
	Time     time.Time
	Releases []*Release
}

// Release is one release as the pages show it.
type Release struct {
	ID     string
	Status v1alpha1.ReleaseStatus
	// Strategy and Steps are read from the release file at the canary's
	// revision (else the spec head); Steps is nil for manual, rolling
	// and recreate, or when the file cannot be read (SpecError says why).
	Strategy  string
	Manual    bool
	Steps     []string
	SpecError string
	// Events are the release's status commits, oldest first.
	Events []Event
}

// Event is one status commit about a release, from its trailers.
type Event struct {
	Commit   string
	Time     time.Time
	Subject  string
	Message  string
	Phase    string
	Step     int
	Weight   int
	Revision string
	// Checks are the Sluice-Checks trailer's results.
	Checks []CheckMark
	// RollbackFrom and RollbackTo are set on a rollback.
	RollbackFrom, RollbackTo string
}

// CheckMark is one check's result in a Sluice-Checks trailer:
// "name=value verdict".
type CheckMark struct {
	Name, Value, Verdict string
}

// Find returns the release with id, or nil.
func (s *Snapshot) Find(id string) *Release {
	for _, r := range s.Releases {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// Head is the status branch's head, fetched first when Fetch is set.
func (r *Repo) Head(ctx context.Context) (plumbing.Hash, error) {
	if r.Fetch != nil {
		// One fetch at a time, at most one a second, however many pages
		// and event streams ask.
		r.fetchMu.Lock()
		if time.Since(r.lastFetch) >= time.Second {
			err := r.Fetch(ctx)
			r.lastFetch = time.Now()
			if err != nil {
				r.fetchMu.Unlock()
				return plumbing.ZeroHash, err
			}
		}
		r.fetchMu.Unlock()
	}
	ref, err := r.Status.Reference(r.StatusRef, true)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("status branch %s: %w", r.StatusRef.Short(), err)
	}
	return ref.Hash(), nil
}

// Load reads the snapshot at the status commit head.
func (r *Repo) Load(ctx context.Context, head plumbing.Hash) (*Snapshot, error) {
	c, err := r.Status.CommitObject(head)
	if err != nil {
		return nil, err
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, err
	}
	snap := &Snapshot{Commit: head.String(), Time: c.Committer.When}
	byID := map[string]*Release{}
	prefix := strings.Trim(r.ReleasesPath, "/")
	err = tree.Files().ForEach(func(f *object.File) error {
		if path.Base(f.Name) != v1alpha1.StatusFile || (prefix != "" && !strings.HasPrefix(f.Name, prefix+"/")) {
			return nil
		}
		body, err := f.Contents()
		if err != nil {
			return err
		}
		var st v1alpha1.ReleaseStatus
		if err := yaml.Unmarshal([]byte(body), &st); err != nil || st.Metadata.Name == "" {
			return nil // not a status sluice wrote
		}
		rel := &Release{ID: st.Metadata.Namespace + "/" + st.Metadata.Name, Status: st}
		r.readSpec(rel, path.Dir(f.Name))
		byID[rel.ID] = rel
		snap.Releases = append(snap.Releases, rel)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(snap.Releases, func(i, j int) bool { return snap.Releases[i].ID < snap.Releases[j].ID })
	if err := r.events(ctx, c, byID); err != nil {
		return nil, err
	}
	return snap, nil
}

// readSpec fills the release's strategy and steps from its file at the
// canary's revision, else the spec head.
func (r *Repo) readSpec(rel *Release, dir string) {
	if r.SpecFile == nil {
		return
	}
	file := path.Join(dir, v1alpha1.ReleaseFile)
	rev := ""
	if rel.Status.Canary != nil {
		rev = rel.Status.Canary.Revision
	}
	data, err := r.SpecFile(rev, file)
	if err != nil && rev != "" {
		data, err = r.SpecFile("", file)
	}
	if err != nil {
		rel.SpecError = fmt.Sprintf("%s: not on the spec branch (removed?)", file)
		return
	}
	p, err := v1alpha1.ParseRelease(file, data)
	if err != nil {
		rel.SpecError = err.Error()
		return
	}
	s := &p.Release.Spec.Strategy
	rel.Strategy, rel.Manual = s.Name(), s.Manual()
	for _, step := range s.Steps() {
		rel.Steps = append(rel.Steps, step.String())
	}
}

var errEnough = errors.New("enough commits")

// events reads the status commits from head back (at most MaxCommits) and
// gives each release its own, oldest first.
func (r *Repo) events(ctx context.Context, head *object.Commit, byID map[string]*Release) error {
	limit := r.MaxCommits
	if limit <= 0 {
		limit = 20000
	}
	iter, err := r.Status.Log(&git.LogOptions{From: head.Hash, Order: git.LogOrderCommitterTime})
	if err != nil {
		return err
	}
	n := 0
	err = iter.ForEach(func(c *object.Commit) error {
		if n++; n > limit {
			return errEnough
		}
		if n%256 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		tr := gitsource.ParseTrailers(c.Message)
		rel := byID[tr["Sluice-Release"]]
		if rel == nil || tr["Sluice-Phase"] == "" {
			return nil
		}
		rel.Events = append(rel.Events, eventOf(c, tr))
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) && !errors.Is(err, io.EOF) && !errors.Is(err, storer.ErrStop) && !errors.Is(err, plumbing.ErrObjectNotFound) {
		return err
	}
	for _, rel := range byID {
		// Oldest first; commits of one second keep their Git order.
		for i, j := 0, len(rel.Events)-1; i < j; i, j = i+1, j-1 {
			rel.Events[i], rel.Events[j] = rel.Events[j], rel.Events[i]
		}
	}
	return nil
}

func eventOf(c *object.Commit, tr map[string]string) Event {
	subject, body, _ := strings.Cut(c.Message, "\n")
	e := Event{Commit: c.Hash.String(), Time: c.Committer.When, Subject: subject, Phase: tr["Sluice-Phase"],
		Revision: tr["Sluice-Revision"], RollbackFrom: tr["Sluice-Rollback-From"], RollbackTo: tr["Sluice-Rollback-To"]}
	// The body's first paragraph is the status message.
	if paras := strings.Split(strings.TrimSpace(body), "\n\n"); len(paras) > 1 {
		e.Message = strings.TrimSpace(paras[0])
	}
	e.Step, _ = strconv.Atoi(tr["Sluice-Step"])
	e.Weight, _ = strconv.Atoi(tr["Sluice-Weight"])
	e.Checks = ParseChecks(tr["Sluice-Checks"])
	return e
}

// ParseChecks reads a Sluice-Checks trailer: "name=value verdict, …".
func ParseChecks(s string) []CheckMark {
	var out []CheckMark
	for _, part := range strings.Split(s, ", ") {
		name, rest, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		i := strings.LastIndex(rest, " ")
		if i < 0 {
			continue
		}
		out = append(out, CheckMark{Name: name, Value: rest[:i], Verdict: rest[i+1:]})
	}
	return out
}

// GitSpecFile reads the spec branch's files from a repository: at a
// revision, or at ref's head for "".
func GitSpecFile(repo *git.Repository, ref plumbing.ReferenceName) func(revision, file string) ([]byte, error) {
	return func(revision, file string) ([]byte, error) {
		var h plumbing.Hash
		if revision == "" {
			r, err := repo.Reference(ref, true)
			if err != nil {
				return nil, err
			}
			h = r.Hash()
		} else {
			rh, err := repo.ResolveRevision(plumbing.Revision(revision))
			if err != nil {
				return nil, err
			}
			h = *rh
		}
		c, err := repo.CommitObject(h)
		if err != nil {
			return nil, err
		}
		f, err := c.File(file)
		if err != nil {
			return nil, err
		}
		s, err := f.Contents()
		return []byte(s), err
	}
}

// Changed is when the release's status last changed (its newest status
// commit), zero when none was read.
func (r *Release) Changed() time.Time {
	if len(r.Events) == 0 {
		return time.Time{}
	}
	return r.Events[len(r.Events)-1].Time
}

// StepState is one step of the release's list as the page shows it.
type StepState struct {
	N    int
	Text string
	// Done, Current: the canary in flight has passed it, or stands at it.
	Done, Current bool
}

// StepList is the steps with the canary's place among them.
func (r *Release) StepList() []StepState {
	out := make([]StepState, len(r.Steps))
	for i, s := range r.Steps {
		out[i] = StepState{N: i + 1, Text: s}
		if r.Status.Canary != nil {
			out[i].Done = i < int(r.Status.Step)
			out[i].Current = i == int(r.Status.Step)
		}
	}
	return out
}
